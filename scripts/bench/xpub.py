"""xpub benchmark: derivation rate beside bip_utils, then 1M import and verify.

    .venv/bin/pip install -e '.[bench]'      # bip_utils, the reference it is compared with
    .venv/bin/python scripts/bench/xpub.py [--rate-count 20000] [--count 1000000]

1. Addresses/s on one core, EVM and Tron, deriving account/0/i with `chains.hd` and with
   bip_utils (same addresses, checked equal), in the same run.
2. `addrpool import --xpub … --count N --json` on a fresh PostgreSQL database, end to end.
3. `addrpool pool verify --xpub … --json` over those N addresses (each carries its index).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from chains.hd import derive_addresses, parse_extended_public_key
from scripts.bench.report import finish

ROOT = Path(__file__).resolve().parents[2]
ADDRPOOL = str(ROOT / ".venv" / "bin" / "addrpool")
PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-qAt"]
# BIP32 test vector 1, m/0H: a public test key, standing in for an account xpub.
XPUB = (
    "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTF"
    "UHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw"
)


def ours(protocol: str, count: int) -> tuple[float, list[str]]:
    account = parse_extended_public_key(XPUB)
    started = time.perf_counter()
    derived = derive_addresses(account, protocol=protocol, branch=0, start=0, count=count)  # type: ignore[arg-type]
    seconds = time.perf_counter() - started
    return count / seconds, [address.text for _, address in derived]


def reference(protocol: str, count: int) -> tuple[float, list[str]]:
    from bip_utils import Bip32Secp256k1, EthAddrEncoder, TrxAddrEncoder

    encoder = EthAddrEncoder if protocol == "evm" else TrxAddrEncoder
    started = time.perf_counter()
    branch = Bip32Secp256k1.FromExtendedKey(XPUB).ChildKey(0)
    addresses = [
        encoder.EncodeKey(branch.ChildKey(i).PublicKey().KeyObject()) for i in range(count)
    ]
    return count / (time.perf_counter() - started), addresses


def run(command: list[str], env: dict[str, str]) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(done.stderr)
    return seconds, json.loads(done.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate-count", type=int, default=20_000)
    parser.add_argument("--count", type=int, default=1_000_000)
    args = parser.parse_args()
    results: dict = {}
    for protocol in ("evm", "tron"):
        our_rate, our_addresses = ours(protocol, args.rate_count)
        their_rate, their_addresses = reference(protocol, args.rate_count)
        if our_addresses != their_addresses:
            raise SystemExit(f"{protocol}: addresses differ from bip_utils")
        results[f"rate/{protocol}"] = {
            "addrpool_per_s": round(our_rate),
            "bip_utils_per_s": round(their_rate),
            "ratio": round(our_rate / their_rate, 2),
        }
        print(protocol, results[f"rate/{protocol}"], flush=True)
    database = "addrpool_bench_xpub"
    subprocess.run(
        [*PSQL, "-d", "postgres", "-c", f"DROP DATABASE IF EXISTS {database}"], check=True
    )
    subprocess.run([*PSQL, "-d", "postgres", "-c", f"CREATE DATABASE {database}"], check=True)
    env = {
        **os.environ,
        "ADDRPOOL_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{database}",
    }
    try:
        subprocess.run([ADDRPOOL, "db", "upgrade"], env=env, check=True, capture_output=True)
        count = str(args.count)
        seconds, summary = run(
            [ADDRPOOL, "import", "--xpub", XPUB, "--protocol", "evm", "--count", count, "--json"],
            env,
        )
        results["import_xpub"] = {"seconds": round(seconds, 1), "imported": summary["imported"]}
        print("import", results["import_xpub"], flush=True)
        seconds, report = run(
            [ADDRPOOL, "pool", "verify", "--xpub", XPUB, "--protocol", "evm", "--json"], env
        )
        results["verify"] = {
            "seconds": round(seconds, 1),
            "verified": report["verified"],
            "ok": report["ok"],
        }
        print("verify", results["verify"], flush=True)
    finally:
        subprocess.run([*PSQL, "-d", "postgres", "-c", f"DROP DATABASE {database}"], check=True)
    return finish(results)


if __name__ == "__main__":
    sys.exit(main())
