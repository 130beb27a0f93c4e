import json

import pytest

from tests.fixtures.server import cli

pytestmark = pytest.mark.server


def run(database_url: str, *args: str) -> dict:
    return json.loads(cli(*args, "--json", database_url=database_url).stdout)


def assert_an_ftp_url_is_refused(database_url: str) -> None:
    refused = cli(
        "webhooks",
        "create",
        "--url",
        "ftp://x",
        "--events",
        "deposit.confirmed",
        database_url=database_url,
        check=False,
    )
    assert refused.returncode == 2 and "https" in refused.stderr + refused.stdout


def test_webhooks_commands(database_url: str, monkeypatch) -> None:
    monkeypatch.setenv("ADDRPOOL_WEBHOOK_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("ADDRPOOL_SECRET_KEY", "cli-test-secret-key")
    created = run(
        database_url,
        "webhooks",
        "create",
        "--url",
        "http://127.0.0.1:9/hook",
        "--events",
        "deposit.confirmed,deposit.reverted",
    )
    assert created["secret"].startswith("whsec_")
    [listed] = run(database_url, "webhooks", "list")
    assert listed["events"] == ["deposit.confirmed", "deposit.reverted"]
    assert "secret" not in listed
    # The API's view of an endpoint, key for key (it once said `scheme` here).
    assert listed["signatureScheme"] == "body" and "scheme" not in listed
    assert {k: v for k, v in created.items() if k != "secret"} == listed
    run(database_url, "webhooks", "test", created["id"])
    pending = run(database_url, "webhooks", "deliveries", "--status", "pending")
    assert [d["eventType"] for d in pending["deliveries"]] == ["test.event"]
    # Only a failed delivery is retried, and the CLI says so in the API's words.
    [queued] = pending["deliveries"]
    refused = cli(
        "webhooks", "retry", queued["id"], "--json", database_url=database_url, check=False
    )
    assert refused.returncode != 0 and "DELIVERY_NOT_FAILED" in refused.stdout + refused.stderr
    assert run(database_url, "webhooks", "delete", created["id"])["cancelledDeliveries"] == 1
    assert run(database_url, "webhooks", "retry")["requeued"] == 0
    assert_an_ftp_url_is_refused(database_url)


def test_a_bad_url_is_refused_before_any_database_is_created(tmp_path) -> None:
    missing = tmp_path / "never.db"
    assert_an_ftp_url_is_refused(f"sqlite:///{missing}")
    assert not missing.exists()
