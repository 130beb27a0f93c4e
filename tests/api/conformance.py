"""Does a real answer match what the OpenAPI document declares for its operation?

Its status is declared; its content type is one declared for that status; a JSON body validates
against the declared schema (jsonschema_rs, schemathesis' own validator); every declared header
that is required is there, every declared header that is there matches its schema, and a
rate-limit header is never sent where none is declared.
"""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs

RATE_LIMIT_PREFIX = "x-ratelimit-"


def assert_conforms(
    doc: dict[str, Any], method: str, template: str, response: httpx.Response
) -> None:
    where = f"{method.upper()} {template} → {response.status_code}"
    declared = doc["paths"][template][method]["responses"]
    documented = declared.get(str(response.status_code))
    assert documented is not None, f"{where}: status not declared ({sorted(declared)})"
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    content = documented.get("content", {})
    assert media_type in content, f"{where}: {media_type} not among {sorted(content)}"
    if media_type == "application/json":
        schema = {**content[media_type]["schema"], "components": doc["components"]}
        errors = [
            e.message
            for e in jsonschema_rs.Draft202012Validator(schema).iter_errors(response.json())
        ]
        assert not errors, f"{where}: body does not match its schema: {errors[:5]}"
    _assert_headers(doc, where, documented.get("headers", {}), response.headers)


def _assert_headers(
    doc: dict[str, Any], where: str, declared: dict[str, Any], sent: httpx.Headers
) -> None:
    names = {name.lower() for name in declared}
    stray = [n for n in sent if n.lower().startswith(RATE_LIMIT_PREFIX) and n.lower() not in names]
    assert not stray, f"{where}: sends undeclared {stray}"
    for name, header in declared.items():
        header = _resolve(doc, header)
        value = sent.get(name)
        if value is None:
            assert not header["required"], f"{where}: required header {name} missing"
            continue
        assert header["schema"] == {"type": "integer", "minimum": header["schema"]["minimum"]}
        assert value.isdigit() and int(value) >= header["schema"]["minimum"], (where, name, value)


def _resolve(doc: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    reference = item.get("$ref")
    if reference is None:
        return item
    found: Any = doc
    for part in reference.removeprefix("#/").split("/"):
        found = found[part]
    return dict(found)


def operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method, path) for path, item in doc["paths"].items() for method in item}
