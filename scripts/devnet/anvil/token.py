"""Transactions from anvil's unlocked dev accounts, and the test token (`TestToken`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from sha3 import keccak_256

from scripts.devnet.anvil.rpc import EXPLICIT_GAS, DevnetError, Receipt, accounts, receipt, rpc

TOKEN_ARTIFACT = Path(__file__).resolve().parents[1] / "TestToken.json"


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
