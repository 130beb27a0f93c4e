"""`addrpool webhooks …`: the webhook endpoint API's operations from a shell."""

from __future__ import annotations

import argparse

from pool.kit.clock import utc_now
from pool.kit.config import load_settings
from pool.webhooks import endpoints as webhooks
from pool.webhooks import endpoints_repository as repo
from pool.webhooks.retries import retry_all_failed, retry_delivery
from pool.webhooks.views import delivery_view, endpoint_view
from scripts.cli.database import opened_database
from scripts.cli.output import Output, table


async def endpoints_list(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings(), existing=True) as db, db.read() as conn:
        found = await webhooks.list_endpoints(conn)
    data = [endpoint_view(e) for e in found]
    rows = [
        [d["id"], d["url"], ",".join(d["events"]), d["signatureScheme"], str(d["enabled"])]
        for d in data
    ]
    out.result(data, table(rows, ["id", "url", "events", "scheme", "enabled"]) if rows else "none")
    return 0


async def endpoint_create(args: argparse.Namespace, out: Output) -> int:
    settings = load_settings()
    # A bad URL is refused before any database is opened (or, for SQLite, created); the front
    # door checks it again, which for an accepted URL costs one more name lookup.
    url = await webhooks.checked_url(args.url, settings=settings)
    async with opened_database(settings) as db:
        endpoint, secret = await webhooks.add_endpoint(
            db,
            settings,
            url=url,
            events=args.events.split(","),
            scheme=args.scheme,
            description=args.description,
        )
    out.result(
        {**endpoint_view(endpoint), "secret": secret},
        f"{endpoint.id}  {endpoint.url}\nsecret: {secret}\n\nThe secret is shown once: store it.",
    )
    return 0


async def endpoint_delete(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings()) as db, db.write() as conn:
        cancelled = await webhooks.delete_endpoint(conn, endpoint_id=args.id, now=utc_now())
    out.result(
        {"id": args.id, "cancelledDeliveries": cancelled},
        f"deleted {args.id}; {cancelled} pending deliveries cancelled",
    )
    return 0


async def endpoint_test(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings()) as db, db.write() as conn:
        event_id = await webhooks.send_test_event(conn, endpoint_id=args.id, now=utc_now())
    out.result({"eventId": event_id}, f"test.event {event_id} queued for {args.id}")
    return 0


async def deliveries_list(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings(), existing=True) as db, db.read() as conn:
        rows, total = await repo.list_deliveries(
            conn,
            endpoint_id=args.endpoint,
            status=args.status,
            event_type=args.event_type,
            offset=0,
            limit=args.limit,
        )
    data = [delivery_view(r) for r in rows]
    lines = [
        [
            d["id"],
            d["eventType"],
            d["endpointId"],
            d["status"],
            str(d["attempts"]),
            str(d["lastStatusCode"] or d["lastError"] or "-"),
        ]
        for d in data
    ]
    header = ["id", "event", "endpoint", "status", "attempts", "last"]
    out.result(
        {"deliveries": data, "total": total},
        (table(lines, header) if lines else "none") + f"\n{total} in all",
    )
    return 0


async def deliveries_retry(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings()) as db, db.write() as conn:
        if args.id is None:
            count = await retry_all_failed(conn, now=utc_now())
        else:
            await retry_delivery(conn, args.id, now=utc_now())
            count = 1
    out.result({"requeued": count}, f"{count} failed deliveries queued again")
    return 0
