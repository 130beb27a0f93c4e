"""The payer's pages (`/pay/order/{orderId}`, a payment link's `/checkout/{slug}`):
server-rendered HTML that works without JavaScript, our one small script making it live, no
cookie, no asset from another host, a strict Content-Security-Policy. Templates in
`templates/`, the stylesheet and the script in `static/` (package data, pyproject.toml); the
sentences in `i18n.py`."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import segno
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from api.pages.i18n import TEXT, Language
from pool.kit.clock import isoformat_z
from pool.links.records import LinkRow
from pool.orders.payer_view import PayerView

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
# A payer's browser polls the status this often; without JavaScript the page reloads itself.
POLL_SECONDS = 3
REFRESH_SECONDS = 10
REDIRECT_AFTER_SECONDS = 3  # the final sentence is read before the merchant's page loads

# Chain ids as a payer would recognise them (the testnets marked); others are shown as they are.
CHAIN_NAMES = {
    "ethereum-mainnet": ("Ethereum", False),
    "ethereum-sepolia": ("Ethereum Sepolia", True),
    "polygon-mainnet": ("Polygon", False),
    "polygon-amoy": ("Polygon Amoy", True),
    "arbitrum-mainnet": ("Arbitrum One", False),
    "arbitrum-sepolia": ("Arbitrum Sepolia", True),
    "base-mainnet": ("Base", False),
    "base-sepolia": ("Base Sepolia", True),
    "bsc-mainnet": ("BNB Smart Chain", False),
    "bsc-testnet": ("BNB Smart Chain", True),
    "tron-mainnet": ("Tron", False),
    "tron-nile": ("Tron Nile", True),
}


def chain_name(chain_id: str, language: Language) -> str:
    name, testnet = CHAIN_NAMES.get(chain_id, (chain_id, False))
    return f"{name} ({TEXT[language]['testnet']})" if testnet else name


def _static_files() -> dict[str, tuple[bytes, str]]:
    """name → (bytes, version): read once; the version (a hash of the bytes) is in each URL,
    so a browser may keep a file for good and still gets a changed one at once."""
    return {
        path.name: (data, hashlib.sha256(data).hexdigest()[:12])
        for path in sorted(STATIC.iterdir())
        if path.suffix in (".css", ".js")
        for data in [path.read_bytes()]
    }


STATIC_FILES = _static_files()


def static_url(name: str, *, base: str = "../static/") -> str:
    """By default relative to `/pay/order/{orderId}`, so the page works under any path prefix."""
    return f"{base}{name}?v={STATIC_FILES[name][1]}"


def _sentences(language: Language) -> Callable[..., Markup]:
    text = TEXT[language]

    def say(key: str, **values: Any) -> Markup:
        # Our own sentences are the markup; every value put into them is escaped by format
        # (a `field` span excepted, itself built the same way).
        return Markup(text[key]).format(**values)  # noqa: S704

    return say


def field(name: str, value: object) -> Markup:
    """A value the page's script keeps up to date (`data-field`, the status poll's name)."""
    return Markup('<span data-field="{}">{}</span>').format(name, value)


def order_page(view: PayerView, *, language: Language, now: datetime) -> str:
    return _env.get_template("order.html").render(
        lang=language,
        say=_sentences(language),
        field=field,
        view=view,
        chain=chain_name(view.chain_id, language),
        other_payments=[(p, chain_name(p.chain_id, language)) for p in view.other_payments],
        final=view.ended,
        seconds_left=max(0, int((view.window_ends_at - now).total_seconds())),
        window_ends_at=isoformat_z(view.window_ends_at),
        server_time=isoformat_z(now),
        poll_ms=POLL_SECONDS * 1000,
        refresh_seconds=REFRESH_SECONDS,
        redirect_after=REDIRECT_AFTER_SECONDS,
        css=static_url("pay.css"),
        js=static_url("pay.js"),
    )


def not_found_page(language: Language) -> str:
    return _env.get_template("not_found.html").render(
        lang=language, say=_sentences(language), css=static_url("pay.css", base="/pay/static/")
    )


def checkout_page(
    link: LinkRow,
    *,
    language: Language,
    form_token: str,
    error: str | None = None,
    amount: str = "",
    chosen: int = 0,
) -> str:
    """A published link's form: its title, description and amount (or a field for it), and a
    choice of its currencies."""
    choices = link.choices
    return _env.get_template("checkout.html").render(
        lang=language,
        say=_sentences(language),
        link=link,
        choices=choices,
        choices_named=[(c, chain_name(c.chain_id, language)) for c in choices],
        left=link.available,
        error=error,
        amount=amount,
        chosen=chosen,
        form_token=form_token,
        css=static_url("pay.css", base="../pay/static/"),
    )


def message_page(
    language: Language, *, title_key: str, message: Markup, retry_url: str | None = None
) -> str:
    """A page that only says something: a link that takes no order, a busy moment."""
    say = _sentences(language)
    return _env.get_template("link_closed.html").render(
        lang=language,
        say=say,
        title=say(title_key),
        message=message,
        retry_url=retry_url,
        css=static_url("pay.css", base="/pay/static/"),
    )


def sentence(language: Language, key: str, **values: Any) -> Markup:
    return _sentences(language)(key, **values)


def countdown(seconds: int) -> str:
    minutes, seconds = divmod(max(0, seconds), 60)
    return f"{minutes}:{seconds:02d}"


_env.globals["countdown"] = countdown


def qr_svg(text: str) -> bytes:
    """A QR code (never a Micro QR, which wallets do not read) of `text`, as SVG, with the
    standard's quiet zone of four modules: scanners find the code by that margin."""
    buffer = io.BytesIO()
    segno.make_qr(text, error="m").save(buffer, kind="svg", scale=4, border=4, xmldecl=False)
    return buffer.getvalue()
