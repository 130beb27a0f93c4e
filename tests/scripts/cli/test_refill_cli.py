"""`addrpool refill enable|disable|status` against a real database: the switch an operator
sees, the refill it starts checked with `pool verify`, and bad input refused in one line with
nothing changed."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from chains.hd import derive_from_key
from pool.bindings.service import bind_address
from pool.kit.config import AlertSettings, RefillSettings
from pool.kit.tables import audit_log, key_refill
from pool.refill.service import refill_pass
from tests.chains.test_hd import V1_M_0H, V1_M_0H_1
from tests.fixtures.server import cli

XPRV = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"


def _json(*args: str, database_url: str) -> object:
    return json.loads(cli(*args, "--json", database_url=database_url).stdout)


def _refused(*args: str, database_url: str) -> str:
    """The command's one-line error; it must exit 2."""
    result = cli(*args, database_url=database_url, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    return result.stderr


async def test_enable_refill_verify_status_disable(db, database_url) -> None:
    cli(
        "import", "--xpub", V1_M_0H, "--protocol", "evm", "--count", "12", database_url=database_url
    )
    enabled = _json("refill", "enable", V1_M_0H, "--protocol", "evm", "--max-index", "99",
                    "--batch", "25", database_url=database_url)  # fmt: skip
    assert enabled["nextIndex"] == 12 and enabled["maxIndex"] == 99 and enabled["state"] == "on"

    for n in range(5):
        await bind_address(db, reference=f"u{n}", protocol="evm", metadata=None, actor="t")
    alerts = AlertSettings(thresholds={"evm": 5})  # low water 10; 7 free
    outcomes = await refill_pass(
        db, settings=RefillSettings(), alerts=alerts, derive=derive_from_key
    )
    assert [(o.start, o.end, o.imported) for o in outcomes] == [(12, 37, 25)]
    verified = _json("pool", "verify", "--xpub", V1_M_0H, "--protocol", "evm",
                     database_url=database_url)  # fmt: skip
    assert verified["verified"] == 37 and verified["ok"]  # type: ignore[index]

    (shown,) = _json("refill", "status", database_url=database_url)  # type: ignore[misc]
    assert (shown["nextIndex"], shown["batchSize"], shown["remaining"]) == (37, 25, 63)
    assert shown["refilledAt"] is not None and shown["lowWater"] == 400  # 2 x the default 200

    fingerprint = shown["fingerprint"]
    off = _json("refill", "disable", fingerprint, "--protocol", "evm", database_url=database_url)
    assert off["state"] == "off" and off["nextIndex"] == 37  # type: ignore[index]
    moved = _refused("refill", "enable", fingerprint, "--protocol", "evm", "--next-index", "90",
                     database_url=database_url)  # fmt: skip
    assert "already has its next index, 37" in moved
    on = _json("refill", "enable", fingerprint, "--protocol", "evm", database_url=database_url)
    assert (on["nextIndex"], on["maxIndex"], on["batchSize"]) == (37, 99, 25)  # type: ignore[index]
    async with db.read() as conn:
        actions = (await conn.execute(select(audit_log.c.action).where(
            audit_log.c.subject.like("key_refill:%")))).scalars().all()  # fmt: skip
    assert actions == ["refill.enable", "refill.disable", "refill.enable"]


async def test_bad_input_is_refused_in_one_line_and_changes_nothing(db, database_url) -> None:
    cli("import", "--xpub", V1_M_0H, "--protocol", "evm", "--count", "3", database_url=database_url)
    unknown = _refused("refill", "enable", V1_M_0H_1, "--protocol", "evm",
                       database_url=database_url)  # fmt: skip
    assert "no registered evm key" in unknown and "import --xpub" in unknown
    other_pool = _refused("refill", "enable", V1_M_0H, "--protocol", "tron",
                          database_url=database_url)  # fmt: skip
    assert "no registered tron key" in other_pool
    below = _refused("refill", "enable", V1_M_0H, "--protocol", "evm", "--max-index", "2",
                     database_url=database_url)  # fmt: skip
    assert "maximum index 2 is below the next index to derive, 3" in below
    secret = _refused("refill", "enable", XPRV, "--protocol", "evm", database_url=database_url)
    assert "never takes private keys" in secret and XPRV not in secret
    branch = _refused("refill", "enable", V1_M_0H, "--protocol", "evm", "--branch", "1",
                      database_url=database_url)  # fmt: skip
    assert "does not derive on branch 1" in branch
    nothing = _refused("refill", "disable", "deadbeef", "--protocol", "evm",
                       database_url=database_url)  # fmt: skip
    assert "fingerprint deadbeef" in nothing
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(key_refill)) == 0
        audits = select(func.count()).select_from(audit_log).where(
            audit_log.c.action.like("refill.%"))  # fmt: skip
        assert await conn.scalar(audits) == 0
    assert _json("refill", "status", database_url=database_url) == []
