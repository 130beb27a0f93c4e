"""A local anvil devnet for integration tests and the demo: the node process and the few chain
operations they need.

Transactions go through anvil's unlocked dev accounts with `eth_sendTransaction`, so no private
key appears here. Every sending function waits for its receipt unless told `wait=False` (to
put several transactions into one interval-mined block).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NoReturn, Self

import httpx
from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from sha3 import keccak_256

PROJECT = Path(__file__).resolve().parent.parent
TOOLS = PROJECT / ".tools"
ANVIL_PACKAGE = "@foundry-rs/anvil-linux-amd64@1.7.1"
TOKEN_ARTIFACT = Path(__file__).resolve().parent / "devnet" / "TestToken.json"

RPC_TIMEOUT = 10.0
STARTUP_DEADLINE = 30.0
RECEIPT_DEADLINE = 30.0
POLL_INTERVAL = 0.02
# An explicit gas limit where anvil's own estimate is no use: a transfer meant to revert (the
# estimate fails; anvil 1.7.1 then happens to fall back to the block gas limit, other nodes
# refuse the transaction) and a new request given to anvil_reorg (estimated against the old
# head's state, so too low where a balance was zero at the common ancestor: the replacement
# then runs out of gas, measured). Enough for any TestToken call.
EXPLICIT_GAS = 1_000_000

_LISTENING = re.compile(rb"Listening on (\S+:\d+)")


class DevnetError(RuntimeError):
    """The devnet could not do what was asked."""


class RpcError(DevnetError):
    """The node answered a JSON-RPC call with an error object."""

    def __init__(self, method: str, error: Mapping[str, Any]) -> None:
        self.method = method
        self.code = error.get("code")
        self.data = error.get("data")
        super().__init__(f"{method}: JSON-RPC error {self.code}: {error.get('message')}")


@dataclass(frozen=True)
class Receipt:
    transaction_hash: str
    block_number: int
    block_hash: str
    status: int
    logs: tuple[Mapping[str, Any], ...]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Receipt:
        return cls(
            transaction_hash=raw["transactionHash"],
            block_number=int(raw["blockNumber"], 16),
            block_hash=raw["blockHash"],
            status=int(raw["status"], 16),
            logs=tuple(raw["logs"]),
            raw=raw,
        )


# -- the binary ------------------------------------------------------------------------------


def ensure_anvil() -> Path:
    """The anvil binary: `ADDRPOOL_ANVIL`, else `.tools/`, installing it there with npm."""
    override = os.environ.get("ADDRPOOL_ANVIL")
    if override:
        path = Path(override)
        if not os.access(path, os.X_OK):
            raise DevnetError(f"ADDRPOOL_ANVIL={override} is not an executable file")
        return path
    binary = TOOLS / "node_modules" / ".bin" / "anvil"
    if not os.access(binary, os.X_OK):
        _npm_install(ANVIL_PACKAGE)
    return binary


def _npm_install(package: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise DevnetError(f"no npm to install {package}: install Node.js or set ADDRPOOL_ANVIL")
    argv = [npm, "install", "--no-audit", "--no-fund", "--prefix", str(TOOLS), package]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise DevnetError(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr[-2000:]}")


# -- the node --------------------------------------------------------------------------------


class Anvil:
    """An anvil node on 127.0.0.1; `with Anvil() as node:` or explicit `start()`/`stop()`.

    `block_time=None` mines a block per transaction; a number mines on that interval instead.
    Output goes to a log file: nobody reads a pipe while tests run, and a full one would block
    the node.
    """

    def __init__(
        self,
        *,
        block_time: float | None = None,
        chain_id: int = 31337,
        extra_args: Sequence[str] = (),
        log_path: Path | None = None,
        startup_deadline: float = STARTUP_DEADLINE,
    ) -> None:
        self.block_time = block_time
        self.chain_id = chain_id
        self.extra_args = tuple(extra_args)
        self.startup_deadline = startup_deadline
        self._log_path = log_path
        self._owns_log = log_path is None
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._url is None:
            raise DevnetError("anvil is not running")
        return self._url

    @property
    def log_path(self) -> Path:
        if self._log_path is None:
            raise DevnetError("anvil has not been started")
        return self._log_path

    def argv(self) -> list[str]:
        # Port 0: anvil binds a free port itself and prints it, so there is no probe-then-bind race.
        argv = [str(ensure_anvil()), "--host", "127.0.0.1", "--port", "0"]
        argv += ["--chain-id", str(self.chain_id)]
        if self.block_time is not None:
            argv += ["--block-time", str(self.block_time)]
        return argv + list(self.extra_args)

    def start(self) -> Self:
        if self._process is not None:
            raise DevnetError("anvil is already running")
        argv = self.argv()
        if self._log_path is None:
            handle, name = tempfile.mkstemp(prefix="anvil-", suffix=".log")
            os.close(handle)
            self._log_path = Path(name)
        self._log = self._log_path.open("wb")
        self._process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            self._url = self._wait_ready(self._process)
        except BaseException:
            self._owns_log = False  # the error names the log: keep it to read
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process, self._url = self._process, None, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._owns_log and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def log_tail(self, lines: int = 30) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        text = self._log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> str:
        deadline = time.monotonic() + self.startup_deadline
        url = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self._fail(f"anvil exited with status {process.returncode}")
            url = url or self._listening_url()
            if url is not None and _answers(url):
                return url
            time.sleep(POLL_INTERVAL)
        self._fail(f"anvil did not answer eth_blockNumber within {self.startup_deadline}s")

    def _listening_url(self) -> str | None:
        match = _LISTENING.search(self.log_path.read_bytes())
        return f"http://{match.group(1).decode()}" if match else None

    def _fail(self, reason: str) -> NoReturn:
        raise DevnetError(f"{reason}; log {self._log_path}, last lines:\n{self.log_tail()}")


def _answers(url: str) -> bool:
    try:
        rpc(url, "eth_blockNumber")
    except httpx.TransportError:
        return False
    return True


# -- JSON-RPC --------------------------------------------------------------------------------


def rpc(url: str, method: str, params: Sequence[Any] = ()) -> Any:
    """One JSON-RPC call; an error object raises `RpcError`."""
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
    response = _client().post(url, json=body)
    try:
        reply = response.json()
    except ValueError:
        response.raise_for_status()
        raise DevnetError(f"{method}: not a JSON-RPC reply: {response.text[:200]!r}") from None
    if reply.get("error") is not None:
        raise RpcError(method, reply["error"])
    return reply["result"]


@cache
def _client() -> httpx.Client:
    # One client for the process: a new one per call costs ~35 ms (it builds an SSL context),
    # slower than the call itself. trust_env=False keeps loopback traffic off any env proxy.
    return httpx.Client(timeout=RPC_TIMEOUT, trust_env=False)


def accounts(url: str) -> list[str]:
    return [to_checksum_address(account) for account in rpc(url, "eth_accounts")]


def block_number(url: str) -> int:
    return int(rpc(url, "eth_blockNumber"), 16)


def block_hash(url: str, number: int) -> str:
    block = rpc(url, "eth_getBlockByNumber", [hex(number), False])
    if block is None:
        raise DevnetError(f"no block {number}")
    return str(block["hash"])


def mine(url: str, blocks: int = 1) -> None:
    rpc(url, "anvil_mine", [hex(blocks)])


def snapshot(url: str) -> str:
    return str(rpc(url, "evm_snapshot"))


def revert(url: str, snapshot_id: str) -> None:
    """Back to a snapshot; anvil forgets it (and every later one) once reverted to."""
    if rpc(url, "evm_revert", [snapshot_id]) is not True:
        raise DevnetError(f"no snapshot {snapshot_id}")


def receipt(url: str, tx_hash: str, *, deadline: float = RECEIPT_DEADLINE) -> Receipt:
    """The receipt once the transaction is mined (polled until `deadline` seconds)."""
    give_up = time.monotonic() + deadline
    while (raw := rpc(url, "eth_getTransactionReceipt", [tx_hash])) is None:
        if time.monotonic() > give_up:
            raise DevnetError(f"{tx_hash} not mined within {deadline}s")
        time.sleep(POLL_INTERVAL)
    return Receipt.from_json(raw)


def reorg(
    url: str, depth: int, transactions: Sequence[tuple[str | Mapping[str, Any], int]] = ()
) -> None:
    """Replace the top `depth` blocks with `depth` new ones; the head number stays the same.

    Each pair puts a transaction into the new block at `offset` (0 is the first block above the
    common ancestor, up to depth - 1). A hash names a mined transaction, replayed from its signed
    bytes so it keeps its hash; a mapping is a new request anvil signs with the next nonce.
    Every transaction of the replaced blocks that is not listed is gone (not back in the pool).
    The new blocks all carry the common ancestor's timestamp, and the node's clock goes back to
    it: later blocks are stamped that much behind the wall clock.
    """
    if depth < 1:
        raise ValueError("a reorg replaces at least one block")
    pairs = [[_reorg_transaction(url, tx), offset] for tx, offset in transactions]
    common = block_number(url) - depth
    rpc(url, "anvil_reorg", [depth, pairs])
    for tx, offset in transactions:
        if isinstance(tx, str):
            _require_replayed(url, tx, common + 1 + offset)


def _reorg_transaction(url: str, tx: str | Mapping[str, Any]) -> str | dict[str, Any]:
    if not isinstance(tx, str):
        return {"gas": hex(EXPLICIT_GAS), **tx}
    raw = rpc(url, "eth_getRawTransactionByHash", [tx])
    if raw is None:
        raise DevnetError(f"no transaction {tx}")
    return str(raw)


def _require_replayed(url: str, tx_hash: str, number: int) -> None:
    # A replayed transaction keeps its nonce, and anvil silently leaves out one that no longer
    # fits the sender's nonce sequence (an earlier transaction of the sender was dropped, or
    # listed after it): say so rather than leave a test to wonder.
    raw = rpc(url, "eth_getTransactionReceipt", [tx_hash])
    if raw is None or int(raw["blockNumber"], 16) != number:
        found = "nowhere" if raw is None else f"in block {int(raw['blockNumber'], 16)}"
        raise DevnetError(
            f"anvil_reorg did not re-include {tx_hash} in block {number} ({found}): replay each "
            "sender's transactions in nonce order, without leaving out an earlier one"
        )


# -- transactions ----------------------------------------------------------------------------


def send(url: str, tx: Mapping[str, Any], *, wait: bool = True) -> str:
    """`eth_sendTransaction` from an unlocked account; with `wait`, it must succeed."""
    tx_hash = str(rpc(url, "eth_sendTransaction", [dict(tx)]))
    if wait and (mined := receipt(url, tx_hash)).status != 1:
        raise DevnetError(f"{tx_hash} reverted in block {mined.block_number}")
    return tx_hash


def _sender(url: str, sender: str | None) -> str:
    return sender if sender is not None else accounts(url)[0]


def _call_data(function: str, types: Sequence[str], args: Sequence[Any]) -> str:
    signature = f"{function}({','.join(types)})"
    selector: bytes = keccak_256(signature.encode()).digest()[:4]
    return "0x" + (selector + encode(list(types), list(args))).hex()


@cache
def token_artifact() -> Mapping[str, Any]:
    artifact: Mapping[str, Any] = json.loads(TOKEN_ARTIFACT.read_text())
    return artifact


# -- the test token --------------------------------------------------------------------------


def deploy_token(
    url: str, *, name: str, symbol: str, decimals: int, sender: str | None = None
) -> str:
    """Deploy `TestToken`; returns its checksummed address."""
    args = encode(["string", "string", "uint8"], [name, symbol, decimals])
    data = token_artifact()["bytecode"] + args.hex()
    tx_hash = send(url, {"from": _sender(url, sender), "data": data})
    return to_checksum_address(receipt(url, tx_hash).raw["contractAddress"])


def transfer_request(
    url: str, token: str, to: str, amount: int, sender: str | None = None
) -> dict[str, Any]:
    data = _call_data("transfer", ["address", "uint256"], [to, amount])
    return {"from": _sender(url, sender), "to": token, "data": data}


def mint(
    url: str, token: str, to: str, amount: int, sender: str | None = None, *, wait: bool = True
) -> str:
    data = _call_data("mint", ["address", "uint256"], [to, amount])
    return send(url, {"from": _sender(url, sender), "to": token, "data": data}, wait=wait)


def transfer(
    url: str, token: str, to: str, amount: int, sender: str | None = None, *, wait: bool = True
) -> str:
    return send(url, transfer_request(url, token, to, amount, sender), wait=wait)


def batch_transfer(
    url: str,
    token: str,
    recipients: Sequence[str],
    amounts: Sequence[int],
    sender: str | None = None,
    *,
    wait: bool = True,
) -> str:
    """One transaction, one standard Transfer log per recipient."""
    if len(recipients) != len(amounts):
        raise ValueError(f"{len(recipients)} recipients but {len(amounts)} amounts")
    data = _call_data("batchTransfer", ["address[]", "uint256[]"], [recipients, amounts])
    return send(url, {"from": _sender(url, sender), "to": token, "data": data}, wait=wait)


def send_transfer_expect_revert(
    url: str, token: str, to: str, amount: int, sender: str | None = None
) -> Receipt:
    """A transfer that fails on chain (e.g. above the balance): mined, status 0, no logs."""
    tx = {**transfer_request(url, token, to, amount, sender), "gas": hex(EXPLICIT_GAS)}
    tx_hash = send(url, tx, wait=False)
    mined = receipt(url, tx_hash)
    if mined.status != 0:
        raise DevnetError(f"{tx_hash} was expected to revert but succeeded")
    return mined


def balance_of(url: str, token: str, owner: str) -> int:
    data = _call_data("balanceOf", ["address"], [owner])
    return int(rpc(url, "eth_call", [{"to": token, "data": data}, "latest"]), 16)
