"""A payment link's fields checked against the configuration before anything is written
(docs/api.md, Payment links): its currencies are watched chains' tokens, its amount fits every
one of them, its URLs are https, its expiry is ahead."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from pool.kit.errors import ValidationFailed
from pool.links.records import OPEN_AMOUNT, LinkAsk, LinkCurrency
from pool.orders.intake import AMOUNT_PATTERN, chain_and_token, check_url, parse_amount
from pool.orders.records import OrderChain

MAX_CURRENCIES = 10


def refuse(field: str, message: str, *, code: str | None = None) -> ValidationFailed:
    return ValidationFailed(
        f"{field} {message}", code=code, details=[{"field": field, "message": message}]
    )


def check_link(
    ask: LinkAsk, *, chains: Mapping[str, OrderChain], allow_http: bool, now: datetime
) -> str:
    """The link's amount as it is kept: "0" when the payer enters it, else as sent."""
    check_currencies(ask.currencies, chains)
    amount = check_amount(ask.amount, ask.currencies, chains)
    check_expiry(ask.expires_at, now)
    for field, url in (("successUrl", ask.success_url), ("cancelUrl", ask.cancel_url)):
        if url is not None:
            check_url(field, url, allow_http=allow_http)
    return amount


def check_currencies(currencies: list[LinkCurrency], chains: Mapping[str, OrderChain]) -> None:
    if not currencies:
        raise refuse("currencies", "must name at least one {currency, chainId}")
    if len(currencies) > MAX_CURRENCIES:
        raise refuse("currencies", f"may name at most {MAX_CURRENCIES} choices")
    if len(set(currencies)) != len(currencies):
        raise refuse("currencies", "names a {currency, chainId} pair twice")
    for index, choice in enumerate(currencies):
        chain_and_token(
            chains,
            chain_id=choice.chain_id,
            currency=choice.currency,
            field=f"currencies[{index}].",
        )


def check_amount(
    text: str, currencies: list[LinkCurrency], chains: Mapping[str, OrderChain]
) -> str:
    """ "0" (or any zero) is the payer's to enter; any other amount must be payable in every
    currency of the link (no more decimals than each token has)."""
    if AMOUNT_PATTERN.fullmatch(text) and not text.strip("0.").strip():
        return OPEN_AMOUNT
    for choice in currencies:
        _, token = chain_and_token(chains, chain_id=choice.chain_id, currency=choice.currency)
        parse_amount(text, token)
    return text


def check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at <= now:
        raise refuse("expiresAt", "must be in the future")


def check_inventory(total: int | None, *, taken: int) -> None:
    """A new inventory total may not fall below what pending and completed orders hold."""
    if total is not None and total < taken:
        raise refuse(
            "inventoryTotal",
            f"is below the {taken} units reserved or sold already",
            code="INVALID_INVENTORY",
        )
