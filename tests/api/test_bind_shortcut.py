"""The bind's shortcut (api/bind_shortcut.py) answers exactly as the FastAPI route does.

Two apps on one database, one with the shortcut and one without: every request goes to both,
in turn, and the answers must match byte for byte — status, headers, body — but for what
differs by design when each binds a new reference (the address it claimed, and when). The
rate limiters' clocks stand still, so both apps' windows are the same. Each case also says
which path the shortcut app took.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from api import bind_shortcut
from api.app import create_app
from api.bind_shortcut import BindShortcut
from api.rate_limits import RateLimiter
from pool.kit.config import RateLimitSettings, Settings
from pool.kit.db import Database
from tests.fixtures.helpers import auth, load_pool, make_key

BIND = "/api/v1/deposits/bind"
SECRET = "9b" * 32
STILL = 90.5  # the rate limiters' clock: half a second into a minute's second second


@pytest.fixture
def shortcut_taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Per request the shortcut app saw: whether the shortcut answered it itself."""
    taken: list[bool] = []
    plain_request = bind_shortcut._plain_request

    def spy(scope: Any, body: bytes) -> Any:
        request = plain_request(scope, body)
        taken.append(request is not None)
        return request

    monkeypatch.setattr(bind_shortcut, "_plain_request", spy)
    return taken


@pytest.fixture
async def apps(settings: Settings, db: Database) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    # A low per-minute limit, so the last requests meet it; each app counts its own.
    limited = settings.model_copy(
        update={"rate_limits": RateLimitSettings(per_second=1000, per_minute=40)}
    )
    with_shortcut = create_app(limited, db=db, monitored_chains={"evm": ["ethereum-sepolia"]})
    without = create_app(limited, db=db, monitored_chains={"evm": ["ethereum-sepolia"]})
    without.router.routes[:] = [r for r in without.router.routes if not isinstance(r, BindShortcut)]
    assert len(without.router.routes) == len(with_shortcut.router.routes) - 1
    for app in (with_shortcut, without):
        app.state.rate_limiter = RateLimiter(limited.rate_limits, clock=lambda: STILL)
    clients = {}
    for name, app in (("shortcut", with_shortcut), ("fastapi", without)):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        clients[name] = httpx.AsyncClient(transport=transport, base_url="http://addrpool.test")
    yield clients
    for name, app in (("shortcut", with_shortcut), ("fastapi", without)):
        await clients[name].aclose()
        await app.state.ctx.pool_alerts.close()


def _seen(response: httpx.Response, *, claimed: dict[str, str]) -> dict[str, Any]:
    """The answer as compared: an address or moment this app's bind claimed made neutral."""
    text = response.text
    for value, placeholder in claimed.items():
        text = text.replace(value, placeholder)
    headers = response.headers.multi_items()
    return {"status": response.status_code, "headers": headers, "body": text}


async def _both(
    apps: dict[str, httpx.AsyncClient], *, fresh: bool = False, **request: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The same request to each app. `fresh`: the reference is new, so each app binds its own
    address (`-a` appended to the reference for one, `-b` for the other)."""
    seen = []
    for suffix, name in (("-a", "shortcut"), ("-b", "fastapi")):
        sent = dict(request)
        if fresh:
            body = dict(sent.pop("json"))
            body["depositReference"] += suffix
            sent["content"] = json.dumps(body).encode()
            sent["headers"] = {"Content-Type": "application/json", **sent["headers"]}
        response = await apps[name].post(BIND, **sent)
        claimed = {}
        if fresh and response.status_code in (200, 201):
            data = response.json()["data"]
            claimed = {
                data["address"]: "<address>",
                data["createdAt"]: "<moment>",
                data["depositReference"]: "<reference>",
            }
        seen.append(_seen(response, claimed=claimed))
    return seen[0], seen[1]


def _raw(body: Any, key: str, content_type: str = "application/json") -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {"content": text.encode(), "headers": {**auth(key), "Content-Type": content_type}}


async def test_the_shortcut_answers_as_the_fastapi_route(
    apps: dict[str, httpx.AsyncClient], db: Database, shortcut_taken: list[bool]
) -> None:
    await load_pool(db, "evm", 100)
    key = await make_key(db, scopes=None)
    reader = await make_key(db, scopes=["deposits:read"])
    evm = {"depositReference": "player-1", "protocol": "evm"}
    # Bound beforehand, one request to each app (so their limiters have counted alike).
    assert (await apps["fastapi"].post(BIND, json=evm, headers=auth(key))).status_code == 201
    assert (await apps["shortcut"].post(BIND, json=evm, headers=auth(key))).status_code == 200

    # (request, whether the shortcut answers it itself)
    shortcut_cases: list[tuple[dict[str, Any], bool]] = [
        (_raw(evm, key), True),  # already bound: 200
        (_raw({**evm, "metadata": {"order": 7, "tags": ["a"]}}, key), True),  # still bound
        (_raw({"depositReference": "t-1", "protocol": "tron"}, key), True),  # empty pool: 503
        (_raw(evm, "pk_test_" + "0" * 32), True),  # unknown key: 401
        (_raw(evm, reader), True),  # lacks the scope: 403
        (_raw(evm, ""), True),  # no key: 401
        (_raw(evm, key, "application/json; charset=utf-8"), True),
        (_raw(evm, key, "application/json;charset=utf-8"), True),
        (_raw(evm, key, "Application/JSON"), False),  # FastAPI reads it as JSON too
        (_raw(evm, key, "application/vnd.api+json"), False),  # and this
        (_raw(evm, key, "application/json; charset=latin-1"), False),
        (_raw(evm, key, "text/plain"), False),  # not read as JSON: 400
        (_raw("{not json", key), False),  # INVALID_JSON
        (_raw([evm], key), False),  # not an object
        (_raw({"protocol": "evm"}, key), False),  # missing field
        (_raw({**evm, "protocol": "btc"}, key), False),  # UNSUPPORTED_PROTOCOL
        (_raw({**evm, "depositReference": "a b"}, key), False),  # pattern
        (_raw({**evm, "metadata": {"note": f"key={SECRET}"}}, key), False),  # secret refused
        (_raw({**evm, "metadata": {"note": f"key={SECRET}"}}, reader), False),  # key first: 403
        (_raw("", key), False),  # no body
        ({"content": json.dumps(evm).encode(), "headers": auth(key)}, False),  # no content type
    ]
    for request, plain in shortcut_cases:
        shortcut_taken.clear()
        first, second = await _both(apps, **request)
        assert first == second, request
        assert shortcut_taken == [plain], request

    fresh_body = {"depositReference": "fresh-1", "protocol": "evm", "metadata": {"n": 1.5}}
    shortcut_taken.clear()
    first, second = await _both(apps, fresh=True, json=fresh_body, headers=auth(key))
    assert first["status"] == 201 and first == second
    assert shortcut_taken == [True]

    # The per-minute limit (40, each app counting its own) met: 429 with the same headers.
    answers = []
    for n in range(40):
        body = {"depositReference": f"r-{n}", "protocol": "evm"}
        first, second = await _both(apps, fresh=True, json=body, headers=auth(key))
        assert first == second
        answers.append(first["status"])
    assert answers[0] == 201 and answers[-1] == 429
    assert ("retry-after", "30") in first["headers"]


async def test_behind_a_root_path_the_shortcut_takes_the_bind_as_routing_does(
    settings: Settings, db: Database, shortcut_taken: list[bool]
) -> None:
    """Served under a prefix (uvicorn --root-path), the path is matched below it."""
    await load_pool(db, "evm", 2)
    key = await make_key(db, scopes=None)
    app = create_app(settings, db=db)
    transport = httpx.ASGITransport(app=app, root_path="/pool", raise_app_exceptions=False)
    body = {"depositReference": "rooted-1", "protocol": "evm"}
    async with httpx.AsyncClient(transport=transport, base_url="http://addrpool.test") as http:
        bound = await http.post("/pool" + BIND, json=body, headers=auth(key))
        outside = await http.post("/other" + BIND, json=body, headers=auth(key))
    await app.state.ctx.pool_alerts.close()
    assert bound.status_code == 201 and bound.json()["data"]["depositReference"] == "rooted-1"
    assert outside.status_code == 404
    assert shortcut_taken == [True]
