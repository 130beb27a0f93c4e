"""The `body` and `timestamped` webhook signature schemes (docs/design.md, Webhooks)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import pytest

from pool.webhooks.signatures import sign_body, sign_timestamped, verify_body, verify_timestamped

BODY = b'{"id":"evt_1","type":"deposit.confirmed","createdAt":"2026-11-21T10:30:00.000Z","data":{}}'
OLD, NEW = b"whsec_old", b"whsec_new"
T = 1_763_721_000


def test_body_signature_is_lowercase_hex_hmac_sha256() -> None:
    # RFC 4231, test case 2
    expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    assert sign_body(b"Jefe", b"what do ya want for nothing?") == expected


def test_body_scheme_round_trip() -> None:
    signature = sign_body(NEW, BODY)
    assert verify_body(NEW, BODY, signature)
    assert not verify_body(OLD, BODY, signature)
    assert not verify_body(NEW, BODY + b" ", signature)


@pytest.mark.parametrize(
    "mangle", [str.upper, lambda s: s[:-1], lambda s: s + "0", lambda s: "", lambda s: "é" + s[1:]]
)
def test_body_scheme_wants_the_exact_hex(mangle: Callable[[str], str]) -> None:
    signature = sign_body(NEW, BODY)
    assert not verify_body(NEW, BODY, mangle(signature))


def test_timestamped_header_signs_timestamp_dot_body() -> None:
    header = sign_timestamped([NEW], BODY, T)
    expected = hmac.new(NEW, f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={T},v1={expected}"
    assert verify_timestamped([NEW], BODY, header, now=T)


def test_timestamped_rejects_wrong_secret_and_altered_body() -> None:
    header = sign_timestamped([NEW], BODY, T)
    assert not verify_timestamped([OLD], BODY, header, now=T)
    assert not verify_timestamped([], BODY, header, now=T)
    assert not verify_timestamped([NEW], BODY.replace(b"evt_1", b"evt_2"), header, now=T)


def test_timestamp_is_covered_by_the_signature() -> None:
    header = sign_timestamped([NEW], BODY, T)
    moved = header.replace(f"t={T}", f"t={T + 60}")
    assert not verify_timestamped([NEW], BODY, moved, now=T + 60)


def test_rotation_sends_one_v1_per_secret_and_either_verifies() -> None:
    header = sign_timestamped([OLD, NEW], BODY, T)
    assert header.count(",v1=") == 2
    assert verify_timestamped([OLD], BODY, header, now=T)  # a receiver not yet updated
    assert verify_timestamped([NEW], BODY, header, now=T)  # a receiver already updated
    assert not verify_timestamped([b"whsec_other"], BODY, header, now=T)
    # A receiver holding both secrets accepts a header signed with either alone.
    assert verify_timestamped([OLD, NEW], BODY, sign_timestamped([NEW], BODY, T), now=T)


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(0, True), (300, True), (-300, True), (301, False), (-301, False), (86_400, False)],
)
def test_replay_window_is_five_minutes_either_side(offset: int, accepted: bool) -> None:
    header = sign_timestamped([NEW], BODY, T)
    assert verify_timestamped([NEW], BODY, header, now=T + offset) is accepted


def test_tolerance_can_be_narrowed() -> None:
    header = sign_timestamped([NEW], BODY, T)
    assert not verify_timestamped([NEW], BODY, header, now=T + 31, tolerance_seconds=30)


def _malformed() -> list[str]:
    v1 = sign_timestamped([NEW], BODY, T).split(",", 1)[1]
    return [
        "",
        f"t={T}",
        v1,
        f"{v1},t={T}",
        f"t={T},{v1},",
        f"t={T},,{v1}",
        f"t={T}, {v1}",
        f" t={T},{v1}",
        f"t={T},{v1}\n",
        f"t={T},{v1.upper()}",
        f"t={T},{v1[:-1]}",
        f"t={T},v1=",
        f"t={T},v0={v1[3:]}",
        f"t={T},V1={v1[3:]}",
        f"t={T},{v1},t={T}",
        f"t=0{T},{v1}",
        f"t=+{T},{v1}",
        f"t={T}.0,{v1}",
        f"t={''.join(chr(0x0660 + int(d)) for d in str(T))},{v1}",  # Arabic-Indic digits
        f"T={T},{v1}",
        f"t={T};{v1}",
    ]


@pytest.mark.parametrize("header", _malformed())
def test_malformed_headers_are_rejected(header: str) -> None:
    assert not verify_timestamped([NEW], BODY, header, now=T)


def test_signing_needs_a_secret_and_a_real_timestamp() -> None:
    with pytest.raises(ValueError):
        sign_timestamped([], BODY, T)
    with pytest.raises(ValueError):
        sign_timestamped([NEW], BODY, -1)
