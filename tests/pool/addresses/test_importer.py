import pytest
from sqlalchemy import func, select, text

from chains.codec import address_parser
from pool.addresses.import_formats import read_rows
from pool.addresses.importer import ANALYZE_AFTER, ImportSource, import_addresses
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.errors import ValidationFailed
from pool.kit.tables import address, import_batch
from tests.fixtures.helpers import random_addresses


async def _import(db: Database, lines, protocol="evm", **flags):
    async with db.write() as conn:
        return await import_addresses(
            conn,
            protocol=protocol,
            rows=read_rows("\n".join(lines), format="lines"),
            parser=address_parser(protocol),
            source=ImportSource("test.txt", "test"),
            now=utc_now(),
            **flags,
        )


async def _pool_size(db: Database) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(address)))


async def test_header_blank_lines_bom_and_duplicates(db: Database) -> None:
    addresses = random_addresses("evm", 3)
    lines = ["\ufeffaddress", "", f"  {addresses[0]}  ", addresses[1].lower(), addresses[0]]
    lines.append(addresses[2] + "\r")
    report = await _import(db, lines)
    assert (report.imported, report.duplicates_in_input, report.already_in_pool) == (3, 1, 0)
    async with db.read() as conn:
        stored = set((await conn.scalars(select(address.c.address))).all())
    assert stored == set(addresses)  # stored checksummed, whatever case came in


async def test_reimport_is_a_no_op(db: Database) -> None:
    lines = random_addresses("tron", 4)
    await _import(db, lines, "tron")
    again = await _import(db, lines, "tron")
    assert (again.imported, again.already_in_pool) == (0, 4)
    assert await _pool_size(db) == 4


async def test_one_bad_line_refuses_everything_and_lists_each_bad_line(db: Database) -> None:
    good = random_addresses("evm", 2)
    tron = random_addresses("tron", 1)[0]
    with pytest.raises(ValidationFailed) as caught:
        await _import(db, [good[0], "0xnothex", tron, good[1]])
    details = caught.value.details
    assert [d["line"] for d in details] == [2, 3]
    assert "Tron address" in details[1]["message"]
    assert await _pool_size(db) == 0
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(import_batch)) == 0


async def test_skip_invalid_imports_the_good_lines(db: Database) -> None:
    good = random_addresses("evm", 2)
    report = await _import(db, [good[0], "junk", good[1]], skip_invalid=True)
    assert report.imported == 2 and [p.line for p in report.invalid.listed] == [2]


async def test_dry_run_writes_nothing(db: Database) -> None:
    lines = random_addresses("evm", 3)
    await _import(db, lines[:1])
    report = await _import(db, lines, dry_run=True)
    assert (report.imported, report.already_in_pool) == (2, 1)
    assert await _pool_size(db) == 1


async def _import_text(db: Database, text: str, protocol="evm", **flags):
    async with db.write() as conn:
        return await import_addresses(
            conn,
            protocol=protocol,
            rows=read_rows(text),
            parser=address_parser(protocol),
            source=ImportSource("t.csv", "cli:test", "csv", "ab" * 32),
            now=utc_now(),
            **flags,
        )


async def test_secrets_refuse_the_whole_import_even_with_skip_invalid(db: Database, caplog) -> None:
    from mnemonic import Mnemonic

    good = random_addresses("evm", 1)[0]
    key = "0x" + "ab" * 32
    phrase = Mnemonic("english").generate(128)
    text = f"address\n{good}\n{key}\n{phrase}\n"
    with pytest.raises(ValidationFailed) as caught:
        await _import_text(db, text, skip_invalid=True)
    error = caught.value
    assert error.code == "PRIVATE_KEY_REFUSED" and "never takes private keys" in error.message
    assert [d["line"] for d in error.details] == [3, 4]
    assert {d["value"] for d in error.details} == {"[redacted]"}
    everything_said = repr(error.details) + error.message + caplog.text
    assert key not in everything_said and phrase not in everything_said
    assert await _pool_size(db) == 0


async def test_row_protocol_must_match_and_other_protocol_addresses_are_named(db: Database) -> None:
    evm = random_addresses("evm", 1)[0]
    tron = random_addresses("tron", 1)[0]
    text = f"address,protocol,derivation_index,master_public_key\n{evm},tron,,\n{tron},tron,,\n"
    with pytest.raises(ValidationFailed) as caught:
        await _import_text(db, text, protocol="tron")
    messages = [d["message"] for d in caught.value.details]
    assert "protocol is 'tron'" not in messages[0] and "EVM (0x) address" in messages[0]
    text = f"address,protocol\n{evm},tron\n"
    with pytest.raises(ValidationFailed, match="invalid"):
        await _import_text(db, text, protocol="evm")


async def test_four_column_rows_keep_index_and_master_key(db: Database) -> None:
    from pool.kit.tables import master_key

    xpub = "xpub6CUGRUonZSQ4TWtTMmzXdrXDtypWKiKrhko4egpiMZbpiaQL2jkwSB1icqYh2cfDfVxdx4df189oLKnC5fSwqPfgyP3hooxujYzAu3fDVmz"
    addresses = random_addresses("evm", 2)
    text = "address,derivation_index,protocol,master_public_key\n" + "".join(
        f"{a},{i},evm,{xpub}\n" for i, a in enumerate(addresses)
    )
    report = await _import_text(db, text)
    assert report.imported == 2
    async with db.read() as conn:
        stored = (
            await conn.execute(
                select(address.c.derivation_index, master_key.c.public_key)
                .join(master_key, master_key.c.id == address.c.master_key_id)
                .order_by(address.c.derivation_index)
            )
        ).all()
        batch = (await conn.execute(select(import_batch))).one()._mapping
    assert stored == [(0, xpub), (1, xpub)]
    assert (batch["file_sha256"], batch["format"], batch["actor"]) == ("ab" * 32, "csv", "cli:test")


# "²" is a digit to str.isdigit() but not to int(); 5,000 digits are past int()'s limit:
# both once escaped as a ValueError (a 500 over the API).
@pytest.mark.parametrize("index", ["-1", "x", "2147483648", "²", "\u0663", "9" * 5000])
async def test_bad_derivation_index_is_a_row_error(db: Database, index: str) -> None:
    text = f"address,derivation_index\n{random_addresses('evm', 1)[0]},{index}\n"
    with pytest.raises(ValidationFailed) as caught:
        await _import_text(db, text)
    assert "derivation_index" in caught.value.details[0]["message"]


async def test_leading_zeros_are_still_an_index(db: Database) -> None:
    text = f"address,derivation_index\n{random_addresses('evm', 1)[0]},000000000000002\n"
    report = await _import_text(db, text)
    assert report.imported == 1


async def test_a_large_import_refreshes_the_planner_statistics(db: Database) -> None:
    """Both planners need them: without, PostgreSQL scanned every address for the watcher's
    recipient look-up and SQLite walked the protocol index for the address book's refresh."""
    await _import(db, random_addresses("evm", ANALYZE_AFTER))
    await _import(db, random_addresses("evm", 10))  # too small to be worth an ANALYZE
    async with db.read() as conn:
        if db.is_sqlite:
            counted = "SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_address_claim_order_sqlite'"
            assert str(await conn.scalar(text(counted))).split()[0] == str(ANALYZE_AFTER)
            refresh = "EXPLAIN QUERY PLAN SELECT id, hex20 FROM address WHERE protocol = 'evm' "
            plan = (await conn.execute(text(refresh + "AND id > 5 ORDER BY id LIMIT 10"))).all()
            assert [row[-1] for row in plan] == [
                "SEARCH address USING INTEGER PRIMARY KEY (rowid>?)"
            ]
        else:
            counted = "SELECT reltuples FROM pg_class WHERE relname = 'address'"
            assert await conn.scalar(text(counted)) == ANALYZE_AFTER


KEY = "5e" * 32
XPRV = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"
PHRASE = "legal winner thank year wave sausage worth useful legal winner thank yellow"
WORDS = PHRASE.split()


def _secret_cases() -> list[tuple[str, str]]:
    a, b = random_addresses("evm", 2)
    return [
        (f'{a}\n"{KEY}"\n', "quoted"),
        (f"{a}\nkey={KEY}\n", "key="),
        (f"{a}\n{a} {KEY}\n", "after an address, past 100 characters"),
        (f'{a}\n"{" ".join(WORDS)}"\n', "quoted mnemonic"),
        (f"{a}\n" + "\n".join(WORDS) + "\n", "a mnemonic one word per line"),
        (f"address,derivation_index\n{a},0\n{b},1,{XPRV}\n", "a 5th column"),
        (f'[{{"address": "{a}"}}, {{"address": "{b}", "note": "{XPRV}"}}]', "a JSON field"),
    ]


@pytest.mark.parametrize("case", range(7))
async def test_a_disguised_secret_refuses_the_whole_import(db: Database, caplog, case) -> None:
    text, what = _secret_cases()[case]
    with pytest.raises(ValidationFailed) as caught:
        await _import_text(db, text, skip_invalid=True)
    error = caught.value
    assert error.code == "PRIVATE_KEY_REFUSED", what
    said = repr(error.envelope()) + caplog.text
    assert KEY not in said and XPRV[:20] not in said and " ".join(WORDS[:3]) not in said
    assert {d["value"] for d in error.details} == {"[redacted]"}
    assert await _pool_size(db) == 0


async def test_a_large_bad_import_reports_the_first_100_and_counts_the_rest(db: Database) -> None:
    good = random_addresses("evm", 1)[0]
    lines = ["address,derivation_index", f"{good},0"]
    lines += [f"junk-{n:04d}-" + "z" * 200 + ",1" for n in range(1_000)]
    lines += [f"{a},x" for a in random_addresses("evm", 10)]
    with pytest.raises(ValidationFailed) as caught:
        await _import_text(db, "\n".join(lines))
    error = caught.value
    assert error.code == "INVALID_ADDRESS" and len(error.details) == 100
    assert error.details_count == 1_010
    assert error.details_by_kind == {"invalid_address": 1_000, "invalid_derivation_index": 10}
    assert [d["line"] for d in error.details] == list(range(3, 103))
    assert error.details[0]["value"] == "junk-0000-" + "z" * 31 + "…"
    assert await _pool_size(db) == 0
    report = await _import_text(db, "\n".join(lines), skip_invalid=True)
    summary = report.summary()
    assert report.imported == 1 and len(summary["invalid"]) == 100
    assert (summary["invalidCount"], summary["invalidByKind"]["invalid_derivation_index"]) == (
        1_010,
        10,
    )


async def test_ids_follow_the_input_whatever_order_the_rows_are_written_in(db: Database) -> None:
    # PostgreSQL writes an import in address order (its unique indexes' order); the pool still
    # hands never-used addresses out in import order, which is id order.
    addresses = random_addresses("evm", 40)
    await _import(db, addresses[10:15])
    report = await _import(db, addresses)
    assert (report.imported, report.already_in_pool) == (35, 5)
    async with db.read() as conn:
        by_id = (await conn.scalars(select(address.c.address).order_by(address.c.id))).all()
    assert by_id == addresses[10:15] + addresses[:10] + addresses[15:]
    assert sorted(addresses) != addresses  # the input is not in address order already
