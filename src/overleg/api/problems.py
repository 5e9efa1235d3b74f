"""Errors as RFC 9457 problem details (``application/problem+json``), mapped in one place.

Every refusal names what is wrong: the broken rule (``rule``) and the case's rule set
(``rule_set``), the invalid fields (``errors``), or the version the case is at
(``current_version``). An unexpected error
answers 500 with a request id to quote and nothing of its message, which could carry case
data; the log has the details, without personal data.

Each kind of problem the service gives is a ``Kind`` below, with the example and the
headers the OpenAPI description declares for it: what is answered and what is described
come from the same place.

A problem is answered in the language of the request's ``Accept-Language`` (English or
Dutch, nl-BE; English when it names neither): its ``title``, its ``detail`` and every other
text of it a person reads (``errors[].problem``, say) are ``Message``s until
``problem_response`` renders them, the one place that does. What a program reads (``type``,
``rule``, ``rule_set``, ``errors[].where`` and ``errors[].type``, ``current_version``,
``request_id``) is the same in every language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

from overleg.adapters.eventstore import DamagedStore, StoreUnavailable
from overleg.adapters.views import TablesMissing
from overleg.aggregates.errors import CaseRuleBroken
from overleg.api import headers
from overleg.application import CaseNotFound, CommandOutcomeUnknown, KeyReused, StaleCase
from overleg.i18n import Language, Message, _, from_accept_language, joined, text_of, translate
from overleg.logs import get_logger
from overleg.policies.access import AccessDenied
from overleg.projections.runner import ProjectionBehind
from overleg.validation import explain

PROBLEM_JSON = "application/problem+json"
# Every problem names the language its words are in, and that they depend on the request's.
LANGUAGE_HEADERS = (headers.CONTENT_LANGUAGE, headers.VARY)
log = get_logger("overleg.api")
_CASE = "/cases/6f1c2a9e-3d5b-4c8e-9a7f-0b1d2e3f4a5b"

# The title of each status the service answers with: the HTTP status phrase, in English.
TITLES: dict[int, Message] = {
    400: _("Bad Request"),
    401: _("Unauthorized"),
    403: _("Forbidden"),
    404: _("Not Found"),
    405: _("Method Not Allowed"),
    408: _("Request Timeout"),
    409: _("Conflict"),
    412: _("Precondition Failed"),
    413: _("Request Entity Too Large"),
    422: _("Unprocessable Entity"),
    428: _("Precondition Required"),
    429: _("Too Many Requests"),
    500: _("Internal Server Error"),
    503: _("Service Unavailable"),
}


def title(status: int) -> str:
    """A problem's title: its status phrase, a ``Message`` for every status the service
    gives (any other is the English phrase)."""
    return TITLES.get(status) or HTTPStatus(status).phrase


def language_of(request: Request) -> Language:
    """The language to answer ``request`` in: its ``Accept-Language``'s, else English."""
    return from_accept_language(request.headers.get("accept-language"))


def _rendered(value: Any, language: Language) -> Any:
    """``value`` with every ``Message`` in it (in lists and objects too) rendered."""
    if isinstance(value, str):
        return translate(value, language)
    if isinstance(value, list | tuple):
        return [_rendered(item, language) for item in value]
    if isinstance(value, dict):
        return {key: _rendered(item, language) for key, item in value.items()}
    return value


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
                    "detail": "The chair must be neutral: jongere-17 is a party of this case "
                    "(rule set v2)",
                    "instance": f"{_CASE}/chair",
                    "rule": "chair-neutral",
                    "rule_set": "v2",
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
    rule: str | None = Field(
        default=None, description="With a 409: the rule of the case the command would break"
    )
    rule_set: str | None = Field(
        default=None,
        description="With a 409: the rule set the case keeps (v1 or v2: those in force when "
        "it was requested)",
    )


def problem_response(
    request: Request,
    status: int,
    kind: str,
    detail: str | None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    """A problem+json response; ``kind`` becomes the type ``/problems/<kind>``. Its title,
    its detail and every ``Message`` among its extensions are said in the request's
    language, which ``Content-Language`` names."""
    language = language_of(request)
    body = Problem(
        type=f"/problems/{kind}",
        title=translate(title(status), language),
        status=status,
        detail=None if detail is None else translate(detail, language),
        instance=request.url.path,
        **{name: _rendered(value, language) for name, value in extensions.items()},
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers={
            **(headers or {}),
            "Content-Language": language.value,
            "Vary": "Accept-Language",
        },
    )


@dataclass(frozen=True)
class Kind:
    """One kind of problem: its status and type, when it is given, the headers that come
    with it, and the example the OpenAPI description shows."""

    name: str
    status: int
    when: str
    detail: str
    instance: str
    extensions: dict[str, Any] = field(default_factory=dict)
    headers: tuple[str, ...] = ()
    optional_headers: tuple[str, ...] = ()
    type: str = ""

    @property
    def kind(self) -> str:
        """The part of the type after ``/problems/``."""
        return self.type or self.name

    @property
    def example(self) -> dict[str, Any]:
        return {
            "type": f"/problems/{self.kind}",
            "title": title(self.status),
            "status": self.status,
            "detail": self.detail,
            "instance": self.instance,
            **self.extensions,
        }

    def answer(
        self,
        request: Request,
        detail: str,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> JSONResponse:
        """This problem, as the answer to ``request``."""
        return problem_response(request, self.status, self.kind, detail, headers, **extensions)

    def error(
        self, detail: str, headers: dict[str, str] | None = None, **extensions: Any
    ) -> ProblemError:
        """This problem, to raise from a handler or a dependency."""
        return ProblemError(self.status, self.kind, detail, headers, **extensions)


MALFORMED_BODY = Kind(
    "malformed-body",
    400,
    "the body is not JSON text (UTF-8)",
    "The body is not JSON: Expecting ',' delimiter (line 1, column 18)",
    "/cases",
)
UNAUTHORIZED = Kind(
    "unauthorized",
    401,
    "no bearer token, or one that is not valid",
    "The bearer token is not valid: Signature has expired",
    "/cases",
    headers=(headers.WWW_AUTHENTICATE,),
)
FORBIDDEN = Kind(
    "forbidden",
    403,
    "the role may not do this, the caller has no part in the case, or the token does not "
    "name the area a continuity team works in",
    "Only a chair may register a meeting",
    f"{_CASE}/meetings",
)
NOT_FOUND = Kind("not-found", 404, "no such case", f"No case {_CASE[7:]}", _CASE)
REQUEST_TIMEOUT = Kind(
    "request-timeout",
    408,
    "the body did not arrive in time (OVERLEG_BODY_TIMEOUT); the connection is closed",
    "The request body did not arrive within 10 seconds",
    "/intake",
)
RULE_BROKEN = Kind(
    "rule",
    409,
    "a rule of the case is broken; `rule` names it and `rule_set` the case's rule set (v1, v2)",
    "The chair must be neutral: jongere-17 is a party of this case (rule set v2)",
    f"{_CASE}/chair",
    {"rule": "chair-neutral", "rule_set": "v2"},
    type="rule/chair-neutral",
)
STALE_VERSION = Kind(
    "stale-version",
    412,
    "If-Match names another version than the case's; `current_version` and the ETag say "
    "which it is at, and nothing was written",
    f"Case {_CASE[7:]} is at version 5, not 4: reload it and try again",
    f"{_CASE}/meetings/1/registration",
    {"current_version": 5},
    headers=(headers.ETAG,),
)
CONTENT_TOO_LARGE = Kind(
    "content-too-large",
    413,
    "the body is larger than the service takes (OVERLEG_MAX_BODY_BYTES); it is not read and "
    "the connection is closed",
    "The request body is larger than 1000000 bytes",
    "/intake",
)
INVALID_INPUT = Kind(
    "invalid-input",
    422,
    "a body, parameter or header is not what the operation takes; `errors` lists each",
    "body.held_on: Input should be a valid date or datetime, invalid character in year",
    f"{_CASE}/meetings",
    {
        "errors": [
            {
                "where": "body.held_on",
                "problem": "Input should be a valid date or datetime, invalid character in year",
                "type": "date_from_datetime_parsing",
            }
        ]
    },
)
KEY_REUSED = Kind(
    "idempotency-key-reused",
    422,
    "the Idempotency-Key was used for another request",
    "The Idempotency-Key 'meeting-1' was used for a different request; use a new key",
    f"{_CASE}/meetings",
)
IF_MATCH_REQUIRED = Kind(
    "if-match-required",
    428,
    "a change to a case without If-Match (or with one that is not a single ETag)",
    _('A change to a case needs If-Match with the ETag of the case you read, e.g. "5"'),
    f"{_CASE}/chair",
)
INTAKE_LIMITED = Kind(
    "intake-rate-limited",
    429,
    "this address sent more request forms than OVERLEG_INTAKE_RATE_LIMIT allows",
    "Too many request forms from your address (at most 30 per 1 minute); try again later",
    "/intake",
    headers=(headers.RETRY_AFTER,),
    type="too-many-requests",
)
SIGN_IN_LIMITED = Kind(
    "sign-in-rate-limited",
    429,
    "this address sent more requests without a valid bearer token than "
    "OVERLEG_SIGNIN_FAILURE_RATE_LIMIT allows",
    "Too many requests without a valid bearer token from your address (at most 20 per 1 "
    "minute); try again later",
    "/cases",
    headers=(headers.RETRY_AFTER,),
    type="too-many-requests",
)
INTERNAL_ERROR = Kind(
    "internal-error",
    500,
    "anything unexpected; only a `request_id` to quote (also in X-Request-ID)",
    _("Something went wrong on our side. Quote the request id when you report it."),
    "/cases",
    {"request_id": "b7c1d0e2a3f44e5d"},
)
STORE_BUSY = Kind(
    "store-busy",
    503,
    "the event store is unreachable, locked or overloaded; nothing was recorded",
    _("The event store is busy or unreachable; nothing was recorded. Try again shortly."),
    "/cases",
    headers=(headers.RETRY_AFTER,),
)
NOT_READY = Kind(
    "not-ready",
    503,
    "the event store does not answer, or a projection is more than OVERLEG_READY_MAX_LAG "
    "events behind it: send no traffic here yet; or, for a list or figures, the projection "
    "they are read from is that far behind, or (PostgreSQL, after an upgrade) not built "
    "for this version yet; nothing was recorded",
    "Not ready: projection case_view is 25,000 events behind (at most 10,000)",
    "/health/ready",
    {
        "lag": {"case_view": 25000, "audit_trail": 0, "statistics": 0, "bottlenecks": 0},
        "problems": ["projection case_view is 25,000 events behind (at most 10,000)"],
    },
    headers=(headers.RETRY_AFTER,),
)
OUTCOME_UNKNOWN = Kind(
    "outcome-unknown",
    503,
    "the store went away while the command was committed; the same request with the "
    "Idempotency-Key given tells whether it was recorded",
    "The event store stopped answering while this command was being recorded; it may or may "
    "not have been recorded. Send the same request with Idempotency-Key 7d0c1c9e-meeting-1 "
    "to find out: if it was recorded you get its answer, otherwise it is recorded now.",
    f"{_CASE}/meetings",
    headers=(headers.RETRY_AFTER, headers.IDEMPOTENCY_KEY),
)


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


IF_MATCH_REQUIRED_DETAIL = IF_MATCH_REQUIRED.detail
MALFORMED_BODY_DETAIL = _("The body is not JSON text in UTF-8")


def _validation(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    found = error.errors()
    if any(tuple(e["loc"]) == ("header", "if-match") for e in found):
        return IF_MATCH_REQUIRED.answer(request, IF_MATCH_REQUIRED_DETAIL)
    not_json = [e for e in found if e["type"] == "json_invalid"]
    if not_json:  # not JSON at all, rather than JSON that is not what the operation takes
        reason = not_json[0].get("ctx", {}).get("error")
        detail = (
            _("The body is not JSON: {reason}", reason=str(reason))
            if reason
            else MALFORMED_BODY_DETAIL
        )
        return MALFORMED_BODY.answer(request, detail)
    errors = [
        {
            "where": ".".join(str(part) for part in e["loc"]),
            "problem": explain(e),
            "type": e["type"],
        }
        for e in found
    ]
    summary = joined(
        [_("{where}: {problem}", where=e["where"], problem=e["problem"]) for e in errors[:5]],
        "; ",
    )
    return INVALID_INPUT.answer(request, summary, errors=errors)


def _rule(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, CaseRuleBroken)
    return problem_response(
        request,
        409,
        f"rule/{error.rule}",
        _("{message} (rule set {rule_set})", message=error.message, rule_set=error.rule_set)
        if error.rule_set
        else error.message,
        rule=error.rule,
        rule_set=error.rule_set,
    )


def _stale(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StaleCase)
    return STALE_VERSION.answer(
        request, text_of(error), {"ETag": f'"{error.actual}"'}, current_version=error.actual
    )


def _not_found(request: Request, error: Exception) -> JSONResponse:
    return NOT_FOUND.answer(request, text_of(error))


def _denied(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AccessDenied)
    return FORBIDDEN.answer(request, error.message)


def _problem(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ProblemError)
    return problem_response(
        request, error.status, error.kind, error.detail, error.headers, **error.extensions
    )


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the request's path answers, not only the first route's:
    those the router matches fully."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


def _http(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, HTTPException)
    given = dict(error.headers or {})
    if error.status_code == 400:  # the framework could not read the body as JSON text
        return MALFORMED_BODY.answer(request, MALFORMED_BODY_DETAIL, given)
    if error.status_code == 405:
        given["Allow"] = ", ".join(allowed_methods(request))
    phrase = HTTPStatus(error.status_code).phrase
    kind = phrase.lower().replace(" ", "-")
    # The framework's own refusals (no such path, no such method) say their status phrase.
    detail = title(error.status_code) if error.detail == phrase else str(error.detail)
    return problem_response(request, error.status_code, kind, detail, given)


def _busy(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StoreUnavailable)
    cause = type(error.__cause__).__name__ if error.__cause__ else None
    log.warning("store_unavailable", error_type=cause, path=request.url.path)
    return STORE_BUSY.answer(request, STORE_BUSY.detail, {"Retry-After": "1"})


# Seconds a caller is asked to wait before asking again while the service is not ready
# (``/health/ready``), or the projection a list or figures are read from is too far behind
# or not built for this version yet (PostgreSQL, after an upgrade, until the worker has).
NOT_READY_RETRY = 5


def behind_reason(name: str, behind: int, limit: int) -> Message:
    """How a projection further behind the log than ``OVERLEG_READY_MAX_LAG`` is said: by
    readiness, and by a read refused for it alike."""
    return _(
        "projection {name} is {behind:,} events behind (at most {limit:,})",
        name=name,
        behind=behind,
        limit=limit,
    )


def _not_built(request: Request, error: Exception) -> JSONResponse:
    """A read of projections whose tables this version does not find yet (PostgreSQL: the
    worker that builds them is not upgraded or not started yet): not ready, nothing
    recorded (the read's record is written after its answer is read)."""
    assert isinstance(error, TablesMissing)
    log.warning("projections_not_built", path=request.url.path)
    return NOT_READY.answer(
        request,
        _(
            "Not ready: the projections this answer is read from are not built for this "
            "version yet (overleg worker builds them); nothing was recorded. Try again shortly."
        ),
        {"Retry-After": str(NOT_READY_RETRY)},
    )


def _behind(request: Request, error: Exception) -> JSONResponse:
    """A read of a projection further behind the log than readiness allows: not ready, as
    ``/health/ready`` says, with the projection's lag; nothing recorded."""
    assert isinstance(error, ProjectionBehind)
    log.warning("projection_behind", projection=error.name, behind=error.behind)
    reason = behind_reason(error.name, error.behind, error.limit)
    return NOT_READY.answer(
        request,
        _("Not ready: {reasons}", reasons=reason),
        {"Retry-After": str(NOT_READY_RETRY)},
        lag={error.name: error.behind},
        problems=[reason],
    )


def _key_reused(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, KeyReused)
    return KEY_REUSED.answer(request, text_of(error))


def _outcome_unknown(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, CommandOutcomeUnknown)
    log.warning("outcome_unknown", path=request.url.path)
    return OUTCOME_UNKNOWN.answer(
        request, text_of(error), {"Retry-After": "1", "Idempotency-Key": error.key}
    )


def unexpected(request: Request, error: Exception) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None)
    log.error("unexpected_error", error_type=type(error).__name__, path=request.url.path)
    return INTERNAL_ERROR.answer(request, INTERNAL_ERROR.detail, request_id=request_id)


def _damaged(request: Request, error: Exception) -> JSONResponse:
    """A store holding an event overleg did not record as it is: the operator learns where
    from the log (case and seq, never content); the caller gets the request id only."""
    assert isinstance(error, DamagedStore)
    request_id = getattr(request.state, "request_id", None)
    log.error(
        "store_damaged",
        case_id=str(error.case_id),
        seq=error.seq,
        path=request.url.path,
        hint="run overleg verify",
    )
    return INTERNAL_ERROR.answer(request, INTERNAL_ERROR.detail, request_id=request_id)


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
    api.add_exception_handler(DamagedStore, _damaged)
    api.add_exception_handler(TablesMissing, _not_built)
    api.add_exception_handler(ProjectionBehind, _behind)
    api.add_exception_handler(KeyReused, _key_reused)
    api.add_exception_handler(CommandOutcomeUnknown, _outcome_unknown)
    api.add_exception_handler(Exception, unexpected)


def responses(*kinds: Kind) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the problems an operation can answer with: per status, an example
    of each kind and the headers that come with them."""
    by_status: dict[int, list[Kind]] = {}
    for kind in kinds:
        by_status.setdefault(kind.status, []).append(kind)
    entries: dict[int | str, dict[str, Any]] = {}
    for status, group in sorted(by_status.items()):
        always = set.intersection(*(set(k.headers) for k in group)) | set(LANGUAGE_HEADERS)
        sometimes = {h for k in group for h in (*k.headers, *k.optional_headers)} - always
        whens = "; or ".join(k.when for k in group)
        entry: dict[str, Any] = {
            "description": f"{HTTPStatus(status).phrase}: {whens}",
            "content": {
                PROBLEM_JSON: {
                    "schema": {"$ref": "#/components/schemas/Problem"},
                    "examples": {k.name: {"summary": k.when, "value": k.example} for k in group},
                }
            },
        }
        entry["headers"] = headers.declare(tuple(sorted(always)), tuple(sorted(sometimes)))
        entries[status] = entry
    return entries
