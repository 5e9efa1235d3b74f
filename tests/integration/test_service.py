"""The HTTP service starts on each backend and reports its health."""

from __future__ import annotations

from fastapi.testclient import TestClient

from overleg import __version__
from overleg.api.app import create_app
from overleg.settings import Settings


def test_health_answers_once_the_store_is_open(database_url: str) -> None:
    backend = database_url.split(":", 1)[0]
    with TestClient(create_app(Settings(database_url=database_url))) as client:
        response = client.get("/health")
    assert response.status_code == 200
    health = response.json()
    assert {k: health[k] for k in ("status", "version", "backend")} == {
        "status": "ok",
        "version": __version__,
        "backend": backend,
    }
    assert health["failed_events"] == 0
    assert set(health["projections"]) == {"case_view", "audit_trail", "statistics", "bottlenecks"}
