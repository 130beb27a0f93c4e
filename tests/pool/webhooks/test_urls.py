"""Where a webhook may go, and the worker's brief memory of DNS answers (pool/webhooks/urls.py)."""

from __future__ import annotations

import pytest

from pool.kit.errors import TargetRefused, ValidationFailed
from pool.webhooks.urls import Resolver, Target, parse_webhook_url, resolve_target
from tests.fixtures.webhook_targets import NOT_PUBLIC_LITERALS


class CountingResolver(Resolver):
    """Answers from a table instead of DNS, and counts the lookups it was asked for."""

    def __init__(self, answers: dict[str, list[str]], kept_seconds: float = 5.0) -> None:
        super().__init__(kept_seconds)
        self.answers = answers
        self.lookups: list[str] = []

    async def lookup(self, target: Target) -> list[str]:
        self.lookups.append(target.host)
        if target.host not in self.answers:
            raise ValidationFailed(f"{target.host} does not resolve", code="INVALID_URL")
        return self.answers[target.host]


async def test_a_literal_ip_needs_no_lookup() -> None:
    target = parse_webhook_url("http://127.0.0.1:8080/hook", allow_private=True)
    assert await resolve_target(target, allow_private=True) == "127.0.0.1"
    v6 = parse_webhook_url("http://[::1]:8080/hook", allow_private=True)
    assert await resolve_target(v6, allow_private=True) == "::1"


async def test_a_literal_private_ip_is_still_refused() -> None:
    target = parse_webhook_url("https://10.1.2.3/hook", allow_private=False)
    with pytest.raises(ValidationFailed) as refused:
        await resolve_target(target, allow_private=False)
    assert refused.value.code == "PRIVATE_ADDRESS_REFUSED"


async def test_answers_are_kept_briefly_per_name() -> None:
    resolver = CountingResolver({"hooks.example": ["93.184.216.34"]})
    target = parse_webhook_url("https://hooks.example/a", allow_private=False)
    for _ in range(3):
        assert await resolver.resolve(target, allow_private=False) == "93.184.216.34"
    assert resolver.lookups == ["hooks.example"]


async def test_a_kept_answer_is_looked_up_again_once_it_expires() -> None:
    resolver = CountingResolver({"hooks.example": ["93.184.216.34"]}, kept_seconds=0.0)
    target = parse_webhook_url("https://hooks.example/a", allow_private=False)
    await resolver.resolve(target, allow_private=False)
    resolver.answers["hooks.example"] = ["93.184.216.35"]
    assert await resolver.resolve(target, allow_private=False) == "93.184.216.35"
    assert resolver.lookups == ["hooks.example", "hooks.example"]


async def test_a_kept_private_answer_is_checked_on_every_use() -> None:
    resolver = CountingResolver({"internal.example": ["93.184.216.34", "10.0.0.7"]})
    target = parse_webhook_url("https://internal.example/a", allow_private=True)
    assert await resolver.resolve(target, allow_private=True) == "93.184.216.34"
    for _ in range(2):  # kept, and still refused each time it is used where not allowed
        with pytest.raises(ValidationFailed) as refused:
            await resolver.resolve(target, allow_private=False)
        assert refused.value.code == "PRIVATE_ADDRESS_REFUSED"
    assert resolver.lookups == ["internal.example"]


async def test_a_failed_lookup_is_not_kept() -> None:
    resolver = CountingResolver({})
    target = parse_webhook_url("https://later.example/a", allow_private=False)
    with pytest.raises(ValidationFailed):
        await resolver.resolve(target, allow_private=False)
    resolver.answers["later.example"] = ["93.184.216.34"]
    assert await resolver.resolve(target, allow_private=False) == "93.184.216.34"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://hooks.example/a\r\nX-Injected: 1", "control characters or whitespace"),
        ("https://hooks.example/a b", "control characters or whitespace"),
        ("https://hooks.example/a\tb", "control characters or whitespace"),
        (" https://hooks.example/a", "control characters or whitespace"),  # not trimmed
        ("https://hooks.example/a\n", "control characters or whitespace"),
        ("https://hooks.example/\u200ba", "control characters or whitespace"),  # zero width
        ("https://hooks.example/\u00a0", "control characters or whitespace"),  # no-break space
        ("https://hooks.example:0/a", "invalid port (0)"),
        ("https://hooks.example:65536/a", "invalid port"),
        ("https://hooks.example:-1/a", "invalid port"),
        ("https://[8.8.8.8]/a", "malformed"),
        ("https://[::1/x", "malformed"),
        ("https://::1]/x", "malformed"),
        ("https://x[::1]/a", "brackets must hold an IPv6 address"),
        ("https://[::1]x/a", "brackets must hold an IPv6 address"),
        ("https://[v1.fe]/a", "brackets must hold an IPv6 address"),
        ("https://[fe80::1%25eth0]/a", "brackets must hold an IPv6 address"),
        ("https://" + "a" * 64 + ".example/a", "a label over 63"),
        ("https://" + "a." * 127 + "example/a", "over 253 characters"),
        ("https://" + "ä" * 64 + ".example/a", "invalid host name"),
        ("https://a..example/a", "invalid host name"),
        ("https://exa%2fmple.com/a", "invalid host name"),
        ("https://exa\\mple.com/a", "invalid host name"),
        ("https://@hooks.example/a", "credentials"),
        ("https:///a", "absolute https:// URL"),
    ],
)
def test_malformed_urls_are_refused_with_a_reason(url: str, says: str) -> None:
    with pytest.raises(TargetRefused) as refused:
        parse_webhook_url(url, allow_private=True)
    assert refused.value.code == "INVALID_URL"
    assert says in refused.value.message


def test_names_at_dns_limits_pass_and_international_ones_become_ascii() -> None:
    longest_label = "a" * 63 + ".example"
    assert parse_webhook_url(f"https://{longest_label}/", allow_private=False).host == longest_label
    longest_name = ".".join(["a" * 61] * 4) + ".examp"
    assert len(longest_name) == 253
    assert parse_webhook_url(f"https://{longest_name}/", allow_private=False).host == longest_name
    with pytest.raises(TargetRefused):
        parse_webhook_url(f"https://a{longest_name}/", allow_private=False)
    idn = parse_webhook_url("https://bücher.example:8443/a", allow_private=False)
    assert (idn.host, idn.port, idn.url) == (
        "xn--bcher-kva.example",
        8443,
        "https://bücher.example:8443/a",
    )
    v6 = parse_webhook_url("https://[2001:4860:4860::8888]:8443/a", allow_private=False)
    assert (v6.host, v6.port) == ("2001:4860:4860::8888", 8443)


@pytest.mark.parametrize(
    "url",
    [*NOT_PUBLIC_LITERALS, "https://[::ffff:169.254.169.254]/", "https://100.64.0.1/"],
)
async def test_literal_addresses_that_are_not_public_are_refused(url: str) -> None:
    target = parse_webhook_url(url, allow_private=False)
    with pytest.raises(TargetRefused) as refused:
        await resolve_target(target, allow_private=False)
    assert refused.value.code == "PRIVATE_ADDRESS_REFUSED"
    assert "not a public unicast address" in refused.value.message


async def test_a_name_answering_with_one_non_public_address_is_refused() -> None:
    resolver = CountingResolver({"mixed.example": ["93.184.216.34", "64:ff9b::a9fe:a9fe"]})
    target = parse_webhook_url("https://mixed.example/a", allow_private=False)
    with pytest.raises(TargetRefused) as refused:
        await resolver.resolve(target, allow_private=False)
    assert "mixed.example resolves to 64:ff9b::a9fe:a9fe" in refused.value.message


async def test_a_name_that_does_not_resolve_is_not_a_refusal() -> None:
    """It may resolve later: the delivery worker retries it (a refusal is final)."""
    target = parse_webhook_url("https://nowhere.invalid/a", allow_private=False)
    with pytest.raises(ValidationFailed) as failed:
        await resolve_target(target, allow_private=False)
    assert not isinstance(failed.value, TargetRefused)
    assert failed.value.code == "INVALID_URL"
