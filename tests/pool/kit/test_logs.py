"""Logging set-up (pool/kit/logs.py): HTTP clients stay quiet below WARNING."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from pool.kit.logs import configure_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    names = ("httpx", "httpcore", "aiohttp", "aiosqlite")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:], root.level = handlers, level
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


@pytest.mark.parametrize("level", ["DEBUG", "INFO"])
def test_http_clients_log_no_line_per_request(restored_logging: None, level: str) -> None:
    configure_logging(level)
    for client in ("httpx", "httpcore", "aiohttp"):
        assert logging.getLogger(client).getEffectiveLevel() == logging.WARNING
    assert logging.getLogger("addrpool.webhooks").getEffectiveLevel() == getattr(logging, level)


def test_a_stricter_root_level_still_wins(restored_logging: None) -> None:
    configure_logging("ERROR")
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.ERROR
