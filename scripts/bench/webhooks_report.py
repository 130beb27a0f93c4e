"""The report of `scripts/bench/webhooks.py`: its results as markdown tables."""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from scripts.bench.report import markdown, percentile
from scripts.bench.webhooks_latency import BLOCK_TIME


def throughput_row(backend: str, title: str, result: dict[str, Any]) -> list[str]:
    seconds = result["seconds"]
    healthy = result["healthy"]
    events = result["events"]
    deliveries = events * len(healthy)
    per_endpoint = [events / result["done_at"][e] for e in healthy]
    ok = [r for r in result["receivers"] if r["mode"] == "ok"]
    duplicates = sum(r["requests"] - r["unique"] for r in ok)
    return [
        backend,
        title,
        f"{events:,} × {len(healthy)}",
        f"{seconds:.2f}",
        f"{events / seconds:,.0f}",
        f"**{deliveries / seconds:,.0f}**",
        ", ".join(f"{rate:,.0f}" for rate in per_endpoint),
        f"{result['cpu_seconds'] / seconds:.0%}",
        f"{result['cpu_seconds'] / deliveries * 1000:.1f}",
        f"{result['receiver_cpu_seconds'] / seconds:.0%}",
        f"{result['peak_tasks']:,}",
        f"{result['claims']['overlapping']:,}",
        f"{duplicates:,}",
        f"{result.get('load', float('nan')):.2f}",
    ]


def hang_rows(results: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    for backend, scenarios in results.items():
        result = scenarios.get("hang")
        if result is None:
            continue
        hung = [r for r in result["receivers"] if r["mode"] == "hang"][0]
        outcome = [o for e, o in result["outcome"].items() if e not in result["healthy"]][0]
        stop = result["stop_seconds"]
        rows.append(
            [
                backend,
                f"{result['soaked_seconds']:.0f}",
                f"{hung['requests']:,} ({hung['unique']:,} distinct)",
                f"{outcome.get('attempts', 0):,}",
                f"{outcome.get('pending', 0):,}",
                f"{result['claims']['overlapping']:,}",
                f"{result['tasks_at_stop']:,}",
                f"{stop:.1f} s" if stop is not None else f"not within {result['stop_wait']:.0f} s",
            ]
        )
    return rows


def latency_rows(results: dict[str, Any], goal: float) -> list[list[str]]:
    rows: list[list[str]] = []
    for backend, result in results.items():
        if not isinstance(result, dict) or "samples" not in result:
            continue
        samples = result["samples"]
        for kind, start, end, event, attempt in (
            ("pending", "mined_at", "pending_at", "pending_event_at", "pending_attempt_at"),
            ("confirmed", "confirming_mined_at", "confirmed_at", "confirmed_event_at",
             "confirmed_attempt_at"),
        ):  # fmt: skip
            total = [s[end] - s[start] for s in samples]
            watcher = [s[event] - s[start] for s in samples]
            pickup = [s[attempt] - s[event] for s in samples]
            request = [s[end] - s[attempt] for s in samples]
            rows.append(
                [
                    backend,
                    f"deposit.{kind}",
                    str(len(total)),
                    f"**{statistics.median(total):.3f}**",
                    f"{percentile(total, 0.95):.3f}",
                    f"{max(total):.3f}",
                    f"{min(total):.3f}",
                    "yes" if max(total) <= goal else "**no**",
                    f"{statistics.median(watcher):.3f}",
                    f"{statistics.median(pickup):.3f} (max {max(pickup):.3f})",
                    f"{statistics.median(request) * 1000:.0f} ms",
                ]
            )
    return rows


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    out = [
        f"command: {results['command']}",
        f"load average (1, 5, 15 min) at start: {results['load']}; at the end: "
        f"{results.get('load_end', '?')} (2 cores, shared)",
        "",
    ]
    if "throughput" in results:
        out += throughput_section(results, args)
    if "baseline" in results:
        out += baseline_section(results["baseline"])
    if "latency" in results:
        out += latency_section(results, args)
    return "\n".join(out)


def throughput_section(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    out = [
        f"1. Delivery throughput: {args.events:,} deposit.pending events written first, then "
        "the worker started; time until every healthy delivery is recorded succeeded",
        "",
    ]
    header = [
        "backend", "scenario", "deliveries (events × healthy endpoints)", "seconds",
        "events/s", "deliveries/s", "per healthy endpoint/s", "worker CPU",
        "worker CPU ms/delivery", "receiver CPU", "peak send tasks",
        "handed out again while still held", "duplicate requests received", "load (1 min)",
    ]  # fmt: skip
    rows = [
        throughput_row(backend, result["title"], result)
        for backend, by_label in results["throughput"].items()
        for result in by_label.values()
    ]
    out.append(markdown(header, rows))
    lines = [
        f"{backend} {result['log_lines'] / result['events']:.1f}"
        for backend, by_label in results["throughput"].items()
        if (result := by_label.get("one"))
    ]
    if lines:
        out += ["", f"Worker log lines per delivery (1 endpoint, INFO): {', '.join(lines)}"]
    return out + hang_section(results)


def hang_section(results: dict[str, Any]) -> list[str]:
    hang = hang_rows(results["throughput"])
    if not hang:
        return []
    header = [
        "backend", "worker ran s", "requests it received", "attempts recorded",
        "its deliveries still pending", "handed out again while still held (all)",
        "send tasks at stop", "run() returned after stop",
    ]  # fmt: skip
    return [
        "",
        f"The hanging endpoint (answers after {results['hang_seconds']:.0f} s; request timeout "
        "10 s, lease 60 s), when the worker is told to stop:",
        "",
        markdown(header, hang),
    ]


def baseline_section(baselines: list[dict[str, Any]]) -> list[str]:
    """The ceiling: bare client loops to the same `ok` receivers, no database (same run)."""
    header = [
        "when", "receivers", "requests in flight", "requests",
        "aiohttp requests/s", "aiohttp CPU ms/request", "httpx requests/s (≤ 2,000 sent)",
        "httpx CPU ms/request",
    ]  # fmt: skip
    rows = [
        [
            b["when"],
            str(b["urls"]),
            str(b["urls"] * b["per_url"]),
            f"{b['requests']:,}",
            f"**{b['aiohttp']['requests_per_second']:,.0f}**",
            f"{b['aiohttp']['cpu_ms_per_request']:.2f}",
            f"{b['httpx']['requests_per_second']:,.0f}",
            f"{b['httpx']['cpu_ms_per_request']:.2f}",
        ]
        for b in baselines
    ]
    return [
        "",
        "Baseline, same run: bare client loops POSTing a 700-byte body to the same receivers "
        "(no database, no signing; `scripts/bench/webhooks_baseline.py`)",
        "",
        markdown(header, rows),
    ]


def latency_section(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    goal = results["latency"]["goal_seconds"]
    out = [
        "",
        f"2. Deposit → webhook latency on anvil (block every {BLOCK_TIME} s, poll interval "
        f"{results['latency']['poll_interval']} s, {args.confirmations} confirmations); "
        f"seconds from the block being first seen at the node's head; goal ≤ {goal} s",
        "",
    ]
    header = [
        "backend", "event", "n", "median s", "p95 s", "max s", "min s", "max ≤ goal",
        "watcher: mined → event written (median)", "worker pick-up: event → attempt",
        "request (median)",
    ]  # fmt: skip
    out.append(markdown(header, latency_rows(results["latency"], goal)))
    receipt = [
        s["receipt_at"] - s["mined_at"]
        for r in results["latency"].values()
        if isinstance(r, dict) and "samples" in r
        for s in r["samples"]
    ]
    stamp = [
        s["mined_at"] - s["block_timestamp"]
        for r in results["latency"].values()
        if isinstance(r, dict) and "samples" in r
        for s in r["samples"]
    ]
    out += [
        "",
        f"(receipt polled every 20 ms appeared {statistics.median(receipt) * 1000:.0f} ms "
        f"after the head poll saw the block, median; the head poll saw blocks "
        f"{statistics.median(stamp):.2f} s after their whole-second timestamps, median)",
    ]
    return out
