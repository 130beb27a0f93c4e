"""The devnet tooling against a real anvil: tokens, logs, failed transactions, reorgs."""

import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from eth_abi.abi import decode
from sha3 import keccak_256

from scripts.devnet import anvil
from scripts.devnet.anvil import Anvil, DevnetError

TRANSFER_TOPIC = "0x" + keccak_256(b"Transfer(address,address,uint256)").hexdigest()


@pytest.fixture(scope="module")
def node() -> Iterator[Anvil]:
    with Anvil() as running:
        yield running


@pytest.fixture(scope="module")
def tokens(node: Anvil) -> dict[str, str]:
    return {
        "USDT": anvil.deploy_token(node.url, name="Tether USD", symbol="USDT", decimals=6),
        "USDC": anvil.deploy_token(node.url, name="USD Coin", symbol="USDC", decimals=6),
    }


@pytest.fixture
def url(node: Anvil, tokens: dict[str, str]) -> Iterator[str]:
    """Each test starts from the chain with both tokens deployed and leaves no trace."""
    mark = anvil.snapshot(node.url)
    yield node.url
    anvil.revert(node.url, mark)


@pytest.fixture
def accounts(url: str) -> list[str]:
    return anvil.accounts(url)


def _call(url: str, token: str, selector: str, returns: str) -> Any:
    raw = anvil.rpc(url, "eth_call", [{"to": token, "data": selector}, "latest"])
    return decode([returns], bytes.fromhex(raw[2:]))[0]


def _transfer(log: Mapping[str, Any]) -> tuple[str, str, int]:
    assert log["topics"][0] == TRANSFER_TOPIC
    return "0x" + log["topics"][1][-40:], "0x" + log["topics"][2][-40:], int(log["data"], 16)


def test_tokens_are_deployed_with_their_metadata(url: str, tokens: dict[str, str]) -> None:
    for symbol, token in tokens.items():
        assert _call(url, token, "0x95d89b41", "string") == symbol  # symbol()
        assert _call(url, token, "0x313ce567", "uint8") == 6  # decimals()
    assert tokens["USDT"] != tokens["USDC"]


def test_mint_and_transfer_move_balances_with_transfer_logs(
    url: str, tokens: dict[str, str], accounts: list[str]
) -> None:
    usdt, owner, payee = tokens["USDT"], accounts[0], accounts[1]
    anvil.mint(url, usdt, owner, 1_000_000_000)
    tx_hash = anvil.transfer(url, usdt, payee, 250_000_000)

    mined = anvil.receipt(url, tx_hash)
    assert mined.status == 1 and mined.block_number == anvil.block_number(url)
    assert [_transfer(log) for log in mined.logs] == [(owner.lower(), payee.lower(), 250_000_000)]
    assert anvil.balance_of(url, usdt, owner) == 750_000_000
    assert anvil.balance_of(url, usdt, payee) == 250_000_000
    assert anvil.balance_of(url, tokens["USDC"], payee) == 0


def test_batch_transfer_gives_one_transfer_log_per_recipient_in_one_receipt(
    url: str, tokens: dict[str, str], accounts: list[str]
) -> None:
    usdc, owner, recipients = tokens["USDC"], accounts[0], accounts[1:4]
    anvil.mint(url, usdc, owner, 10_000_000)
    mined = anvil.receipt(url, anvil.batch_transfer(url, usdc, recipients, [1, 2_000_000, 3]))

    assert mined.status == 1
    assert [_transfer(log) for log in mined.logs] == [
        (owner.lower(), to.lower(), amount)
        for to, amount in zip(recipients, [1, 2_000_000, 3], strict=True)
    ]
    assert [int(log["logIndex"], 16) for log in mined.logs] == [0, 1, 2]
    assert {log["transactionHash"] for log in mined.logs} == {mined.transaction_hash}


def test_transfer_above_balance_is_mined_with_status_0_and_no_logs(
    url: str, tokens: dict[str, str], accounts: list[str]
) -> None:
    usdt, poor, payee = tokens["USDT"], accounts[5], accounts[6]
    anvil.mint(url, usdt, poor, 10)

    failed = anvil.send_transfer_expect_revert(url, usdt, payee, 11, sender=poor)

    assert failed.status == 0 and failed.logs == ()
    assert failed.block_number == anvil.block_number(url)
    block_logs = anvil.rpc(url, "eth_getLogs", [{"blockHash": failed.block_hash}])
    assert block_logs == []
    assert anvil.balance_of(url, usdt, poor) == 10
    with pytest.raises(DevnetError, match="reverted"):
        anvil.transfer(url, usdt, payee, 11, sender=poor)


def test_reorg_replaces_the_top_blocks_and_reincludes_only_the_given_transaction(
    url: str, tokens: dict[str, str], accounts: list[str]
) -> None:
    usdt, owner = tokens["USDT"], accounts[0]
    anvil.mint(url, usdt, owner, 1_000)
    kept, dropped, later = (anvil.transfer(url, usdt, accounts[i], 100 * i) for i in (1, 2, 3))
    head = anvil.block_number(url)
    before = {n: anvil.block_hash(url, n) for n in range(head - 3, head + 1)}

    anvil.reorg(url, 3, [(kept, 1)])

    assert anvil.block_number(url) == head
    assert anvil.block_hash(url, head - 3) == before[head - 3]  # the common ancestor
    assert all(anvil.block_hash(url, n) != before[n] for n in range(head - 2, head + 1))
    moved = anvil.receipt(url, kept)
    assert (moved.status, moved.block_number) == (1, head - 1)  # offset 1 above the ancestor
    for gone in (dropped, later):
        assert anvil.rpc(url, "eth_getTransactionReceipt", [gone]) is None
        assert anvil.rpc(url, "eth_getTransactionByHash", [gone]) is None
    logs = anvil.rpc(url, "eth_getLogs", [{"address": usdt, "fromBlock": hex(head - 2)}])
    assert [log["transactionHash"] for log in logs] == [kept]
    assert [anvil.balance_of(url, usdt, accounts[i]) for i in (1, 2, 3)] == [100, 0, 0]


def test_reorg_can_put_a_new_transfer_in_place_of_an_old_one(
    url: str, tokens: dict[str, str], accounts: list[str]
) -> None:
    usdc, owner = tokens["USDC"], accounts[0]
    anvil.mint(url, usdc, owner, 1_000)
    anvil.transfer(url, usdc, accounts[1], 100)
    replacement = anvil.transfer_request(url, usdc, accounts[2], 300)

    anvil.reorg(url, 1, [(replacement, 0)])

    (log,) = anvil.rpc(url, "eth_getLogs", [{"address": usdc, "fromBlock": "latest"}])
    assert _transfer(log) == (owner.lower(), accounts[2].lower(), 300)
    assert anvil.balance_of(url, usdc, accounts[1]) == 0
    assert anvil.balance_of(url, usdc, accounts[2]) == 300


def test_reorg_says_so_when_anvil_leaves_a_replayed_transaction_out(
    url: str, tokens: dict[str, str], accounts: list[str]
) -> None:
    usdt = tokens["USDT"]
    anvil.mint(url, usdt, accounts[0], 1_000)
    first, second = (anvil.transfer(url, usdt, accounts[1], 1) for _ in range(2))

    # The second's nonce no longer follows once the first is dropped.
    with pytest.raises(DevnetError, match="did not re-include"):
        anvil.reorg(url, 2, [(second, 0)])
    assert anvil.rpc(url, "eth_getTransactionByHash", [first]) is None


def test_snapshot_and_revert_restore_the_chain(url: str) -> None:
    mark = anvil.snapshot(url)
    head = anvil.block_number(url)
    anvil.mine(url, 5)
    assert anvil.block_number(url) == head + 5

    anvil.revert(url, mark)

    assert anvil.block_number(url) == head


def test_unwaited_transactions_share_the_next_block(
    url: str, tokens: dict[str, str], accounts: list[str]
) -> None:
    usdt, owner, payees = tokens["USDT"], accounts[0], accounts[1:4]
    anvil.mint(url, usdt, owner, 100)
    anvil.rpc(url, "evm_setAutomine", [False])
    try:
        sent = [anvil.transfer(url, usdt, to, 1, wait=False) for to in payees]
        anvil.mine(url)
    finally:
        anvil.rpc(url, "evm_setAutomine", [True])
    blocks = {anvil.receipt(url, tx).block_number for tx in sent}
    assert blocks == {anvil.block_number(url)}


def test_interval_mining_makes_blocks_without_transactions() -> None:
    with Anvil(block_time=0.2, chain_id=1337) as node:
        assert anvil.rpc(node.url, "eth_chainId") == hex(1337)
        deadline = time.monotonic() + 10
        while anvil.block_number(node.url) < 2:
            assert time.monotonic() < deadline, "no interval-mined block within 10s"
            time.sleep(0.05)


def test_a_node_that_fails_to_start_reports_its_log() -> None:
    broken = Anvil(extra_args=["--no-such-flag"])
    with pytest.raises(DevnetError, match="exited with status 2") as failure:
        broken.start()
    assert "--no-such-flag" in str(failure.value)
    broken.log_path.unlink()
