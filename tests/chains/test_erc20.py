from chains.evm.erc20 import TRANSFER_TOPIC, decode_header, transfers_to

TOKEN = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
OURS = "70997970c51812dc3a010c7d01b50e0d17dc79c8"
THEIRS = "3c44cdddb6a900fa2b585dd299e03d12fa4293bc"


def topic(hex20: str) -> str:
    return "0x" + "0" * 24 + hex20


def log(to: str, amount: int = 5_000_000, *, index: int = 0, **extra) -> dict:
    # Recorded from anvil's eth_getLogs, with the recipient and amount varied.
    entry = {
        "address": TOKEN,
        "topics": [TRANSFER_TOPIC, topic("f39fd6e51aad88f6f4ce6ab8827279cfffb92266"), topic(to)],
        "data": "0x" + format(amount, "064x"),
        "blockHash": "0xAB" + "cd" * 31,
        "blockNumber": "0x1b",
        "transactionHash": "0x" + "12" * 32,
        "transactionIndex": "0x0",
        "logIndex": hex(index),
        "removed": False,
    }
    entry.update(extra)
    return entry


def test_only_transfers_to_watched_recipients_are_decoded() -> None:
    found = transfers_to([log(OURS, 7), log(THEIRS, 9)], {OURS})
    assert len(found) == 1
    transfer = found[0]
    assert transfer.to_hex20 == OURS
    assert transfer.from_hex20 == "f39fd6e51aad88f6f4ce6ab8827279cfffb92266"
    assert transfer.token_hex20 == TOKEN[2:]
    assert transfer.amount == 7
    assert transfer.block_number == 27
    assert transfer.block_hash == "0xab" + "cd" * 31  # lower-cased
    assert transfer.log_index == 0


def test_recipient_match_ignores_case() -> None:
    assert transfers_to([log(OURS.upper())], {OURS})


def test_several_logs_of_one_transaction_are_several_transfers() -> None:
    found = transfers_to([log(OURS, 1, index=0), log(OURS, 2, index=1)], {OURS})
    assert [(t.log_index, t.amount) for t in found] == [(0, 1), (1, 2)]


def test_amounts_beyond_64_bits_are_exact() -> None:
    big = 2**200 + 12345
    assert transfers_to([log(OURS, big)], {OURS})[0].amount == big


def test_removed_logs_and_erc721_shaped_logs_are_not_transfers() -> None:
    erc721 = log(OURS)
    erc721["topics"] = [*erc721["topics"], topic("00" * 20)]
    assert transfers_to([log(OURS, removed=True), erc721], {OURS}) == []


def test_other_event_topics_are_ignored() -> None:
    approval = log(OURS)
    approval["topics"][0] = "0x8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925"
    assert transfers_to([approval], {OURS}) == []


def test_a_malformed_log_is_dropped_not_fatal() -> None:
    assert transfers_to([log(OURS, data="0xzz")], {OURS}) == []
    assert transfers_to([log(OURS, data="0x")], {OURS})[0].amount == 0


def test_header_decoding() -> None:
    header = decode_header(
        {
            "number": "0x10",
            "hash": "0xAA" + "00" * 31,
            "parentHash": "0x" + "bb" * 32,
            "timestamp": "0x5",
        }
    )
    assert (header.number, header.hash, header.parent_hash, header.timestamp) == (
        16,
        "0xaa" + "00" * 31,
        "0x" + "bb" * 32,
        5,
    )
