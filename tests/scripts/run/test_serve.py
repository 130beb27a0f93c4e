"""`addrpool serve`: prints where it listens, and SIGTERM lets in-flight requests finish."""

import json
import socket

import httpx
import pytest

from tests.fixtures.helpers import load_pool, make_key
from tests.fixtures.polling import wait_until
from tests.fixtures.server import running_server

pytestmark = pytest.mark.server


async def test_sigterm_drains_an_in_flight_request(database_url, db) -> None:
    await load_pool(db, "evm", 1)
    key = await make_key(db, scopes=None)
    body = json.dumps({"depositReference": "in_flight", "protocol": "evm"}).encode()
    head = (
        "POST /api/v1/deposits/bind HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with running_server(database_url) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
            conn.sendall(head + body[:10])  # the request is now in flight, its body half-sent
            # A full round trip after our bytes went out: the server has read our request head.
            assert httpx.get(server.base_url + "/health", timeout=10).status_code == 200
            server.process.send_signal(15)
            wait_until(lambda: not server.accepts_connections())  # stopped taking new work
            conn.sendall(body[10:])
            response = b""
            while chunk := conn.recv(65536):
                response += chunk
        assert server.process.wait(timeout=60) == 0
        output = server.output()
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 201 Created", response
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["data"]["depositReference"] == "in_flight"
    assert f"listening on http://127.0.0.1:{server.port}" in output
    assert "addrpool keys create --name" in output


async def test_a_server_of_the_other_network_refuses_the_database(database_url, db) -> None:
    """A testnet server records its network; mainnet `serve`/`api` on that database exit at
    once with one line, and a pk_live_ key put in by hand gets 401 from the testnet server."""
    import os

    from tests.fixtures.server import cli_in, free_port

    await load_pool(db, "evm", 1)
    test_key = await make_key(db, scopes=None, prefix="pk_test_")
    mainnet = {**os.environ, "ADDRPOOL_DATABASE_URL": database_url, "ADDRPOOL_NETWORK": "mainnet"}
    with running_server(database_url) as server:
        live_key = await make_key(db, scopes=None, prefix="pk_live_")
        for command in ("serve", "api"):
            refused = cli_in(mainnet, command, "--port", str(free_port()), expect=2)
            assert refused.stdout == "" and "Traceback" not in refused.stderr
            [line] = refused.stderr.splitlines()
            if database_url.startswith("sqlite"):
                # SQLite's one-process rule answers first (pool/kit/writer_lock.py).
                assert f"(pid {server.process.pid}) is already serving" in line
                continue
            assert line.startswith("error: the database at ") and line.endswith(
                "belongs to testnet (ADDRPOOL_NETWORK=mainnet here): "
                "run with ADDRPOOL_NETWORK=testnet or use another database"
            )
        bind = server.base_url + "/api/v1/deposits/bind"
        body = {"depositReference": "u1", "protocol": "evm"}
        headers = {"Authorization": f"Bearer {live_key}"}
        refused = httpx.post(bind, json=body, headers=headers, timeout=10)
        assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHORIZED"
        assert "pk_live_ keys belong to mainnet" in refused.json()["message"]
        headers = {"Authorization": f"Bearer {test_key}"}
        assert httpx.post(bind, json=body, headers=headers, timeout=10).status_code == 201


NESTED = "[" * 99_000 + "]" * 99_000  # ~200 KB: well inside the body limits


# No key needed for a bind: its body is read before its key is checked. An import's text is
# JSON-decoded too when it looks like JSON.
NESTED_BODIES = [
    (
        "/api/v1/deposits/bind",
        '{"depositReference": "a", "protocol": "evm", "metadata": {"k": ' + NESTED + "}}",
        False,
    ),
    ("/api/v1/address-pool/addresses", json.dumps({"protocol": "evm", "csv": NESTED}), True),
]


async def test_a_deeply_nested_body_is_refused_and_the_server_lives(database_url, db) -> None:
    """Importing web3 (the watchers do) once left py_ecc's recursion limit of 100,000 in
    place: a body nested 99,000 deep then overflowed the C stack, and SIGSEGV took the whole
    embedded server down. Each body goes to the same server, which must still answer after it
    (one server for both: its start is most of the test's time)."""
    admin = {"Authorization": f"Bearer {await make_key(db, scopes=['admin'])}"}
    with running_server(database_url) as server:
        for path, raw, with_key in NESTED_BODIES:
            headers = {"Content-Type": "application/json", **(admin if with_key else {})}
            response = httpx.post(server.base_url + path, content=raw, headers=headers, timeout=60)
            assert 400 <= response.status_code < 500, (path, response.text)
            assert response.json()["success"] is False
            assert httpx.get(server.base_url + "/health", timeout=10).status_code == 200
            assert server.process.poll() is None


async def test_a_load_balancers_head_probe_gets_the_health_status_and_no_body(
    database_url,
) -> None:
    """Through the real server (uvicorn), byte for byte: HEAD answers GET's status and
    headers, and nothing follows them on the wire."""
    probe = b"HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with (
        running_server(database_url) as server,
        socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn,
    ):
        conn.sendall(probe)
        response = b""
        while chunk := conn.recv(65536):
            response += chunk
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert lines[0] == "HTTP/1.1 200 OK" and body == b""
    assert headers["content-type"] == "application/json" and int(headers["content-length"]) > 0
