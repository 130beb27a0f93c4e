"""A local anvil devnet for integration tests and the demo: the node process and the few chain
operations they need.

Transactions go through anvil's unlocked dev accounts with `eth_sendTransaction`, so no private
key appears here. Every sending function waits for its receipt unless told `wait=False` (to
put several transactions into one interval-mined block).

The package is split by concern — `node` (binary and process), `rpc` (calls, mining, reorgs),
`token` (transactions and the test token) — and re-exports all of it, so callers write
`from scripts import anvil` and `anvil.transfer(...)`.
"""

from scripts.devnet.anvil.node import ANVIL_PACKAGE, TOOLS, Anvil, ensure_anvil
from scripts.devnet.anvil.payer import (
    INNER_REVERT,
    PAY,
    REVERT,
    create_and_drop,
    deploy_dropper,
    deploy_payer,
    drop,
    pay,
    send_value,
)
from scripts.devnet.anvil.rpc import (
    EXPLICIT_GAS,
    DevnetError,
    Receipt,
    RpcError,
    accounts,
    block_hash,
    block_number,
    mine,
    receipt,
    reorg,
    revert,
    rpc,
    snapshot,
)
from scripts.devnet.anvil.token import (
    balance_of,
    batch_transfer,
    deploy_token,
    mint,
    send,
    send_transfer_expect_revert,
    token_artifact,
    transfer,
    transfer_request,
)

__all__ = [
    "ANVIL_PACKAGE",
    "EXPLICIT_GAS",
    "INNER_REVERT",
    "PAY",
    "REVERT",
    "TOOLS",
    "Anvil",
    "DevnetError",
    "Receipt",
    "RpcError",
    "accounts",
    "balance_of",
    "batch_transfer",
    "block_hash",
    "block_number",
    "create_and_drop",
    "deploy_dropper",
    "deploy_payer",
    "drop",
    "deploy_token",
    "ensure_anvil",
    "mine",
    "mint",
    "pay",
    "receipt",
    "reorg",
    "revert",
    "rpc",
    "send",
    "send_transfer_expect_revert",
    "send_value",
    "snapshot",
    "token_artifact",
    "transfer",
    "transfer_request",
]
