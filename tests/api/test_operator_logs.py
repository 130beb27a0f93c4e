"""What the API logs for an operator: the access line (off by a setting), the warning when a
bind hands out an address no watcher watches, and a busy or unreachable database as one
warning, no traceback."""

from __future__ import annotations

import logging
import sqlite3

import httpx
import pytest
from sqlalchemy.exc import DBAPIError, OperationalError

from api.app import create_app
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.db_failures import is_database_busy, is_database_unreachable, log_failure
from pool.kit.logs import JsonFormatter, TextFormatter
from tests.fixtures.helpers import auth, load_pool, make_key


async def _client_of(settings: Settings, db: Database, monitored=None):
    app = create_app(settings, db=db, monitored_chains=monitored)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return app, httpx.AsyncClient(transport=transport, base_url="http://t")


def _bind(reference: str, protocol: str = "evm") -> dict[str, str]:
    return {"depositReference": reference, "protocol": protocol}


async def test_access_lines_can_be_turned_off(settings, db, caplog) -> None:
    caplog.set_level(logging.INFO, logger="addrpool.access")
    for enabled, expected in ((True, 1), (False, 0)):
        caplog.clear()
        app, http = await _client_of(settings.model_copy(update={"access_log": enabled}), db)
        async with http:
            assert (await http.get("/health")).status_code == 200
        await app.state.ctx.pool_alerts.close()
        lines = [r for r in caplog.records if r.name == "addrpool.access"]
        assert len(lines) == expected


async def test_a_bind_with_no_watched_chain_warns_once_per_protocol(settings, db, caplog) -> None:
    await load_pool(db, "evm", 3)
    await load_pool(db, "tron", 1)
    key = await make_key(db, scopes=None)
    app, http = await _client_of(settings, db, monitored={"evm": [], "tron": []})
    caplog.set_level(logging.WARNING, logger="addrpool.bind")
    async with http:
        for reference, protocol in (("a", "evm"), ("b", "evm"), ("c", "tron")):
            response = await http.post(
                "/api/v1/deposits/bind", json=_bind(reference, protocol), headers=auth(key)
            )
            assert response.json()["data"]["monitoredChains"] == []
    await app.state.ctx.pool_alerts.close()
    warned = [r.protocol for r in caplog.records if r.name == "addrpool.bind"]
    assert warned == ["evm", "tron"]


async def test_a_bind_with_a_watched_chain_does_not_warn(client, service_key, db, caplog) -> None:
    await load_pool(db, "evm", 1)
    caplog.set_level(logging.WARNING, logger="addrpool.bind")
    response = await client.post(
        "/api/v1/deposits/bind", json=_bind("a"), headers=auth(service_key)
    )
    assert response.json()["data"]["monitoredChains"] == ["ethereum-sepolia"]
    assert not [r for r in caplog.records if r.name == "addrpool.bind"]


def _locked() -> OperationalError:
    return OperationalError("INSERT …", {}, sqlite3.OperationalError("database is locked"))


async def test_a_busy_database_answers_503_with_one_warning(settings, db, caplog) -> None:
    app, http = await _client_of(settings, db)

    @app.get("/busy")
    async def busy() -> None:
        raise _locked()

    caplog.set_level(logging.INFO)
    async with http:
        response = await http.get("/busy")
    await app.state.ctx.pool_alerts.close()
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["code"] == "DATABASE_BUSY"
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "database is busy" in warning.getMessage() and warning.exc_info is None


def test_only_a_locked_database_counts_as_busy(caplog) -> None:
    assert is_database_busy(_locked())
    other = OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: x"))
    assert not is_database_busy(other) and not is_database_busy(RuntimeError("x"))
    log = logging.getLogger("addrpool.test")
    caplog.set_level(logging.INFO, logger="addrpool.test")
    log_failure(log, "poll failed; will retry", _locked(), {"chain": "devnet"})
    log_failure(log, "poll failed; will retry", other, {"chain": "devnet"})
    busy, fault = caplog.records
    assert busy.levelname == "WARNING" and busy.exc_info is None and busy.chain == "devnet"
    assert fault.levelname == "ERROR" and fault.exc_info is not None


class _ServerError(Exception):
    """What asyncpg's errors carry, through SQLAlchemy's adapter: the SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _failed(sqlstate: str, *, invalidated: bool = False) -> DBAPIError:
    return DBAPIError("SELECT 1", {}, _ServerError(sqlstate), connection_invalidated=invalidated)


async def test_an_unreachable_database_answers_503_with_one_warning(settings, db, caplog) -> None:
    """PostgreSQL restarting (57P01 for the sessions it ends): the client is told to retry."""
    app, http = await _client_of(settings, db)

    @app.get("/restarting")
    async def restarting() -> None:
        raise _failed("57P01")

    caplog.set_level(logging.INFO)
    async with http:
        response = await http.get("/restarting")
    await app.state.ctx.pool_alerts.close()
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert response.json()["code"] == "DATABASE_UNAVAILABLE"
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "cannot be reached" in warning.getMessage() and warning.exc_info is None


def test_only_a_lost_or_refusing_server_counts_as_unreachable() -> None:
    # 08006 a connection lost, 08P01 PgBouncer's refusals, 57P03 a server still starting up
    for state in ("08006", "08P01", "57P01", "57P03"):
        assert is_database_unreachable(_failed(state)), state
    assert is_database_unreachable(_failed("XX000", invalidated=True))
    # a unique violation, a serialization failure: the request's own business
    assert not is_database_unreachable(_failed("23505"))
    assert not is_database_unreachable(_failed("40001"))
    assert not is_database_unreachable(RuntimeError("08006"))
    # the driver's own error, unwrapped (raised while a new connection is set up)
    assert is_database_unreachable(_ServerError("08003"))
    assert not is_database_unreachable(_ServerError("23505"))


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()])
def test_both_formats_carry_the_context(formatter: logging.Formatter) -> None:
    record = logging.LogRecord("addrpool.access", logging.INFO, "", 0, "GET %s", ("/health",), None)
    record.status = 200
    line = formatter.format(record)
    assert "GET /health" in line and "200" in line and "\n" not in line
    assert line.startswith("{") == isinstance(formatter, JsonFormatter)
