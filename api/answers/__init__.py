"""What the API answers, for the OpenAPI document only.

The routes build their bodies themselves (api/views.py, the payload functions in pool/,
api/responses.py); these models only describe them, so a client can be generated, and
tests/api/test_openapi_answers.py checks real answers against them. One module per group of
routes, as in api/routes/; here the envelope, the error and `answers`, every route's
`responses=`. Every `data` is a model with its
fields typed: only user JSON (a binding's `metadata`) and per-kind details (an alert's
`details`, an error's `details`) stay free-form objects. Extra fields are allowed: a client
must accept a field added later. A field shown `X | SkipJsonSchema[None] = None` is typed `X`
and may be absent; `X | None` may also be null on the wire.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, create_model


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


FreeForm = dict[str, Any]  # JSON a user or an alert kind chose: no fixed shape


class ErrorEnvelope(Answer):
    """Every 4xx and 5xx (docs/api.md, Errors)."""

    success: Literal[False]
    error: str
    code: str
    message: str
    details: list[FreeForm] | None = None


class Pagination(Answer):
    page: int
    limit: int
    total: int
    totalPages: int  # noqa: N815 - the wire name


def envelope(data: Any, name: str) -> type[BaseModel]:
    """`{"success": true, "data": …, "message"?}` around `data`, as a named model."""
    model: type[BaseModel] = create_model(
        name,
        __base__=Answer,
        success=(Literal[True], ...),
        data=(data, ...),
        message=(str | None, None),
    )
    return model


SUCCESS = {200: "OK", 201: "Created", 202: "Accepted"}
Responses = dict[int | str, dict[str, Any]]


def answers(data: Any, name: str, *errors: int, success: tuple[int, ...] = (200,)) -> Responses:
    """A route's `responses=`: the success envelope around `data` (a model named `name`) for
    each `success` status, and the error statuses it sends besides those every route can
    (api/openapi.py adds 400 and 413, 401/403/429 and the rate-limit headers on keyed routes,
    404 where a path has a parameter; each error gets the error envelope)."""
    model = envelope(data, name)
    documented: Responses = {
        status: {"model": model, "description": SUCCESS[status]} for status in success
    }
    for status in errors:
        documented[status] = {}
    return documented
