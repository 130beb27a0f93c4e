"""API keys: `pk_test_`/`pk_live_` + 32 hex, shown once, stored as prefix + SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.keys import repository as repo
from pool.keys.repository import ApiKey
from pool.kit.errors import Unauthorized, ValidationFailed
from pool.vocabulary import API_SCOPES, KEY_PREFIXES, Network
from pool.webhooks.events_repository import insert_audit

SCOPES = API_SCOPES
DEFAULT_SCOPES = ("deposits:read", "deposits:write", "orders:read", "orders:write")
KEY_SHAPE = re.compile(r"pk_(test|live)_[0-9a-f]{32}")
DISPLAY_PREFIX_LENGTH = 12  # "pk_test_" + 4 hex: enough to tell keys apart in a listing


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_scopes(scopes: Iterable[str] | None) -> frozenset[str]:
    chosen = frozenset(s.strip() for s in (scopes or DEFAULT_SCOPES) if s.strip())
    unknown = sorted(chosen - set(SCOPES))
    if unknown:
        raise ValidationFailed(
            f"unknown scope(s): {', '.join(unknown)} (known: {', '.join(SCOPES)})"
        )
    if not chosen:
        raise ValidationFailed("a key needs at least one scope")
    return chosen


async def create_key(
    conn: AsyncConnection,
    *,
    name: str,
    scopes: Iterable[str] | None,
    key_prefix: str,
    actor: str,
    now: datetime,
) -> tuple[str, ApiKey]:
    """Returns the plaintext key (shown once, never stored) and its record."""
    if not name.strip() or len(name) > 255:
        raise ValidationFailed("a key needs a name of 1-255 characters")
    chosen = parse_scopes(scopes)
    plaintext = key_prefix + secrets.token_hex(16)
    prefix = plaintext[:DISPLAY_PREFIX_LENGTH]
    key_id = await repo.insert_key(
        conn,
        name=name,
        prefix=prefix,
        key_hash=hash_key(plaintext),
        scopes=" ".join(sorted(chosen)),
        now=now,
    )
    await insert_audit(
        conn, actor=actor, action="key.create", subject=prefix, details={"name": name}, now=now
    )
    return plaintext, ApiKey(key_id, name, prefix, chosen, now, None, None)


def refuse_other_network(presented: str, *, network: Network) -> None:
    """A key of the other network is refused by its prefix alone, before any look-up: the
    answer says nothing about whether such a key exists."""
    for other, prefix in KEY_PREFIXES.items():
        if other != network and presented.startswith(prefix):
            raise Unauthorized(
                f"Invalid API key: {prefix} keys belong to {other}; this server runs on "
                f"{network} ({KEY_PREFIXES[network]} keys)"
            )


async def authenticate(conn: AsyncConnection, *, presented: str, network: Network) -> ApiKey | None:
    """The active key of `network` matching `presented`, or None. Malformed keys and keys of
    the other network never reach the database."""
    if not KEY_SHAPE.fullmatch(presented) or not presented.startswith(KEY_PREFIXES[network]):
        return None
    presented_hash = hash_key(presented)
    key = await repo.find_by_hash(conn, key_hash=presented_hash)
    if key is None or not hmac.compare_digest(key.key_hash, presented_hash):
        return None
    return None if key.revoked_at is not None else key


async def list_keys(conn: AsyncConnection) -> list[ApiKey]:
    return await repo.all_keys(conn)


async def revoke_key(
    conn: AsyncConnection, *, id_or_prefix: str, actor: str, now: datetime
) -> list[int]:
    revoked = await repo.revoke(conn, id_or_prefix=id_or_prefix, now=now)
    for key_id in revoked:
        await insert_audit(
            conn, actor=actor, action="key.revoke", subject=str(key_id), details=None, now=now
        )
    return revoked


async def touch(conn: AsyncConnection, *, key_id: int, now: datetime) -> None:
    await repo.touch(conn, key_id=key_id, now=now)
