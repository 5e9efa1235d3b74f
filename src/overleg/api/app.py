"""The FastAPI application factory: builds settings and the store at start-up, not at import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from pydantic import BaseModel

from overleg import __version__
from overleg.application import Overleg
from overleg.settings import Settings
from overleg.storage import Database


class Health(BaseModel):
    """The service is up and its event store answers."""

    status: str
    version: str
    backend: str


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service; the event store is opened when it starts and closed when it stops."""

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        config = settings or Settings()
        application = Overleg(Database.from_url(config.database_url))
        api.state.overleg = application
        try:
            yield
        finally:
            application.close()

    api = FastAPI(
        title="overleg",
        version=__version__,
        summary="Client consultations (cliëntoverleg) in youth care and local social services.",
        lifespan=lifespan,
    )

    @api.get("/health", tags=["service"])
    def health(request: Request) -> Health:
        """Whether the service runs and its event store answers."""
        application: Overleg = request.app.state.overleg
        application.recorder.max_notification_id()
        return Health(status="ok", version=__version__, backend=application.database.backend)

    return api
