"""`/metrics` with several API worker processes: counters are summed across them
(prometheus-client's multiprocess mode), whichever worker answers the scrape."""

from __future__ import annotations

import glob
import os
import time

import httpx
import pytest

from scripts.run.server import shared_metrics_directory
from tests.api.test_metrics import Samples, parse, pool_gauges, value
from tests.fixtures.helpers import auth, load_pool, make_key
from tests.fixtures.server import bind_all_at_once, running_server

pytestmark = pytest.mark.server


@pytest.fixture
def backend() -> str:
    """PostgreSQL only: SQLite allows one process, so one worker."""
    return "postgresql"


async def _bind_many(base_url: str, key: str, references: list[str]) -> None:
    # One connection per request, so the kernel spreads them over both workers' accept queues.
    responses = await bind_all_at_once(base_url, key, references, keep_alive=False)
    assert {r.status_code for r in responses} == {201}


async def _bind_until_both_workers_counted(base_url: str, key: str, directory: str) -> int:
    """Bind in rounds until each worker has written its own counter file; the binds made."""
    made, deadline = 0, time.monotonic() + 60
    while len(glob.glob(os.path.join(directory, "counter_*.db"))) < 2:
        assert time.monotonic() < deadline, "one worker took every bind"
        await _bind_many(base_url, key, [f"user_{made + i}" for i in range(20)])
        made += 20
    return made


def _scrape(base_url: str) -> Samples:
    # A fresh connection each time: any worker may answer.
    response = httpx.get(base_url + "/metrics", timeout=10, headers={"Connection": "close"})
    assert response.status_code == 200, response.text
    return parse(response.text)


async def test_the_bind_counter_sums_binds_across_two_workers(database_url, db, tmp_path) -> None:
    await load_pool(db, "evm", 400)
    key = await make_key(db, scopes=None)
    # The server's temporary directories go under tmp_path: other servers running at the same
    # time (tests in parallel) make and remove their own in the shared one.
    metrics_dirs = str(tmp_path / "addrpool-metrics-*")
    before = set(glob.glob(metrics_dirs))
    temporary = {"TMPDIR": str(tmp_path)}
    with running_server(database_url, command="api", workers=2, extra_env=temporary) as server:
        created = set(glob.glob(metrics_dirs)) - before
        assert len(created) == 1, "the command made one fresh multiprocess directory"
        made = await _bind_until_both_workers_counted(server.base_url, key, created.pop())
        unbind = httpx.post(
            server.base_url + "/api/v1/deposits/unbind",
            json={"depositReference": "user_0", "protocol": "evm"},
            headers=auth(key),
        )
        assert unbind.status_code == 200
        scrapes = [_scrape(server.base_url) for _ in range(10)]
        assert server.terminate() == 0
    assert set(glob.glob(metrics_dirs)) == before, "the directory is removed at exit"
    for samples in scrapes:
        assert value(samples, "addrpool_binds_total", protocol="evm", outcome="created") == made
        assert value(samples, "addrpool_unbinds_total", protocol="evm") == 1
        assert pool_gauges(samples)["evm", "bound"] == made - 1
        assert pool_gauges(samples)["evm", "available"] == 400 - made
        # Per-process collectors are left out in multiprocess mode; their absence shows it is on.
        assert not any(name.startswith("python_gc") for name, _ in samples)


def test_one_worker_keeps_the_default_registry(monkeypatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with shared_metrics_directory(1):
        assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_several_workers_get_a_fresh_directory_removed_afterwards(monkeypatch) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with shared_metrics_directory(3):
        directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        assert os.path.isdir(directory) and not os.listdir(directory)
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert not os.path.exists(directory)


def test_a_directory_the_operator_chose_is_kept(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with shared_metrics_directory(4):
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)
    assert tmp_path.is_dir()
