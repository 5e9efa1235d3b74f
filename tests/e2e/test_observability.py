"""What an operator's monitoring reads: liveness, readiness with the projections' lag, and
Prometheus metrics per route and status, events, refusals and lag, none of them naming a case."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from api_client import Walk, settings_for
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace

from overleg.api.app import create_app


@pytest.fixture
def client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    # Nobody applies the projections here (no worker runs), so they fall behind at once.
    settings = settings_for(database_url, tmp_path, projections="worker", ready_max_lag=0)
    with TestClient(create_app(settings)) as test_client:
        test_client.app.state.test_settings = settings  # type: ignore[attr-defined]
        yield test_client


def _value(metrics: str, name: str, **labels: str) -> float:
    """One sample of the exposition text (0 when it is not there)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in metrics.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and ",".join(sorted((match.group(1) or "").split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def test_live_ready_and_metrics(client: TestClient) -> None:
    settings = client.app.state.test_settings  # type: ignore[attr-defined]
    live = client.get("/health/live")
    assert live.status_code == 200 and live.json()["status"] == "ok"
    assert client.get("/health/ready").json() == {
        "status": "ready",
        "lag": {"case_view": 0, "audit_trail": 0, "statistics": 0, "bottlenecks": 0},
    }
    before = client.get("/metrics").text

    walk = Walk(client, settings)
    walk.request()
    refused = walk.send("POST", "/reopen", walk.team, {"reason": "x"})
    assert refused.status_code == 409  # it is not closed
    assert client.get(f"/cases/{walk.case_id}", headers=walk.team).status_code == 200

    ready = client.get("/health/ready")
    assert ready.status_code == 503 and ready.headers["Retry-After"] == "5"
    assert ready.headers["Content-Type"] == "application/problem+json"
    assert ready.json()["type"] == "/problems/not-ready"
    assert ready.json()["lag"]["case_view"] == 1
    assert "projection case_view is 1 events behind (at most 0)" in ready.json()["problems"]

    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    labels = {"handler": "/cases/{case_id}", "method": "GET", "status": "200"}
    assert _value(text, "http_requests_total", **labels) >= 1
    assert "http_request_duration_seconds_bucket" in text
    for name, label in (
        ("overleg_events_appended_total", {"type": "Requested"}),
        ("overleg_commands_refused_total", {"rule": "reopen-after-close"}),
    ):
        assert _value(text, name, **label) == _value(before, name, **label) + 1, name
    assert _value(text, "overleg_projection_lag_events", projection="case_view") == 1
    assert walk.case_id not in text  # routes by template: no case id, no reference


def test_requests_are_counted_by_route_template_never_by_path(client: TestClient) -> None:
    """A path no route takes is counted as ``none`` (a case id in it is never a label), and
    a method nobody serves as ``OTHER``: the series stay few whatever callers send."""
    stray = "/nowhere/5f0c3c0e-2b7d-4c61-9d0e-0c1d2e3f4a5b"
    before = client.get("/metrics").text
    assert client.get(stray).status_code == 404
    assert client.request("BREW", "/health/live").status_code == 405
    assert client.get("/metrics").status_code == 200
    text = client.get("/metrics").text
    for labels in (
        {"handler": "none", "method": "GET", "status": "404"},
        {"handler": "/health/live", "method": "OTHER", "status": "405"},
    ):
        name = "http_requests_total"
        assert _value(text, name, **labels) == _value(before, name, **labels) + 1, labels
    assert "nowhere" not in text and "BREW" not in text
    assert 'handler="/metrics"' not in text  # the scrapes themselves are not counted
    seconds = _value(text, "http_request_duration_seconds_count", handler="none", method="GET")
    assert seconds >= 1


class _Recording(trace.TracerProvider):
    """A tracer provider an operator's process could have, recording every tracer asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def get_tracer(self, instrumenting_module_name: str, *args: Any, **kwargs: Any) -> Any:
        self.asked.append(instrumenting_module_name)
        return trace.NoOpTracer()


def test_no_request_is_traced_to_an_opentelemetry_provider(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The framework's own OpenTelemetry is off: its spans would carry each request's path,
    a case id in it, to whatever the process's provider sends them. Its metrics are the
    service's (``/metrics``, by route template)."""
    provider = _Recording()
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    walk = Walk(client, client.app.state.test_settings)  # type: ignore[attr-defined]
    walk.request()
    assert client.get(f"/cases/{walk.case_id}", headers=walk.team).status_code == 200
    assert provider.asked == []

    bare = FastAPI()  # the framework's default, so that this test can fail
    bare.get("/")(lambda: {})
    with TestClient(bare) as bare_client:
        assert bare_client.get("/").status_code == 200
    assert provider.asked != []
