"""A real `addrpool import` process killed with SIGKILL on SQLite (pool.addresses.staged_import):
before its commit it leaves nothing the pool shows, and the next start removes what it wrote;
after its commit its rows are the pool's, and the next start finishes handing them over."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from pool.kit.db import Database
from pool.kit.writer_lock import sqlite_file
from tests.fixtures.polling import wait_until
from tests.fixtures.server import cli, running_server

pytestmark = [pytest.mark.server, pytest.mark.parametrize("backend", ["sqlite"], indirect=True)]

ROWS = 150_000
DEADLINE = 120.0


def _import_file(tmp_path: Path, rows: int = ROWS) -> Path:
    path = tmp_path / "addresses.txt"
    path.write_text("".join(f"0x{os.urandom(20).hex()}\n" for _ in range(rows)))
    return path


def _importer(path: Path, database_url: str) -> subprocess.Popen[bytes]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    environment["ADDRPOOL_DATABASE_URL"] = database_url
    argv = [sys.executable, "-m", "scripts.cli.main", "import", str(path), "--protocol", "evm"]
    return subprocess.Popen(argv, env=environment, stdout=subprocess.DEVNULL)


class Peek:
    """Reads the database file as another process would, while the importer writes it."""

    def __init__(self, database_url: str) -> None:
        path = sqlite_file(database_url)
        assert path is not None
        self._connection = sqlite3.connect(path, timeout=30)

    def one(self, sql: str) -> tuple:
        return self._connection.execute(sql).fetchone() or ()

    def statuses(self) -> dict[str, int]:
        rows = self._connection.execute("SELECT status, count(*) FROM address GROUP BY status")
        return dict(rows.fetchall())

    def batches(self) -> list[str]:
        rows = self._connection.execute("SELECT status FROM import_batch ORDER BY id")
        return [status for (status,) in rows.fetchall()]

    def close(self) -> None:
        self._connection.close()


async def test_a_killed_import_shows_nothing_and_serve_removes_it_at_start(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    path = _import_file(tmp_path)
    importer = _importer(path, database_url)
    peek = Peek(database_url)
    try:
        wait_until(
            lambda: peek.statuses().get("importing", 0) >= 20_000,
            timeout=DEADLINE,
            what="the importer writing its rows",
        )
        importer.send_signal(signal.SIGKILL)
        assert importer.wait(timeout=DEADLINE) == -signal.SIGKILL
        written = peek.statuses()
        assert set(written) == {"importing"} and peek.batches() == ["importing"]

        summary = cli("pool", "summary", "--json", database_url=database_url)
        assert json.loads(summary.stdout)["evm"]["total"] == 0  # nothing is the pool's

        with running_server(database_url) as server:
            wait_until(lambda: not peek.statuses() and not peek.batches(), timeout=DEADLINE)
            server.terminate()
            log = server.output()
        assert "removed an import interrupted before it committed" in log
        assert '"level": "error"' not in log and "Traceback" not in log
    finally:
        peek.close()
        if importer.poll() is None:
            importer.kill()


async def test_an_import_killed_after_its_commit_is_finished_by_the_next_import(
    tmp_path: Path, database_url: str, db: Database
) -> None:
    path = _import_file(tmp_path)
    importer = _importer(path, database_url)
    peek = Peek(database_url)
    try:
        wait_until(
            lambda: peek.batches() == ["committed"],
            timeout=DEADLINE,
            interval=0.002,
            what="the import's commit",
        )
        importer.send_signal(signal.SIGKILL)
        importer.wait(timeout=DEADLINE)
        assert peek.batches() == ["committed"]  # killed while handing its rows over
        left = peek.statuses()
        assert sum(left.values()) == ROWS

        (tmp_path / "more").mkdir()
        more = _import_file(tmp_path / "more", rows=10)
        done = cli("import", str(more), "--protocol", "evm", "--json", database_url=database_url)
        assert json.loads(done.stdout)["imported"] == 10
        assert peek.statuses() == {"available": ROWS + 10}
        assert peek.batches() == ["done", "done"]
        assert peek.one("SELECT imported FROM import_batch ORDER BY id LIMIT 1") == (ROWS,)
    finally:
        peek.close()
        if importer.poll() is None:
            importer.kill()
