"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

`scripts/test.sh` creates a fresh PostgreSQL database for the run and names it in
ADDRPOOL_TEST_POSTGRES_URL. Without it the PostgreSQL half is skipped loudly, except under
CI=true, where a missing PostgreSQL fails the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import text

from api.app import create_app
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.migrate import upgrade
from pool.kit.tables import metadata
from tests.helpers import BACKENDS, make_key

T = TypeVar("T")
POSTGRES_URL = os.environ.get("ADDRPOOL_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _require_postgres() -> str:
    if POSTGRES_URL:
        return POSTGRES_URL
    if IN_CI:
        pytest.fail("CI=true but no PostgreSQL: ADDRPOOL_TEST_POSTGRES_URL is not set")
    pytest.skip("NO POSTGRESQL: ADDRPOOL_TEST_POSTGRES_URL is not set; PostgreSQL half skipped")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from a sync fixture, even inside a running event loop."""
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, coroutine).result()


async def _migrate(url: str) -> None:
    db = Database(url, pool_size=1)
    await upgrade(db)
    await db.dispose()  # closing SQLite's last connection checkpoints the WAL into the file


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file built once through the migrations, copied for each test."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    run_sync(_migrate(f"sqlite:///{path}"))
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(scope="session")
def postgres_migrated() -> str:
    url = _require_postgres()
    run_sync(_migrate(url))
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(
    backend: str, tmp_path: Path, sqlite_template: Path, request: pytest.FixtureRequest
) -> str:
    if backend == "sqlite":
        path = tmp_path / "addrpool.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_migrated")
    run_sync(_truncate_all(url))
    return url


async def _truncate_all(url: str) -> None:
    db = Database(url, pool_size=1)
    names = ", ".join(table.name for table in metadata.sorted_tables)
    async with db.write() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await db.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        cooldown="P7D",
        secret_key="test-secret-key-for-webhook-secrets",
        webhook_allow_private=True,
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database_url, pool_size=5)
    yield database
    await database.dispose()


@pytest.fixture
async def client(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, db=db, monitored_chains={"evm": ["ethereum-sepolia"], "tron": []})
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://addrpool.test") as http:
        yield http
    # ASGITransport runs no lifespan: stop the post-bind alert task before the database goes.
    await app.state.ctx.pool_alerts.close()


@pytest.fixture
async def admin_key(db: Database) -> str:
    return await make_key(db, scopes=["admin"])


@pytest.fixture
async def service_key(db: Database) -> str:
    return await make_key(db, scopes=None)


@pytest.fixture
def no_proxy_env() -> Iterator[None]:
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.lower().endswith("_proxy")}
    yield
    os.environ.update(saved)


# A real anvil node with test USDT/USDC for every test that asks for `devnet`.
from tests.devnet import anvil_node, devnet, devnet_tokens  # noqa: E402, F401


@pytest.fixture
def receivers() -> Iterator[Callable[..., Any]]:
    """Start HTTP receivers that answer each POST from a script: (status, headers, delay)."""
    from tests.pool.webhooks.test_delivery import Receiver

    started: list[Receiver] = []

    def start(*script: tuple[int, dict[str, str], float]) -> Receiver:
        started.append(Receiver(list(script) or [(200, {}, 0.0)]))
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()
