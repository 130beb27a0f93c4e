"""`addrpool import FILE FILE …`: several files, one import each, in the order named, against
a real database (SQLite and PostgreSQL)."""

import asyncio
import json
from pathlib import Path

from sqlalchemy import select

from pool.kit.db import Database
from pool.kit.tables import address, import_batch
from tests.fixtures.helpers import random_addresses
from tests.fixtures.server import cli


def pool_rows(database_url: str) -> list[tuple[str, int]]:
    """The pool's addresses in the order it hands never-used ones out (id), with their batch."""

    async def read() -> list[tuple[str, int]]:
        db = Database(database_url, pool_size=1)
        try:
            async with db.read() as conn:
                rows = await conn.execute(
                    select(address.c.address, address.c.import_batch_id).order_by(address.c.id)
                )
                return [(row[0], row[1]) for row in rows.all()]
        finally:
            await db.dispose()

    return asyncio.run(read())


def batches(database_url: str) -> int:
    async def count() -> int:
        db = Database(database_url, pool_size=1)
        try:
            async with db.read() as conn:
                return len((await conn.execute(select(import_batch.c.id))).all())
        finally:
            await db.dispose()

    return asyncio.run(count())


def write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_several_files_are_imported_in_order_each_as_its_own_batch(database_url, tmp_path) -> None:
    first, second, third = (random_addresses("evm", 4) for _ in range(3))
    third[0] = first[1]  # already in the pool when the third file's turn comes
    names = [
        write(tmp_path / f"part-{n}.txt", rows) for n, rows in enumerate((first, second, third))
    ]
    done = cli("import", *names, "--protocol", "evm", "--json", database_url=database_url)
    report = json.loads(done.stdout)
    assert [f["file"] for f in report["files"]] == names
    assert [(f["imported"], f["alreadyInPool"]) for f in report["files"]] == [
        (4, 0),
        (4, 0),
        (3, 1),
    ]
    assert (report["imported"], report["duplicates"], report["invalidCount"]) == (11, 1, 0)
    rows = pool_rows(database_url)
    # Never-used addresses go out in import order: the files' order, each file's own order.
    assert [text for text, _ in rows] == [*first, *second, *third[1:]]
    batch_of = [batch for _, batch in rows]
    assert batch_of == sorted(batch_of) and len(set(batch_of)) == 3
    assert [f["batchId"] for f in report["files"]] == sorted(set(batch_of))


def test_the_text_output_says_what_each_file_added_then_the_total(database_url, tmp_path) -> None:
    names = [write(tmp_path / f"{n}.txt", random_addresses("tron", 2)) for n in "ab"]
    lines = cli("import", *names, "--protocol", "tron", database_url=database_url).stdout
    assert lines.splitlines() == [
        f"{names[0]}: imported 2 tron address(es); skipped 0 (0 repeated in the file, 0 already "
        "in the pool); 0 invalid",
        f"{names[1]}: imported 2 tron address(es); skipped 0 (0 repeated in the file, 0 already "
        "in the pool); 0 invalid",
        "2 files: imported 4 address(es); skipped 0; 0 invalid",
    ]


def test_a_refused_file_stops_the_command_and_the_files_before_it_stay(
    database_url, tmp_path
) -> None:
    good, later = random_addresses("evm", 3), random_addresses("evm", 3)
    names = [
        write(tmp_path / "good.txt", good),
        write(tmp_path / "bad.txt", [random_addresses("evm", 1)[0], "0x1234"]),
        write(tmp_path / "later.txt", later),
    ]
    refused = cli("import", *names, "--protocol", "evm", database_url=database_url, check=False)
    assert refused.returncode == 2
    [batch] = {batch for _, batch in pool_rows(database_url)}
    assert f"error: {names[1]} refused: 1 invalid row(s); nothing was imported." in refused.stderr
    assert f"Imported before it: 1 file (batch {batch}); not imported after it: 1 file" in (
        refused.stderr
    )
    assert "line 2: '0x1234'" in refused.stderr
    assert [text for text, _ in pool_rows(database_url)] == good
    as_json = cli(
        "import", *names[1:], "--protocol", "evm", "--json", database_url=database_url, check=False
    )
    envelope = json.loads(as_json.stdout)
    assert (envelope["code"], envelope["details"][0]["line"]) == ("INVALID_ADDRESS", 2)
    assert envelope["message"].endswith("Imported before it: none; not imported after it: 1 file")
    assert [text for text, _ in pool_rows(database_url)] == good


def test_a_secret_in_a_later_file_refuses_that_file_without_echoing_it(
    database_url, tmp_path
) -> None:
    good = random_addresses("evm", 2)
    secret = "c" * 64
    names = [
        write(tmp_path / "good.txt", good),
        write(tmp_path / "keys.txt", [random_addresses("evm", 1)[0], "0x" + secret]),
    ]
    refused = cli("import", *names, "--protocol", "evm", database_url=database_url, check=False)
    assert refused.returncode == 2 and "never takes private keys" in refused.stderr
    assert f"{names[1]} refused" in refused.stderr
    assert secret not in refused.stderr + refused.stdout
    assert [text for text, _ in pool_rows(database_url)] == good


def test_every_name_is_checked_before_anything_is_written(database_url, tmp_path) -> None:
    good = write(tmp_path / "good.txt", random_addresses("evm", 2))
    for names, says in [
        ([good, str(tmp_path / "missing.txt")], "no such file"),
        ([good, str(tmp_path)], "is a directory"),
        ([good, good], f"named more than once: {good}"),
        ([good, "-"], "stdin ('-') is imported alone"),
    ]:
        refused = cli("import", *names, "--protocol", "evm", database_url=database_url, check=False)
        assert refused.returncode == 2 and says in refused.stderr, refused.stderr
    assert pool_rows(database_url) == [] and batches(database_url) == 0


def test_a_dry_run_of_several_files_counts_and_writes_nothing(database_url, tmp_path) -> None:
    names = [write(tmp_path / f"{n}.txt", random_addresses("evm", 3)) for n in "ab"]
    done = cli(
        "import", *names, "--protocol", "evm", "--dry-run", "--json", database_url=database_url
    )
    report = json.loads(done.stdout)
    assert report["imported"] == 6 and all(f["dryRun"] for f in report["files"])
    assert pool_rows(database_url) == [] and batches(database_url) == 0
