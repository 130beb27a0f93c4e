import pytest
from eth_utils import to_checksum_address as reference_checksum
from hypothesis import given
from hypothesis import strategies as st

from chains.evm.address import parse_evm_address, to_checksum_address
from chains.tron.address import hex20_to_tron, parse_tron_address
from pool.kit.errors import ValidationFailed

# The test vectors of EIP-55 itself.
EIP55_VECTORS = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]
USDT_TRON = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
USDT_TRON_HEX20 = "a614f803b6fd780986a42c78ec9c7f77e6ded13c"


@pytest.mark.parametrize("vector", EIP55_VECTORS)
def test_eip55_vectors_are_reproduced_and_accepted(vector: str) -> None:
    assert to_checksum_address(vector[2:].lower()) == vector
    parsed = parse_evm_address(vector)
    assert parsed.text == vector and parsed.hex20 == vector[2:].lower()


@given(st.binary(min_size=20, max_size=20), st.sampled_from([str.lower, str.upper]))
def test_the_checksum_agrees_with_eth_utils_on_any_20_bytes(raw: bytes, case) -> None:
    # Ours works on all 40 characters at once as bits (a character at a time is the slow way):
    # any slip in the masks shows up as a wrong case somewhere in the result.
    hex40 = raw.hex()
    assert to_checksum_address(case(hex40)) == reference_checksum("0x" + hex40)


def test_the_checksum_refuses_a_wrong_length() -> None:
    with pytest.raises(ValueError, match="not 40 hex"):
        to_checksum_address("ab" * 19)


@pytest.mark.parametrize("transform", [str.lower, str.upper])
def test_single_case_evm_addresses_are_accepted_and_stored_checksummed(transform) -> None:
    vector = EIP55_VECTORS[0]
    parsed = parse_evm_address("0x" + transform(vector[2:]))
    assert parsed.text == vector


def test_mixed_case_with_a_wrong_checksum_is_refused() -> None:
    wrong = EIP55_VECTORS[0].replace("aA", "Aa", 1)
    with pytest.raises(ValidationFailed, match="EIP-55"):
        parse_evm_address(wrong)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0x" + "0" * 40, "zero address"),
        ("0x123", "40 hex"),
        ("52908400098527886e0f7030069857d2e4169ee7", "start with 0x"),
        ("0x" + "g" * 40, "40 hex"),
        (USDT_TRON, "Tron address, not an EVM"),
    ],
)
def test_bad_evm_addresses_say_why(value: str, reason: str) -> None:
    with pytest.raises(ValidationFailed, match=reason) as caught:
        parse_evm_address(value)
    assert caught.value.code == "INVALID_ADDRESS"


def test_tron_codec_round_trips_a_known_address() -> None:
    assert hex20_to_tron(USDT_TRON_HEX20) == USDT_TRON
    parsed = parse_tron_address(USDT_TRON)
    assert (parsed.text, parsed.hex20, parsed.protocol) == (USDT_TRON, USDT_TRON_HEX20, "tron")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (USDT_TRON[:-1] + ("u" if USDT_TRON[-1] != "u" else "v"), "checksum"),
        (EIP55_VECTORS[0], "EVM \\(0x\\) address, not a Tron"),
        ("T0OIl" + "1" * 29, "base58"),
        ("", "34-character"),
        (hex20_to_tron("00" * 20), "zero address"),
    ],
)
def test_bad_tron_addresses_say_why(value: str, reason: str) -> None:
    with pytest.raises(ValidationFailed, match=reason):
        parse_tron_address(value)


def test_tron_address_with_another_prefix_is_refused() -> None:
    import base58

    payload = bytes([0x42]) + bytes.fromhex(USDT_TRON_HEX20)
    import hashlib

    checksum = hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    other = base58.b58encode(payload + checksum).decode()
    with pytest.raises(ValidationFailed, match="0x41 prefix"):
        parse_tron_address(other)
