"""Schemathesis over every operation of a running addrpool: no input may get a 5xx.

Shared by `scripts/bench/fuzz_api.py` (long runs) and `tests/api/test_fuzz_api.py` (the short,
seeded run of the test suite). Cases come from the server's own OpenAPI document, half
schema-valid and half schema-violating (schemathesis' positive and negative modes), each
operation and mode a Hypothesis run with a fixed seed and no example database, so the same
seed sends the same requests. Every response is checked: never a 5xx, every error is the
envelope of docs/api.md (`{"success": false, "error", "code", "message", "details"?}`), and
(schemathesis' conformance checks) its status, content type, body and headers are the ones the
OpenAPI document gives for the operation, so a generated client can read every answer.
"""

from __future__ import annotations

import contextlib
import json
import math
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chains.codec import address_parser
from chains.evm.address import to_checksum_address
from chains.tron.address import hex20_to_tron
from pool.addresses.import_formats import RawRow
from pool.addresses.importer import ImportSource, import_addresses
from pool.keys import service as keys
from pool.kit.clock import utc_now
from pool.kit.db import Database

MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
REQUEST_TIMEOUT = 60.0
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,  # the rate-limit headers and Retry-After
]
# An import's error adds how many problems it found, and of which kinds (the first 100 listed).
ENVELOPE_KEYS = {"success", "error", "code", "message", "details", "detailsCount", "detailsByKind"}


@dataclass
class Finding:
    operation: str
    status: int
    problem: str
    curl: str


@dataclass
class FuzzReport:
    operations: int = 0
    cases: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    cases_by_operation: Counter[str] = field(default_factory=Counter)
    # Responses that break the rules: a 5xx, or an error that is not the envelope.
    findings: list[Finding] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def summary(self) -> dict[str, Any]:
        return {
            "operations": self.operations,
            "cases": self.cases,
            "seconds": round(self.seconds, 1),
            "casesPerSecond": round(self.cases / self.seconds, 1) if self.seconds else 0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "serverErrors": self.server_errors,
            "findings": len(self.findings),
            "casesByOperation": dict(sorted(self.cases_by_operation.items())),
        }


async def prepare(database_url: str, *, pool_size: int) -> str:
    """An admin key (returned) and `pool_size` addresses per protocol: binds must never run
    dry, since a 503 InsufficientAddresses is a 5xx too."""
    db = Database(database_url, pool_size=1)
    try:
        async with db.write() as conn:
            key, _ = await keys.create_key(
                conn, name="fuzz", scopes=["admin"], key_prefix="pk_test_", actor="fuzz",
                now=utc_now(),
            )  # fmt: skip
            for protocol, make in (("evm", to_checksum_address), ("tron", hex20_to_tron)):
                rows = [RawRow(n, make(secrets.token_hex(20))) for n in range(1, pool_size + 1)]
                await import_addresses(
                    conn, protocol=protocol, rows=rows, parser=address_parser(protocol),
                    source=ImportSource("fuzz", "fuzz"), now=utc_now(),
                )  # fmt: skip
    finally:
        await db.dispose()
    return key


def fuzz(base_url: str, api_key: str, *, cases: int, seed_value: int = 0) -> FuzzReport:
    """About `cases` requests spread evenly over every operation and both modes.

    An operation whose inputs run out early (one without parameters has a single case)
    leaves its share to the others: rounds repeat, with the next seed, over those that used
    their whole share, until `cases` are sent or none has more to give.
    """
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    report = FuzzReport(operations=len(operations))
    runner = _Runner(base_url, {"Authorization": f"Bearer {api_key}"}, report)
    started = time.monotonic()
    productive = [(op, mode) for op in operations for mode in MODES]
    for round_number in range(1000):
        remaining = cases - report.cases
        if remaining <= 0 or not productive:
            break
        share = math.ceil(remaining / len(productive))
        productive = [
            (op, mode)
            for op, mode in productive
            if runner.run(op, mode, examples=share, seed_value=seed_value + round_number) >= share
        ]
    report.seconds = time.monotonic() - started
    return report


class _Runner:
    def __init__(self, base_url: str, headers: dict[str, str], report: FuzzReport) -> None:
        self.base_url = base_url
        self.headers = headers
        self.report = report
        self.session = requests.Session()

    def run(
        self, operation: APIOperation, mode: GenerationMode, *, examples: int, seed_value: int
    ) -> int:
        """Send up to `examples` cases of one operation and mode; the number sent."""
        sent = 0

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @seed(seed_value)
        def send(case: Case) -> None:
            nonlocal sent
            sent += 1
            self._check(operation, case)

        # A mode can have no case at all (no parameter to get wrong): nothing to send.
        with contextlib.suppress(Unsatisfiable):
            send()
        return sent

    def _check(self, operation: APIOperation, case: Case) -> None:
        _no_long_wait(case)
        response = case.call(
            base_url=self.base_url, session=self.session, headers=self.headers,
            timeout=REQUEST_TIMEOUT,
        )  # fmt: skip
        self.report.cases += 1
        self.report.statuses[response.status_code] += 1
        self.report.cases_by_operation[operation.label] += 1
        problem = _problem(response.status_code, response.content) or _nonconformance(
            case, response, self.headers
        )
        if problem is None:
            return
        curl = case.as_curl_command(headers=self.headers, base_url=self.base_url)
        self.report.findings.append(Finding(operation.label, response.status_code, problem, curl))


def _no_long_wait(case: Case) -> None:
    """A valid `wait` (the event feed's long poll) becomes 0: each case would otherwise wait
    up to a minute for an event; what the value does is tested in tests/api/test_events_feed.py,
    and out-of-range values are still sent as generated."""
    wait = (case.query or {}).get("wait")
    with contextlib.suppress(TypeError, ValueError):
        if 0 < float(wait) <= 60:
            case.query["wait"] = 0


def _problem(status: int, content: bytes) -> str | None:
    if status >= 500:
        return f"server error {status}: {content[:300]!r}"
    if status < 400:
        return None
    try:
        body = json.loads(content)
    except ValueError:
        return f"error without the JSON envelope: {content[:300]!r}"
    if not _is_envelope(body):
        return f"error body is not the envelope: {content[:300]!r}"
    return None


def _nonconformance(case: Case, response: requests.Response, headers: dict[str, str]) -> str | None:
    """What the OpenAPI document gets wrong about this answer, or None."""
    try:
        case.validate_response(response, checks=CONFORMANCE, headers=headers)
    except (Failure, FailureGroup) as failure:
        found = failure.exceptions if isinstance(failure, FailureGroup) else [failure]
        titles = "; ".join(f"{f.title}: {f.message}" for f in found)
        return f"does not conform to the OpenAPI document: {titles[:600]}"
    return None


def _is_envelope(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and set(body) <= ENVELOPE_KEYS
        and body.get("success") is False
        and all(isinstance(body.get(k), str) and body[k] for k in ("error", "code", "message"))
    )


def curl_lines(findings: list[Finding]) -> Iterator[str]:
    for finding in findings:
        yield f"{finding.operation} -> {finding.status}: {finding.problem}\n    {finding.curl}"
