"""Liveness, readiness and Prometheus metrics.

- ``GET /health/live``: the process answers (nothing else is asked; a restart helps only when
  this fails).
- ``GET /health/ready``: the event store answers and every projection is at most
  ``OVERLEG_READY_MAX_LAG`` events behind it; otherwise a 503 problem (``not-ready``) that
  names what is not ready, with each projection's lag (send no traffic here until it is).
- ``GET /metrics``: requests per method, route template and status and their latency
  (counted by ``RequestContext`` in ``api/app.py``, see ``observed``), events appended per
  type, commands refused per rule, import lines and seconds (``overleg/metrics.py``), and each
  projection's lag and failed events, read when scraped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from overleg import __version__, metrics
from overleg.adapters.eventstore import StoreUnavailable
from overleg.api import problems
from overleg.api.schemas import Liveness, Readiness
from overleg.bootstrap import Services
from overleg.i18n import _, joined

router = APIRouter(tags=["service"])


@router.get("/health/live")
def live() -> Liveness:
    """The process runs and answers (it asks nothing of the store)."""
    return Liveness(status="ok", version=__version__)


@router.get(
    "/health/ready",
    responses=problems.responses(problems.NOT_READY, problems.STORE_BUSY),
)
def ready(request: Request) -> Any:
    """Whether to send traffic here: the event store answers and every projection is at
    most ``OVERLEG_READY_MAX_LAG`` events behind it. 503 names what is not ready."""
    services: Services = request.app.state.services
    limit = services.settings.ready_max_lag
    reasons: list[str] = []  # in words users read, said in the request's language
    lag: dict[str, int] = {}
    try:
        head = services.app.event_log.head()
        lag = {
            name: max(0, head - position)
            for name, position in services.projector.positions().items()
        }
    except StoreUnavailable as unavailable:
        reasons.append(_("the event store does not answer: {detail}", detail=unavailable.detail))
    reasons += [
        problems.behind_reason(name, behind, limit)
        for name, behind in sorted(lag.items())
        if behind > limit
    ]
    if reasons:
        return problems.NOT_READY.answer(
            request,
            _("Not ready: {reasons}", reasons=joined(reasons, "; ")),
            {"Retry-After": str(problems.NOT_READY_RETRY)},
            lag=lag,
            problems=reasons,
        )
    return Readiness(status="ready", lag=lag)


class ProjectionLag(Collector):
    """Each projection's lag (events not yet applied) and failed events, read when scraped."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[GaugeMetricFamily]:
        lag = GaugeMetricFamily(
            "overleg_projection_lag_events",
            "Events recorded and not yet applied, by projection",
            labels=["projection"],
        )
        failed = GaugeMetricFamily(
            "overleg_projection_failed_events", "Events a projection set aside"
        )
        try:
            head = self.services.app.event_log.head()
            for name, position in self.services.projector.positions().items():
                lag.add_metric([name], max(0, head - position))
            failed.add_metric([], len(self.services.projector.failures()))
        except StoreUnavailable:
            return  # the store does not answer: no figure rather than a wrong one
        yield lag
        yield failed


@router.get("/metrics", include_in_schema=False)
def exposed() -> Response:
    """Every metric of the process, in Prometheus' text format (read on a thread: the
    projections' lag asks the store)."""
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNROUTED = "none"  # the handler of a request no route took: never its path (a case id)
_Observers = tuple[Any, Any]
_observers: dict[tuple[str, str, int], _Observers] = {}


def observed(method: str, route: str | None, status: int, seconds: float) -> None:
    """Count one answered request and its latency, by method, route template and status.

    Called once per request on the event loop, so the labelled series are looked up in a
    dict of their own (they are few: routes x methods x statuses, any other method counted
    as ``OTHER``), not resolved by the client library each time; ``/metrics`` itself is not
    counted."""
    verb = method if method in METHODS else "OTHER"
    handler = route or UNROUTED
    key = (verb, handler, status)
    found = _observers.get(key)
    if found is None:
        if handler == "/metrics":
            return
        labelled = (
            metrics.REQUESTS.labels(verb, handler, str(status)),
            metrics.REQUEST_SECONDS.labels(verb, handler),
        )
        found = _observers.setdefault(key, labelled)
    count, latency = found
    count.inc()
    latency.observe(seconds)


_WATCHED: list[Services] = []  # the services of this process, newest last


class _Watched(Collector):
    """The one collector of the process: the projections of the newest running service."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if _WATCHED:
            yield from ProjectionLag(_WATCHED[-1]).collect()


REGISTRY.register(_Watched())


def watch(services: Services) -> Services:
    """Publish the projections' lag of these services (until ``unwatch``)."""
    _WATCHED.append(services)
    return services


def unwatch(services: Services) -> None:
    _WATCHED.remove(services)
