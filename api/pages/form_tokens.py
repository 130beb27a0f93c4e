"""The checkout form's anti-forgery token, without a cookie (the payer's pages set none).

A token is the moment it was issued and an HMAC of (slug, moment) under a key derived from
ADDRPOOL_SECRET_KEY (every API process shares it, so any of them accepts a form another
served). It proves the form was rendered by this server for this link, recently; the route also
refuses a post whose browser says it came from another site (`Sec-Fetch-Site`, `Origin`), which
is what stops a forged cross-site post.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from fastapi import Request

from api.context import AppContext
from pool.kit.secret_box import secret_box

# A payer may take a while to choose; a form older than this is rendered afresh.
VALID_SECONDS = 2 * 60 * 60
_MAC_BYTES = 16


class FormTokens:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def issue(self, slug: str, *, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        return f"{issued}.{self._mac(slug, issued)}"

    def valid(self, token: str | None, slug: str, *, now: float | None = None) -> bool:
        if not token or len(token) > 64:
            return False
        issued_text, _, mac = token.partition(".")
        if not issued_text.isdigit():
            return False
        issued = int(issued_text)
        age = int(time.time() if now is None else now) - issued
        if not 0 <= age <= VALID_SECONDS:
            return False
        return hmac.compare_digest(mac.encode(), self._mac(slug, issued).encode())

    def _mac(self, slug: str, issued: int) -> str:
        digest = hmac.new(self._key, f"{slug}\n{issued}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:_MAC_BYTES]).decode().rstrip("=")


def form_tokens(request: Request, ctx: AppContext) -> FormTokens:
    """Made at the first checkout: the key file (SQLite) or ADDRPOOL_SECRET_KEY is needed only
    by an instance that serves payment links."""
    tokens: FormTokens | None = getattr(request.app.state, "form_tokens", None)
    if tokens is None:
        tokens = FormTokens(secret_box(ctx.settings).derive("checkout-form"))
        request.app.state.form_tokens = tokens
    return tokens
