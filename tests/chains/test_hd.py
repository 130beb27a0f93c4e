"""BIP32 public derivation against the published test vectors and a known test mnemonic."""

import hashlib
import hmac

import pytest
from coincurve import PrivateKey

from chains.hd import (
    ExtendedPublicKey,
    address_of,
    derive_addresses,
    parse_extended_public_key,
)
from pool.kit.errors import ValidationFailed

# BIP32 test vector 1 (only the public-derivable steps: from a hardened node's xpub down).
V1_M_0H = "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw"
V1_M_0H_1 = "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ"
V1_M_0H_1_2H = "xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5"
V1_M_0H_1_2H_2 = "xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV"
V1_LEAF = "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy"

TEST_MNEMONIC = " ".join(["abandon"] * 11 + ["about"])
N = int("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141", 16)


def test_bip32_vector_1_public_steps() -> None:
    assert parse_extended_public_key(V1_M_0H).child(1).serialize() == V1_M_0H_1
    node = parse_extended_public_key(V1_M_0H_1_2H).child(2)
    assert node.serialize() == V1_M_0H_1_2H_2
    assert node.child(1_000_000_000).serialize() == V1_LEAF


def _account_xpub(mnemonic: str, coin_type: int) -> str:
    """m/44'/coin'/0' from a BIP39 phrase, privately: only the test holds a private key."""
    seed = hashlib.pbkdf2_hmac("sha512", mnemonic.encode(), b"mnemonic", 2048)
    digest = hmac.new(b"Bitcoin seed", seed, hashlib.sha512).digest()
    key, chain = int.from_bytes(digest[:32], "big"), digest[32:]
    parent_pub = b""
    for index in (44 + 2**31, coin_type + 2**31, 0 + 2**31):
        parent_pub = PrivateKey(key.to_bytes(32, "big")).public_key.format()
        data = b"\0" + key.to_bytes(32, "big") + index.to_bytes(4, "big")
        digest = hmac.new(chain, data, hashlib.sha512).digest()
        key, chain = (int.from_bytes(digest[:32], "big") + key) % N, digest[32:]
    public = PrivateKey(key.to_bytes(32, "big")).public_key.format()
    parent_fp = hashlib.new("ripemd160", hashlib.sha256(parent_pub).digest()).digest()[:4]
    account = ExtendedPublicKey(bytes.fromhex("0488b21e"), 3, parent_fp, 0 + 2**31, chain, public)
    return account.serialize()


@pytest.mark.parametrize(
    ("protocol", "coin_type", "first_address"),
    [
        # Well-known addresses of the test phrase "abandon … about" at m/44'/coin'/0'/0/0.
        ("evm", 60, "0x9858EfFD232B4033E47d90003D41EC34EcaEda94"),
        ("tron", 195, "TUEZSdKsoDHQMeZwihtdoBiN46zxhGWYdH"),
    ],
)
def test_known_mnemonic_addresses(protocol, coin_type, first_address) -> None:
    account = parse_extended_public_key(_account_xpub(TEST_MNEMONIC, coin_type))
    derived = derive_addresses(account, protocol=protocol, branch=0, start=0, count=3)
    assert derived[0] == (0, derived[0][1]) and derived[0][1].text == first_address
    assert len({a.text for _, a in derived}) == 3


def test_private_keys_are_refused_without_echo() -> None:
    xprv = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"
    with pytest.raises(ValidationFailed) as caught:
        parse_extended_public_key(xprv)
    assert caught.value.code == "PRIVATE_KEY_REFUSED" and xprv not in caught.value.message
    with pytest.raises(ValidationFailed) as caught:
        parse_extended_public_key(TEST_MNEMONIC)
    assert caught.value.code == "PRIVATE_KEY_REFUSED"


@pytest.mark.parametrize(
    "text",
    [
        f'"{TEST_MNEMONIC}"',
        "key=xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi",
        f"{V1_M_0H} {'1f' * 32}",
    ],
)
def test_a_disguised_private_key_given_as_the_xpub_is_refused_as_one(text) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_extended_public_key(text)
    assert caught.value.code == "PRIVATE_KEY_REFUSED" and "1f" * 32 not in caught.value.message


@pytest.mark.parametrize("text", ["xpub", "0x" + "12" * 20, V1_M_0H[:-1] + "x"])
def test_garbage_is_not_an_xpub(text) -> None:
    with pytest.raises(ValidationFailed):
        parse_extended_public_key(text)


def test_hardened_indices_cannot_derive_from_a_public_key() -> None:
    with pytest.raises(ValidationFailed, match="non-hardened"):
        parse_extended_public_key(V1_M_0H).child(2**31)


def test_address_of_matches_the_codec_for_both_protocols() -> None:
    node = parse_extended_public_key(V1_M_0H)
    evm, tron = address_of(node.public_key, "evm"), address_of(node.public_key, "tron")
    assert evm.hex20 == tron.hex20 and tron.text.startswith("T")


def test_tpub_is_accepted_and_derives_like_the_same_key_as_xpub() -> None:
    import base58

    raw = base58.b58decode_check(V1_M_0H)
    tpub = base58.b58encode_check(bytes.fromhex("043587cf") + raw[4:]).decode()
    assert tpub.startswith("tpub")
    from_tpub = derive_addresses(
        parse_extended_public_key(tpub), protocol="evm", branch=0, start=0, count=2
    )
    from_xpub = derive_addresses(
        parse_extended_public_key(V1_M_0H), protocol="evm", branch=0, start=0, count=2
    )
    assert from_tpub == from_xpub
