"""The chain tests' harness: a 20-address pool watched on the devnet (tests/chains/harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pool.kit.db import Database
from tests.chains.harness import Harness, chain_config
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import load_pool


@pytest.fixture
async def harness(db: Database, devnet: Devnet) -> AsyncIterator[Harness]:
    pool = await load_pool(db, "evm", 20)
    running = Harness(db, devnet, pool, chain_config(devnet))
    yield running
    await running.client.close()
