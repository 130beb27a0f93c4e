"""`addrpool deposits list|show` and `addrpool references show`: the API's view, without curl."""

from __future__ import annotations

import json

import httpx

from pool.kit.db import Database
from tests.fixtures.helpers import add_deposit, auth, load_pool
from tests.fixtures.server import cli


async def _api(client: httpx.AsyncClient, key: str, path: str) -> object:
    answer = await client.get(f"/api/v1/deposits{path}", headers=auth(key))
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def _cli_json(database_url: str, *args: str) -> object:
    return json.loads(cli(*args, "--json", database_url=database_url).stdout)


async def test_deposits_and_references_print_the_apis_view(
    client: httpx.AsyncClient, db: Database, service_key: str, database_url: str
) -> None:
    await load_pool(db, "evm", 3)
    for reference in ("alice", "bob"):
        body = {"depositReference": reference, "protocol": "evm"}
        bound = await client.post("/api/v1/deposits/bind", json=body, headers=auth(service_key))
        assert bound.status_code == 201
    for n, (reference, status) in enumerate(
        [("alice", "confirmed"), ("alice", "pending"), ("bob", "confirmed")], start=1
    ):
        await add_deposit(db, reference, n=n, amount=1_500_000 * n, status=status)

    everything = _cli_json(database_url, "deposits", "list")
    assert everything == await _api(client, service_key, "")
    assert everything["pagination"] == {"page": 1, "limit": 20, "total": 3, "totalPages": 1}
    filtered = _cli_json(
        database_url, "deposits", "list", "--reference", "alice", "--status", "confirmed"
    )
    assert filtered == await _api(client, service_key, "?depositReference=alice&status=confirmed")
    assert [d["depositId"] for d in filtered["deposits"]] == ["dep_1"]
    paged = _cli_json(database_url, "deposits", "list", "--limit", "2", "--page", "2")
    assert paged == await _api(client, service_key, "?limit=2&page=2")
    assert len(paged["deposits"]) == 1

    assert _cli_json(database_url, "deposits", "show", "dep_3") == await _api(
        client, service_key, "/dep_3"
    )
    reference = _cli_json(database_url, "references", "show", "alice")
    served = await _api(client, service_key, "/references/alice")
    # The test app watches ethereum-sepolia; the CLI's configuration here watches no chain.
    assert reference == {**served, "monitoredChains": []}  # type: ignore[dict-item]
    assert (reference["totalDeposits"], reference["totals"]) == (1, {"USDT": "1.5"})

    table = cli("deposits", "list", "--chain", "ethereum-sepolia", database_url=database_url)
    assert table.stdout.splitlines()[0].split() == [
        "id", "reference", "chain", "currency", "amount", "status", "conf", "detected"
    ]  # fmt: skip
    assert "page 1 of 1; 3 deposit(s)" in table.stdout
    text = cli("references", "show", "alice", database_url=database_url).stdout
    assert "totals" in text and "USDT 1.5" in text and "binding history:" in text


def test_unknown_ids_and_bad_pages_are_one_line_errors(database_url: str) -> None:
    missing = cli("deposits", "show", "dep_nope", database_url=database_url, check=False)
    assert missing.returncode == 2
    assert missing.stderr == "error: Deposit dep_nope not found\n"
    as_json = cli("references", "show", "nobody", "--json", database_url=database_url, check=False)
    assert json.loads(as_json.stdout)["code"] == "REFERENCE_NOT_FOUND"
    bad_limit = cli("deposits", "list", "--limit", "101", database_url=database_url, check=False)
    assert bad_limit.returncode == 2 and "a whole number from 1 to 100" in bad_limit.stderr
    empty = cli("deposits", "list", database_url=database_url)
    assert empty.stdout == "no deposits (page 1; 0 in all)\n"
