"""The console's file import in process, both databases: a file uploaded from the console is
imported in the background with its progress and outcome on a page, audited with who and why;
refused files (invalid rows, a secret) leave the pool as it was and the secret nowhere; every
upload refused without console:write, the session's token or a reason (docs/operations.md,
The console). And the console's refusals before a session is read come as pages, not JSON."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from chains.codec import address_parser
from chains.verify import check_master_keys
from pool.addresses import import_jobs
from pool.addresses.import_job_repository import NewJob, load_job
from pool.addresses.import_jobs import STOPPED, Tracker, open_job, run_job
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import address, audit_log, import_job
from tests.api.test_console import SAME_ORIGIN, hidden_token, sign_in
from tests.fixtures.helpers import make_key, random_addresses

IMPORT = "/ui/pool/import"


async def _pool_size(db: Database) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(address)) or 0)


async def _upload(
    client: httpx.AsyncClient,
    text: str | bytes,
    *,
    protocol: str = "evm",
    reason: str = "new batch from treasury",
    token: str | None = None,
    name: str = "batch.csv",
    **fields: str,
) -> httpx.Response:
    if token is None:
        token = hidden_token((await client.get(IMPORT)).text)
    data = {"csrf": token, "protocol": protocol, "format": "auto", "reason": reason, **fields}
    content = text.encode() if isinstance(text, str) else text
    return await client.post(
        IMPORT, data=data, files={"file": (name, content, "text/csv")}, headers=SAME_ORIGIN
    )


async def _finished(client: httpx.AsyncClient, started: httpx.Response) -> str:
    """The job page once the import has ended (it refreshes itself while it runs)."""
    assert started.status_code == 303, started.text
    location = started.headers["location"]
    assert re.fullmatch(r"/ui/pool/imports/\d+", location)
    for _ in range(200):
        page = await client.get(location)
        assert page.status_code == 200
        if 'data-status="running"' not in page.text:
            assert 'http-equiv="refresh"' not in page.text
            return page.text
        assert 'http-equiv="refresh"' in page.text
        await asyncio.sleep(0.05)
    raise AssertionError("the import did not end")


async def test_a_file_imported_from_the_console_lands_with_its_audit_record(
    client, db: Database, admin_key: str
) -> None:
    await sign_in(client, admin_key)
    addresses = random_addresses("evm", 250)
    text = "address\n" + "\n".join(addresses + addresses[:3]) + "\n"
    page = await _finished(client, await _upload(client, text))
    assert 'data-status="done"' in page
    assert "Imported 250 addresses; 3 skipped" in page
    assert await _pool_size(db) == 250
    async with db.read() as conn:
        audited = (
            await conn.execute(select(audit_log).where(audit_log.c.action == "address.import"))
        ).one()
    assert audited.details["reason"] == "new batch from treasury"
    assert audited.details["source"] == "console:batch.csv"
    assert audited.details["imported"] == 250
    listed = await client.get(IMPORT)
    assert "batch.csv" in listed.text and "done" in listed.text
    # The same file again: nothing new, and it says so.
    again = await _finished(client, await _upload(client, text))
    assert "Imported 0 addresses; 253 skipped" in again
    assert await _pool_size(db) == 250


async def test_invalid_rows_refuse_the_file_unless_skipped(client, db: Database, admin_key) -> None:
    await sign_in(client, admin_key)
    good = random_addresses("tron", 2)
    text = "\n".join([good[0], "not-an-address", good[1]])
    refused = await _finished(client, await _upload(client, text, protocol="tron"))
    assert 'data-status="failed"' in refused and "not-an-address" in refused
    assert await _pool_size(db) == 0
    skipped = await _finished(
        client, await _upload(client, text, protocol="tron", skip_invalid="on")
    )
    assert 'data-status="done"' in skipped and "Imported 2 addresses" in skipped
    assert "1 invalid (skipped)" in skipped
    assert await _pool_size(db) == 2


async def test_a_file_with_a_private_key_is_refused_and_the_key_kept_nowhere(
    client, db: Database, admin_key: str, caplog
) -> None:
    await sign_in(client, admin_key)
    secret = "e" * 64
    text = "\n".join([random_addresses("evm", 1)[0], secret])
    page = await _finished(client, await _upload(client, text, skip_invalid="on"))
    assert 'data-status="failed"' in page and "never takes private keys" in page
    assert secret not in page and secret not in caplog.text
    async with db.read() as conn:
        stored = (await conn.execute(select(import_job))).one()
    assert secret not in str(dict(stored._mapping))
    assert await _pool_size(db) == 0


async def test_uploads_are_refused_without_the_right_the_token_or_a_reason(
    client, db: Database, admin_key: str, console_key: str
) -> None:
    text = random_addresses("evm", 1)[0]
    await sign_in(client, console_key)
    token = hidden_token((await client.get("/ui/pool")).text)
    assert "Import</button>" not in (await client.get(IMPORT)).text  # no form for a reader
    read_only = await _upload(client, text, token=token)
    assert read_only.status_code == 403 and "console:write" in read_only.text
    client.cookies.clear()
    await sign_in(client, admin_key)
    assert (await _upload(client, text, token="forged")).status_code == 403
    no_reason = await _upload(client, text, reason="  ")
    assert no_reason.status_code == 400 and "Say why" in no_reason.text
    assert (await _upload(client, "", name="empty.csv")).status_code == 400
    assert (await _upload(client, text, protocol="btc")).status_code == 400
    token = hidden_token((await client.get(IMPORT)).text)
    not_multipart = await client.post(
        IMPORT, data={"csrf": token, "reason": "x"}, headers=SAME_ORIGIN
    )
    assert not_multipart.status_code == 403
    other_site = await client.post(
        IMPORT,
        data={"csrf": token, "protocol": "evm", "reason": "x"},
        files={"file": ("a.csv", text.encode(), "text/csv")},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert other_site.status_code == 403
    async with db.read() as conn:
        assert await conn.scalar(select(func.count()).select_from(import_job)) == 0
    assert await _pool_size(db) == 0


async def test_a_file_over_the_import_limit_is_refused_before_it_is_read(
    settings, db: Database, admin_key: str
) -> None:
    from api.app import create_app

    app = create_app(settings.model_copy(update={"max_import_bytes": 2048}), db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://addrpool.test") as client:
        await sign_in(client, admin_key)
        big = "\n".join(random_addresses("evm", 100))
        refused = await _upload(client, big)
        assert refused.status_code == 413 and "larger than 2048 bytes" in refused.text
        assert refused.headers["content-type"].startswith("text/html")
    await app.state.ctx.pool_alerts.close()
    assert await _pool_size(db) == 0


async def test_the_job_page_says_when_the_process_running_it_stopped(
    client, db: Database, admin_key: str
) -> None:
    job_id = await open_job(db, _job())
    await sign_in(client, admin_key)
    running = await client.get(f"/ui/pool/imports/{job_id}")
    assert 'data-status="running"' in running.text and 'http-equiv="refresh"' in running.text
    async with db.write() as conn:
        silent_since = utc_now() - import_jobs.STALE_AFTER - timedelta(seconds=1)
        await conn.execute(update(import_job).values(updated_at=silent_since))
    stale = await client.get(f"/ui/pool/imports/{job_id}")
    assert 'data-status="interrupted"' in stale.text and "all or nothing" in stale.text
    assert 'http-equiv="refresh"' not in stale.text
    missing = await client.get("/ui/pool/imports/999999")
    assert missing.status_code == 404


async def test_progress_is_written_while_the_import_runs(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_jobs, "REPORT_SECONDS", 0.01)
    job_id = await open_job(db, _job())
    tracker = Tracker()
    reporter = asyncio.create_task(import_jobs._report(db, job_id, tracker))
    try:
        tracker.update("written", 5_000, 20_000)
        for _ in range(300):
            async with db.read() as conn:
                row = await load_job(conn, job_id)
            assert row is not None
            if row["done"] == 5_000:
                break
            await asyncio.sleep(0.01)
        assert (row["phase"], row["done"], row["total"]) == ("written", 5_000, 20_000)
    finally:
        reporter.cancel()


async def test_an_import_cut_short_by_shutdown_records_that_it_stopped(db: Database) -> None:
    job = _job()
    job_id = await open_job(db, job)
    data = "\n".join(random_addresses("evm", 20_000)).encode()
    task = asyncio.create_task(
        run_job(
            db, job_id, job, data,
            parser=address_parser("evm"), master_keys=check_master_keys,
            on_written=lambda _protocol: None,
        )
    )  # fmt: skip
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with db.read() as conn:
        row = await load_job(conn, job_id)
    assert row is not None and (row["status"], row["error"]) == ("failed", STOPPED)
    assert await _pool_size(db) == 0


async def test_console_refusals_before_a_session_come_as_pages(client, admin_key: str) -> None:
    await sign_in(client, admin_key)
    bad_page = await client.get("/ui/deposits?page=0")
    assert bad_page.status_code == 400
    assert bad_page.headers["content-type"].startswith("text/html")
    assert "page" in bad_page.text and "<h1>Refused</h1>" in bad_page.text
    bad_id = await client.get("/ui/pool/imports/abc")
    assert bad_id.status_code == 400 and bad_id.headers["content-type"].startswith("text/html")
    wrong_method = await client.delete("/ui/pool")
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["allow"]
    assert wrong_method.headers["content-type"].startswith("text/html")
    # The API keeps its envelope.
    api = await client.get("/api/v1/deposits?limit=0", headers={"X-API-Key": admin_key})
    assert api.status_code == 400 and api.json()["success"] is False


def _job() -> NewJob:
    return NewJob(
        protocol="evm",
        actor="key:test",
        reason="test",
        file_name="a.csv",
        file_sha256="0" * 64,
        size_bytes=1,
        format="auto",
        skip_invalid=False,
    )


async def test_a_console_writer_key_made_here_can_import(client, db: Database) -> None:
    writer = await make_key(db, scopes=["console:read", "console:write"])
    await sign_in(client, writer)
    page = await _finished(client, await _upload(client, random_addresses("evm", 1)[0]))
    assert 'data-status="done"' in page and await _pool_size(db) == 1
