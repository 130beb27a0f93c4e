import pytest

from pool.errors import ValidationFailed
from pool.import_formats import RawRow, detect_format, read_rows

A = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
B = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
XPUB = "xpub6CUGRUonZSQ4TWtTMmzXdrXDtypWKiKrhko4egpiMZbpiaQL2jkwSB1icqYh2cfDfVxdx4df189oLKnC5fSwqPfgyP3hooxujYzAu3fDVmz"

# Past Python's recursion limit of 1,000, which a process importing web3 must keep (see
# chains/rpc.py): if py_ecc's 100,000 came back, this would decode instead of failing.
DEEP = "[" * 5000 + "]" * 5000


def rows(text: str, format="auto") -> list[RawRow]:
    return list(read_rows(text, format=format))


def test_lines_with_header_bom_crlf_blanks_and_spaces() -> None:
    text = f"\ufeffaddress\r\n\r\n  {A}  \r\n{B}\r\n"
    assert detect_format(text) == "lines"
    assert rows(text) == [RawRow(3, A), RawRow(4, B)]


def test_payin_two_column_csv() -> None:
    text = f"address,derivation_index\n{A},0\n{B},1\n"
    assert rows(text) == [RawRow(2, A, "0"), RawRow(3, B, "1")]


def test_payin_four_column_csv() -> None:
    text = f"address,derivation_index,protocol,master_public_key\n{A},7,evm,{XPUB}\n"
    assert rows(text) == [RawRow(2, A, "7", "evm", XPUB)]


def test_self_managed_order_with_empty_optional_fields() -> None:
    text = f"address,protocol,derivation_index,master_public_key\n{A},evm,,\n{B},evm,3,\n"
    assert rows(text) == [RawRow(2, A, None, "evm", None), RawRow(3, B, "3", "evm", None)]


def test_headerless_csv_in_either_column_order() -> None:
    assert rows(f"{A},5\n") == [RawRow(1, A, "5")]
    assert rows(f"{A},evm,5\n") == [RawRow(1, A, "5", "evm")]


def test_json_strings_and_objects() -> None:
    text = f'[" {A} ", {{"address": "{B}", "derivationIndex": 2, "masterPublicKey": "{XPUB}"}}]'
    assert detect_format(text) == "json"
    assert rows(text) == [RawRow(1, A), RawRow(2, B, "2", None, XPUB)]


def test_forced_format_wins_over_detection() -> None:
    assert rows(f"{A},5", format="lines") == [RawRow(1, f"{A},5")]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[not json", "not valid JSON"),
        ('{"address": "x"}', "must be a list"),  # forced to json below
        ("address,label\nx,y\n", "unknown CSV column"),
    ],
)
def test_structural_faults_are_clear_errors(text: str, reason: str) -> None:
    with pytest.raises(ValidationFailed, match=reason):
        rows(text, format="json" if text.startswith("{") else "auto")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('["\\ud800"]', "escapes a lone surrogate"),
        ('[{"address": "x\\uDFFF"}]', "escapes a lone surrogate"),
        (DEEP, "maximum recursion depth"),
    ],
)
def test_json_no_encoder_could_write_back_is_invalid_json(text: str, reason: str) -> None:
    with pytest.raises(ValidationFailed, match=reason) as refused:
        rows(text)
    assert refused.value.code == "INVALID_JSON"


def test_escapes_that_are_text_stay_text() -> None:
    """A surrogate pair is one character; an escaped backslash before `ud800` is plain text."""
    assert [r.address for r in rows('["\\ud83d\\ude00", "\\\\ud800"]')] == ["\U0001f600", "\\ud800"]


def test_too_many_fields_is_a_row_problem_not_a_crash() -> None:
    (row,) = rows(f"address,derivation_index\n{A},1,extra\n")
    assert row.problem and "3 fields" in row.problem
