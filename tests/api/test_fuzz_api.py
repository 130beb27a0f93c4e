"""Schemathesis over every API operation, on SQLite and PostgreSQL: never a 5xx.

The suite's short run: seeded, so it sends the same requests every time (a failure is reproducible,
CI is not flaky); `scripts/bench/fuzz_api.py` makes the long ones (docs/performance.md). Its
1,000 cases per database still reach every operation in both modes (about 24 cases each) and,
with the text guard taken out, still draw the PostgreSQL 500 for a NUL in a query parameter. It
runs against the real `addrpool api` process rather than the ASGI app: uvicorn's own decoding of
paths, query strings and headers is what a client's request meets, and the server's log shows
the traceback of anything that fails.
"""

import secrets

import pytest

from scripts.bench.fuzz import curl_lines, fuzz, prepare
from tests.conftest import run_sync
from tests.fixtures.server import running_server

CASES = 1000
SEED = 20261206
OPERATIONS = 48


@pytest.mark.server
def test_no_generated_request_gets_a_server_error(database_url: str) -> None:
    key = run_sync(prepare(database_url, pool_size=CASES))
    env = {"ADDRPOOL_SECRET_KEY": secrets.token_hex(16)}
    with running_server(database_url, command="api", extra_env=env) as server:
        report = fuzz(server.base_url, key, cases=CASES, seed_value=SEED)
        log = server.output()
    assert report.operations == OPERATIONS
    assert len(report.cases_by_operation) == OPERATIONS, report.cases_by_operation
    assert report.cases >= CASES * 0.9, report.summary()
    findings = "\n".join(curl_lines(report.findings))
    assert not report.findings, f"{report.summary()}\n{findings}\n--- server log ---\n{log[-4000:]}"
    assert report.server_errors == 0
