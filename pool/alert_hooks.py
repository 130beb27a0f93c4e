"""Telling operators: what an alert notification says, and the hooks that carry it.

HTTP hooks get a JSON body a Slack-style incoming webhook accepts (`text`) with the structured
alert beside it, optionally signed (`X-Addrpool-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
"t.body">`, the timestamped webhook scheme). Command hooks get the same JSON on stdin and
must exit 0 within their timeout. Hook targets are the operator's own configuration, so they
are not held to the public-address rule of merchants' webhook endpoints.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson

from pool import __version__
from pool.clock import isoformat_z
from pool.config import HookSettings
from pool.payloads import alert_payload
from pool.repository.alert_notifications import Notice
from pool.signatures import sign_timestamped

SIGNATURE_HEADER = "X-Addrpool-Signature"
OUTPUT_KEPT = 500  # characters of a failing command's output kept as the error


class HookFailed(Exception):
    """The hook did not take the notification; it will be tried again."""


# How each transition reads in `text`, and what a pool_low notice says happened.
SHOWN = {
    "fired": "FIRED",
    "escalated": "ESCALATED",
    "deescalated": "DE-ESCALATED",
    "resolved": "RESOLVED",
}
POOL_LOW_NEWS = {
    "fired": "fell below the threshold of {threshold}",
    "escalated": "none left, the pool is empty (threshold {threshold})",
    "deescalated": "no longer empty, still low (threshold {threshold})",
    "resolved": "back above the threshold of {threshold}",
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
    if alert["kind"] == "pool_low":
        news = POOL_LOW_NEWS.get(transition, transition).format(threshold=details.get("threshold"))
        return (
            f"{details.get('available')} free {str(details.get('protocol')).upper()} addresses "
            f"of {details.get('total')} ({details.get('percentage')}%): {news}"
        )
    if transition in ("escalated", "deescalated"):
        change = "escalated" if transition == "escalated" else "de-escalated"
        return f"{alert['subject']} {change} to {alert['severity']} (value {alert['value']})"
    return f"{alert['subject']} {transition} (value {alert['value']})"


async def send(hook: HookSettings, body: dict[str, Any], client: httpx.AsyncClient) -> None:
    payload = orjson.dumps(body)
    if hook.type == "http":
        await _post(hook, payload, client)
    else:
        await _run_command(hook, payload)


async def _post(hook: HookSettings, payload: bytes, client: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "application/json", "User-Agent": f"addrpool/{__version__}"}
    if hook.secret is not None:
        secret = hook.secret.get_secret_value().encode()
        headers[SIGNATURE_HEADER] = sign_timestamped([secret], payload, int(time.time()))
    try:
        answer = await client.post(
            hook.url or "", content=payload, headers=headers, timeout=hook.timeout
        )
    except httpx.HTTPError as exc:
        raise HookFailed(f"{type(exc).__name__}: {exc}") from exc
    if not answer.is_success:
        raise HookFailed(f"HTTP {answer.status_code}: {answer.text[:OUTPUT_KEPT]}")


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
