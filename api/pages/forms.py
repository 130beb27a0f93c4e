"""The public pages' posted forms: read small url-encoded bodies of printable text, and tell
whether the browser says a post came from this site's own page."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from fastapi import Request

MAX_FORM_BYTES = 4096
FORM_TYPE = "application/x-www-form-urlencoded"


async def posted_form(request: Request) -> dict[str, str] | None:
    """The posted form's fields (the first of each name), or None when it is not a small
    url-encoded form of printable text."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        parsed = parse_qs(body.decode("ascii"), max_num_fields=10, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    fields = {name: values[0] for name, values in parsed.items()}
    if any(not value.isprintable() for value in fields.values()):
        return None
    return fields


def same_site(request: Request) -> bool:
    """Whether the browser says the post came from this site's own page. Browsers send
    `Sec-Fetch-Site`; without it an `Origin` other than `null` must name this host."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")
