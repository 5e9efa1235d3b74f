"""The FastAPI application factory: settings, store and keys are built at start-up, not import."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from overleg import __version__
from overleg.api import docs, headers, observability, openapi, problems
from overleg.api.bodies import BodyLimits
from overleg.api.ratelimits import RateLimits
from overleg.api.routers import cases, figures, intake
from overleg.api.schemas import Health, ProjectionHealth
from overleg.bootstrap import Services, bootstrap, read_settings
from overleg.logs import configure as configure_logs
from overleg.logs import get_logger
from overleg.settings import Settings

log = get_logger("overleg.api")
_REQUEST_ID = re.compile(headers.REQUEST_ID_PATTERN)

DESCRIPTION = """
Client consultations (cliëntoverleg) in Flemish youth care and local social services: from
the request, through consent and a neutral chair, to meetings, workplans and follow-ups.

* **Authentication**: an OAuth2 bearer token (JWT) on every request, except `/health`, the
  documentation, `/openapi.json` and the public request form (`POST /intake`).
* **Changes** to a case need `If-Match` with the case's ETag (its version); a stale version
  gets 412 and nothing is written.
* **Retries**: send an `Idempotency-Key` with a command; a retry returns the first response.
* **Errors** are RFC 9457 problem details naming the broken rule or the invalid field; each
  operation lists every status it can answer, with an example of each kind of problem.
* **Language**: a problem's words are English, or Dutch when `Accept-Language` asks for it
  (`nl-BE`, `nl`); `Content-Language` says which. `type`, `rule` and the fields named are the
  same in both.
* **Limits**: a request body of at most `OVERLEG_MAX_BODY_BYTES` (413), sent within
  `OVERLEG_BODY_TIMEOUT` seconds (408); per client address, at most
  `OVERLEG_INTAKE_RATE_LIMIT` request forms and `OVERLEG_SIGNIN_FAILURE_RATE_LIMIT` requests
  without a valid bearer token (429 with `Retry-After`).
* **Confidentiality**: you read only cases you have a part in; every read is recorded.
* **Scope**: a token names its holder's `programme` and, for a continuity team, its area: the
  `region` in integrale_jeugdhulp, the `municipality` in lokaal_clientoverleg. A team works on
  the cases of its programme and area only; a team token without its area is refused (403).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; the event store is opened when it starts and closed when it stops."""
    config = settings or read_settings()

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        configure_logs(config.log_level)
        services = bootstrap(config, follow=True)
        try:
            services.reads  # noqa: B018 - the service's own tables exist before requests
            services.verifier  # noqa: B018 - a broken key set stops the start, not a request
            services.feed  # noqa: B018 - made once, before requests race to make it
            services.watch_writes()  # kept cases answered on the event loop
            await services.views.open_on_loop()  # PostgreSQL: the loop's own reads
            api.state.services = services
            lag = observability.watch(services)
            try:
                yield
            finally:
                observability.unwatch(lag)
                await services.views.close_on_loop()  # its connections belong to this loop
        finally:
            services.close()

    api = FastAPI(
        title="overleg",
        version=__version__,
        summary="Client consultations (cliëntoverleg) in youth care and local social services.",
        description=DESCRIPTION,
        lifespan=lifespan,
        responses=problems.responses(*openapi.EVERY_OPERATION),
        docs_url=None,  # served by api/docs.py, from packaged assets
        redoc_url=None,
        # The framework's own OpenTelemetry is off: its spans carry each request's path, a
        # case id in it, to whatever provider the process has; the service's metrics are
        # its own (``/metrics``, by route template). Off, it costs a request nothing.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    api.state.rate_limits = RateLimits.from_settings(config)
    problems.install(api)
    openapi.install(api)
    docs.install(api)
    # Added first, so it runs inside the request context: its refusals carry a request id.
    api.add_middleware(BodyLimits, max_bytes=config.max_body_bytes, timeout=config.body_timeout)
    api.add_middleware(RequestContext)
    api.include_router(cases.queries)  # reads first: the most asked, matched first
    api.include_router(figures.router)
    api.include_router(intake.router)
    api.include_router(cases.router)
    api.include_router(observability.router)

    @api.get("/health", tags=["service"], responses=problems.responses(problems.STORE_BUSY))
    def health(request: Request) -> Health:
        """Whether the service runs and its event store answers, and how far each projection
        is behind it."""
        services: Services = request.app.state.services
        head = services.app.event_log.head()
        projector = services.projector
        return Health(
            status="ok",
            version=__version__,
            backend=services.app.database.backend,
            projections={
                name: ProjectionHealth(position=position, behind=max(0, head - position))
                for name, position in projector.positions().items()
            },
            failed_events=len(projector.failures()),
        )

    return api


class RequestContext:
    """A request id on every log line and response; one access line and the request
    metrics (``observability.observed``) per request; the API's content policy on every
    answer that sets none (``docs.secured``).

    Plain ASGI middleware: it only looks at the response's start, so a request costs no
    extra task or copy of the body (as a ``BaseHTTPMiddleware`` would)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The service names every request itself: a caller's X-Request-ID is kept beside
        # that name (in the logs and the read log), never instead of it, so no caller can
        # choose or reuse the id an auditor finds in the read log.
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = uuid.uuid4().hex[:16]
        caller_request_id = given if _REQUEST_ID.match(given) else None
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        state["caller_request_id"] = caller_request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        if caller_request_id is not None:
            structlog.contextvars.bind_contextvars(caller_request_id=caller_request_id)
        started = time.perf_counter()
        status = 500
        answering = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answering
            if message["type"] == "http.response.start":
                answering = True
                status = message["status"]
                answer = MutableHeaders(scope=message)
                answer["X-Request-ID"] = request_id
                docs.secured(answer)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:  # answered here, so the answer keeps its request id
            if answering:
                raise
            answer = problems.unexpected(Request(scope), error)
            await answer(scope, receive, send_with_id)
        seconds = time.perf_counter() - started
        route = getattr(scope.get("route"), "path", None)
        observability.observed(scope["method"], route, status, seconds)
        principal = state.get("principal")
        log.info(
            "request",
            method=scope["method"],
            route=route,
            status=status,
            role=None if principal is None else principal.role.value,
            ms=round(seconds * 1000, 1),
        )
