"""The watcher benchmark's printed report: Markdown tables, ready for docs/performance.md."""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Sequence
from typing import Any

from scripts.bench.report import markdown, percentile
from scripts.bench.watcher_chain import ScanResult

TRON_MAINNET_TRANSFERS_PER_SECOND = 100  # USDT on Tron mainnet, roughly


def median_runs(runs: list[dict[str, Any]], kind: str, block_range: int) -> dict[str, Any]:
    tried = [r for r in runs if r["kind"] == kind and r["block_range"] == block_range]
    chosen = [r for r in tried if not r["error"]]
    if not chosen:
        return {"error": tried[0]["error"], "failed": len(tried)}
    return {
        "failed": len(tried) - len(chosen),
        "error": next((r["error"] for r in tried if r["error"]), ""),
        "seconds": statistics.median(r["seconds"] for r in chosen),
        "runs": [round(r["seconds"], 2) for r in chosen],
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in chosen),
        "deposits": chosen[0]["deposits"],
        "confirmed": chosen[0]["confirmed"],
        "attributed": chosen[0]["attributed"],
    }


def catchup_figures(results: dict[str, Any], name: str, block_range: int) -> dict[str, Any]:
    chain = results["chain"]
    runs = results["backends"][name]["catchup"]["runs"]
    watch = median_runs(runs, "watcher", block_range)
    bare = median_runs(runs, "bare", block_range)
    if "seconds" not in watch or "seconds" not in bare:
        return {"watcher": watch, "bare": bare, "logs_per_second": 0.0}
    logs_per_second = chain["logs"] / watch["seconds"]
    return {
        "watcher": watch,
        "bare": bare,
        "logs_per_second": logs_per_second,
        "blocks_per_second": (chain["head"] - chain["start_block"] + 1) / watch["seconds"],
        "bare_logs_per_second": chain["logs"] / bare["seconds"],
        "ratio": bare["seconds"] / watch["seconds"],
        "tron_real_time": logs_per_second / TRON_MAINNET_TRANSFERS_PER_SECOND,
    }


def catchup_row(name: str, block_range: int, figures: dict[str, Any]) -> list[str]:
    watch = figures["watcher"]
    if "seconds" not in watch:
        failed = f"**fails** ({watch['failed']}/{watch['failed']} runs): {watch['error']}"
        return [name, f"{block_range:,}", failed, *[""] * 8]
    return [
        name,
        f"{block_range:,}",
        f"{watch['seconds']:.2f} ({', '.join(map(str, watch['runs']))})",
        f"{figures['logs_per_second']:,.0f}",
        f"{figures['blocks_per_second']:,.0f}",
        f"{watch['deposits']:,} / {watch['attributed']:,} / {watch['confirmed']:,}",
        f"{figures['bare']['seconds']:.2f}",
        f"{figures['bare_logs_per_second']:,.0f}",
        f"**{figures['ratio']:.2f}**",
        f"{figures['tron_real_time']:,.0f}×",
        f"{watch['peak_rss_mb']:,.0f}",
    ]


def catchup_section(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    header = [
        "backend", "max_block_range", "watcher s (runs)", "watcher logs/s", "blocks/s",
        "deposits rec. / attrib. / conf.", "bare s", "bare logs/s", "watcher/bare",
        "× Tron real time", "run's peak RSS MB",
    ]  # fmt: skip
    rows: list[list[str]] = []
    best: list[str] = []
    for name in results["backends"]:
        figures = {r: catchup_figures(results, name, r) for r in args.ranges}
        rows += [catchup_row(name, r, f) for r, f in figures.items()]
        best += [
            f"- {name}, max_block_range {r:,}: a run failed: {f['watcher']['error']}"
            for r, f in figures.items()
            if f["watcher"].get("failed") and "seconds" in f["watcher"]
        ]
        top = max(figures, key=lambda r: figures[r]["logs_per_second"])
        best.append(
            f"- {name}: best at max_block_range {top:,}: "
            f"{figures[top]['logs_per_second']:,.0f} logs/s, watcher/bare "
            f"{figures[top]['ratio']:.2f}, {figures[top]['tron_real_time']:,.0f}× Tron real time"
        )
    title = (
        f"1. Catch-up from a fresh cursor (medians of {args.repeat} runs at "
        f"{args.ranges[0]:,}, {args.tune_repeat} at the others; deposits written and "
        "confirmed in the same polls)"
    )
    return ["", title, "", markdown(header, rows), "", *best]


def catch_up_text(run: dict[str, Any]) -> str:
    return f"fails: {run['error']}" if run["error"] else f"{run['seconds']:.2f}"


def rss_section(results: dict[str, Any]) -> list[str]:
    rows = [
        [
            name,
            f"**{b['worker']['rss_mb']['peak']:,.0f}**",
            f"{b['worker']['rss_mb']['before_book']:,.0f}",
            f"{b['worker']['rss_mb']['after_book']:,.0f}",
            f"{b['worker']['rss_mb']['peak_after_book']:,.0f}",
            f"{b['worker']['book_load_seconds']:.1f}",
            catch_up_text(b["worker"]["runs"][0]),
        ]
        for name, b in results["backends"].items()
    ]
    header = [
        "backend", "peak RSS MB (VmHWM)", "RSS before book", "RSS after book",
        "peak after book", "book load s", "catch-up s",
    ]  # fmt: skip
    title = "2. A worker process: load the address book, catch up once (its own process)"
    return ["", title, "", markdown(header, rows)]


def latency_section(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    rows = [
        [
            name,
            f"{statistics.median(b['latency']):.3f}",
            f"{percentile(b['latency'], 0.95):.3f}",
            f"{max(b['latency']):.3f}",
            f"{min(b['latency']):.3f}",
        ]
        for name, b in results["backends"].items()
    ]
    title = (
        f"3. Head latency, `addrpool worker`, poll interval 1 s, {args.samples} samples: "
        "block mined → pending deposit row"
    )
    header = ["backend", "median s", "p95 s", "max s", "min s"]
    return ["", title, "", markdown(header, rows)]


def scan_row(label: str, result: ScanResult, bare_seconds: float) -> list[str]:
    return [
        label,
        f"{result.requests:,}",
        f"{result.seconds:.2f}",
        f"{result.chain_logs_per_second:,.0f}",
        f"{result.logs:,} / {result.matched:,}",
        f"{result.seconds / bare_seconds:,.1f}×",
    ]


def strategies_section(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    chain = results["chain"]
    first = next(iter(results["backends"]))
    bare = catchup_figures(results, first, args.ranges[0])["bare"]["seconds"]
    rows = [
        [f"one filter, raw JSON + transfers_to ({first} run)", "", f"{bare:.2f}",
         f"{chain['logs'] / bare:,.0f}", f"{chain['logs']:,} / {chain['pool_logs']:,}", "1.0×"],
    ]  # fmt: skip
    for key, scan in results["scans"].items():
        if key == "web3":
            label = "one filter, web3 `eth.get_logs` (formatted)"
        else:
            label = f"per-recipient, {int(key.rsplit('_', 1)[1]):,} watched, 20 a request"
        rows.append(scan_row(label, ScanResult(**scan), bare))
    header = [
        "strategy", "eth_getLogs requests", "seconds", "chain logs/s",
        "logs returned / matched", "time vs one filter",
    ]  # fmt: skip
    title = f"4. Fetch strategies over the same blocks (no database), range {args.ranges[0]:,}"
    return ["", title, "", markdown(header, rows)]


def fmt_load(load: Sequence[float]) -> str:
    return "/".join(f"{value:.1f}" for value in load)


def setup_lines(results: dict[str, Any], args: argparse.Namespace) -> list[str]:
    chain = results["chain"]
    lines = [
        f"chain: blocks {chain['start_block']:,}..{chain['head']:,} ({args.blocks:,}), "
        f"{chain['logs']:,} Transfer logs in {chain['transactions']:,} batchTransfer "
        f"transactions (built in {chain['build_seconds']} s); {chain['pool_logs']:,} to "
        f"{args.pool_recipients:,} pool addresses ({args.bound:,} bound), the rest to "
        f"{args.others:,} random non-pool addresses; confirmations {args.confirmations}"
    ]
    start, end = results["load_average_start"], results["load_average_end"]
    lines.append(
        f"machine: {os.cpu_count()} cores; load average (1/5/15 min) {fmt_load(start)} at the "
        f"start, {fmt_load(end)} at the end (the machine is shared: figures vary with it)"
    )
    lines.append(f"code: {results['code_start']} at the start, {results['code_end']} at the end")
    for name, backend in results["backends"].items():
        imported = backend["import_"]
        lines.append(
            f"{name}: {args.addresses:,} EVM addresses, `addrpool import` {imported['seconds']} s "
            f"(its peak RSS {imported['peak_rss_mb']} MB); address book of "
            f"{backend['catchup']['book_addresses']:,} loaded in "
            f"{backend['catchup']['book_load_seconds']:.1f} s"
        )
    return lines


def report(results: dict[str, Any], args: argparse.Namespace) -> str:
    out = [f"command: {results['command']}", "", *setup_lines(results, args)]
    out += catchup_section(results, args)
    out += rss_section(results)
    out += latency_section(results, args)
    out += strategies_section(results, args)
    return "\n".join(out)
