"""Errors as RFC 9457 problem details (``application/problem+json``), mapped in one place.

Every refusal names what is wrong: the broken rule (``rule``), the invalid fields
(``errors``), or the version the case is at (``current_version``). An unexpected error
answers 500 with a request id to quote and nothing of its message, which could carry case
data; the log has the details, without personal data.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from overleg.adapters.eventstore import StoreUnavailable
from overleg.aggregates.errors import CaseRuleBroken
from overleg.application import CaseNotFound, CommandOutcomeUnknown, KeyReused, StaleCase
from overleg.logs import get_logger
from overleg.policies.access import AccessDenied

PROBLEM_JSON = "application/problem+json"
log = get_logger("overleg.api")


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "type": "/problems/rule/chair-neutral",
                    "title": "Conflict",
                    "status": 409,
                    "detail": "The chair must be neutral: jongere-17 is a party of this case",
                    "instance": "/cases/6f1c2a9e-3d5b-4c8e-9a7f-0b1d2e3f4a5b/chair",
                    "rule": "chair-neutral",
                }
            ]
        },
    )

    type: str = Field(
        default="about:blank", description="A URI reference naming the kind of problem"
    )
    title: str = Field(description="A short summary of the kind of problem")
    status: int = Field(description="The HTTP status code")
    detail: str | None = Field(default=None, description="What went wrong this time")
    instance: str | None = Field(default=None, description="The request path")


class ProblemError(Exception):
    """Raised by handlers and dependencies to answer with a problem."""

    def __init__(
        self,
        status: int,
        kind: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.kind, self.detail = status, kind, detail
        self.headers = headers or {}
        self.extensions = extensions


def problem_response(
    request: Request,
    status: int,
    kind: str,
    detail: str | None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json response; ``kind`` becomes the type ``/problems/<kind>``."""
    body = Problem(
        type=f"/problems/{kind}",
        title=HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        **extensions,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


IF_MATCH_REQUIRED = 'A change to a case needs If-Match with the ETag of the case you read, e.g. "5"'


def _validation(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    if any(tuple(e["loc"]) == ("header", "if-match") for e in error.errors()):
        return problem_response(request, 428, "if-match-required", IF_MATCH_REQUIRED)
    errors = [
        {
            "where": ".".join(str(part) for part in e["loc"]),
            "problem": e["msg"],
            "type": e["type"],
        }
        for e in error.errors()
    ]
    summary = "; ".join(f"{e['where']}: {e['problem']}" for e in errors[:5])
    return problem_response(request, 422, "invalid-input", summary, errors=errors)


def _rule(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, CaseRuleBroken)
    return problem_response(request, 409, f"rule/{error.rule}", error.message, rule=error.rule)


def _stale(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StaleCase)
    return problem_response(
        request,
        412,
        "stale-version",
        str(error),
        headers={"ETag": f'"{error.actual}"'},
        current_version=error.actual,
    )


def _not_found(request: Request, error: Exception) -> JSONResponse:
    return problem_response(request, 404, "not-found", str(error))


def _denied(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AccessDenied)
    return problem_response(request, 403, "forbidden", error.message)


def _problem(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ProblemError)
    return problem_response(
        request, error.status, error.kind, error.detail, error.headers, **error.extensions
    )


def _http(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    kind = HTTPStatus(error.status_code).phrase.lower().replace(" ", "-")
    return problem_response(
        request, error.status_code, kind, str(error.detail), dict(error.headers or {})
    )


def _busy(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StoreUnavailable)
    cause = type(error.__cause__).__name__ if error.__cause__ else None
    log.warning("store_unavailable", error_type=cause, path=request.url.path)
    return problem_response(
        request,
        503,
        "store-busy",
        "The event store is busy or unreachable; nothing was recorded. Try again shortly.",
        headers={"Retry-After": "1"},
    )


def _key_reused(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, KeyReused)
    return problem_response(request, 422, "idempotency-key-reused", str(error))


def _outcome_unknown(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, CommandOutcomeUnknown)
    log.warning("outcome_unknown", path=request.url.path)
    return problem_response(
        request,
        503,
        "outcome-unknown",
        str(error),
        headers={"Retry-After": "1", "Idempotency-Key": error.key},
    )


def unexpected(request: Request, error: Exception) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    log.error("unexpected_error", error_type=type(error).__name__, path=request.url.path)
    return problem_response(
        request,
        500,
        "internal-error",
        "Something went wrong on our side. Quote the request id when you report it.",
        request_id=request_id,
    )


def install(api: FastAPI) -> None:
    """Register the mapping of every error to its problem, once."""
    api.add_exception_handler(RequestValidationError, _validation)
    api.add_exception_handler(CaseRuleBroken, _rule)
    api.add_exception_handler(StaleCase, _stale)
    api.add_exception_handler(CaseNotFound, _not_found)
    api.add_exception_handler(AccessDenied, _denied)
    api.add_exception_handler(ProblemError, _problem)
    api.add_exception_handler(HTTPException, _http)
    api.add_exception_handler(StoreUnavailable, _busy)
    api.add_exception_handler(KeyReused, _key_reused)
    api.add_exception_handler(CommandOutcomeUnknown, _outcome_unknown)
    api.add_exception_handler(Exception, unexpected)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems an endpoint can answer with."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
