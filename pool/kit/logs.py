"""Structured logs: one JSON object per line, so tools can filter on fields; never a secret,
since logs are copied and kept where secrets must not go."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        # Bound context passed with `extra=` (chain, tx_hash, deposit_reference, ...).
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # DEBUG is for addrpool's own loggers; libraries' debug output would drown them (aiosqlite
    # logs every statement twice, web3 every request).
    for library in ("aiosqlite", "asyncio", "web3", "urllib3"):
        logging.getLogger(library).setLevel(max(logging.INFO, root.level))
    # HTTP clients log a line per request at INFO: as many lines again as the worker's own per
    # webhook attempt (which already says everything), and their cost on the hot path.
    for client in ("httpx", "httpcore", "aiohttp"):
        logging.getLogger(client).setLevel(max(logging.WARNING, root.level))
