"""HEAD is answered wherever GET is (api/head_requests.py): the GET's status and headers, no body."""

import logging

import httpx

from api.app import create_app
from tests.fixtures.helpers import auth

# Headers that differ between any two answers, whatever the method (each request counts
# against the key's rate limit).
_PER_ANSWER = {"date", "x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset"}


def _comparable(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in _PER_ANSWER}


async def test_head_answers_as_get_without_the_body(client, admin_key) -> None:
    for path, headers in [
        ("/health", {}),
        ("/api/v1/deposits", auth(admin_key)),
        ("/api/v1/deposits", {}),  # no key: the GET's 401, headers and all
        ("/ui", {}),  # the console sends a stranger to sign in
        ("/no/such/path", {}),
    ]:
        got = await client.get(path, headers=headers)
        head = await client.head(path, headers=headers)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        if path != "/health":  # its body carries the time: its length may differ by a digit
            assert _comparable(head) == _comparable(got), path
        else:
            assert head.headers["content-type"] == got.headers["content-type"]
            assert int(head.headers["content-length"]) > 0


async def test_the_access_log_says_head_with_the_route_and_the_key(
    settings, db, admin_key, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="addrpool.access")
    app = create_app(settings.model_copy(update={"access_log": True}), db=db)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await http.head("/api/v1/deposits", headers=auth(admin_key))).status_code == 200
    await app.state.ctx.pool_alerts.close()
    [line] = [r for r in caplog.records if r.name == "addrpool.access"]
    assert (line.method, line.route, line.status) == ("HEAD", "/api/v1/deposits", 200)
    assert line.key_id is not None
