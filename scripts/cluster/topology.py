"""The whole topology on one machine, on loopback (docs/scaling.md):

    clients ─► HAProxy ─► 3 × `addrpool api` ─┐
                                              ├─► PgBouncer (transaction pooling) ─► PostgreSQL
               2 × `addrpool worker` ─────────┘                                         ▲
                    └── their chain locks: straight to PostgreSQL ───────────────────────┘
               anvil (the devnet chain, with the test token) ◄── the workers' watchers

Its own PostgreSQL instance (initdb in a fresh directory, on a free port), so that restarting it
disturbs nobody else's. Everything runs as this user, except PostgreSQL and PgBouncer, which
refuse root: as root they run as `postgres`. `Cluster.stop` ends every process it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chains.codec import address_parser
from chains.evm.address import to_checksum_address
from pool.addresses.import_formats import RawRow
from pool.addresses.importer import ImportSource, import_addresses
from pool.instance.service import claim_network
from pool.keys import service as keys
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.migrate import upgrade
from scripts.cluster.configs import DATABASE, haproxy_cfg, pgbouncer_ini
from scripts.cluster.processes import (
    Process,
    answers,
    chown_to_server_user,
    free_port,
    listening,
    postgres_bin,
    server_user,
)
from scripts.devnet import anvil

CHAIN_ID = "devnet"
CONFIRMATIONS = 3
DECIMALS = 6
STARTUP_DEADLINE = 60.0
POSTGRES_MAX_CONNECTIONS = 60


@dataclass
class Cluster:
    """`with Cluster(directory) as cluster:` starts it all; leaving the block stops it all."""

    directory: Path
    apis: int = 3
    workers: int = 2
    addresses: int = 2_000
    max_block_range: int = 5  # a backlog takes a while to catch up: time to kill the watcher
    poll_interval: float = 0.2
    worker_log_level: str = "DEBUG"  # "range scanned", with its epoch, is a DEBUG line
    ports: dict[str, int] = field(default_factory=dict)
    api_processes: list[Process] = field(default_factory=list)
    worker_processes: list[Process] = field(default_factory=list)
    others: list[Process] = field(default_factory=list)
    node: anvil.Anvil | None = None
    token: str = ""
    api_key: str = ""
    _pg_dir: Path | None = None

    # -- start and stop ---------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.ports = {"postgres": free_port(), "pgbouncer": free_port(), "balancer": free_port()}
        self.start_postgres()
        self.start_pgbouncer()
        self.node = anvil.Anvil(log_path=self.directory / "anvil.log").start()
        self.token = anvil.deploy_token(
            self.rpc_url, name="Tether USD (devnet)", symbol="USDT", decimals=DECIMALS
        )
        # The payer: anvil's first account, which every transfer is sent from.
        anvil.mint(self.rpc_url, self.token, anvil.accounts(self.rpc_url)[0], 10**18)
        self.api_key = asyncio.run(self._prepare_database())
        self._write_config()
        # Each process takes seconds to import and connect: all of them at once.
        apis = [self.start_api(n, wait=False) for n in range(self.apis)]
        workers = [self.start_worker(n, wait=False) for n in range(self.workers)]
        for n, _ in enumerate(apis):
            self.until(functools.partial(self.api_answers, n), f"api{n} to answer")
        for worker in workers:
            self.until(functools.partial(self.worker_started, worker), f"{worker.name} to start")
        self.start_balancer()
        self.until(self.serving, "the load balancer to answer")

    def stop(self) -> None:
        for process in [*self.worker_processes, *self.api_processes, *self.others]:
            with contextlib.suppress(Exception):
                process.kill()
        if self.node is not None:
            self.node.stop()
        if self._pg_dir is not None:
            with contextlib.suppress(Exception):
                self._pg_ctl("stop", "-m", "immediate")
            shutil.rmtree(self._pg_dir, ignore_errors=True)
            self._pg_dir = None

    # -- PostgreSQL and PgBouncer -----------------------------------------------------------

    @property
    def pg_dir(self) -> Path:
        if self._pg_dir is None:
            raise RuntimeError("PostgreSQL has not been started")
        return self._pg_dir

    @property
    def rpc_url(self) -> str:
        if self.node is None:
            raise RuntimeError("anvil has not been started")
        return self.node.url

    @property
    def direct_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports['postgres']}/{DATABASE}"

    @property
    def pooled_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports['pgbouncer']}/{DATABASE}"

    def start_postgres(self) -> None:
        # Its own directory, owned by the server's user (the test's tmp_path is private to us).
        self._pg_dir = Path(tempfile.mkdtemp(prefix="addrpool-cluster-pg-"))
        self._pg_dir.chmod(0o755)
        chown_to_server_user(self._pg_dir)
        self._as_server_user(
            [postgres_bin("initdb"), "-D", str(self.pg_dir / "data"), "-U", "postgres"]
            + ["--auth=trust", "-E", "UTF8", "--no-sync"]
        )
        self._pg_ctl("start")
        self._as_server_user(
            [postgres_bin("psql"), "-h", "127.0.0.1", "-p", str(self.ports["postgres"])]
            + ["-U", "postgres", "-qc", f"CREATE DATABASE {DATABASE}"]
        )

    def restart_postgres(self) -> None:
        """`pg_ctl restart` (fast: sessions are ended, the server stops and starts again)."""
        self._pg_ctl("restart", "-m", "fast")

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = (
            f"-p {self.ports['postgres']} -k {self.pg_dir} -c listen_addresses=127.0.0.1"
            f" -c max_connections={POSTGRES_MAX_CONNECTIONS}"
        )
        argv = [postgres_bin("pg_ctl"), "-D", str(self.pg_dir / "data"), "-w", "-t", "60"]
        argv += ["-l", str(self.pg_dir / "postgres.log"), "-o", options, action, *extra]
        self._as_server_user(argv)

    def _as_server_user(self, argv: list[str]) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, user=server_user())
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:2])} failed:\n{done.stdout}{done.stderr}")

    def start_pgbouncer(self) -> None:
        ini = self.pg_dir / "pgbouncer.ini"
        users = self.pg_dir / "userlist.txt"
        users.write_text('"postgres" ""\n')
        ini.write_text(
            pgbouncer_ini(
                listen_port=self.ports["pgbouncer"],
                server_port=self.ports["postgres"],
                auth_file=users,
            )
        )
        for path in (ini, users):
            chown_to_server_user(path)
        process = Process("pgbouncer", ["pgbouncer", str(ini)], self.directory / "pgbouncer.log")
        process.user = server_user()
        self.others.append(process.start())
        self.until(lambda: listening(self.ports["pgbouncer"]), "PgBouncer to listen")

    async def _prepare_database(self) -> str:
        """The schema, the network, the pool's addresses and an admin key (on the server
        itself, not through the pooler)."""
        db = Database(self.direct_url, pool_size=2)
        try:
            await upgrade(db)
            async with db.write() as conn:
                await claim_network(
                    conn, network="testnet", database="cluster", actor="cluster", now=utc_now()
                )
                rows = [
                    RawRow(line, to_checksum_address(secrets.token_hex(20)))
                    for line in range(1, self.addresses + 1)
                ]
                await import_addresses(
                    conn,
                    protocol="evm",
                    rows=rows,
                    parser=address_parser("evm"),
                    source=ImportSource("cluster", "scripts/cluster"),
                    now=utc_now(),
                )
                plaintext, _ = await keys.create_key(
                    conn,
                    name="cluster",
                    scopes=["admin"],
                    key_prefix="pk_test_",
                    actor="cluster",
                    now=utc_now(),
                )
            return plaintext
        finally:
            await db.dispose()

    # -- addrpool ---------------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.directory / "addrpool.toml"

    def _write_config(self) -> None:
        self.config_path.write_text(
            'network = "testnet"\nwebhook_allow_private = true\n'
            'secret_key = "cluster-secret-key-for-webhook-secrets"\n'
            f'database_url = "{self.pooled_url}"\n'
            "database_pooled = true\n"
            f'database_session_url = "{self.direct_url}"\n'
            f'\n[chains.{CHAIN_ID}]\nprotocol = "evm"\n'
            f'rpc_urls = ["{self.rpc_url}"]\nconfirmations = {CONFIRMATIONS}\n'
            f"start_block = 0\nmax_block_range = {self.max_block_range}\n"
            f"poll_interval = {self.poll_interval}\n"
            f'\n[chains.{CHAIN_ID}.tokens.USDT]\ncontract = "{self.token}"\n'
            f'decimals = {DECIMALS}\nmin_amount = "0.01"\n'
        )

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ADDRPOOL_")}
        return {**env, "ADDRPOOL_CONFIG": str(self.config_path), **extra}

    def api_answers(self, n: int) -> bool:
        return answers(f"http://127.0.0.1:{self.ports[f'api{n}']}/health")

    def worker_started(self, process: Process) -> bool:
        if not process.alive():
            raise RuntimeError(f"{process.name} exited:\n{process.text()[-2000:]}")
        return "addrpool worker:" in process.text()

    def start_api(self, n: int, *, wait: bool = True) -> Process:
        port = self.ports.setdefault(f"api{n}", free_port())
        process = Process(
            f"api{n}",
            [sys.executable, "-m", "scripts.cli.main", "api", "--port", str(port)],
            self.directory / f"api{n}.log",
            env=self.env(ADDRPOOL_DB_POOL_SIZE="10"),
        ).start()
        if n < len(self.api_processes):
            self.api_processes[n] = process
        else:
            self.api_processes.append(process)
        if wait:
            self.until(lambda: self.api_answers(n), f"api{n} to answer")
        return process

    def start_worker(self, n: int, *, wait: bool = True) -> Process:
        process = Process(
            f"worker{n}",
            [sys.executable, "-m", "scripts.cli.main", "worker"],
            self.directory / f"worker{n}.log",
            env=self.env(ADDRPOOL_LOG_LEVEL=self.worker_log_level),
        ).start()
        if n < len(self.worker_processes):
            self.worker_processes[n] = process
        else:
            self.worker_processes.append(process)
        if wait:
            self.until(lambda: self.worker_started(process), f"worker{n} to start")
        return process

    def start_balancer(self) -> None:
        config = self.directory / "haproxy.cfg"
        config.write_text(
            haproxy_cfg(
                listen_port=self.ports["balancer"],
                api_ports=[self.ports[f"api{n}"] for n in range(self.apis)],
            )
        )
        self.others.append(
            Process(
                "haproxy", ["haproxy", "-db", "-f", str(config)], self.directory / "haproxy.log"
            ).start()
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['balancer']}"

    def serving(self) -> bool:
        return answers(f"{self.base_url}/health")

    # -- waiting ----------------------------------------------------------------------------

    def until(
        self, check: Callable[[], bool], what: str, deadline: float = STARTUP_DEADLINE
    ) -> None:
        end = time.monotonic() + deadline
        while not check():
            for process in self.others:
                if not process.alive():
                    raise RuntimeError(f"{process.name} exited:\n{process.text()[-2000:]}")
            if time.monotonic() > end:
                raise TimeoutError(f"waiting for {what}")
            time.sleep(0.1)


@contextlib.contextmanager
def running_cluster(directory: Path | None = None, **options: Any) -> Iterator[Cluster]:
    with (
        tempfile.TemporaryDirectory(prefix="addrpool-cluster-") as scratch,
        Cluster(directory or Path(scratch), **options) as cluster,
    ):
        yield cluster
