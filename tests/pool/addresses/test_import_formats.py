import pytest

from pool.addresses.import_formats import RawRow, detect_format, read_rows
from pool.kit.errors import ValidationFailed

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


KEY = "3f" * 32
PHRASE = "legal winner thank year wave sausage worth useful legal winner thank yellow"
WORDS = PHRASE.split()


def _refused(text: str, format="auto") -> list[dict]:
    with pytest.raises(ValidationFailed) as caught:
        read_rows(text, format=format)  # refused at once, before any row is read
    error = caught.value
    assert error.code == "PRIVATE_KEY_REFUSED"
    said = repr(error.envelope())
    assert KEY not in said and " ".join(WORDS[:3]) not in said and "legal\\nwinner" not in said
    assert {d["value"] for d in error.details} == {"[redacted]"}
    return error.details


@pytest.mark.parametrize(
    ("text", "line", "kind"),
    [
        (f"address,{KEY}\n{A}\n", 1, "raw_private_key"),  # was echoed as an unknown column
        (f"address,derivation_index,protocol,master_public_key\n{A},0,evm,{XPUB},{KEY}\n", 2,
         "raw_private_key"),  # a 5th column
        (f'{A}\n"0x{KEY}"\n', 2, "raw_private_key"),
        (f"{A}\r{B}\r{A} {KEY}\r", 3, "raw_private_key"),  # line ends as splitlines counts them
        (f"{A},0\n{B},1\n\n" + "\n".join(WORDS) + "\n", 4, "mnemonic"),  # one word per line
        (f'{A}\n"{" ".join(WORDS)}"\n', 2, "mnemonic"),
    ],
)  # fmt: skip
def test_a_secret_anywhere_in_a_text_refuses_it(text: str, line: int, kind: str) -> None:
    (detail,) = _refused(text)
    assert (detail["line"], detail["kind"]) == (line, kind)


def test_a_mnemonic_over_several_lines_names_them() -> None:
    (detail,) = _refused(f"{A}\n" + "\r\n".join(WORDS))
    assert detail["line"] == 2 and "(lines 2 to 13)" in detail["message"]


@pytest.mark.parametrize(
    ("text", "row"),
    [
        (f'["{A}", {{"address": "{B}", "note": "key={KEY}"}}]', 2),  # an unknown field
        (f'["{A}", {{"{KEY}": "{B}"}}]', 2),  # a key, in an object's key
        ('["' + "\\n".join(WORDS) + '"]', 1),  # escapes decoded before the scan
        (f'["{A}", ' + ", ".join(f'"{w}"' for w in WORDS) + "]", 2),  # one word per row
        (f'{{"address": "{A}", "secret": "{KEY}"}}', 1),  # not even a list
    ],
)
def test_a_secret_anywhere_in_a_json_import_refuses_it(text: str, row: int) -> None:
    (detail,) = _refused(text, format="json")
    assert detail["line"] == row


def test_a_broken_json_file_with_a_key_is_refused_as_a_key() -> None:
    (detail,) = _refused(f'["{A}",\n{KEY}]', format="json")
    assert detail["line"] == 2


def test_unknown_csv_columns_are_named_in_short() -> None:
    header = ",".join(["address", "x" * 500, *(f"c{n}" for n in range(10))])
    with pytest.raises(ValidationFailed) as caught:
        rows(f"{header}\n{A},1\n")
    assert "x" * 43 not in caught.value.message and "6 more" in caught.value.message
