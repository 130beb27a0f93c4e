"""What the screen for secrets costs an import, in-process (no database, no subprocess).

    .venv/bin/python scripts/bench/import_screen.py [--rows 1000000] [--repeat 3]

For a file of address lines and one of 4-column rows (an xpub on every row), generated from a
fixed seed: the best of `--repeat` runs of read + validate (what `addrpool import` does before
writing, screen included), and of the screen alone.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from pathlib import Path

from chains.codec import address_parser
from chains.evm.address import to_checksum_address
from pool.addresses.import_formats import read_rows
from pool.addresses.import_problems import secrets_in_text
from pool.addresses.importer import validate_rows
from scripts.bench.report import save_json

XPUB = (
    "xpub6CUGRUonZSQ4TWtTMmzXdrXDtypWKiKrhko4egpiMZbpiaQL2jkwSB1icqYh2cfDfVxdx4df189oLKnC5fSwq"
    "PfgyP3hooxujYzAu3fDVmz"
)


def inputs(rows: int) -> dict[str, str]:
    rng = random.Random(7)  # noqa: S311 - the same input on every run, nothing secret
    addresses = [to_checksum_address(f"{rng.getrandbits(160):040x}") for _ in range(rows)]
    lines = "address\n" + "\n".join(addresses) + "\n"
    header = "address,derivation_index,protocol,master_public_key\n"
    four = header + "\n".join(f"{a},{i},evm,{XPUB}" for i, a in enumerate(addresses)) + "\n"
    return {"address lines": lines, "4-column rows": four}


def best_of(repeat: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in each input")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best counts")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    evm = address_parser("evm")
    results: dict[str, object] = {"rows": args.rows}
    for name, text in inputs(args.rows).items():
        whole = best_of(
            args.repeat, lambda t=text: validate_rows(read_rows(t), protocol="evm", parser=evm)
        )
        screen = best_of(args.repeat, lambda t=text: secrets_in_text(t))
        print(f"{name}: read + validate {whole:.2f} s, of which the screen {screen:.2f} s")
        results[name] = {"read_and_validate_s": round(whole, 3), "screen_s": round(screen, 3)}
    save_json(args.json, results)


if __name__ == "__main__":
    main()
