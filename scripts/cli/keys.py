"""`addrpool keys create|list|revoke`: API keys from a shell."""

from __future__ import annotations

import argparse

from pool.keys import service as keys
from pool.kit.clock import isoformat_z, utc_now
from pool.kit.config import load_settings
from pool.kit.errors import ConfigurationError
from scripts.cli.database import actor, opened_database
from scripts.cli.output import Output, table


async def keys_create(args: argparse.Namespace, out: Output) -> int:
    settings = load_settings()
    scopes = args.scopes.split(",") if args.scopes else None
    async with opened_database(settings, claim=True) as db, db.write() as conn:
        plaintext, key = await keys.create_key(
            conn,
            name=args.name,
            scopes=scopes,
            key_prefix=settings.key_prefix,
            actor=actor(),
            now=utc_now(),
        )
    data = {"id": key.id, "name": key.name, "key": plaintext, "scopes": sorted(key.scopes)}
    out.result(
        data,
        f"{plaintext}\n\nThis key is shown once; store it now. id {key.id}, "
        f"scopes: {', '.join(sorted(key.scopes))}",
    )
    return 0


async def keys_list(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings(), claim=None, existing=True) as db, db.read() as conn:
        found = await keys.list_keys(conn)
    items = [
        {
            "id": k.id,
            "name": k.name,
            "prefix": k.prefix,
            "scopes": sorted(k.scopes),
            "createdAt": isoformat_z(k.created_at),
            "lastUsedAt": isoformat_z(k.last_used_at) if k.last_used_at else None,
            "revokedAt": isoformat_z(k.revoked_at) if k.revoked_at else None,
        }
        for k in found
    ]
    rows = [
        [str(k.id), k.name, f"{k.prefix}…", ",".join(sorted(k.scopes)), _key_state(k.revoked_at)]
        for k in found
    ]
    out.result(items, table(rows, ["id", "name", "key", "scopes", "state"]) if rows else "no keys")
    return 0


def _key_state(revoked_at: object) -> str:
    return "revoked" if revoked_at else "active"


async def keys_revoke(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings(), claim=None) as db, db.write() as conn:
        revoked = await keys.revoke_key(conn, id_or_prefix=args.key, actor=actor(), now=utc_now())
    if not revoked:
        raise ConfigurationError(f"no active key matches {args.key!r}")
    out.result({"revoked": revoked}, f"revoked key(s): {', '.join(map(str, revoked))}")
    return 0
