"""What a client asked for, checked against the configuration and made exact (docs/api.md,
Orders): the chain, its token, the amount in base units, the window and grace.

Every check runs before anything is written: a refused request leaves the database unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pool.kit.amounts import parse_units
from pool.kit.config import OrderSettings
from pool.kit.errors import TargetRefused, ValidationFailed
from pool.orders.records import OrderAsk, OrderChain, OrderToken
from pool.orders.repository import OrderRow
from pool.webhooks.urls import parse_webhook_url

# Plain decimal notation only: no sign, exponent, spaces, NaN or Infinity.
AMOUNT_PATTERN = re.compile(r"^[0-9]{1,78}(\.[0-9]{1,78})?$")
MAX_BASE_UNITS = 10**78 - 1  # NUMERIC(78, 0)
URL_HINT = "http:// only with webhook_allow_private (ADDRPOOL_WEBHOOK_ALLOW_PRIVATE)"


@dataclass(frozen=True, slots=True)
class ResolvedOrder:
    ask: OrderAsk
    chain: OrderChain
    token: OrderToken
    amount: int  # base units
    window: timedelta
    grace: timedelta


def resolve(
    ask: OrderAsk,
    *,
    chains: Mapping[str, OrderChain],
    settings: OrderSettings,
    allow_http: bool,
) -> ResolvedOrder:
    chain, token = chain_and_token(chains, chain_id=ask.chain_id, currency=ask.currency)
    amount = parse_amount(ask.amount, token)
    window, grace = _times(ask, settings)
    for field, url in (("successUrl", ask.success_url), ("cancelUrl", ask.cancel_url)):
        if url is not None:
            check_url(field, url, allow_http=allow_http)
    return ResolvedOrder(ask, chain, token, amount, window, grace)


def chain_and_token(
    chains: Mapping[str, OrderChain], *, chain_id: str, currency: str, field: str = ""
) -> tuple[OrderChain, OrderToken]:
    """The watched chain and its token a payment may use; `field` prefixes the details' field
    names (`currencies[1].` for a payment link's second choice)."""
    chain = chains.get(chain_id)
    if chain is None:
        known = ", ".join(sorted(chains)) or "none is configured with RPC URLs"
        raise ValidationFailed(
            f"chainId {chain_id!r} is not a watched chain of this instance (watched: {known})",
            code="INVALID_CHAIN",
            details=[{"field": f"{field}chainId", "message": "not a watched chain"}],
        )
    token = chain.tokens.get(currency)
    if token is None:
        known = ", ".join(sorted(chain.tokens))
        raise ValidationFailed(
            f"currency {currency!r} is not a token of {chain.chain_id} (tokens: {known})",
            code="INVALID_CURRENCY",
            details=[{"field": f"{field}currency", "message": "not a token of this chain"}],
        )
    return chain, token


def parse_amount(text: str, token: OrderToken) -> int:
    def refuse(why: str) -> ValidationFailed:
        return ValidationFailed(
            f"amount {why}",
            code="INVALID_AMOUNT",
            details=[{"field": "amount", "message": why}],
        )

    if not AMOUNT_PATTERN.fullmatch(text):
        raise refuse('must be a decimal string in plain notation, e.g. "10.5"')
    try:
        units = parse_units(text, token.decimals)
    except ValueError:
        raise refuse(f"has more than {token.decimals} decimals ({token.symbol})") from None
    if units <= 0:
        raise refuse("must be greater than 0")
    if units > MAX_BASE_UNITS:
        raise refuse("is too large")
    return units


def _times(ask: OrderAsk, settings: OrderSettings) -> tuple[timedelta, timedelta]:
    window = settings.default_window_minutes if ask.window_minutes is None else ask.window_minutes
    grace = settings.default_grace_minutes if ask.grace_minutes is None else ask.grace_minutes
    if window + grace > settings.max_total_minutes:
        message = (
            f"paymentWindowMinutes + gracePeriodMinutes is {window + grace}; at most "
            f"{settings.max_total_minutes} ([orders] max_total_minutes)"
        )
        raise ValidationFailed(
            message, details=[{"field": "paymentWindowMinutes", "message": message}]
        )
    return timedelta(minutes=window), timedelta(minutes=grace)


def check_url(field: str, url: str, *, allow_http: bool) -> None:
    """The payer's browser goes there, never this server: its shape is checked (absolute
    https, no credentials, no control characters), not where it resolves."""
    try:
        parse_webhook_url(url, allow_private=allow_http, hint=URL_HINT)
    except TargetRefused as exc:
        message = exc.message.replace("url", field, 1)
        raise TargetRefused(message, details=[{"field": field, "message": message}]) from None


def same_request(order: OrderRow, resolved: ResolvedOrder) -> bool:
    """Whether a repeated reference asks for exactly the existing order (a client's retry):
    what the client sent, compared as the order keeps it (the amount numerically, the times
    after defaults)."""
    ask = resolved.ask
    return (
        order.chain_id == ask.chain_id
        and order.currency == ask.currency
        and order.amount == resolved.amount
        and _same_json(order.metadata, ask.metadata)
        and order.success_url == ask.success_url
        and order.cancel_url == ask.cancel_url
        and order.window_ends_at - order.created_at == resolved.window
        and order.grace_ends_at - order.window_ends_at == resolved.grace
    )


def _same_json(stored: Any, sent: Any) -> bool:
    # `{}` and no metadata are different requests; 1 and 1.0 are the same JSON number.
    return bool(stored == sent and type(stored) is type(sent))
