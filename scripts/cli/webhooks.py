"""`addrpool webhooks …`: the webhook endpoint API's operations from a shell."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from pool.kit.clock import isoformat_z, utc_now
from pool.kit.config import load_settings
from pool.kit.errors import Conflict, NotFound
from pool.kit.secret_box import secret_box
from pool.vocabulary import DELIVERY_STATUSES, SIGNATURE_SCHEMES
from pool.webhooks import endpoints as webhooks
from pool.webhooks import endpoints_repository as repo
from pool.webhooks.urls import parse_webhook_url, resolve_target
from scripts.cli.commands import opened_database
from scripts.cli.output import Output, table


async def endpoints_list(args: argparse.Namespace, out: Output) -> int:
    async with opened_database(load_settings()) as db, db.read() as conn:
        found = await webhooks.list_endpoints(conn)
    data = [
        {
            "id": e.id,
            "url": e.url,
            "events": list(e.events),
            "scheme": e.signature_scheme,
            "enabled": e.enabled,
            "createdAt": isoformat_z(e.created_at),
        }
        for e in found
    ]
    rows = [
        [d["id"], d["url"], ",".join(d["events"]), d["scheme"], str(d["enabled"])] for d in data
    ]
    out.result(data, table(rows, ["id", "url", "events", "scheme", "enabled"]) if rows else "none")
    return 0


async def endpoint_create(args: argparse.Namespace, out: Output) -> int:
    settings = load_settings()
    target = parse_webhook_url(args.url, allow_private=settings.webhook_allow_private)
    await resolve_target(target, allow_private=settings.webhook_allow_private)
    async with opened_database(settings) as db, db.write() as conn:
        endpoint, secret = await webhooks.create_endpoint(
            conn,
            secret_box(settings),
            url=target.url,
            events=args.events.split(","),
            scheme=args.scheme,
            description=args.description,
            now=utc_now(),
        )
    out.result(
        {"id": endpoint.id, "url": endpoint.url, "events": list(endpoint.events), "secret": secret},
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
    async with opened_database(load_settings()) as db, db.read() as conn:
        rows, total = await repo.list_deliveries(
            conn,
            endpoint_id=args.endpoint,
            status=args.status,
            event_type=args.event_type,
            offset=0,
            limit=args.limit,
        )
    data = [
        {
            "id": r.id,
            "eventId": r.event_id,
            "eventType": r.event_type,
            "endpointId": r.endpoint_id,
            "status": r.status,
            "attempts": r.attempts,
            "lastStatusCode": r.last_status_code,
            "lastError": r.last_error,
        }
        for r in rows
    ]
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
            count = await repo.requeue(conn, now=utc_now())
        else:
            found = await repo.get_delivery(conn, args.id)
            if found is None:
                raise NotFound(f"No delivery {args.id}", code="DELIVERY_NOT_FOUND")
            if found.status != "failed":
                raise Conflict(f"Delivery {args.id} is {found.status}, not failed")
            count = await repo.requeue(conn, now=utc_now(), delivery_id=args.id)
    out.result({"requeued": count}, f"{count} failed deliveries queued again")
    return 0


JsonFlag = Callable[[argparse.ArgumentParser], argparse.ArgumentParser]


def add_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], add_json: JsonFlag
) -> None:
    hooks = sub.add_parser("webhooks", help="webhook endpoints and deliveries")
    actions = hooks.add_subparsers(dest="action", required=True)
    add_json(actions.add_parser("list", help="endpoints"))
    create = add_json(actions.add_parser("create", help="add an endpoint (secret shown once)"))
    create.add_argument("--url", required=True)
    create.add_argument("--events", required=True, help="comma-separated, e.g. deposit.confirmed")
    create.add_argument("--scheme", choices=SIGNATURE_SCHEMES, default="body")
    create.add_argument("--description")
    for name, text in (("delete", "delete an endpoint"), ("test", "queue a test.event")):
        add_json(actions.add_parser(name, help=text)).add_argument("id")
    listing = add_json(actions.add_parser("deliveries", help="recent deliveries"))
    listing.add_argument("--endpoint")
    listing.add_argument("--status", choices=list(DELIVERY_STATUSES))
    listing.add_argument("--event-type")
    listing.add_argument("--limit", type=int, default=50)
    retry = add_json(actions.add_parser("retry", help="queue failed deliveries again"))
    retry.add_argument("id", nargs="?", help="one delivery; all failed ones when left out")


HANDLERS = {
    ("webhooks", "list"): endpoints_list,
    ("webhooks", "create"): endpoint_create,
    ("webhooks", "delete"): endpoint_delete,
    ("webhooks", "test"): endpoint_test,
    ("webhooks", "deliveries"): deliveries_list,
    ("webhooks", "retry"): deliveries_retry,
}
