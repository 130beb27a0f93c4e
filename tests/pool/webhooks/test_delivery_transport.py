"""What the worker's requests look like on the wire: TLS to a pinned address, no redirects,
a bounded answer kept. Real local receivers (HTTPS with a throwaway certificate)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pool.kit.config import Settings
from pool.kit.db import Database
from pool.webhooks.delivery import DeliveryWorker
from pool.webhooks.sender import BODY_KEPT, WebhookSender
from pool.webhooks.urls import parse_webhook_url
from tests.pool.webhooks.test_delivery import deliver_all, deliveries, emit, endpoint
from tests.pool.webhooks.test_urls import CountingResolver
from tests.pool.webhooks.tls_receiver import TlsReceiver, self_signed

NAME = "pinned.test"  # resolvable only through the test's resolver: the address is pinned


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[Any]:
    started: list[TlsReceiver] = []

    def start(certificate_name: str) -> tuple[TlsReceiver, ssl.SSLContext]:
        cert, key = self_signed(certificate_name, tmp_path)
        started.append(TlsReceiver(cert, key))
        return started[-1], ssl.create_default_context(cafile=str(cert))

    yield start
    for receiver in started:
        receiver.close()


async def test_https_goes_to_the_pinned_address_and_verifies_the_name(
    db: Database, settings: Settings, tls
) -> None:
    receiver, trusted = tls(NAME)
    await endpoint(db, settings, f"https://{NAME}:{receiver.port}/hook", ["deposit.pending"])
    await emit(db)
    resolver = CountingResolver({NAME: ["127.0.0.1"]})
    await deliver_all(DeliveryWorker(db, settings, ssl_context=trusted, resolver=resolver))
    [(headers, _)] = receiver.requests
    assert receiver.server_names == [NAME]  # SNI names the host, not the address
    assert headers["Host"] == f"{NAME}:{receiver.port}"
    assert resolver.lookups == [NAME]
    [row] = await deliveries(db)
    assert (row["status"], row["last_status_code"]) == ("succeeded", 200)


async def test_a_certificate_for_another_name_is_refused(
    db: Database, settings: Settings, tls
) -> None:
    receiver, trusted = tls("someone-else.test")
    await endpoint(db, settings, f"https://{NAME}:{receiver.port}/hook", ["deposit.pending"])
    await emit(db)
    resolver = CountingResolver({NAME: ["127.0.0.1"]})
    await deliver_all(DeliveryWorker(db, settings, ssl_context=trusted, resolver=resolver))
    assert receiver.requests == []
    [row] = await deliveries(db)
    assert row["status"] == "pending" and row["last_status_code"] is None
    assert "certificate" in (row["last_error"] or "").lower()


async def test_a_redirect_is_not_followed(db: Database, settings: Settings, receivers) -> None:
    elsewhere = receivers()
    redirecting = receivers((302, {"Location": elsewhere.url}, 0.0))
    await endpoint(db, settings, redirecting.url, ["deposit.pending"])
    await emit(db)
    await deliver_all(DeliveryWorker(db, settings))
    assert len(redirecting.requests) == 1
    assert elsewhere.requests == []
    [row] = await deliveries(db)
    assert (row["status"], row["last_status_code"]) == ("failed", 302)


async def test_only_the_first_kilobyte_of_an_answer_is_kept() -> None:
    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)  # the body, "{}"
        body = "é".encode() * 30_000
        writer.write(b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(chatty, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = WebhookSender(timeout=5.0)
    target = parse_webhook_url(f"http://127.0.0.1:{port}/hook", allow_private=True)
    try:
        answer = await sender.post(target, "127.0.0.1", b"{}", {})
    finally:
        await sender.aclose()
        server.close()
    assert answer.status_code == 500
    assert answer.body == "é" * (BODY_KEPT // 2)


def test_the_default_tls_context_verifies_against_certifi() -> None:
    import certifi

    context = WebhookSender(timeout=1.0)._ssl
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    bundled = ssl.create_default_context(cafile=certifi.where()).cert_store_stats()["x509_ca"]
    assert context.cert_store_stats()["x509_ca"] == bundled > 0
