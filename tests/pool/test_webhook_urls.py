"""Where a webhook may go, and the worker's brief memory of DNS answers (pool/webhook_urls.py)."""

from __future__ import annotations

import pytest

from pool.errors import ValidationFailed
from pool.webhook_urls import Resolver, Target, parse_webhook_url, resolve_target


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
