"""Telling operators: what an alert notification says, and the hooks that carry it.

HTTP hooks get a JSON body a Slack-style incoming webhook accepts (`text`) with the structured
alert beside it, optionally signed (`X-Addrpool-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
"t.body">`, the timestamped webhook scheme). Command hooks get the same JSON on stdin and
must exit 0 within their timeout.

HTTP hook URLs are held to webhooks' rule (`pool.webhooks.urls`): well formed, https, and every
address the name resolves to public, checked at start-up (`check_hook_urls`: the shape, and a
literal IP) and before each send (the name is resolved then, and the request goes to the checked
address). `[alerts] hooks_allow_private` lifts the https and public-address parts, for a pager
gateway on the operator's own network or the devnet.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from pool import __version__
from pool.alerts.notifications_repository import Notice
from pool.deposits.payloads import alert_payload
from pool.kit.clock import isoformat_z
from pool.kit.config import AlertSettings, HookSettings
from pool.kit.errors import ConfigurationError, TargetRefused, ValidationFailed
from pool.vocabulary import POOL_LOW
from pool.webhooks.sender import SEND_ERRORS, WebhookSender
from pool.webhooks.signatures import sign_timestamped
from pool.webhooks.urls import (
    Target,
    checked_address,
    literal_ip,
    parse_webhook_url,
    resolve_target,
)

SIGNATURE_HEADER = "X-Addrpool-Signature"
OUTPUT_KEPT = 500  # characters of a failing command's output kept as the error
ALLOW_PRIVATE_HINT = (
    "[alerts] hooks_allow_private = true (ADDRPOOL_ALERTS__HOOKS_ALLOW_PRIVATE) allows it"
)


class HookFailed(Exception):
    """The hook did not take the notification; it will be tried again."""


class HookRefused(HookFailed):
    """The hook's URL fails the target check: trying again cannot help."""


def check_hook_urls(settings: AlertSettings) -> None:
    """Start-up: a ConfigurationError naming the first HTTP hook whose URL is malformed, not
    https, or a literal IP that is not public (unless `hooks_allow_private`). A host name is
    judged where it resolves, before each send: resolving here would tie start-up to DNS."""
    allow = settings.hooks_allow_private
    for hook in settings.hooks:
        if hook.type != "http":
            continue
        try:
            target = _target(hook, allow_private=allow)
            literal = literal_ip(target.host)
            if literal is not None:
                checked_address(target, [literal], allow_private=allow, hint=ALLOW_PRIVATE_HINT)
        except TargetRefused as exc:
            where = f"alert hook {hook.name!r} ([[alerts.hooks]] url)"
            raise ConfigurationError(f"{where}: {exc.message}") from exc


def _target(hook: HookSettings, *, allow_private: bool) -> Target:
    url = hook.url or ""  # never empty: the settings refuse an http hook without one
    return parse_webhook_url(url, allow_private=allow_private, hint=ALLOW_PRIVATE_HINT)


# How each transition reads in `text`, and what a pool_low notice says happened.
SHOWN = {
    "fired": "FIRED",
    "escalated": "ESCALATED",
    "deescalated": "DE-ESCALATED",
    "resolved": "RESOLVED",
    "unsilenced": "STILL FIRING",
}
POOL_LOW_NEWS = {
    "fired": "fell below the threshold of {threshold}",
    "escalated": "none left, the pool is empty (threshold {threshold})",
    "deescalated": "no longer empty, still low (threshold {threshold})",
    "resolved": "back above the threshold of {threshold}",
    "unsilenced": "still below the threshold of {threshold} as its silence ends",
}


def message(notice: Notice, *, test: bool = False) -> dict[str, Any]:
    alert = notice.alert
    state = "TEST" if test else SHOWN.get(notice.transition, notice.transition.upper())
    return {
        "text": f"[{state}] {alert['severity']}: {_summary(alert, notice.transition)}",
        "test": test,
        "transition": notice.transition,
        "at": isoformat_z(notice.at),
        "alert": alert_payload(alert),
    }


def _summary(alert: dict[str, Any], transition: str) -> str:
    details = alert["details"] or {}
    if alert["kind"] == POOL_LOW:
        news = POOL_LOW_NEWS.get(transition, transition).format(threshold=details.get("threshold"))
        refill = details.get("refill") if transition != "resolved" else None
        why = f"; {refill['action']}" if isinstance(refill, dict) and "action" in refill else ""
        return (
            f"{details.get('available')} free {str(details.get('protocol')).upper()} addresses "
            f"of {details.get('total')} ({details.get('percentage')}%): {news}{why}"
        )
    if transition in ("escalated", "deescalated"):
        change = "escalated" if transition == "escalated" else "de-escalated"
        return f"{alert['subject']} {change} to {alert['severity']} (value {alert['value']})"
    if transition == "unsilenced":
        return f"{alert['subject']} still firing as its silence ends (value {alert['value']})"
    return f"{alert['subject']} {transition} (value {alert['value']})"


async def send(
    hook: HookSettings, body: dict[str, Any], sender: WebhookSender, *, allow_private: bool
) -> None:
    """Raises HookFailed (to be retried) or HookRefused (final)."""
    payload = orjson.dumps(body)
    if hook.type == "http":
        await _post(hook, payload, sender, allow_private=allow_private)
    else:
        await _run_command(hook, payload)


async def _post(
    hook: HookSettings, payload: bytes, sender: WebhookSender, *, allow_private: bool
) -> None:
    target, address = await _checked_target(hook, allow_private=allow_private)
    headers = {"Content-Type": "application/json", "User-Agent": f"addrpool/{__version__}"}
    if hook.secret is not None:
        secret = hook.secret.get_secret_value().encode()
        headers[SIGNATURE_HEADER] = sign_timestamped([secret], payload, int(time.time()))
    try:
        answer = await sender.post(target, address, payload, headers, time_limit=hook.timeout)
    except SEND_ERRORS as exc:
        raise HookFailed(f"{type(exc).__name__}: {exc}") from exc
    if not 200 <= answer.status_code < 300:
        raise HookFailed(f"HTTP {answer.status_code}: {answer.body[:OUTPUT_KEPT]}")


async def _checked_target(hook: HookSettings, *, allow_private: bool) -> tuple[Target, str]:
    """The hook's target and the address to connect to, both checked now."""
    try:
        target = _target(hook, allow_private=allow_private)
        address = await resolve_target(target, allow_private=allow_private, hint=ALLOW_PRIVATE_HINT)
    except TargetRefused as exc:
        raise HookRefused(f"{exc.code}: {exc.message}") from exc
    except ValidationFailed as exc:  # the name does not resolve now; it may later
        raise HookFailed(exc.message) from exc
    return target, address


async def _run_command(hook: HookSettings, payload: bytes) -> None:
    argv = hook.command or []  # never empty: the settings refuse a command hook without one
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        raise HookFailed(f"cannot run {argv[0]}: {exc}") from exc
    try:
        output, _ = await asyncio.wait_for(process.communicate(payload), timeout=hook.timeout)
    except TimeoutError as exc:
        process.kill()
        await process.wait()
        raise HookFailed(f"timed out after {hook.timeout} s") from exc
    if process.returncode != 0:
        shown = output.decode(errors="replace")[:OUTPUT_KEPT]
        raise HookFailed(f"exit status {process.returncode}: {shown}")
