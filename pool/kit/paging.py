"""The `pagination` object of docs/api.md's lists, shared by the API and the CLI."""

from __future__ import annotations

DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def pagination(*, page: int, limit: int, total: int) -> dict[str, int]:
    return {"page": page, "limit": limit, "total": total, "totalPages": -(-total // limit)}
