"""The operator console's sign-in: an API key with `console:read` (or `admin`) is exchanged for
a session, whose random token is the browser's cookie (docs/operations.md, The console).

The key is checked once, at sign-in, and never kept: the session row holds the SHA-256 of its
own token, the key's id, a CSRF secret for the session's forms and its expiry. Revoking the key
ends its sessions (the session look-up joins the key). Sign-in and sign-out are audited with
the key as the actor.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from pool.console import repository as repo
from pool.keys import service as keys
from pool.keys.repository import ADMIN
from pool.kit.db import Database
from pool.kit.errors import Forbidden, Unauthorized
from pool.vocabulary import CONSOLE_READ, CONSOLE_WRITE, Network
from pool.webhooks.events_repository import insert_audit


@dataclass(frozen=True, slots=True)
class Session:
    key_id: int
    key_name: str
    scopes: frozenset[str]
    csrf: str
    expires_at: datetime

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"

    @property
    def can_act(self) -> bool:
        return ADMIN in self.scopes or CONSOLE_WRITE in self.scopes


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def sign_in(
    db: Database, *, presented: str, network: Network, now: datetime, lifetime: timedelta
) -> tuple[str, Session]:
    """(the cookie's token, the session). Unauthorized for a key that is not an active key
    of this network; Forbidden for one without `console:read`."""
    async with db.read() as conn:
        key = await keys.authenticate(conn, presented=presented.strip(), network=network)
    if key is None:
        raise Unauthorized("That is not an active API key of this instance")
    if not key.allows(CONSOLE_READ):
        raise Forbidden(
            "This API key cannot open the console: it needs the console:read scope "
            "(addrpool keys create --name NAME --scopes console:read,console:write)"
        )
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    expires_at = now + lifetime

    async def work(conn: AsyncConnection) -> None:
        await repo.delete_expired(conn, now=now)
        await repo.insert_session(
            conn,
            token_hash=token_hash(token),
            key_id=key.id,
            csrf=csrf,
            now=now,
            expires_at=expires_at,
        )
        await insert_audit(
            conn,
            actor=key.actor,
            action="console.sign_in",
            subject=key.name,
            details=None,
            now=now,
        )

    await db.run_write(work)
    return token, Session(key.id, key.name, key.scopes, csrf, expires_at)


async def session_of(conn: AsyncConnection, *, token: str, now: datetime) -> Session | None:
    stored = await repo.live_session(conn, token_hash=token_hash(token), now=now)
    if stored is None:
        return None
    return Session(
        stored.key_id, stored.key_name, stored.key_scopes, stored.csrf, stored.expires_at
    )


async def sign_out(db: Database, *, token: str, session: Session, now: datetime) -> None:
    async def work(conn: AsyncConnection) -> None:
        if await repo.delete_session(conn, token_hash=token_hash(token)):
            await insert_audit(
                conn,
                actor=session.actor,
                action="console.sign_out",
                subject=session.key_name,
                details=None,
                now=now,
            )

    await db.run_write(work)
