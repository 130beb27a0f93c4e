"""Which trace API each endpoint of a chain is read with, for internal transfers of its coin.

A tracer named in the configuration is used as it is (an endpoint that refuses it fails its
range and is set aside). With `tracer = "auto"` each endpoint is asked once, the first time it
serves a range, and the answer is kept for the watcher's life: a probe traces the head block,
which is too dear to repeat per range. Endpoints may answer differently — the call tracer and
`trace_block` number frames alike, so either serves — but once one endpoint has a trace API, an
endpoint without one is set aside rather than read: its ranges would miss internal transfers
for good (the cursor moves past them).
"""

from __future__ import annotations

import logging

from chains.presets import ChainConfig
from chains.reader import ChainReader
from chains.rpc import RpcError
from pool.chain_state.repository import TRACER_TEXT
from pool.kit.config_sections import Tracer

log = logging.getLogger("addrpool.watcher")


class NoTraceApi(RpcError):
    """An endpoint without a trace API, where another endpoint of the chain has one."""


class EndpointTracers:
    def __init__(self, chain: ChainConfig) -> None:
        self.chain = chain
        self._probed: dict[str, Tracer] = {}  # endpoint → what it answered ("auto" only)

    def known(self, endpoint: str) -> Tracer | None:
        """The tracer this endpoint is read with; None before an "auto" endpoint is asked."""
        if self.chain.tracer != "auto":
            return self.chain.tracer
        return self._probed.get(endpoint)

    async def of(self, reader: ChainReader, context: dict[str, object]) -> Tracer:
        """The tracer to read `reader`'s endpoint with, asking it the first time (only)."""
        endpoint = reader.client.endpoint
        tracer = self.known(endpoint)
        if tracer is None:
            tracer = self._probed[endpoint] = await reader.probe_tracer()
            _log_choice(tracer, context)
        if tracer == "none" and self.chain.tracer == "auto":
            traced = sorted({t for t in self._probed.values() if t != "none"})
            if traced:
                raise NoTraceApi(
                    endpoint,
                    "no trace API, where another endpoint of the chain reads internal "
                    f"transfers with {TRACER_TEXT[traced[0]]}",
                )
        return tracer

    def note(self, endpoint: str) -> str | None:
        """Why internal transfers of the chain's coin are not watched at this endpoint."""
        # `tracer = "none"` is the operator's own choice, not news.
        if self.chain.native is None or self.chain.tracer != "auto":
            return None
        if self._probed.get(endpoint) != "none":
            return None
        return f"internal transfers not watched on {self.chain.chain_id}: the node has no trace API"


def _log_choice(tracer: Tracer, context: dict[str, object]) -> None:
    if tracer == "none":
        log.warning("internal transfers not watched: the node has no trace API", extra=context)
    else:
        log.info("internal transfers read", extra={**context, "tracer": tracer})
