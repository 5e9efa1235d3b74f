"""The OpenAPI description, finished where the framework's own falls short of the service.

What every answer has in common is declared here, for every operation, because it is given
outside any one route: the ``X-Request-ID`` header (the request-context middleware), the
refusals of a body that is too large or too slow (``bodies``) and the unexpected error. A
header or query parameter can be absent but never ``null``, so its schema says so.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import BaseRoute

from overleg.api import headers
from overleg.api.deps import BEARER_DESCRIPTION, BEARER_SCHEME, principal
from overleg.api.problems import CONTENT_TOO_LARGE, INTERNAL_ERROR, REQUEST_TIMEOUT, Problem

# What any operation can answer, whatever its route does.
EVERY_OPERATION = (REQUEST_TIMEOUT, CONTENT_TOO_LARGE, INTERNAL_ERROR)
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def install(api: FastAPI) -> None:
    """Serve the finished description at /openapi.json (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = finish(
                get_openapi(
                    title=api.title,
                    version=api.version,
                    summary=api.summary,
                    description=api.description,
                    routes=api.routes,
                ),
                signed_in(api.routes),
            )
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]


def signed_in(routes: list[BaseRoute]) -> set[tuple[str, str]]:
    """The operations (path, method) that ask for the caller (``deps.principal``): each
    needs a bearer token."""
    found = set()
    for route in iter_route_contexts(routes):  # those of included routers too
        if isinstance(route.original_route, APIRoute) and _asks_for_caller(route.dependant):
            found |= {(str(route.path_format), method.lower()) for method in route.methods or ()}
    return found


def _asks_for_caller(dependant: Dependant) -> bool:
    return any(d.call is principal or _asks_for_caller(d) for d in dependant.dependencies)


def finish(schema: dict[str, Any], bearer: Collection[tuple[str, str]] = ()) -> dict[str, Any]:
    """Add what the framework leaves out; drop what it adds that the service never sends.

    The operations in ``bearer`` need a bearer token (the caller is read from the header
    by ``deps.principal`` itself, not by a security dependency the framework would
    describe)."""
    every = schema.setdefault("components", {})
    components = every.setdefault("schemas", {})
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    if bearer:
        every.setdefault("securitySchemes", {})[BEARER_SCHEME] = {
            "type": "http",
            "description": BEARER_DESCRIPTION,
            "scheme": "bearer",
        }
    request_id = headers.declare(required=(headers.REQUEST_ID,))
    for name, path in schema.get("paths", {}).items():
        for method, operation in path.items():
            if method not in _METHODS:
                continue
            if (name, method) in bearer:
                operation["security"] = [{BEARER_SCHEME: []}]
            for parameter in operation.get("parameters", []):
                if parameter.get("in") in ("header", "query", "path"):
                    parameter["schema"] = _not_null(parameter["schema"])
            answers = dict(sorted(operation["responses"].items()))
            for answer in answers.values():
                answer.setdefault("headers", {}).update(request_id)
            operation["responses"] = answers
    # Validation errors are problems (``Problem``), never the framework's own shape.
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, null]`` as ``X``, keeping the parameter's title, description and default."""
    choices = schema.get("anyOf")
    if not isinstance(choices, list):
        return schema
    kept = [choice for choice in choices if choice != {"type": "null"}]
    if len(kept) != 1 or len(kept) == len(choices):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf" and not (k == "default" and v is None)}
    return {**kept[0], **rest}
