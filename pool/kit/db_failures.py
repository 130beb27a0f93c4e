"""What a database error means to the code that met it: SQLite busy with another writer,
PostgreSQL (or the pooler before it) out of reach for a moment, or a fault — and the log line
each deserves. Retried work logs one warning for the first two, a traceback for a fault."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy.exc import DBAPIError, OperationalError


def is_database_busy(exc: BaseException) -> bool:
    """SQLite's "database is locked": another process held the one writer's lock past the busy
    timeout (a large `addrpool import` beside `serve`). Waiting is normal; the caller retries
    or answers 503, and it is no bug to log with a traceback."""
    if not isinstance(exc, OperationalError):
        return False
    text_ = str(exc.orig).lower()
    return "database is locked" in text_ or "database is busy" in text_


# SQLSTATEs of a server that cannot serve for now: class 08 (the connection failed or was lost;
# PgBouncer sends its own refusals, e.g. while its server logins fail, as 08P01), and an
# administrator's or a crash's shutdown, or a server still starting up (57P01–57P03).
_UNREACHABLE_STATES = ("57P01", "57P02", "57P03")


def is_database_unreachable(exc: BaseException) -> bool:
    """PostgreSQL, or the pooler in front of it, cannot serve right now (it restarts, it shut
    down, the connection was lost): a moment to retry, not a fault of the request.

    Usually wrapped by SQLAlchemy (DBAPIError); asyncpg's own error when it comes from setting
    up a new connection, where SQLAlchemy does not wrap it.
    """
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        state = getattr(exc.orig, "sqlstate", None)
    else:
        state = getattr(exc, "sqlstate", None)  # only database drivers' errors carry one
    return isinstance(state, str) and (state.startswith("08") or state in _UNREACHABLE_STATES)


def log_failure(
    log: logging.Logger, message: str, exc: BaseException, extra: Mapping[str, object]
) -> None:
    """A background step that failed and will be retried: a traceback for a fault, one warning
    line for a database that was only busy."""
    if is_database_busy(exc):
        log.warning(
            "%s (the database is busy: another process is writing)",
            message,
            extra=dict(extra),
        )
        return
    log.error(message, exc_info=exc, extra=dict(extra))
