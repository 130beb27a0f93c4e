"""The watcher's compact address set is exact: every member found, nothing else ever."""

import gc
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chains.watch import address_set
from chains.watch.address_set import AddressSet, BulkLoad


@pytest.fixture
def small_delta(monkeypatch):
    """Merge every few additions, so a handful of addresses exercises the sorted part."""
    monkeypatch.setattr(address_set, "DELTA_MIN", 3)
    monkeypatch.setattr(address_set, "DELTA_MAX", 3)


def _random_hex20s(count: int) -> list[str]:
    return [os.urandom(20).hex() for _ in range(count)]


def test_members_are_found_and_strangers_are_not(small_delta) -> None:
    members = _random_hex20s(2_000)
    book = AddressSet(members)
    assert len(book) == 2_000
    assert all(hex20 in book for hex20 in members)
    strangers = _random_hex20s(2_000)
    assert not any(hex20 in book for hex20 in strangers)
    assert book.matching(members[:10] + strangers[:10]) == set(members[:10])
    assert sorted(book) == sorted(members)


def test_addresses_sharing_a_prefix_are_told_apart(small_delta) -> None:
    """The search runs on the first 8 bytes and the bitmap on the first 7 hex digits: addresses
    alike in those, and alike in all but one bit of the rest, must still be exact."""
    head = "00ff00ff00ff00ff"  # 8 bytes
    same_head = [head + tail for tail in ("00" * 12, "00" * 11 + "01", "80" + "00" * 11)]
    same_filter = ["00ff00f" + "e" + "0" * 32, "00ff00f" + "f" + "1" * 32]  # other heads
    one_bit_apart = ["ab" * 19 + "00", "ab" * 19 + "01"]
    members = [same_head[0], same_head[2], same_filter[0], one_bit_apart[0]]
    book = AddressSet()
    for hex20 in members[:2]:
        book.add(hex20)
    book.compact()
    for hex20 in members[2:]:  # the rest in the delta
        book.add(hex20)
    for _merged in (False, True):  # before and after the delta is merged
        assert all(hex20 in book for hex20 in members)
        for stranger in (same_head[1], same_filter[1], one_bit_apart[1]):
            assert stranger not in book
        book.compact()
    # The missing one slots in between its neighbours sharing the head.
    book.add(same_head[1])
    book.compact()
    assert all(hex20 in book for hex20 in same_head)
    assert sorted(book) == sorted([*members, same_head[1]])


def test_an_address_added_twice_is_counted_once(small_delta) -> None:
    book = AddressSet()
    members = _random_hex20s(10)
    assert book.update(members) == 10
    assert book.update(members + members[:2]) == 0  # some merged, some in the delta
    assert not book.add(members[-1])
    assert len(book) == 10
    assert book.add(os.urandom(20).hex()) and len(book) == 11


@pytest.mark.parametrize(
    "text",
    [
        "AB" * 20,  # upper case: the book holds lower case only
        "0x" + "ab" * 19,
        "ab" * 19 + "a",  # 39
        "ab" * 20 + "a",  # 41
        "ab" * 19 + " a",  # fromhex would skip the space
        "zz" * 20,
        "ab" * 19 + "+1",
        "",
    ],
)
def test_anything_but_lower_case_40_hex_is_never_a_member(text: str) -> None:
    book = AddressSet(["ab" * 20, "ab" * 19 + "a1"])
    assert text not in book
    assert book.matching([text]) == set()
    with pytest.raises(ValueError, match="not a lower-case 40-hex address"):
        book.add(text)
    assert len(book) == 2


def test_non_strings_are_not_members() -> None:
    book = AddressSet(["ab" * 20])
    for thing in (bytes.fromhex("ab" * 20), b"ab" * 20, 0xAB, None, ["ab" * 20]):
        assert thing not in book


def test_the_collector_has_nothing_to_walk(small_delta) -> None:
    """Each address is bytes in flat buffers: no object per address for the GC to track."""
    book = AddressSet()
    before = len(gc.get_objects())
    book.update(_random_hex20s(5_000))
    book.compact()
    assert len(gc.get_objects()) - before < 20


# Addresses from a tiny alphabet at the positions that matter: many share the bitmap's bits,
# the 8-byte head, or everything but the last digit.
_crowded = st.builds(
    lambda a, b, c: a * 7 + b + "0" * 8 + "ab" * 11 + "0" + c,
    st.sampled_from("01"),
    st.sampled_from("0f"),
    st.sampled_from("01234"),
)
_any = st.binary(min_size=20, max_size=20).map(bytes.hex)


@settings(max_examples=150, deadline=None)
@given(
    batches=st.lists(st.lists(st.one_of(_crowded, _any), max_size=12), max_size=8),
    probes=st.lists(st.one_of(_crowded, _any), max_size=20),
    merge_at=st.integers(min_value=1, max_value=6),
)
def test_it_answers_as_a_set_would(batches, probes, merge_at) -> None:
    model: set[str] = set()
    book = AddressSet()
    saved = address_set.DELTA_MIN, address_set.DELTA_MAX
    address_set.DELTA_MIN = address_set.DELTA_MAX = merge_at
    try:
        for batch in batches:
            assert book.update(batch) == len(set(batch) - model)
            model |= set(batch)
            assert len(book) == len(model)
            for hex20 in [*probes, *batch]:
                assert (hex20 in book) == (hex20 in model)
            assert book.matching(probes) == model & set(probes)
        assert sorted(book) == sorted(model)
    finally:
        address_set.DELTA_MIN, address_set.DELTA_MAX = saved


def test_random_strangers_never_match() -> None:
    """Random data against a sizeable set: no false positive (the bitmap lets some through
    to the exact search, which must turn every one of them away)."""
    rng = random.Random(7)
    members = [rng.randbytes(20).hex() for _ in range(50_000)]
    book = AddressSet(members)
    strangers = {rng.randbytes(20).hex() for _ in range(200_000)} - set(members)
    assert book.matching(strangers) == set()
    assert book.matching(members) == set(members)


@settings(max_examples=150, deadline=None)
@given(
    pages=st.lists(st.lists(st.one_of(_crowded, _any), max_size=12), max_size=8),
    later=st.lists(st.one_of(_crowded, _any), max_size=12),
    probes=st.lists(st.one_of(_crowded, _any), max_size=20),
    merge_at=st.integers(min_value=1, max_value=6),
)
def test_a_bulk_load_answers_as_a_set_would(pages, later, probes, merge_at) -> None:
    """A first load gathered page by page (duplicates within and across pages, crowded
    prefixes), then the ordinary path on top of it: still exactly a set."""
    model = {hex20 for page in pages for hex20 in page}
    bulk = BulkLoad()
    for page in pages:
        bulk.add(page)
    book = AddressSet()
    assert book.load(bulk) == len(model) == len(book)
    assert list(book) == sorted(model)  # the buffers in order, as the search needs
    saved = address_set.DELTA_MIN, address_set.DELTA_MAX
    address_set.DELTA_MIN = address_set.DELTA_MAX = merge_at
    try:
        assert book.update(later) == len(set(later) - model)
        model |= set(later)
        for hex20 in [*probes, *later, *model]:
            assert (hex20 in book) == (hex20 in model)
        assert book.matching(probes) == model & set(probes)
        assert sorted(book) == sorted(model)
    finally:
        address_set.DELTA_MIN, address_set.DELTA_MAX = saved


def test_a_bulk_load_into_a_set_that_holds_addresses_adds_only_the_new() -> None:
    members = _random_hex20s(50)
    book = AddressSet(members[:20])
    bulk = BulkLoad()
    bulk.add(members[10:])
    assert book.load(bulk) == 30
    assert len(book) == 50 and sorted(book) == sorted(members)


@pytest.mark.parametrize("text", ["AB" * 20, "ab" * 19 + " a", "ab" * 19 + "a", "zz" * 20, 7])
def test_a_bulk_load_refuses_a_page_with_anything_but_lower_case_40_hex(text) -> None:
    bulk = BulkLoad()
    bulk.add(["cd" * 20])
    with pytest.raises(ValueError, match="not a lower-case 40-hex address"):
        bulk.add(["ab" * 20, text, "ef" * 20])
    book = AddressSet()
    assert book.load(bulk) == 1 and list(book) == ["cd" * 20]


@settings(max_examples=100, deadline=None)
@given(
    members=st.lists(st.one_of(_crowded, _any), max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=30 * 41), max_size=6),
)
def test_lines_gathered_in_chunks_cut_anywhere_load_the_same_set(members, cuts) -> None:
    """What PostgreSQL's COPY sends: a line a member, in chunks that end anywhere."""
    text = "".join(f"{hex20}\n" for hex20 in members).encode()
    bulk = BulkLoad()
    at = 0
    for cut in sorted(min(cut, len(text)) for cut in cuts):
        bulk.add_lines(text[at:cut])
        at = cut
    bulk.add_lines(text[at:])
    bulk.finish_lines()
    book = AddressSet()
    assert book.load(bulk) == len(set(members))
    assert list(book) == sorted(set(members))


@pytest.mark.parametrize(
    "text", [b"AB" * 20 + b"\n", b"ab" * 19 + b"a\n", b"zz" * 20 + b"\n", b"ab" * 19 + b" a\n"]
)
def test_lines_that_are_not_lower_case_40_hex_are_refused(text) -> None:
    bulk = BulkLoad()
    with pytest.raises(ValueError, match="not a lower-case 40-hex address"):
        bulk.add_lines(b"cd" * 20 + b"\n" + text + b"ef" * 20 + b"\n")
        bulk.finish_lines()  # a line cut short is only known to be short at the end
