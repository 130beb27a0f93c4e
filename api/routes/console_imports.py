"""The console's file import (docs/operations.md, The console): a form that uploads an address
file, a background job that imports it (pool.addresses.import_jobs), and a page that shows its
progress and outcome. The file goes through the checks every import has (a secret anywhere
refuses it whole; invalid rows refuse it unless skipped); it is never stored."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from sqlalchemy.engine import RowMapping
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from api.console.access import Signed, checked_action, message, read_only, redirect, show
from api.context import AppContext, context
from api.limits import BodyTooLarge
from chains.codec import address_parser
from chains.verify import check_master_keys
from pool.addresses.import_formats import FORMATS
from pool.addresses.import_job_repository import RUNNING, NewJob, load_job, recent_jobs
from pool.addresses.import_jobs import open_job, run_job, shown_status
from pool.console.service import Session
from pool.kit.clock import utc_now
from pool.vocabulary import PROTOCOLS

router = APIRouter(include_in_schema=False)
Ctx = Annotated[AppContext, Depends(context)]
IMPORT_PATH = "/ui/pool/import"
RECENT = 20
MAX_FIELD_BYTES = 1024  # the form's text fields: protocol, format, reason, the CSRF token
MAX_NAME = 200


@router.get(IMPORT_PATH)
async def import_page(request: Request, ctx: Ctx, session: Signed) -> Response:
    now = utc_now()
    async with ctx.db.read() as conn:
        jobs = await recent_jobs(conn, limit=RECENT)
    return show(
        "import.html",
        session,
        ctx,
        "/ui/pool",
        jobs=[job_view(job, now=now) for job in jobs],
        protocols=PROTOCOLS,
        formats=FORMATS,
        max_bytes=ctx.settings.max_import_bytes,
    )


@router.post(IMPORT_PATH)
async def start_import(request: Request, ctx: Ctx, session: Signed) -> Response:
    """`file`, `protocol`, `format`, `skip_invalid`, `reason`: the import runs in the
    background and the browser goes to its progress page."""
    if not session.can_act:
        return read_only(session, ctx)
    upload = await _uploaded(request)
    form = checked_action(request, ctx, session, None if upload is None else upload[0])
    if isinstance(form, Response) or upload is None:
        return form if isinstance(form, Response) else _choose_file(session, ctx)
    fields, name, data = upload
    job = _new_job(fields, name, data, session)
    if job is None:
        return message(session, ctx, "Refused", "Choose a protocol and a format.", 400)
    if not data:
        return _choose_file(session, ctx)
    job_id = await open_job(ctx.db, job)
    ctx.console_jobs.start(
        run_job(
            ctx.db,
            job_id,
            job,
            data,
            parser=address_parser(job.protocol),
            master_keys=check_master_keys,
            on_written=ctx.pool_alerts.changed,
        )
    )
    return redirect(f"/ui/pool/imports/{job_id}")


@router.get("/ui/pool/imports/{job_id}")
async def import_job_page(
    request: Request,
    ctx: Ctx,
    session: Signed,
    job_id: Annotated[int, Path(ge=1, le=2**62)],
) -> Response:
    async with ctx.db.read() as conn:
        job = await load_job(conn, job_id)
    if job is None:
        return message(session, ctx, "Not found", f"There is no import {job_id}.", 404)
    view = job_view(job, now=utc_now())
    return show("import_job.html", session, ctx, "/ui/pool", job=view)


async def _uploaded(request: Request) -> tuple[dict[str, str], str, bytes] | None:
    """The form's text fields, the file's name and its bytes; None when the post is not a
    multipart form with one file and small printable fields."""
    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        return None
    try:
        async with request.form(max_files=1, max_fields=8, max_part_size=MAX_FIELD_BYTES) as form:
            upload = form.get("file")
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            if not isinstance(upload, UploadFile):
                return None
            data = await upload.read()
            name = upload.filename or ""
    except BodyTooLarge:
        raise
    except HTTPException:  # Starlette's answer to a malformed multipart body
        return None
    if any(not value.isprintable() for value in fields.values()):
        return None
    return fields, _file_name(name), data


def _file_name(name: str) -> str:
    """The file's own name as the browser gave it, without any folder, printable and short."""
    base = PurePosixPath(name.replace("\\", "/")).name
    shown = "".join(c for c in base if c.isprintable())[:MAX_NAME]
    return shown or "upload"


def _new_job(fields: dict[str, str], name: str, data: bytes, session: Session) -> NewJob | None:
    protocol = next((p for p in PROTOCOLS if p == fields.get("protocol")), None)
    chosen_format = next((f for f in FORMATS if f == fields.get("format", "auto")), None)
    if protocol is None or chosen_format is None:
        return None
    return NewJob(
        protocol=protocol,
        actor=session.actor,
        reason=fields["reason"].strip()[:500],
        file_name=name,
        file_sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        format=chosen_format,
        skip_invalid=fields.get("skip_invalid") == "on",
    )


def _choose_file(session: Session, ctx: AppContext) -> Response:
    return message(session, ctx, "Refused", "Choose a non-empty address file to import.", 400)


def job_view(job: RowMapping, *, now: datetime) -> dict[str, Any]:
    total, done = int(job["total"]), int(job["done"])
    status = shown_status(job, now=now)
    return {
        "id": job["id"],
        "protocol": job["protocol"],
        "fileName": job["file_name"],
        "sizeBytes": job["size_bytes"],
        "sha256": job["file_sha256"],
        "format": job["format"],
        "skipInvalid": job["skip_invalid"],
        "actor": job["actor"],
        "reason": job["reason"],
        "status": status,
        "running": status == RUNNING,
        "phase": job["phase"],
        "done": done,
        "total": total,
        "percent": min(100, done * 100 // total) if total else None,
        "result": job["result"],
        "error": job["error"],
        "createdAt": job["created_at"],
        "finishedAt": job["finished_at"],
    }
