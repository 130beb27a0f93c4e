"""Import benchmark: a million addresses end to end, beside a bare bulk insert.

    .venv/bin/python scripts/bench/imports.py [--rows 1000000] [--skip-sqlite] [--skip-tron]

For each database (PostgreSQL on this machine, SQLite file) and protocol:
1. `addrpool import FILE --protocol P --json` on an empty pool, timed end to end as a separate
   process (reading, format detection, validation incl. EIP-55 / base58check and private-key
   screening, writing, audit) with its peak RSS;
2. the same for a second, different file into the pool that now holds the first;
3. the baseline: the same rows bulk-inserted with no validation at all — PostgreSQL `COPY`
   through psql, SQLite `executemany` in one transaction — into a fresh schema.
Needs GNU time at /usr/bin/time (Debian package `time`) for the peak RSS.
Files are generated here with random keys (checksummed EVM, base58check Tron).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from chains.evm.address import to_checksum_address
from chains.tron.address import hex20_to_tron
from scripts.bench.report import finish

ROOT = Path(__file__).resolve().parents[2]
ADDRPOOL = str(ROOT / ".venv" / "bin" / "addrpool")
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt"]


def write_file(path: Path, protocol: str, rows: int) -> list[tuple[str, str]]:
    """The import file, and the (address, hex20) pairs for the baseline."""
    pairs = []
    for _ in range(rows):
        hex20 = secrets.token_hex(20)
        text = to_checksum_address(hex20) if protocol == "evm" else hex20_to_tron(hex20)
        pairs.append((text, hex20))
    path.write_text("address\n" + "\n".join(text for text, _ in pairs) + "\n")
    return pairs


def timed_import(path: Path, protocol: str, env: dict[str, str]) -> dict[str, float]:
    """Wall time and peak RSS (GNU time's %M) of one `addrpool import` process."""
    started = time.perf_counter()
    command = [ADDRPOOL, "import", str(path), "--protocol", protocol, "--json"]
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", *command], env=env, check=True, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    peak_kb = int(done.stderr.strip().splitlines()[-1])
    imported = json.loads(done.stdout)["imported"]
    return {"seconds": round(seconds, 2), "imported": imported, "peak_rss_mb": peak_kb // 1024}


def baseline_postgres(database: str, protocol: str, pairs: list[tuple[str, str]]) -> float:
    now = datetime.now(UTC).isoformat()
    data = "".join(f"{protocol}\t{text}\t{hex20}\tavailable\t{now}\n" for text, hex20 in pairs)
    started = time.perf_counter()
    subprocess.run(
        [*PSQL, "-d", database, "-c",
         "\\copy address (protocol, address, hex20, status, created_at) from stdin"],
        input=data, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return round(time.perf_counter() - started, 2)


def baseline_sqlite(path: Path, protocol: str, pairs: list[tuple[str, str]]) -> float:
    now = datetime.now(UTC).isoformat()
    started = time.perf_counter()
    connection = sqlite3.connect(path)
    with connection:
        connection.executemany(
            "INSERT INTO address (protocol, address, hex20, status, created_at) "
            "VALUES (?, ?, ?, 'available', ?)",
            ((protocol, text, hex20, now) for text, hex20 in pairs),
        )
    connection.close()
    return round(time.perf_counter() - started, 2)


def fresh_postgres(name: str) -> str:
    subprocess.run([*PSQL, "-d", "postgres", "-c", f"DROP DATABASE IF EXISTS {name}"], check=True)
    subprocess.run([*PSQL, "-d", "postgres", "-c", f"CREATE DATABASE {name}"], check=True)
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    subprocess.run([ADDRPOOL, "db", "upgrade"], env={**os.environ, "ADDRPOOL_DATABASE_URL": url},
                   check=True, capture_output=True)  # fmt: skip
    return url


def run_backend(backend: str, protocol: str, files: list[Path], pairs: list, work: Path) -> dict:
    if backend == "postgresql":
        url = fresh_postgres("addrpool_bench_import")
        fresh_postgres("addrpool_bench_import_base")
        baseline = baseline_postgres("addrpool_bench_import_base", protocol, pairs)
    else:
        url = f"sqlite:///{work / f'{protocol}.db'}"
        base_path = work / f"{protocol}-baseline.db"
        base_env = {**os.environ, "ADDRPOOL_DATABASE_URL": f"sqlite:///{base_path}"}
        subprocess.run([ADDRPOOL, "db", "upgrade"], env=base_env, check=True, capture_output=True)
        baseline = baseline_sqlite(base_path, protocol, pairs)
    env = {**os.environ, "ADDRPOOL_DATABASE_URL": url, "ADDRPOOL_LOG_LEVEL": "WARNING"}
    first = timed_import(files[0], protocol, env)
    second = timed_import(files[1], protocol, env)
    if backend == "postgresql":
        for name in ("addrpool_bench_import", "addrpool_bench_import_base"):
            subprocess.run([*PSQL, "-d", "postgres", "-c", f"DROP DATABASE {name}"], check=True)
    return {
        "first": first,
        "second_into_full_pool": second,
        "second_vs_first": round(second["seconds"] / first["seconds"], 2),
        "bare_bulk_insert_s": baseline,
        "first_vs_bare_insert": round(first["seconds"] / baseline, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-tron", action="store_true")
    args = parser.parse_args()
    results: dict = {"rows": args.rows}
    with tempfile.TemporaryDirectory(prefix="addrpool-import-") as tmp:
        work = Path(tmp)
        for protocol in ("evm",) if args.skip_tron else ("evm", "tron"):
            files = [work / f"{protocol}-{n}.txt" for n in (1, 2)]
            pairs = write_file(files[0], protocol, args.rows)
            write_file(files[1], protocol, args.rows)
            for backend in ("postgresql",) if args.skip_sqlite else ("postgresql", "sqlite"):
                result = run_backend(backend, protocol, files, pairs, work)
                results[f"{backend}/{protocol}"] = result
                print(f"{backend}/{protocol}: {json.dumps(result)}", flush=True)
    return finish(results)


if __name__ == "__main__":
    sys.exit(main())
