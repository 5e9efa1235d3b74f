"""Annual statistics and reported bottlenecks, for analysts, auditors and continuity teams."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Annotated, cast

from fastapi import APIRouter, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from overleg.adapters.views import ViewStore
from overleg.aggregates.values import Programme
from overleg.api.answers import JSONBytes, rendered
from overleg.api.deps import SIGN_IN_PROBLEMS, Caller, Svc
from overleg.api.problems import FORBIDDEN, INVALID_INPUT, NOT_READY, STORE_BUSY, responses
from overleg.bootstrap import Services
from overleg.policies import access
from overleg.policies.rules import BRUSSELS
from overleg.projections.bottlenecks import BottleneckReport, Bottlenecks, bottleneck_report
from overleg.projections.statistics import (
    AnnualStatistics,
    KnownAt,
    Statistics,
    annual_statistics,
)

router = APIRouter(tags=["figures"])

FIGURES_PROBLEMS = responses(*SIGN_IN_PROBLEMS, FORBIDDEN, INVALID_INPUT, STORE_BUSY, NOT_READY)
Year = Annotated[int, Path(ge=1900, le=2999, description="Calendar year")]
AsKnownAt = Annotated[
    KnownAt | None,
    Query(
        description="Count only what was recorded at or before this instant (ISO 8601 with "
        "its UTC offset; write + as %2B): the figures as they could have been published then",
        examples=["2016-03-01T00:00:00Z"],
    ),
]


@router.get(
    "/statistics/{year}",
    summary="Annual statistics",
    responses=FIGURES_PROBLEMS,
    response_model=Statistics,
)
async def statistics(
    year: Year,
    who: Caller,
    svc: Svc,
    programme: Programme | None = None,
    as_known_at: AsKnownAt = None,
) -> Response:
    """Meetings per region, first and follow-up, planned and not held, attendance and
    outcomes of the fully registered meetings, designated coordinators and bottlenecks per
    theme: exactly `overleg stats YEAR [--programme P] [--as-known-at INSTANT] --format
    json`."""
    access.may_read_figures(who)
    today = svc.app.clock().astimezone(BRUSSELS).date()
    return await _kept_or_computed(
        svc,
        ("statistics", year, programme, as_known_at, today),
        AnnualStatistics.name,
        lambda views: rendered(
            annual_statistics(
                views, year, programme, as_known_at=as_known_at, themes=svc.themes, today=today
            )
        ),
    )


@router.get(
    "/bottlenecks/{year}",
    summary="Reported bottlenecks",
    responses=FIGURES_PROBLEMS,
    response_model=BottleneckReport,
)
async def bottlenecks(
    year: Year, who: Caller, svc: Svc, programme: Programme | None = None
) -> Response:
    """Bottlenecks reported in the year, per theme of the analysts' list (any other theme:
    `andere`) and region (policy information)."""
    access.may_read_figures(who)
    return await _kept_or_computed(
        svc,
        ("bottlenecks", year, programme),
        Bottlenecks.name,
        lambda views: rendered(bottleneck_report(views, year, programme, themes=svc.themes)),
    )


async def _kept_or_computed(
    svc: Services, key: Hashable, projection: str, compute: Callable[[ViewStore], bytes]
) -> Response:
    """The answer kept for ``key`` at projection ``projection``'s position: given at once
    (on the event loop, no thread) when that position is known without a query and the
    answer is kept; else looked up, and computed if need be, on a worker thread. A
    projection further behind the log than ``OVERLEG_READY_MAX_LAG`` is not read: 503
    ``not-ready`` (``Services.current_version_of``; the event loop knows no position of
    it then, so a thread asks)."""
    version = svc.known_version_of(projection)
    if version is not None:
        kept = svc.figures.peek(key, version)
        if kept is not None:
            return JSONBytes(cast(bytes, kept[0]))

    def answer() -> bytes:
        views = svc.fresh_views()  # caught up first, where this process keeps them
        version = svc.current_version_of(projection)  # far behind: not ready
        return svc.figures.get(key, version, lambda: compute(views))

    return JSONBytes(await run_in_threadpool(answer))
