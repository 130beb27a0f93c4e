import math
from decimal import Context, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pool.bindings.metadata import check_metadata
from pool.kit.amounts import format_units, sum_in_units


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ([1, 2], "JSON object"),
        ("text", "JSON object"),
        ({f"k{i}": i for i in range(51)}, "50 keys"),
        ({"blob": "x" * 5000}, "4096 bytes"),
        ({"n": math.nan}, "NaN"),
        ({"n": [math.inf]}, "NaN or Infinity"),
        ({"big": 2**53 + 1}, "2\\^53"),
        ({"deep": [-(2**60)]}, "2\\^53"),
    ],
)
def test_unsafe_metadata_is_refused(value, reason) -> None:
    with pytest.raises(ValueError, match=reason):
        check_metadata(value)


def test_acceptable_metadata_passes_unchanged() -> None:
    value = {"playerId": 42, "name": "张三", "nested": {"ok": [1, 2.5, None, True]}, "max": 2**53}
    assert check_metadata(value) is value
    assert check_metadata(None) is None


@pytest.mark.parametrize(
    ("units", "decimals", "text"),
    [
        (100_000_000, 6, "100"),
        (500_000, 6, "0.5"),
        (49_990_000, 6, "49.99"),
        (0, 6, "0"),
        (1, 18, "0.000000000000000001"),
        (10**30 + 1, 18, "1000000000000.000000000000000001"),
    ],
)
def test_amounts_are_plain_decimal_strings(units, decimals, text) -> None:
    assert format_units(units, decimals) == text


@given(st.integers(min_value=-(2**256), max_value=2**256), st.integers(min_value=0, max_value=40))
def test_amounts_read_the_same_as_decimal_arithmetic(units, decimals) -> None:
    text = format_units(units, decimals)
    assert Decimal(text) == Decimal(units).scaleb(-decimals, context=Context(prec=200))
    assert "e" not in text.lower()
    assert not (("." in text) and text.endswith(("0", ".")))


def test_sums_across_different_decimals_are_exact() -> None:
    assert sum_in_units([(1_500_000, 6), (2 * 10**18, 18), (1, 18)]) == "3.500000000000000001"


PHRASE = "legal winner thank year wave sausage worth useful legal winner thank yellow"


@pytest.mark.parametrize(
    "value",
    [
        {"note": "key=" + "ab" * 32},
        {"ab" * 32: 1},
        {"a": {"b": [1, ["KwdMAjGmerYanjeui5SHS7JkmpZvVipYvB2LJGU1ZxJwYvP98617"]]}},
        {"seed": PHRASE},
        {"seed": PHRASE.split()},
    ],
)
def test_metadata_holding_a_secret_is_refused_as_one(value) -> None:
    from pool.kit.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as caught:
        check_metadata(value)
    assert caught.value.code == "PRIVATE_KEY_REFUSED"
    assert "ab" * 32 not in repr(caught.value.envelope()) and "legal" not in caught.value.message


def test_ordinary_words_in_metadata_are_no_mnemonic() -> None:
    prose = "please credit the deposit to the account of my brother, who lives abroad"
    fields = {f"k{n}": w for n, w in enumerate(PHRASE.split()[:6] * 2)}
    assert check_metadata({"note": prose, **fields}) is not None
