import pytest
from sqlalchemy import select

from pool.keys import service as keys
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.errors import ValidationFailed
from pool.kit.tables import api_key


async def test_key_is_shown_once_and_stored_only_as_a_hash(db: Database) -> None:
    async with db.write() as conn:
        plaintext, key = await keys.create_key(
            conn, name="svc", scopes=None, key_prefix="pk_live_", actor="t", now=utc_now()
        )
    assert keys.KEY_SHAPE.fullmatch(plaintext) and plaintext.startswith("pk_live_")
    assert key.scopes == {"deposits:read", "deposits:write", "orders:read", "orders:write"}
    async with db.read() as conn:
        row = (await conn.execute(select(api_key))).one()._mapping
        assert plaintext not in {str(v) for v in row.values()}
        assert row["key_hash"] == keys.hash_key(plaintext)
        assert row["prefix"] == plaintext[:12]
        assert (await keys.authenticate(conn, presented=plaintext, network="mainnet")).id == key.id
        altered = plaintext[:-1] + ("1" if plaintext.endswith("0") else "0")
        assert await keys.authenticate(conn, presented=altered, network="mainnet") is None


async def test_revoked_key_no_longer_authenticates(db: Database) -> None:
    async with db.write() as conn:
        plaintext, key = await keys.create_key(
            conn, name="svc", scopes=["admin"], key_prefix="pk_test_", actor="t", now=utc_now()
        )
    async with db.write() as conn:
        assert await keys.revoke_key(conn, id_or_prefix=str(key.id), actor="t", now=utc_now()) == [
            key.id
        ]
    async with db.read() as conn:
        assert await keys.authenticate(conn, presented=plaintext, network="testnet") is None


def test_unknown_scopes_are_refused() -> None:
    with pytest.raises(ValidationFailed, match="unknown scope"):
        keys.parse_scopes(["deposits:read", "root"])
