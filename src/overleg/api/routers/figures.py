"""Annual statistics and reported bottlenecks, for analysts, auditors and continuity teams."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from overleg.aggregates.values import Programme
from overleg.api.answers import JSONBytes, rendered
from overleg.api.deps import SIGN_IN_PROBLEMS, Caller, Svc
from overleg.api.problems import FORBIDDEN, INVALID_INPUT, STORE_BUSY, responses
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

FIGURES_PROBLEMS = responses(*SIGN_IN_PROBLEMS, FORBIDDEN, INVALID_INPUT, STORE_BUSY)
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

    def figures() -> bytes:
        views = svc.fresh_views()
        return svc.figures.get(
            ("statistics", year, programme, as_known_at, today),
            svc.version_of(AnnualStatistics.name),
            lambda: rendered(
                annual_statistics(
                    views, year, programme, as_known_at=as_known_at, themes=svc.themes, today=today
                )
            ),
        )

    return JSONBytes(await run_in_threadpool(figures))


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

    def report() -> bytes:
        views = svc.fresh_views()
        return svc.figures.get(
            ("bottlenecks", year, programme),
            svc.version_of(Bottlenecks.name),
            lambda: rendered(bottleneck_report(views, year, programme, themes=svc.themes)),
        )

    return JSONBytes(await run_in_threadpool(report))
