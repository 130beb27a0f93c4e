"""`addrpool serve` as an operator meets it: it says it listens only once it does, one server
per SQLite file, and every log line (uvicorn's included) is one JSON object."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from pool.kit.writer_lock import sqlite_file
from tests.fixtures.helpers import auth, load_pool, make_key
from tests.fixtures.server import free_port

pytestmark = pytest.mark.server

DEADLINE = 60.0


@contextmanager
def serving(
    tmp_path: Path, database_url: str, *, port: int, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], Path, Path]]:
    """`addrpool serve` with stdout and stderr in files of their own; SIGKILLed if it outlives
    the block."""
    out, err = tmp_path / f"out-{port}", tmp_path / f"err-{port}"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    environment.update({"ADDRPOOL_DATABASE_URL": database_url, **(env or {})})
    argv = [sys.executable, "-m", "scripts.cli.main", "serve", "--port", str(port)]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(argv, env=environment, stdout=stdout, stderr=stderr)
    try:
        yield process, out, err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def wait_for_line(process: subprocess.Popen[bytes], path: Path, text: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while text not in path.read_text():
        assert process.poll() is None, path.read_text()
        assert time.monotonic() < deadline, f"no {text!r} in {path.read_text()!r}"
        time.sleep(0.02)


def test_listening_is_printed_once_a_connection_succeeds(tmp_path, database_url) -> None:
    port = free_port()
    with serving(tmp_path, database_url, port=port) as (process, out, _err):
        wait_for_line(process, out, "listening on")
        # No retry: the line promises the socket is bound and the app started.
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
        assert f"listening on http://127.0.0.1:{port}" in out.read_text()


def test_a_taken_port_is_one_line_and_no_listening(tmp_path, database_url) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with serving(tmp_path, database_url, port=port) as (process, out, err):
            assert process.wait(timeout=DEADLINE) == 2
    assert "listening on" not in out.read_text()
    [line] = err.read_text().splitlines()
    assert f"cannot listen on 127.0.0.1:{port}" in line and "--port" in line


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # SQLite's rule
def test_a_second_server_on_the_same_sqlite_file_refuses(tmp_path, database_url) -> None:
    with serving(tmp_path, database_url, port=free_port()) as (first, out, _):
        wait_for_line(first, out, "listening on")
        with serving(tmp_path, database_url, port=free_port()) as (second, out2, err2):
            assert second.wait(timeout=DEADLINE) == 2
        [line] = err2.read_text().splitlines()
        assert f"(pid {first.pid}) is already serving" in line and "SQLite allows one" in line
        assert out2.read_text() == ""
        # kill -9 leaves no stale lock: the kernel drops it with the process.
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        with serving(tmp_path, database_url, port=free_port()) as (third, out3, _):
            wait_for_line(third, out3, "listening on")
            third.send_signal(signal.SIGTERM)
            assert third.wait(timeout=DEADLINE) == 0


async def test_every_log_line_is_json_with_an_access_line_per_request(
    tmp_path, database_url, db
) -> None:
    await load_pool(db, "evm", 2)
    key = await make_key(db, scopes=None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serving(tmp_path, database_url, port=port, env={"ADDRPOOL_LOG_LEVEL": "INFO"}) as (
        process,
        out,
        err,
    ):
        wait_for_line(process, out, "listening on")
        bound = httpx.post(
            f"{base}/api/v1/deposits/bind",
            json={"depositReference": "order_1", "protocol": "evm"},
            headers=auth(key),
        )
        assert bound.status_code == 201
        assert (
            httpx.get(f"{base}/api/v1/deposits/references/order_1", headers=auth(key)).status_code
            == 200
        )
        assert httpx.get(f"{base}/no/such/route").status_code == 404
        assert httpx.get(f"{base}/api/v1/deposits/references/order_1").status_code == 401
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEADLINE) == 0
    lines = err.read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line, uvicorn's included
    assert any(e["logger"].startswith("uvicorn") for e in entries)
    assert not any(key in line for line in lines + out.read_text().splitlines())
    access = {
        (e["method"], e["route"], e["status"]): e
        for e in entries
        if e["logger"] == "addrpool.access"
    }
    key_id = access["POST", "/api/v1/deposits/bind", 201]["key_id"]
    assert isinstance(key_id, int)
    # The route template, not the path with the reference in it.
    assert access["GET", "/api/v1/deposits/references/{deposit_reference}", 200]["key_id"] == key_id
    assert access["GET", "/api/v1/deposits/references/{deposit_reference}", 401]["key_id"] is None
    assert access["GET", None, 404]["duration_ms"] >= 0
    assert all("order_1" not in line for line in lines if '"addrpool.access"' in line)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # SQLite's rule
async def test_binds_keep_answering_while_a_file_import_runs(tmp_path, database_url, db) -> None:
    """The import (another process) writes its rows in short transactions and rests between
    them (pool.addresses.staged_import): the server's binds get the writer in between, so
    they are answered while the rows are being written, every one succeeds, and nothing is
    logged as an error (waiting for the writer is normal)."""
    # Binds paced at about 20 a second: the pool must outlast the import, whose rows are not
    # the pool's until it commits.
    await load_pool(db, "evm", 3_000)
    key = await make_key(db, scopes=None)
    rows = tmp_path / "addresses.txt"
    rows.write_text("".join(f"0x{os.urandom(20).hex()}\n" for _ in range(100_000)))
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
    environment["ADDRPOOL_DATABASE_URL"] = database_url
    peek = sqlite3.connect(str(sqlite_file(database_url)), timeout=30)
    latest_batch = "SELECT status FROM import_batch ORDER BY id DESC LIMIT 1"
    with serving(tmp_path, database_url, port=port) as (process, out, err):
        wait_for_line(process, out, "listening on")
        importer = subprocess.Popen(
            [sys.executable, "-m", "scripts.cli.main", "import", str(rows), "--protocol", "evm"],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        statuses, while_writing = [], 0
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            while importer.poll() is None or len(statuses) < 20:
                body = {"depositReference": f"during_{len(statuses)}", "protocol": "evm"}
                answer = await http.post("/api/v1/deposits/bind", json=body, headers=auth(key))
                statuses.append(answer.status_code)
                # The batch is `importing` from its first row to its commit.
                while_writing += peek.execute(latest_batch).fetchone() == ("importing",)
                await asyncio.sleep(0.05)
        assert importer.wait(timeout=DEADLINE) == 0, (
            importer.stderr.read() if importer.stderr else ""
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEADLINE) == 0
    peek.close()
    assert set(statuses) == {201}
    assert while_writing >= 5, while_writing  # answered during the write, not after it
    logged = [json.loads(line) for line in err.read_text().splitlines()]
    assert not [e for e in logged if e["level"] in ("error", "critical") or "exc" in e]


async def test_a_stopping_server_answers_a_waiting_long_poll_at_once(
    database_url: str, db, no_proxy_env: None
) -> None:
    """The event feed's long poll (`wait=60`) is answered when the server is told to stop, not
    held to the end of its wait; the server then exits cleanly."""
    from tests.fixtures.server import running_server

    key = await make_key(db, scopes=["webhooks:read"])
    with running_server(database_url) as server:
        url = f"{server.base_url}/api/v1/events?wait=60"
        with httpx.Client(timeout=90) as client:
            client.get(url.replace("wait=60", "wait=0"), headers=auth(key)).raise_for_status()

            def poll() -> tuple[httpx.Response, float]:
                started = time.monotonic()
                return client.get(url, headers=auth(key)), time.monotonic() - started

            waiting = asyncio.get_running_loop().run_in_executor(None, poll)
            await asyncio.sleep(2)  # the poll is waiting now
            server.process.send_signal(signal.SIGTERM)
            answer, waited = await waiting
            assert server.process.wait(timeout=60) == 0
    assert answer.status_code == 200 and answer.json()["data"]["events"] == []
    assert waited < 30  # answered on the stop, far from its 60 s wait
