"""Annual statistics (jaarcijfers) of meetings per region, as the stream contract defines them.

The projection keeps one row per held meeting with only the facts the figures need
(programme, region, date, attendance flags, workplan, coordinator, registration); the figures
are counts over those rows, so every number can be traced back to its meetings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar, assert_never

from pydantic import BaseModel, ConfigDict, Field

from overleg.adapters.views import Tx, ViewStore, boolean, flag
from overleg.aggregates.case import Case, CaseEvent
from overleg.aggregates.values import Programme, Region
from overleg.projections.base import Projection

REGIONS = tuple(region.value for region in Region)

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

# The outcome figures counted over fully registered meetings, and the column behind each.
OUTCOMES = {
    "youth_present": "youth",
    "parents_present": "parents",
    "workplans": "workplan",
    "coordinators": "coordinator",
}


class AnnualStatistics(Projection):
    """One row per held meeting: the facts the annual figures count."""

    name: ClassVar[str] = "statistics"
    version: ClassVar[int] = 1
    tables: ClassVar[tuple[str, ...]] = ("stats_meeting", "stats_case")

    def create(self, tx: Tx) -> None:
        flag_type = boolean(tx.dialect)
        tx.execute(
            "CREATE TABLE IF NOT EXISTS stats_case ("
            " case_id TEXT PRIMARY KEY, programme TEXT NOT NULL, region TEXT NOT NULL)"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS stats_meeting ("
            " case_id TEXT NOT NULL, meeting INTEGER NOT NULL,"
            " programme TEXT NOT NULL, region TEXT NOT NULL,"
            " held_on TEXT NOT NULL, year INTEGER NOT NULL,"
            f" youth {flag_type}, parents {flag_type},"
            f" workplan {flag_type} NOT NULL, coordinator {flag_type} NOT NULL,"
            f" registered {flag_type} NOT NULL,"
            " PRIMARY KEY (case_id, meeting))"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS stats_meeting_year ON stats_meeting (year)")

    def apply(self, tx: Tx, events: Sequence[CaseEvent]) -> None:
        for e in events:
            case_id = str(e.originator_id)
            match e:
                case Case.Requested():
                    tx.execute(
                        "INSERT INTO stats_case (case_id, programme, region) VALUES (?, ?, ?)",
                        (case_id, e.programme, e.region),
                    )
                case Case.MeetingHeld():
                    tx.execute(
                        "INSERT INTO stats_meeting (case_id, meeting, programme, region,"
                        " held_on, year, youth, parents, workplan, coordinator, registered)"
                        " SELECT case_id, ?, programme, region, ?, ?, ?, ?, ?, ?, ?"
                        " FROM stats_case WHERE case_id = ?",
                        (
                            e.meeting,
                            e.held_on.isoformat(),
                            e.held_on.year,
                            e.youth,
                            e.parents,
                            False,
                            False,
                            False,
                            case_id,
                        ),
                    )
                case Case.WorkplanAgreed():
                    tx.execute(
                        "UPDATE stats_meeting SET workplan = ?, coordinator = ?"
                        " WHERE case_id = ? AND meeting = ?",
                        (True, e.coordinator_appointed, case_id, e.meeting),
                    )
                case Case.RegistrationCompleted():
                    tx.execute(
                        "UPDATE stats_meeting SET registered = ? WHERE case_id = ? AND meeting = ?",
                        (True, case_id, e.meeting),
                    )
                case (
                    Case.RequestDeclined()
                    | Case.ConsentGiven()
                    | Case.ConsentWithdrawn()
                    | Case.ChairAppointed()
                    | Case.FollowUpScheduled()
                    | Case.BottleneckReported()
                    | Case.CaseClosed()
                    | Case.MeetingPlanned()
                    | Case.MeetingCancelled()
                    | Case.PreparationRecorded()
                    | Case.CoordinatorDesignated()
                    | Case.AttendanceCorrected()
                    | Case.WorkplanRevised()
                    | Case.MeetingRetracted()
                    | Case.CaseReopened()
                ):
                    pass  # the figures do not count these (contract v2's: next step)
                case _:
                    assert_never(e)


def pct(part: int, whole: int) -> float:
    """A percentage rounded half up to one decimal (0.0 of nothing)."""
    if whole == 0:
        return 0.0
    exact = Decimal(part) * 100 / Decimal(whole)
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class MeetingRow:
    """One held meeting as the statistics see it."""

    case_id: str
    meeting: int
    programme: str
    region: str
    held_on: str
    youth: bool | None
    parents: bool | None
    workplan: bool
    coordinator: bool
    registered: bool

    def counts_in(self, outcome: str) -> bool:
        """Whether this (fully registered) meeting counts in an outcome figure."""
        return bool(getattr(self, OUTCOMES[outcome]))


def meetings_of(views: ViewStore, year: int, programme: Programme | None) -> list[MeetingRow]:
    """Every meeting held in ``year`` (of one programme, or all), in a stable order."""
    sql = (
        "SELECT case_id, meeting, programme, region, held_on, youth, parents, workplan,"
        " coordinator, registered FROM stats_meeting WHERE year = ?"
    )
    params: list[Any] = [year]
    if programme is not None:
        sql += " AND programme = ?"
        params.append(programme.value)
    sql += " ORDER BY held_on, case_id, meeting"
    return [
        MeetingRow(
            case_id=r[0],
            meeting=int(r[1]),
            programme=r[2],
            region=r[3],
            held_on=r[4],
            youth=flag(r[5]),
            parents=flag(r[6]),
            workplan=bool(r[7]),
            coordinator=bool(r[8]),
            registered=bool(r[9]),
        )
        for r in views.read(sql, params)
    ]


def count_of(views: ViewStore, year: int, programme: Programme | None) -> int:
    """How many meetings were held in ``year``."""
    sql = "SELECT COUNT(*) FROM stats_meeting WHERE year = ?"
    params: list[Any] = [year]
    if programme is not None:
        sql += " AND programme = ?"
        params.append(programme.value)
    return int(views.read(sql, params)[0][0])


def _by_region(rows: Sequence[MeetingRow]) -> dict[Region, int]:
    counts = dict.fromkeys(Region, 0)
    for row in rows:
        counts[Region(row.region)] += 1
    return counts


class RegionShare(BaseModel):
    """A region's meetings and their share of all meetings of the year."""

    count: int
    pct: float


class MeetingFigures(BaseModel):
    """Meetings held in the year: first and follow-up, the year before, per region."""

    total: int
    first: int
    follow_up: int
    previous_year_total: int
    by_region: dict[Region, RegionShare]


class Outcome(BaseModel):
    """Fully registered meetings with one outcome (attendance, workplan)."""

    total: int
    pct: float = Field(description="% of the fully registered meetings")
    by_region: dict[Region, int]


class CoordinatorOutcome(BaseModel):
    """Fully registered meetings whose workplan names a coordinator (hulpcoördinator)."""

    total: int
    pct: float = Field(description="% of the fully registered meetings")
    pct_of_workplans: float = Field(description="% of the meetings with a workplan")
    by_region: dict[Region, int]


class RegisteredFigures(BaseModel):
    """Attendance and outcomes, counted over the fully registered meetings."""

    total: int
    youth_present: Outcome
    parents_present: Outcome
    workplans: Outcome
    coordinators: CoordinatorOutcome


class Statistics(BaseModel):
    """The annual figures, as the event-stream contract defines them."""

    model_config = ConfigDict(json_schema_extra={"examples": [STATISTICS_EXAMPLE]})

    year: int
    programme: Programme | None = Field(description="null: all programmes")
    meetings: MeetingFigures
    fully_registered: RegisteredFigures

    def outcome(self, name: str) -> Outcome | CoordinatorOutcome:
        """One of the outcome figures by its name (a key of ``OUTCOMES``)."""
        found: Outcome | CoordinatorOutcome = getattr(self.fully_registered, name)
        return found


def figures(
    meetings: Sequence[MeetingRow],
    previous_year_total: int,
    year: int,
    programme: Programme | None,
) -> Statistics:
    """The contract's statistics, counted from the year's meetings."""
    total = len(meetings)
    registered = [m for m in meetings if m.registered]
    fully = len(registered)

    def counted(name: str) -> list[MeetingRow]:
        return [m for m in registered if m.counts_in(name)]

    def outcome(name: str) -> Outcome:
        rows = counted(name)
        return Outcome(total=len(rows), pct=pct(len(rows), fully), by_region=_by_region(rows))

    workplans = outcome("workplans")
    coordinators = counted("coordinators")
    return Statistics(
        year=year,
        programme=programme,
        meetings=MeetingFigures(
            total=total,
            first=sum(1 for m in meetings if m.meeting == 1),
            follow_up=sum(1 for m in meetings if m.meeting > 1),
            previous_year_total=previous_year_total,
            by_region={
                region: RegionShare(count=count, pct=pct(count, total))
                for region, count in _by_region(meetings).items()
            },
        ),
        fully_registered=RegisteredFigures(
            total=fully,
            youth_present=outcome("youth_present"),
            parents_present=outcome("parents_present"),
            workplans=workplans,
            coordinators=CoordinatorOutcome(
                total=len(coordinators),
                pct=pct(len(coordinators), fully),
                pct_of_workplans=pct(len(coordinators), workplans.total),
                by_region=_by_region(coordinators),
            ),
        ),
    )


def annual_statistics(
    views: ViewStore, year: int, programme: Programme | None = None
) -> Statistics:
    """The statistics of ``year`` exactly as ``overleg stats --format json`` prints them."""
    return figures(
        meetings_of(views, year, programme),
        count_of(views, year - 1, programme),
        year,
        programme,
    )


def registered_by_region(meetings: Sequence[MeetingRow]) -> dict[Region, int]:
    """Fully registered meetings per region (the base of each region's rates)."""
    return _by_region([m for m in meetings if m.registered])
