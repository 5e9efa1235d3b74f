"""Annual statistics and reported bottlenecks, for analysts, auditors and continuity teams."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from overleg.aggregates.values import Programme
from overleg.api.deps import Caller, Svc
from overleg.api.problems import responses
from overleg.policies import access
from overleg.projections.bottlenecks import bottleneck_report
from overleg.projections.statistics import annual_statistics

router = APIRouter(tags=["figures"])

Year = Annotated[int, Path(ge=1900, le=2999, description="Calendar year")]

STATISTICS_EXAMPLE: dict[str, Any] = {
    "year": 2015,
    "programme": "integrale_jeugdhulp",
    "meetings": {
        "total": 379,
        "first": 265,
        "follow_up": 114,
        "previous_year_total": 252,
        "by_region": {"Antwerpen": {"count": 119, "pct": 31.4}},
    },
    "fully_registered": {
        "total": 336,
        "youth_present": {"total": 108, "pct": 32.1, "by_region": {"Antwerpen": 58}},
        "parents_present": {"total": 239, "pct": 71.1, "by_region": {"Antwerpen": 82}},
        "workplans": {"total": 210, "pct": 62.5, "by_region": {"Antwerpen": 68}},
        "coordinators": {
            "total": 203,
            "pct": 60.4,
            "pct_of_workplans": 96.7,
            "by_region": {"Antwerpen": 68},
        },
    },
}


@router.get(
    "/statistics/{year}",
    summary="Annual statistics",
    responses={
        200: {"content": {"application/json": {"example": STATISTICS_EXAMPLE}}},
        **responses(401, 403, 422),
    },
)
async def statistics(
    year: Year, who: Caller, svc: Svc, programme: Programme | None = None
) -> dict[str, Any]:
    """Meetings per region, first and follow-up, and attendance and outcomes of the fully
    registered meetings: exactly `overleg stats YEAR [--programme P] --format json`."""
    access.may_read_figures(who)
    return await run_in_threadpool(lambda: annual_statistics(svc.fresh_views(), year, programme))


@router.get(
    "/bottlenecks/{year}",
    summary="Reported bottlenecks",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "year": 2015,
                        "programme": None,
                        "total": 3,
                        "themes": [
                            {"theme": "wachtlijst", "total": 3, "by_region": {"Limburg": 3}}
                        ],
                    }
                }
            }
        },
        **responses(401, 403, 422),
    },
)
async def bottlenecks(
    year: Year, who: Caller, svc: Svc, programme: Programme | None = None
) -> dict[str, Any]:
    """Bottlenecks reported in the year, per theme and region (policy information)."""
    access.may_read_figures(who)
    return await run_in_threadpool(lambda: bottleneck_report(svc.fresh_views(), year, programme))
