"""Alert hook URLs at start-up (pool/alerts/hooks.py): held to webhooks' rule unless
`[alerts] hooks_allow_private`, refused with a configuration error that names the hook."""

from __future__ import annotations

import pytest

from pool.alerts.hooks import check_hook_urls
from pool.kit.config import AlertSettings, load_settings
from pool.kit.errors import ConfigurationError


def hooks(*urls: str, allow_private: bool = False) -> AlertSettings:
    return AlertSettings(
        hooks=[
            {"name": "pager", "type": "command", "command": ["/bin/true"]},
            *({"name": f"ops-{n}", "type": "http", "url": url} for n, url in enumerate(urls)),
        ],
        hooks_allow_private=allow_private,
    )


ALLOWED_BY = "[alerts] hooks_allow_private = true (ADDRPOOL_ALERTS__HOOKS_ALLOW_PRIVATE)"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://hooks.example/x", f"url must use https; {ALLOWED_BY} allows it"),
        ("https://127.0.0.1:9/x", f"127.0.0.1 is not a public unicast address; {ALLOWED_BY}"),
        ("https://[64:ff9b::a9fe:a9fe]/x", "64:ff9b::a9fe:a9fe is not a public unicast address"),
        ("https://224.0.0.1/x", "224.0.0.1 is not a public unicast address"),
        ("https://[8.8.8.8]/x", "url is malformed"),
        ("https://hooks.example/x y", "url must not contain control characters or whitespace"),
        ("hooks.example/x", "url must be an absolute https:// URL"),
    ],
)
def test_a_refused_hook_url_is_a_configuration_error_naming_the_hook(url: str, says: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        check_hook_urls(hooks("https://hooks.slack.com/services/T/B/X", url))
    message = refused.value.message
    assert message.startswith("alert hook 'ops-1' ([[alerts.hooks]] url): ")
    assert says in message and "\n" not in message


def test_public_hooks_and_names_pass_without_a_lookup() -> None:
    # A name is judged where it resolves, before each send: start-up does not wait for DNS.
    check_hook_urls(hooks("https://hooks.slack.com/services/T/B/X", "https://nowhere.invalid/"))
    check_hook_urls(hooks("https://8.8.8.8/x", "https://[2001:4860:4860::8888]:8443/x"))


def test_the_allow_setting_lifts_https_and_the_public_rule_but_not_malformed_urls() -> None:
    check_hook_urls(hooks("http://127.0.0.1:9/x", "https://[::1]/x", allow_private=True))
    with pytest.raises(ConfigurationError, match="malformed"):
        check_hook_urls(hooks("https://[::1/x", allow_private=True))


def test_the_allow_setting_is_read_from_toml_and_environment(tmp_path, monkeypatch) -> None:
    config = tmp_path / "addrpool.toml"
    config.write_text("[alerts]\nhooks_allow_private = true\n")
    monkeypatch.setenv("ADDRPOOL_CONFIG", str(config))
    monkeypatch.delenv("ADDRPOOL_ALERTS__HOOKS_ALLOW_PRIVATE", raising=False)
    assert load_settings().alerts.hooks_allow_private is True
    monkeypatch.setenv("ADDRPOOL_ALERTS__HOOKS_ALLOW_PRIVATE", "false")
    assert load_settings().alerts.hooks_allow_private is False
    assert AlertSettings().hooks_allow_private is False  # the default
