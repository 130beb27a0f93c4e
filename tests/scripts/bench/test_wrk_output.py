"""The bind benchmark's reading of wrk's report (pure logic)."""

from __future__ import annotations

from scripts.bench.bind import parse_wrk

REPORT = """Running 8s test @ http://127.0.0.1:18765
  2 threads and 32 connections
  Latency Distribution
     50%   89.32ms
     75%  196.40ms
     90%  274.80ms
     99%    1.43s 
  4173 requests in 20.06s, 1.74MB read
  Non-2xx or 3xx responses: 12
Requests/sec:    208.02
"""


def test_percentiles_in_any_unit_even_padded() -> None:
    figures = parse_wrk(REPORT)
    assert figures == {
        "rps": 208.02,
        "p50_ms": 89.32,
        "p99_ms": 1430.0,
        "non_2xx": 12.0,
        "socket_errors": 0.0,
    }
    assert parse_wrk(REPORT.replace("50%   89.32ms", "50%  512.00us"))["p50_ms"] == 0.512
