"""The watcher's address set alone, at a given size: build time, memory, look-ups.

    .venv/bin/python -m scripts.bench.address_book [--sizes 1000000,10000000]
        [--builds bulk,update] [--json F]

Per size and way of building, in a fresh process each (so one size's heap does not inflate the
next): random lower-case 40-hex addresses in pages of 50,000 as the book reads them from the
database — `bulk`, as a worker's first load does (`BulkLoad.add` per page, then one
`AddressSet.load`), or `update`, as a refresh adds them (`AddressSet.update` per page, merging
as it goes) — then look-ups of strangers and of members one by one, and `matching` over a
range's worth (12,500 recipients, 10% ours) as the watcher does.
Reported: the build's seconds, the process's RSS before and after and its peak (VmHWM), the
set's own bytes (buffers, bitmap, delta), and µs per look-up. Generating the addresses is not
timed; they are made a page at a time, so the input never sits in memory whole.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from chains.watch.address_set import AddressSet, BulkLoad

PAGE = 50_000
RANGE_RECIPIENTS = 12_500


def memory_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(size: int, seed: int, how: str) -> dict[str, Any]:
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    book = AddressSet()
    bulk = BulkLoad()
    before = memory_mb("VmRSS")
    build = 0.0
    sample: list[str] = []
    for start in range(0, size, PAGE):
        page = [rng.randbytes(20).hex() for _ in range(min(PAGE, size - start))]
        sample.extend(page[:: max(1, size // 10_000)])
        started = time.perf_counter()
        if how == "bulk":
            bulk.add(page)
        else:
            book.update(page)
        build += time.perf_counter() - started
    del page
    started = time.perf_counter()
    book.load(bulk)  # nothing gathered when built by `update`
    build += time.perf_counter() - started
    if len(book) != size:
        raise RuntimeError(f"{len(book)} addresses in the set, {size} added")
    strangers = [rng.randbytes(20).hex() for _ in range(100_000)]
    started = time.perf_counter()
    false_hits = sum(1 for hex20 in strangers if hex20 in book)
    stranger_us = (time.perf_counter() - started) / len(strangers) * 1e6
    started = time.perf_counter()
    hits = sum(1 for hex20 in sample if hex20 in book)
    member_us = (time.perf_counter() - started) / len(sample) * 1e6
    ours = RANGE_RECIPIENTS // 10
    a_range = sample[:ours] + strangers[: RANGE_RECIPIENTS - ours]
    started = time.perf_counter()
    matched = book.matching(a_range)
    range_ms = (time.perf_counter() - started) * 1e3
    if false_hits or hits != len(sample) or len(matched) != min(ours, len(sample)):
        raise RuntimeError("the set answered wrongly")
    return {
        "size": size,
        "build": how,
        "build_seconds": round(build, 2),
        "rss_before_mb": round(before),
        "rss_after_mb": round(memory_mb("VmRSS")),
        "peak_rss_mb": round(memory_mb("VmHWM")),
        "set_mb": round(book.footprint() / 2**20),
        "stranger_lookup_us": round(stranger_us, 2),
        "member_lookup_us": round(member_us, 2),
        "range_match_ms": round(range_ms, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--builds", default="bulk,update", help="bulk (a first load), update")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.seed, args.builds)))
        return 0
    results = []
    for size in (int(text) for text in args.sizes.split(",")):
        for how in args.builds.split(","):
            if how not in ("bulk", "update"):
                parser.error(f"--builds: bulk or update, not {how!r}")
            done = subprocess.run(
                [sys.executable, "-m", "scripts.bench.address_book", "--one", str(size),
                 "--builds", how, "--seed", str(args.seed)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            results.append(json.loads(done.stdout))
            print(json.dumps(results[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
