"""Annual statistics and reported bottlenecks, for analysts, auditors and continuity teams."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from overleg.aggregates.values import Programme
from overleg.api.deps import SIGN_IN_PROBLEMS, Caller, Svc
from overleg.api.problems import FORBIDDEN, INVALID_INPUT, STORE_BUSY, responses
from overleg.policies import access
from overleg.projections.bottlenecks import BottleneckReport, bottleneck_report
from overleg.projections.statistics import Statistics, annual_statistics

router = APIRouter(tags=["figures"])

FIGURES_PROBLEMS = responses(*SIGN_IN_PROBLEMS, FORBIDDEN, INVALID_INPUT, STORE_BUSY)
Year = Annotated[int, Path(ge=1900, le=2999, description="Calendar year")]


@router.get(
    "/statistics/{year}",
    summary="Annual statistics",
    responses=FIGURES_PROBLEMS,
)
async def statistics(
    year: Year, who: Caller, svc: Svc, programme: Programme | None = None
) -> Statistics:
    """Meetings per region, first and follow-up, and attendance and outcomes of the fully
    registered meetings: exactly `overleg stats YEAR [--programme P] --format json`."""
    access.may_read_figures(who)
    return await run_in_threadpool(lambda: annual_statistics(svc.fresh_views(), year, programme))


@router.get(
    "/bottlenecks/{year}",
    summary="Reported bottlenecks",
    responses=FIGURES_PROBLEMS,
)
async def bottlenecks(
    year: Year, who: Caller, svc: Svc, programme: Programme | None = None
) -> BottleneckReport:
    """Bottlenecks reported in the year, per theme and region (policy information)."""
    access.may_read_figures(who)
    return await run_in_threadpool(lambda: bottleneck_report(svc.fresh_views(), year, programme))
