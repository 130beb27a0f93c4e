"""Webhook bodies are a fixed point of JSON.stringify(JSON.parse(…)) in V8.

Every expected string here was printed by node 20 from the same value, and a test keeps re-checking
them under node; the property test signs random events and has PayIn's guide's receiver
(tests/fixtures/receivers/seed_receiver.js) verify them.
"""

from __future__ import annotations

import json
import math
import random
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pool.kit.clock import isoformat_z
from pool.webhooks.body import body_bytes
from pool.webhooks.signatures import sign_body
from tests.fixtures.receivers.node import Receiver, js_round_trip, seed_receiver

SECRET = "whsec_seed_receiver_test"

# (value, what node prints for it)
CASES: list[tuple[dict[str, Any], str]] = [
    # Array-index keys (0..2^32-2) first and ascending, then insertion order.
    (
        {"10": 0, "2": 1, "a": 2, "-1": 3, "01": 4, "4294967295": 5, "4294967294": 6},
        '{"2":1,"10":0,"4294967294":6,"a":2,"-1":3,"01":4,"4294967295":5}',
    ),
    (
        {
            "z": {"b": [{"3": "x", "c": None, "1": True}], "0": False},
            "items": [[], {}, (1, [2, {"y": 1, "5": 0}])],
        },
        '{"z":{"0":false,"b":[{"1":true,"3":"x","c":null}]},"items":[[],{},[1,[2,{"5":0,"y":1}]]]}',
    ),
    (
        {"a": True, "b": False, "c": None, "d": {}, "e": []},
        '{"a":true,"b":false,"c":null,"d":{},"e":[]}',
    ),
    # Non-ASCII raw as UTF-8, U+2028/2029 and the BOM included.
    (
        {
            "emoji": "😀👍🏽",
            "cjk": "中文字",
            "combining": "e\u0301",
            "rtl": "שלום",
            "ls": "\u2028\u2029",
            "bom": "\ufeff",
            "nbsp": "\xa0",
        },
        '{"emoji":"😀👍🏽","cjk":"中文字","combining":"e\u0301","rtl":"שלום","ls":"\u2028\u2029","bom":"\ufeff","nbsp":"\xa0"}',
    ),
    # C0 controls: the short escapes, else lowercase \u00xx; DEL and "/" are not escaped.
    (
        {"c": '\x00\x01\b\t\n\x0b\f\r\x1f\x7f"\\/'},
        '{"c":"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f\x7f\\"\\\\/"}',
    ),
    # Lone surrogates escaped in lowercase; a pair held as two code points is one character.
    (
        {
            "lone": "\ud800",
            "mid": "a\udc00b",
            "pair": "\ud83d\ude00",
            "reversed": "\ude00\ud83d",
            "high": "\udbff",
        },
        '{"lone":"\\ud800","mid":"a\\udc00b","pair":"😀","reversed":"\\ude00\\ud83d","high":"\\udbff"}',
    ),
    # Two Python keys that are one JavaScript key: first position, last value (as JSON.parse).
    ({"\ud83d\ude00": 1, "😀": 2, "a": 3}, '{"😀":2,"a":3}'),
    # Numbers as Number#toString prints them.
    (
        {
            "n": [
                0.1,
                1e21,
                1e-7,
                123456789012345680000.0,
                5e-324,
                -0.0,
                1.0,
                1e16,
                1e-6,
                1.5e300,
                -1.5e-7,
                2.5e-5,
                1.7976931348623157e308,
                9007199254740992.0,
                4.35,
                100.5,
                -123.456e10,
                1e20,
                0,
                -1,
                2**53,
                -(2**53),
                2**53 - 1,
            ]
        },
        '{"n":[0.1,1e+21,1e-7,123456789012345680000,5e-324,0,1,10000000000000000,0.000001,1.5e+300,'
        "-1.5e-7,0.000025,1.7976931348623157e+308,9007199254740992,4.35,100.5,-1234560000000,"
        "100000000000000000000,0,-1,9007199254740992,-9007199254740992,9007199254740991]}",
    ),
]


@pytest.mark.parametrize(("value", "expected"), CASES)
def test_body_matches_what_node_prints(value: dict[str, Any], expected: str) -> None:
    assert body_bytes(value) == expected.encode()


def test_expectations_are_what_node_prints() -> None:
    # The escaped input, not the expectation, goes to node: the expectation must be its output.
    bodies = [json.dumps(value) for value, _ in CASES]
    printed = js_round_trip(("[" + ",".join(bodies) + "]").encode())
    assert printed == ("[" + ",".join(expected for _, expected in CASES) + "]").encode()


def test_random_numbers_format_as_node_does() -> None:
    rng = random.Random(20261121)
    bits = [struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0] for _ in range(20_000)]
    scaled = [rng.random() * 10.0 ** rng.randint(-30, 30) for _ in range(10_000)]
    cents = [rng.randint(-(10**9), 10**9) / 10 ** rng.randint(0, 9) for _ in range(5_000)]
    whole = [float(rng.randint(-(2**70), 2**70)) for _ in range(5_000)]
    ints = [rng.randint(-(2**53), 2**53) for _ in range(5_000)]
    numbers = [x for x in bits + scaled + cents + whole if math.isfinite(x)] + ints
    body = body_bytes({"n": numbers})
    assert js_round_trip(body) == body


@pytest.mark.parametrize("number", [2**53 + 1, -(2**53) - 1, 10**21, 2**64])
def test_integers_javascript_would_round_are_refused(number: int) -> None:
    with pytest.raises(ValueError, match="2\\^53"):
        body_bytes({"data": {"metadata": {"n": [number]}}})


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused(number: float) -> None:
    with pytest.raises(ValueError, match="no JSON form"):
        body_bytes({"n": number})


@pytest.mark.parametrize(
    "value",
    [
        {"n": Decimal("1.5")},
        {"b": b"x"},
        {"s": {1, 2}},
        {"t": datetime(2026, 1, 1, tzinfo=UTC)},
        {1: "a"},
    ],
)
def test_non_json_values_and_keys_are_refused(value: dict[Any, Any]) -> None:
    with pytest.raises(TypeError):
        body_bytes(value)


def test_an_event_is_an_object() -> None:
    with pytest.raises(TypeError):
        body_bytes([1, 2])  # type: ignore[arg-type]


# --- property: random events, signed, verified by PayIn's guide's receiver under node ----------

# Pieces joined, so each kind shows up often (one alphabet would almost never draw a surrogate).
_TEXT = st.lists(
    st.one_of(
        st.text(max_size=4),  # any plane: CJK, emoji, combining marks
        st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=2),
        st.text(
            st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF, exclude_categories=()),
            min_size=1,
            max_size=2,
        ),
        st.sampled_from(['"', "\\", "/", "\x7f", "\u2028", "\ufeff", "😀", "e\u0301", "中文"]),
    ),
    max_size=4,
).map("".join)
_KEYS = st.one_of(
    _TEXT,
    st.integers(0, 2**32 + 10).map(str),
    st.sampled_from(
        [
            "-1",
            "01",
            "00",
            "4294967294",
            "4294967295",
            "1.5",
            "1e3",
            " 1",
            "__proto__",
            "constructor",
        ]
    ),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    _TEXT,
)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=24,
)
_EVENTS = st.fixed_dictionaries(
    {
        "id": st.text("0123456789abcdef", min_size=24, max_size=24).map(lambda h: "evt_" + h),
        "type": st.just("deposit.confirmed"),
        "createdAt": st.datetimes(timezones=st.just(UTC)).map(isoformat_z),
        "data": st.fixed_dictionaries(
            {
                "depositReference": _TEXT,
                "amount": st.decimals(0, 10**12, places=6).map(str),
                "blockNumber": st.integers(0, 2**40),
                "confirmations": st.integers(0, 64),
                "late": st.booleans(),
                "confirmedAt": st.none(),
                "metadata": st.dictionaries(_KEYS, _JSON, max_size=6),
            }
        ),
    }
)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with seed_receiver(SECRET) as running:
        yield running


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0) as session:
        yield session


def _post(client: httpx.Client, receiver: Receiver, body: bytes, signature: str) -> int:
    headers = {"Content-Type": "application/json", "X-PayIn-Signature": signature}
    return client.post(receiver.url, content=body, headers=headers).status_code


_MODULE_FIXTURES = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@settings(max_examples=200, deadline=None, suppress_health_check=_MODULE_FIXTURES)
@given(event=_EVENTS)
def test_seed_receiver_verifies_every_event(
    event: dict[str, Any], receiver: Receiver, client: httpx.Client
) -> None:
    body = body_bytes(event)
    assert _post(client, receiver, body, sign_body(SECRET.encode(), body)) == 200


@settings(max_examples=20, deadline=None, suppress_health_check=_MODULE_FIXTURES)
@given(event=_EVENTS, position=st.integers(0, 63))
def test_seed_receiver_rejects_a_tampered_signature(
    event: dict[str, Any], position: int, receiver: Receiver, client: httpx.Client
) -> None:
    body = body_bytes(event)
    signature = sign_body(SECRET.encode(), body)
    flipped = "0" if signature[position] != "0" else "1"
    tampered = signature[:position] + flipped + signature[position + 1 :]
    assert _post(client, receiver, body, tampered) == 401
    assert _post(client, receiver, body, signature[:-1]) == 401  # length mismatch, no crash
    assert _post(client, receiver, body, signature.upper()) == 401
    assert _post(client, receiver, body, sign_body(b"another secret", body)) == 401


def test_python_default_json_fails_the_seed_receiver(
    receiver: Receiver, client: httpx.Client
) -> None:
    # Why body_bytes exists: the same event, as json.dumps prints it, is refused.
    event = {"id": "evt_1", "type": "deposit.confirmed", "data": {"metadata": {"名": 1.0, "10": 2}}}
    for body in (json.dumps(event).encode(), json.dumps(event, separators=(",", ":")).encode()):
        assert _post(client, receiver, body, sign_body(SECRET.encode(), body)) == 401
    body = body_bytes(event)
    assert _post(client, receiver, body, sign_body(SECRET.encode(), body)) == 200
