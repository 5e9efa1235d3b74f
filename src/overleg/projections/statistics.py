"""Annual statistics (jaarcijfers) of meetings per region, as the stream contract defines them.

The projection keeps one row per held meeting with only the facts the figures need
(programme, region, date, attendance flags, workplan, coordinator, registration); the figures
are counts over those rows, so every number can be traced back to its meetings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from overleg.aggregates.case import Case
from overleg.aggregates.values import Programme, Region
from overleg.projections.base import Projection
from overleg.projections.store import Tx, ViewStore, boolean, flag

REGIONS = tuple(region.value for region in Region)

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

    def apply(self, tx: Tx, events: Sequence[Case.Event]) -> None:
        for e in events:
            case_id = str(e.originator_id)
            if isinstance(e, Case.Requested):
                tx.execute(
                    "INSERT INTO stats_case (case_id, programme, region) VALUES (?, ?, ?)",
                    (case_id, e.programme, e.region),
                )
            elif isinstance(e, Case.MeetingHeld):
                tx.execute(
                    "INSERT INTO stats_meeting (case_id, meeting, programme, region, held_on,"
                    " year, youth, parents, workplan, coordinator, registered)"
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
            elif isinstance(e, Case.WorkplanAgreed):
                tx.execute(
                    "UPDATE stats_meeting SET workplan = ?, coordinator = ?"
                    " WHERE case_id = ? AND meeting = ?",
                    (True, e.coordinator_appointed, case_id, e.meeting),
                )
            elif isinstance(e, Case.RegistrationCompleted):
                tx.execute(
                    "UPDATE stats_meeting SET registered = ? WHERE case_id = ? AND meeting = ?",
                    (True, case_id, e.meeting),
                )


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


def _by_region(rows: Sequence[MeetingRow]) -> dict[str, int]:
    counts = dict.fromkeys(REGIONS, 0)
    for row in rows:
        counts[row.region] += 1
    return counts


def figures(
    meetings: Sequence[MeetingRow], previous_year_total: int, year: int, programme: str | None
) -> dict[str, Any]:
    """The contract's statistics object, counted from the year's meetings."""
    total = len(meetings)
    registered = [m for m in meetings if m.registered]
    fully = len(registered)
    outcome: dict[str, Any] = {}
    for name in OUTCOMES:
        counted = [m for m in registered if m.counts_in(name)]
        outcome[name] = {"total": len(counted), "pct": pct(len(counted), fully)}
        if name == "coordinators":
            outcome[name]["pct_of_workplans"] = pct(len(counted), outcome["workplans"]["total"])
        outcome[name]["by_region"] = _by_region(counted)
    return {
        "year": year,
        "programme": programme,
        "meetings": {
            "total": total,
            "first": sum(1 for m in meetings if m.meeting == 1),
            "follow_up": sum(1 for m in meetings if m.meeting > 1),
            "previous_year_total": previous_year_total,
            "by_region": {
                region: {"count": count, "pct": pct(count, total)}
                for region, count in _by_region(meetings).items()
            },
        },
        "fully_registered": {"total": fully, **outcome},
    }


def annual_statistics(
    views: ViewStore, year: int, programme: Programme | None = None
) -> dict[str, Any]:
    """The statistics of ``year`` exactly as ``overleg stats --format json`` prints them."""
    return figures(
        meetings_of(views, year, programme),
        count_of(views, year - 1, programme),
        year,
        None if programme is None else programme.value,
    )


def registered_by_region(meetings: Sequence[MeetingRow]) -> dict[str, int]:
    """Fully registered meetings per region (the base of each region's rates)."""
    return _by_region([m for m in meetings if m.registered])
