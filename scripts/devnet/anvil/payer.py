"""Sending the devnet's coin: from an account (top-level), or from `Payer`, a contract that
pays several addresses in one transaction (internal transfers, as exchanges pay out).

`Payer` is a dozen lines of EVM assembly, assembled here rather than compiled (no compiler is
needed offline). Its calldata is a mode word, then (recipient, amount) word pairs; it CALLs
each recipient with the amount and then, by mode:
- PAY (0): stops; every payment stands.
- REVERT (1): reverts; the whole transaction fails and no payment stands.
- INNER_REVERT (2): instead of paying itself, calls itself in REVERT mode with the value and
  ignores that call's failure; the transaction succeeds, the payments inside it were undone.

`Dropper` pays by SELFDESTRUCT instead: its code is `PUSH20 <beneficiary> SELFDESTRUCT`, so any
call to it (from an account, or from `Payer`) sends its whole balance to the beneficiary. Run
as creation code, the same two instructions pay the contract's endowment and leave no code.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address

from scripts.devnet.anvil.rpc import EXPLICIT_GAS, receipt
from scripts.devnet.anvil.token import _sender, send

PAY, REVERT, INNER_REVERT = 0, 1, 2

_OPCODES = {
    "STOP": 0x00, "ADD": 0x01, "LT": 0x10, "EQ": 0x14, "ISZERO": 0x15, "ADDRESS": 0x30,
    "CALLVALUE": 0x34, "CALLDATALOAD": 0x35, "CALLDATASIZE": 0x36, "CALLDATACOPY": 0x37,
    "POP": 0x50, "MSTORE": 0x52, "JUMP": 0x56, "JUMPI": 0x57, "GAS": 0x5A, "JUMPDEST": 0x5B,
    "DUP1": 0x80, "DUP2": 0x81, "DUP5": 0x84, "DUP6": 0x85, "CALL": 0xF1,
    "RETURN": 0xF3, "REVERT": 0xFD, "PUSH1": 0x60, "PUSH2": 0x61,
}  # fmt: skip

# Stack comments: top on the right. `i` walks the (recipient, amount) pairs after the mode word.
_PAYER = """
    PUSH1 0 CALLDATALOAD PUSH1 2 EQ PUSH2 @inner JUMPI
    PUSH1 32
  loop: JUMPDEST
    CALLDATASIZE DUP2 LT ISZERO PUSH2 @end JUMPI
    PUSH1 0 PUSH1 0 PUSH1 0 PUSH1 0
    DUP5 PUSH1 32 ADD CALLDATALOAD DUP6 CALLDATALOAD GAS CALL
    PUSH2 @paid JUMPI
    PUSH1 0 DUP1 REVERT
  paid: JUMPDEST
    PUSH1 64 ADD PUSH2 @loop JUMP
  end: JUMPDEST
    POP PUSH1 0 CALLDATALOAD PUSH1 1 EQ PUSH2 @fail JUMPI
    STOP
  fail: JUMPDEST
    PUSH1 0 DUP1 REVERT
  inner: JUMPDEST
    CALLDATASIZE PUSH1 0 PUSH1 0 CALLDATACOPY
    PUSH1 1 PUSH1 0 MSTORE
    PUSH1 0 PUSH1 0 CALLDATASIZE PUSH1 0 CALLVALUE ADDRESS GAS CALL
    POP STOP
"""


def assemble(source: str) -> bytes:
    """Two passes: label offsets first (every label jump is a PUSH2), then the bytes."""
    tokens = source.split()
    labels: dict[str, int] = {}
    offset = 0
    for token in tokens:
        if token.endswith(":"):
            labels[token[:-1]] = offset
        elif token.startswith("@"):
            offset += 2
        elif token.isdigit():
            offset += 1
        else:
            offset += 1  # an opcode, PUSH1 and PUSH2 included
    code = bytearray()
    for token in tokens:
        if token.endswith(":"):
            continue
        if token.startswith("@"):
            code += labels[token[1:]].to_bytes(2, "big")
        elif token.isdigit():
            code.append(int(token))
        else:
            code.append(_OPCODES[token])
    return bytes(code)


@cache
def payer_creation_code() -> str:
    runtime = assemble(_PAYER)
    # Copy the runtime code after these 11 bytes to memory and return it.
    init = bytes([0x60, len(runtime), 0x80, 0x60, 11, 0x60, 0, 0x39, 0x60, 0, 0xF3])
    return "0x" + (init + runtime).hex()


def deploy_payer(url: str, *, sender: str | None = None) -> str:
    tx_hash = send(url, {"from": _sender(url, sender), "data": payer_creation_code()})
    return to_checksum_address(receipt(url, tx_hash).raw["contractAddress"])


def pay(
    url: str,
    payer: str,
    recipients: Sequence[str],
    amounts: Sequence[int],
    *,
    mode: int = PAY,
    sender: str | None = None,
    wait: bool = True,
) -> str:
    """One transaction to `payer` carrying the sum of `amounts`, which it pays out. A REVERT
    transaction fails on chain: it is not waited for as a success. Gas is explicit: an estimate
    would find the least gas with which the outer call succeeds, starving the inner one."""
    words = [mode]
    for recipient, amount in zip(recipients, amounts, strict=True):
        words += [int(recipient, 16), amount]
    tx = {
        "from": _sender(url, sender),
        "to": payer,
        "value": hex(sum(amounts)),
        "data": "0x" + encode(["uint256"] * len(words), words).hex(),
    }
    tx["gas"] = hex(EXPLICIT_GAS)
    if mode == REVERT:
        tx_hash = send(url, tx, wait=False)
        if wait:
            receipt(url, tx_hash)
        return tx_hash
    return send(url, tx, wait=wait)


_PUSH20, _SELFDESTRUCT = 0x73, 0xFF


def _drop_to(beneficiary: str) -> bytes:
    return bytes([_PUSH20]) + bytes.fromhex(beneficiary[2:]) + bytes([_SELFDESTRUCT])


def deploy_dropper(url: str, beneficiary: str, funds: int = 0, *, sender: str | None = None) -> str:
    """A contract holding `funds` that pays all it holds to `beneficiary` by SELFDESTRUCT when
    called. Since Cancun it keeps its code (it was not created in the same transaction), so it
    can be called again."""
    runtime = _drop_to(beneficiary)
    init = bytes([0x60, len(runtime), 0x80, 0x60, 11, 0x60, 0, 0x39, 0x60, 0, 0xF3]) + runtime
    tx = {"from": _sender(url, sender), "data": "0x" + init.hex(), "value": hex(funds)}
    return to_checksum_address(receipt(url, send(url, tx)).raw["contractAddress"])


def drop(url: str, dropper: str, *, sender: str | None = None) -> str:
    """A call to `dropper` from an account: its SELFDESTRUCT pays the beneficiary."""
    tx = {"from": _sender(url, sender), "to": dropper, "gas": hex(EXPLICIT_GAS)}
    return send(url, tx)


def create_and_drop(url: str, beneficiary: str, amount: int, *, sender: str | None = None) -> str:
    """A contract creation whose constructor self-destructs at once, paying its endowment."""
    data = "0x" + _drop_to(beneficiary).hex()
    return send(url, {"from": _sender(url, sender), "data": data, "value": hex(amount)})


def send_value(
    url: str, to: str, amount: int, *, sender: str | None = None, wait: bool = True
) -> str:
    """A plain transfer of the coin from an account: the transaction's own value."""
    return send(url, {"from": _sender(url, sender), "to": to, "value": hex(amount)}, wait=wait)
