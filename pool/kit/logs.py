"""Structured logs: one JSON object per line, so tools can filter on fields; never a secret,
since logs are copied and kept where secrets must not go. `log_format = "text"` prints the
same records as plain lines for a person at a terminal."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["json", "text"]

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


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


class TextFormatter(logging.Formatter):
    """`at LEVEL logger: message key=value ...`: the JSON line's fields, for reading."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line = f"{at} {record.levelname:<7} {record.name}: {record.getMessage()}"
        context = [f"{k}={v}" for k, v in record.__dict__.items() if k not in _STANDARD]
        if context:
            line += "  " + " ".join(context)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


FORMATTERS: dict[LogFormat, type[logging.Formatter]] = {
    "json": JsonFormatter,
    "text": TextFormatter,
}
# uvicorn's own records (start, stop, errors). Its access logger stays off: api.access_log
# writes the access lines, with the route template and the key id.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.asgi")


def configure_logging(level: str = "INFO", log_format: LogFormat = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FORMATTERS[log_format]())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's loggers write through the root's handler, so its lines are in our format too.
    for name in _UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # DEBUG is for addrpool's own loggers; libraries' debug output would drown them (aiosqlite
    # logs every statement twice, web3 every request).
    for library in ("aiosqlite", "asyncio", "web3", "urllib3"):
        logging.getLogger(library).setLevel(max(logging.INFO, root.level))
    # HTTP clients log a line per request at INFO: as many lines again as the worker's own per
    # webhook attempt (which already says everything), and their cost on the hot path.
    for client in ("httpx", "httpcore", "aiohttp"):
        logging.getLogger(client).setLevel(max(logging.WARNING, root.level))


def uvicorn_log_config(level: str = "INFO", log_format: LogFormat = "json") -> dict[str, Any]:
    """uvicorn's `log_config`: its records go to stderr in our format from its first line on
    (a worker process logs before the app factory has configured anything)."""
    formatter = f"{FORMATTERS[log_format].__module__}.{FORMATTERS[log_format].__qualname__}"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"addrpool": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "addrpool",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            **{
                name: {"handlers": [], "propagate": True, "level": level.upper()}
                for name in _UVICORN_LOGGERS
            },
            "uvicorn.access": {"handlers": [], "propagate": False},
        },
    }
