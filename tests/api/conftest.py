"""Fixtures of the API's tests."""

from __future__ import annotations

import pytest

from pool.kit.db import Database
from tests.fixtures.helpers import make_key


@pytest.fixture
async def console_key(db: Database) -> str:
    """A key that may read the operator console, not act in it."""
    return await make_key(db, scopes=["console:read"])
