"""The whole topology, reduced (docs/scaling.md): PostgreSQL of its own, PgBouncer in
transaction pooling, HAProxy before two `addrpool api`s, two `addrpool worker`s, anvil. One
kill -9 of the watcher in the middle of a catch-up, one PostgreSQL restart under bind load and
deposits; after each, the deposits are exactly the transfers made on the devnet, each block was
written by one leader, and every bind answered one address. The full scenarios, with their
figures, run as a benchmark: `python -m scripts.cluster faults --runs 2`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.cluster.faults import kill_the_watcher_mid_catch_up, restart_postgres_under_load
from scripts.cluster.observe import ChainTruth
from scripts.cluster.processes import postgres_bin
from scripts.cluster.topology import Cluster

pytestmark = pytest.mark.server
TAKEOVER_LIMIT_S = 10.0


def missing_programs() -> list[str]:
    # scripts/test.sh installs them (Debian's pgbouncer and haproxy): their absence is a failure.
    missing = [name for name in ("pgbouncer", "haproxy") if shutil.which(name) is None]
    try:
        postgres_bin("initdb")
    except RuntimeError:
        missing.append("postgresql (server binaries)")
    return missing


def test_the_cluster_survives_a_watcher_kill_and_a_postgres_restart(tmp_path: Path) -> None:
    assert missing_programs() == [], "apt-get install -y pgbouncer haproxy postgresql"
    # As many as the benchmark's: a quiet machine binds ~1,000 a second through the restart.
    with Cluster(tmp_path, apis=2, addresses=20_000) as cluster:
        truth = ChainTruth()
        killed = kill_the_watcher_mid_catch_up(cluster, truth, transfers=8, blocks_between=40)
        assert killed["epochs"] == 2  # the standby took over: two leaderships wrote the chain
        assert killed["takeover_s"] <= TAKEOVER_LIMIT_S, killed
        restarted = restart_postgres_under_load(cluster, truth, seconds=2.0)
        assert restarted["binds"] > 0 and restarted["deposits_checked"] > killed["deposits_checked"]
        assert restarted["binds_stopped_for_s"] <= TAKEOVER_LIMIT_S, restarted
