"""Reconciliation's look at the kept counts: each (protocol, status) of the pool, and each
deposit (chain, status), delivery status and order status, whose count as the triggers keep it
differs from a full count of its table is a `pool_count_mismatch`.

The full count reads every address and every deposit, delivery and order (about a second a
million rows on PostgreSQL), so it runs when
`[reconcile] check_counts` is on (the default), in a statement of its own. Its findings carry
the scope `pool` where others carry a chain: a run that checked the counts resolves the
episodes it no longer finds; one that did not leaves them firing. `addrpool pool recount
--repair` rebuilds the counts.
"""

from __future__ import annotations

from collections.abc import Iterable

from pool.addresses.counts import CountMismatch
from pool.monitoring.status_counts import StatusCountMismatch
from pool.reconciliation.service import Finding

POOL_COUNTS = "pool_count_mismatch"
POOL_SCOPE = "pool"  # the `chainId` of its findings, and what a run that checked them saw


def check_pool_counts(mismatches: Iterable[CountMismatch]) -> list[Finding]:
    return [
        Finding(
            category=POOL_COUNTS,
            chain_id=POOL_SCOPE,
            detail=(
                f"{m.protocol} {m.status}: kept count {m.kept}, full count {m.counted} "
                "(addrpool pool recount --repair)"
            ),
            key=f"{m.protocol}:{m.status}",
        )
        for m in mismatches
    ]


def check_status_counts(mismatches: Iterable[StatusCountMismatch]) -> list[Finding]:
    findings = []
    for m in mismatches:
        named = [m.subject, m.label, m.status] if m.label else [m.subject, m.status]
        findings.append(
            Finding(
                category=POOL_COUNTS,
                chain_id=POOL_SCOPE,
                detail=(
                    f"{' '.join(named)}: kept count {m.kept}, full count {m.counted} "
                    "(addrpool pool recount --repair)"
                ),
                key=":".join(named),
            )
        )
    return findings
