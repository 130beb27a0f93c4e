"""The payer's placeholder page of an order (`GET /pay/order/{orderId}`): server-rendered HTML,
no script, no cookie, a strict Content-Security-Policy. Templates live in `templates/` (shipped
as package data, pyproject.toml)."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import datetime
from pathlib import Path
from typing import Any

import segno
from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True))

# The page's only style, inline: allowed by its hash, so the policy needs no 'unsafe-inline'.
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;"
    "color:#222}h1{font-size:1.4rem}dl{display:grid;grid-template-columns:auto 1fr;gap:.4rem 1rem}"
    "dt{color:#666}dd{margin:0;word-break:break-all}code{font-size:1rem}"
    "img{display:block;margin:1rem 0;width:12rem;height:12rem}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; img-src 'self'; style-src 'sha256-{_STYLE_HASH}'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
# Chain ids as a payer would recognise them; other ids are shown as they are.
CHAIN_NAMES = {
    "ethereum-mainnet": "Ethereum",
    "ethereum-sepolia": "Ethereum Sepolia (testnet)",
    "polygon-mainnet": "Polygon",
    "polygon-amoy": "Polygon Amoy (testnet)",
    "arbitrum-mainnet": "Arbitrum One",
    "arbitrum-sepolia": "Arbitrum Sepolia (testnet)",
    "base-mainnet": "Base",
    "base-sepolia": "Base Sepolia (testnet)",
    "bsc-mainnet": "BNB Smart Chain",
    "bsc-testnet": "BNB Smart Chain (testnet)",
    "tron-mainnet": "Tron",
    "tron-nile": "Tron Nile (testnet)",
}
STATUS_TEXT = {
    "pending": "Waiting for payment",
    "completed": "Paid",
    "expired": "Expired",
    "cancelled": "Cancelled",
}


def chain_name(chain_id: str) -> str:
    return CHAIN_NAMES.get(chain_id, chain_id)


def time_left(ends_at: datetime, now: datetime) -> str:
    seconds = int((ends_at - now).total_seconds())
    if seconds <= 0:
        return "none: the payment window has closed"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def order_page(order: dict[str, Any], *, window_ends_at: datetime, now: datetime) -> str:
    pending = order["status"] == "pending"
    return _env.get_template("order.html").render(
        style=STYLE,
        order=order,
        chain=chain_name(order["chainId"]),
        status=STATUS_TEXT.get(order["status"], order["status"]),
        pending=pending,
        time_left=time_left(window_ends_at, now) if pending else None,
    )


def not_found_page() -> str:
    return _env.get_template("not_found.html").render(style=STYLE)


def qr_svg(text: str) -> bytes:
    """A QR code (never a Micro QR, which wallets do not read) of `text`, as SVG."""
    buffer = io.BytesIO()
    segno.make_qr(text, error="m").save(buffer, kind="svg", scale=4, border=2, xmldecl=False)
    return buffer.getvalue()
