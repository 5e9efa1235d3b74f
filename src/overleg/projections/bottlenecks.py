"""Reported bottlenecks (knelpunten): structural, cross-case problems, as policy information.

The projection keeps each report's theme as it was given; the report counts it under its
theme of the analysts' list (``themes``), or as ``andere``, so no free text reaches an
answer and a new list applies at once, without a rebuild.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, ClassVar, assert_never

from pydantic import BaseModel, ConfigDict, Field

from overleg.adapters.views import Tx, ViewStore
from overleg.aggregates.case import Case, CaseEvent
from overleg.aggregates.values import Programme, Region
from overleg.projections.base import Projection, programmes_and_regions
from overleg.projections.themes import BottleneckThemes, packaged


class Bottlenecks(Projection):
    """Every reported bottleneck with its theme, region, programme and year."""

    name: ClassVar[str] = "bottlenecks"
    version: ClassVar[int] = 1
    tables: ClassVar[tuple[str, ...]] = ("bottleneck", "bottleneck_case")

    def create(self, tx: Tx) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS bottleneck_case ("
            " case_id TEXT PRIMARY KEY, programme TEXT NOT NULL, region TEXT NOT NULL)"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS bottleneck ("
            " case_id TEXT NOT NULL, seq INTEGER NOT NULL,"
            " programme TEXT NOT NULL, region TEXT NOT NULL,"
            " reported_on TEXT NOT NULL, year INTEGER NOT NULL, theme TEXT NOT NULL,"
            " PRIMARY KEY (case_id, seq))"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS bottleneck_year ON bottleneck (year)")

    def apply(self, tx: Tx, events: Sequence[CaseEvent]) -> None:
        requested: dict[str, tuple[str, str]] = {}
        reported: list[tuple[str, int, date, str]] = []
        for e in events:
            match e:
                case Case.Requested():
                    requested[str(e.originator_id)] = (e.programme, e.region)
                case Case.BottleneckReported():
                    reported.append(
                        (str(e.originator_id), e.originator_version, e.timestamp.date(), e.theme)
                    )
                case (
                    Case.RequestDeclined()
                    | Case.ConsentGiven()
                    | Case.ConsentWithdrawn()
                    | Case.ChairAppointed()
                    | Case.MeetingHeld()
                    | Case.WorkplanAgreed()
                    | Case.RegistrationCompleted()
                    | Case.FollowUpScheduled()
                    | Case.CaseClosed()
                    | Case.MeetingPlanned()
                    | Case.MeetingCancelled()
                    | Case.PreparationRecorded()
                    | Case.CoordinatorDesignated()
                    | Case.AttendanceCorrected()
                    | Case.WorkplanRevised()
                    | Case.MeetingRetracted()
                    | Case.CaseReopened()
                    | Case.PersonalDataErased()
                ):
                    pass
                case _:
                    assert_never(e)
        tx.insert(
            "bottleneck_case",
            ("case_id", "programme", "region"),
            [(case_id, *known) for case_id, known in requested.items()],
        )
        # A report's programme and region are its case's (a report of a case never
        # requested is not counted).
        cases = programmes_and_regions(
            tx, "bottleneck_case", requested, [case_id for case_id, *_ in reported]
        )
        tx.insert(
            "bottleneck",
            ("case_id", "seq", "programme", "region", "reported_on", "year", "theme"),
            [
                (case_id, seq, *cases[case_id], day.isoformat(), day.year, theme)
                for case_id, seq, day, theme in reported
                if case_id in cases
            ],
        )


class ThemeRow(BaseModel):
    """How often one theme was reported, in all and per region."""

    theme: str = Field(description="a theme of the analysts' list, or 'andere'")
    total: int
    by_region: dict[Region, int]


class BottleneckReport(BaseModel):
    """Bottlenecks reported in a year, per theme, most reported first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "year": 2015,
                    "programme": None,
                    "total": 3,
                    "themes": [{"theme": "wachtlijsten", "total": 3, "by_region": {"Limburg": 3}}],
                }
            ]
        }
    )

    year: int
    programme: Programme | None = Field(description="null: all programmes")
    total: int
    themes: list[ThemeRow]


def bottleneck_report(
    views: ViewStore,
    year: int,
    programme: Programme | None = None,
    *,
    themes: BottleneckThemes | None = None,
) -> BottleneckReport:
    """Bottlenecks reported in ``year`` per theme of the analysts' list (``themes``; the
    packaged one when not given) and region, most reported theme first."""
    themes = themes if themes is not None else packaged()
    sql = "SELECT theme, region, COUNT(*) FROM bottleneck WHERE year = ?"
    params: list[Any] = [year]
    if programme is not None:
        sql += " AND programme = ?"
        params.append(programme.value)
    sql += " GROUP BY theme, region"
    counted: dict[str, dict[Region, int]] = {}
    for reported, region, count in views.read(sql, params):
        by_region = counted.setdefault(themes.theme_of(reported), dict.fromkeys(Region, 0))
        by_region[Region(region)] += int(count)
    ordered = sorted(counted.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    rows = [
        ThemeRow(theme=theme, total=sum(by_region.values()), by_region=by_region)
        for theme, by_region in ordered
    ]
    return BottleneckReport(
        year=year, programme=programme, total=sum(row.total for row in rows), themes=rows
    )
