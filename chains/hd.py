"""BIP32 public derivation from an extended public key (watch-only: never a private key).

An account key (`m/44'/60'/0'` for EVM, `m/44'/195'/0'` for Tron, as PayIn derives them) is
given as `xpub`/`tpub`; addresses are `…/branch/index` below it, non-hardened only.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import base58
from coincurve import PublicKey
from sha3 import keccak_256

from chains.evm.address import to_checksum_address
from chains.tron.address import hex20_to_tron
from pool.kit.errors import ValidationFailed
from pool.kit.secret_detection import refusal, secret_kind
from pool.vocabulary import EVM, ParsedAddress, Protocol

PUBLIC_VERSIONS = {bytes.fromhex("0488b21e"): "xpub", bytes.fromhex("043587cf"): "tpub"}
PRIVATE_VERSIONS = {
    bytes.fromhex(v): name
    for v, name in (("0488ade4", "xprv"), ("04358394", "tprv"), ("049d7878", "yprv"),
                    ("04b2430c", "zprv"))
}  # fmt: skip
HARDENED = 2**31


@dataclass(frozen=True, slots=True)
class ExtendedPublicKey:
    version: bytes
    depth: int
    parent_fingerprint: bytes
    child_number: int
    chain_code: bytes
    public_key: bytes  # 33 bytes, compressed

    @property
    def fingerprint(self) -> str:
        """BIP32's key identifier: the first 4 bytes of HASH160 of the public key, in hex."""
        return _hash160(self.public_key)[:4].hex()

    def child(self, index: int) -> ExtendedPublicKey:
        chain_code, child_key = self._child_point(index)
        return ExtendedPublicKey(
            self.version,
            self.depth + 1,
            _hash160(self.public_key)[:4],
            index,
            chain_code,
            child_key.format(compressed=True),
        )

    def child_public_key(self, index: int) -> PublicKey:
        """Only the child's key: what an address needs (no fingerprint, no serialisation)."""
        return self._child_point(index)[1]

    def _child_point(self, index: int) -> tuple[bytes, PublicKey]:
        if not 0 <= index < HARDENED:
            raise ValidationFailed(
                "only non-hardened indices (0 … 2^31-1) derive from a public key"
            )
        data = self.public_key + index.to_bytes(4, "big")
        digest = hmac.new(self.chain_code, data, hashlib.sha512).digest()
        try:
            return digest[32:], PublicKey(self.public_key).add(digest[:32])
        except ValueError as exc:  # probability ~2^-127: BIP32 says skip this index
            raise ValidationFailed(f"index {index} yields no valid key; skip it") from exc

    def serialize(self) -> str:
        payload = (
            self.version
            + bytes([self.depth])
            + self.parent_fingerprint
            + self.child_number.to_bytes(4, "big")
            + self.chain_code
            + self.public_key
        )
        return base58.b58encode_check(payload).decode("ascii")


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


def parse_extended_public_key(text: str) -> ExtendedPublicKey:
    """An `xpub`/`tpub`; private keys of any kind are refused without being echoed."""
    value = text.strip()
    kind = secret_kind(value)
    if kind is not None:
        raise ValidationFailed(refusal(kind), code="PRIVATE_KEY_REFUSED")
    try:
        raw = bytes(base58.b58decode_check(value))
    except ValueError as exc:
        raise ValidationFailed("not an extended public key (base58check failed)") from exc
    if len(raw) != 78:
        raise ValidationFailed("an extended public key is 78 bytes")
    version = raw[:4]
    if version in PRIVATE_VERSIONS:
        raise ValidationFailed(refusal("extended private key"), code="PRIVATE_KEY_REFUSED")
    if version not in PUBLIC_VERSIONS:
        raise ValidationFailed("unsupported extended key version: use an xpub or tpub")
    key = raw[45:]
    if key[0] not in (2, 3):
        raise ValidationFailed("the extended key does not hold a compressed public key")
    return ExtendedPublicKey(
        version, raw[4], raw[5:9], int.from_bytes(raw[9:13], "big"), raw[13:45], key
    )


def address_of(public_key: bytes | PublicKey, protocol: Protocol) -> ParsedAddress:
    """Ethereum and Tron both take the last 20 bytes of Keccak-256 of the uncompressed key."""
    point = public_key if isinstance(public_key, PublicKey) else PublicKey(public_key)
    uncompressed = point.format(compressed=False)
    hex20 = keccak_256(uncompressed[1:]).hexdigest()[-40:]
    text = to_checksum_address(hex20) if protocol == EVM else hex20_to_tron(hex20)
    return ParsedAddress(protocol=protocol, text=text, hex20=hex20)


def derive_addresses(
    account: ExtendedPublicKey, *, protocol: Protocol, branch: int, start: int, count: int
) -> list[tuple[int, ParsedAddress]]:
    """(index, address) for `account/branch/index`, index in [start, start + count)."""
    if count < 0 or start < 0 or start + count > HARDENED:
        raise ValidationFailed("the range must lie within 0 … 2^31-1")
    node = account.child(branch)
    return [
        (i, address_of(node.child_public_key(i), protocol)) for i in range(start, start + count)
    ]


def derive_from_key(
    public_key: str, protocol: Protocol, branch: int, start: int, count: int
) -> list[tuple[int, ParsedAddress]]:
    """`derive_addresses` from a registered key's text: what a pool refill hands in."""
    account = parse_extended_public_key(public_key)
    return derive_addresses(account, protocol=protocol, branch=branch, start=start, count=count)
