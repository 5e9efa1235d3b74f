"""The FastAPI application factory: settings, store and keys are built at start-up, not import."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request, Response

from overleg import __version__
from overleg.api import problems, records
from overleg.api.auth import TokenVerifier, dev_private_key, load_jwks, public_jwks
from overleg.api.deps import Services
from overleg.api.routers import cases, figures, intake
from overleg.api.schemas import Health
from overleg.application import Overleg
from overleg.logs import configure as configure_logs
from overleg.logs import get_logger
from overleg.projections.runner import Projector
from overleg.projections.store import ViewStore
from overleg.projections.worker import BackgroundProjector
from overleg.settings import Settings
from overleg.storage import Database

log = get_logger("overleg.api")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

DESCRIPTION = """
Client consultations (cliëntoverleg) in Flemish youth care and local social services: from
the request, through consent and a neutral chair, to meetings, workplans and follow-ups.

* **Authentication**: an OAuth2 bearer token (JWT) on every request, except `/health`, the
  documentation, `/openapi.json` and the public request form (`POST /intake`).
* **Changes** to a case need `If-Match` with the case's ETag (its version); a stale version
  gets 412 and nothing is written.
* **Retries**: send an `Idempotency-Key` with a command; a retry returns the first response.
* **Errors** are RFC 9457 problem details naming the broken rule or the invalid field.
* **Confidentiality**: you read only cases you have a part in; every read is recorded.
"""


def verifier_for(config: Settings) -> TokenVerifier:
    """Production: the configured key set. Development: the local key's public half."""
    if config.jwks_file is not None:
        return TokenVerifier(load_jwks(config.jwks_file), config.jwt_issuer, config.jwt_audience)
    jwks = public_jwks(dev_private_key(config.dev_key_file))
    log.warning("development_tokens", detail="no OVERLEG_JWKS_FILE: accepting local dev tokens")
    return TokenVerifier(jwks, config.jwt_issuer, config.jwt_audience)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; the event store is opened when it starts and closed when it stops."""

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        config = settings or Settings()
        configure_logs(config.log_level)
        application = Overleg(Database.from_url(config.database_url))
        views = ViewStore(application.database)
        records.create_tables(views)
        inline = config.projections_inline(application.database.backend)
        background = None
        if inline:
            background = BackgroundProjector(
                Projector(application, ViewStore(application.database))
            )
            background.start()
        api.state.services = Services(
            app=application,
            views=views,
            projector=Projector(application, views),
            verifier=verifier_for(config),
            inline_projections=inline,
        )
        try:
            yield
        finally:
            if background is not None:
                background.close()
            views.close()
            application.close()

    api = FastAPI(
        title="overleg",
        version=__version__,
        summary="Client consultations (cliëntoverleg) in youth care and local social services.",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    problems.install(api)
    api.middleware("http")(_request_context)
    api.include_router(intake.router)
    api.include_router(cases.router)
    api.include_router(figures.router)

    @api.get("/health", tags=["service"])
    def health(request: Request) -> Health:
        """Whether the service runs and its event store answers."""
        services: Services = request.app.state.services
        services.app.recorder.max_notification_id()
        return Health(status="ok", version=__version__, backend=services.app.database.backend)

    return api


async def _request_context(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """A request id on every log line and response; one access line per request."""
    given = request.headers.get("x-request-id", "")
    request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex[:16]
    request.state.request_id = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    try:
        response = await call_next(request)
    except Exception as error:  # answered here, so the answer keeps its request id
        response = problems.unexpected(request, error)
    response.headers["X-Request-ID"] = request_id
    principal = getattr(request.state, "principal", None)
    route = request.scope.get("route")
    log.info(
        "request",
        method=request.method,
        route=getattr(route, "path", None),
        status=response.status_code,
        role=None if principal is None else principal.role.value,
        ms=round((time.perf_counter() - started) * 1000, 1),
    )
    return response
