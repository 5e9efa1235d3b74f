"""Annual statistics (jaarcijfers) of meetings per region, as the stream contract defines them.

The projection keeps every event that bears on a meeting's figures as one fact row
(``stats_fact``: a meeting held, its attendance corrected, its workplan agreed or revised, its
registration completed, the meeting retracted, a meeting planned or cancelled), with the
instant it was recorded. Folding a case's facts in order gives its meetings as the figures
count them (corrections applied, retracted meetings marked, the first meeting found) and the
last plan of each meeting number; the projection keeps the fold of all facts in
``stats_meeting`` and ``stats_plan``. Designated coordinators and reported bottlenecks are
kept as they were recorded.

Figures as known now count those tables; figures as known at an instant fold only the facts
recorded by then, with the same fold. Every number can be traced back to its rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from itertools import groupby
from typing import Annotated, Any, ClassVar, assert_never

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict

from overleg.adapters.views import Row, Tx, ViewStore, boolean, flag
from overleg.aggregates.case import Case, CaseEvent
from overleg.aggregates.values import Programme, Region
from overleg.policies.rules import BRUSSELS, brussels_day
from overleg.projections.base import Projection, chunks, placeholders, programmes_and_regions
from overleg.projections.themes import BottleneckThemes, packaged

REGIONS = tuple(region.value for region in Region)

# The instant figures are asked as known at: RFC 3339 with its UTC offset, in the years the
# records can hold. Any such instant can be asked (it is compared, never stored).
KNOWN_AT_PATTERN = (
    r"^(19[0-9]{2}|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]"
    r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_KNOWN_AT = re.compile(KNOWN_AT_PATTERN)


def _known_at_written(value: object) -> object:
    if isinstance(value, str) and not _KNOWN_AT.match(value):
        raise ValueError(
            "an instant is written in ISO 8601 with its UTC offset, between the years 1900 "
            "and 2999, e.g. 2016-03-01T00:00:00+01:00 or 2016-02-29T23:00:00Z"
        )
    return value


KnownAt = Annotated[
    datetime,
    BeforeValidator(_known_at_written),
    Strict(False),  # the text is checked above; what remains is reading it
    Field(json_schema_extra={"pattern": KNOWN_AT_PATTERN}),
]

STATISTICS_EXAMPLE: dict[str, Any] = {
    "year": 2015,
    "programme": "integrale_jeugdhulp",
    "meetings": {
        "total": 379,
        "first": 265,
        "follow_up": 114,
        "previous_year_total": 252,
        "planned_not_held": 12,
        "by_region": {"Antwerpen": {"count": 119, "pct": 31.4}},
    },
    "fully_registered": {
        "total": 336,
        "youth_present": {"total": 108, "pct": 32.1, "by_region": {"Antwerpen": 58}},
        "client_present": {"total": 108, "pct": 32.1, "by_region": {"Antwerpen": 58}},
        "parents_present": {"total": 239, "pct": 71.1, "by_region": {"Antwerpen": 82}},
        "workplans": {"total": 210, "pct": 62.5, "by_region": {"Antwerpen": 68}},
        "coordinators": {
            "total": 203,
            "pct": 60.4,
            "pct_of_workplans": 96.7,
            "by_region": {"Antwerpen": 68},
        },
    },
    "spilfiguur": {"cases": 40, "chosen_by_client": 31},
    "bottlenecks_by_theme": {"wachtlijsten": 3, "vervoer": 1, "andere": 1},
}

# The outcome figures counted over fully registered meetings, and the column behind each.
OUTCOMES = {
    "youth_present": "youth",
    "client_present": "client",
    "parents_present": "parents",
    "workplans": "workplan",
    "coordinators": "coordinator",
}


class FactKind(StrEnum):
    """What a fact row records about a meeting of a case."""

    HELD = "held"
    ATTENDANCE = "attendance"  # corrected
    WORKPLAN = "workplan"  # agreed or revised
    REGISTERED = "registered"
    RETRACTED = "retracted"
    PLANNED = "planned"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Fact:
    """One event's bearing on a meeting's figures (a row of ``stats_fact``)."""

    seq: int
    kind: FactKind
    meeting: int
    day: str | None = None  # held_on of a held meeting, `on` of a plan
    youth: bool | None = None
    parents: bool | None = None
    client: bool | None = None
    client_given: bool = False  # contract v2's `client` key was given
    coordinator: bool = False  # the workplan names a coordinator


def instant(at: datetime) -> str:
    """An instant as fixed-width UTC text, so that text order is time order."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _attended(
    kind: FactKind, e: Case.MeetingHeld | Case.AttendanceCorrected, seq: int, day: str | None
) -> Fact:
    client = e.attendance_extra.get("client")
    return Fact(
        seq,
        kind,
        e.meeting,
        day,
        youth=e.youth,
        parents=e.parents,
        client=None if client is None else bool(client),
        client_given="client" in e.attendance_extra,
    )


def fact_of(e: CaseEvent) -> Fact | None:
    """The fact an event records about a meeting, or ``None`` when it records none."""
    seq = e.originator_version
    match e:
        case Case.MeetingHeld():
            return _attended(FactKind.HELD, e, seq, e.held_on.isoformat())
        case Case.AttendanceCorrected():
            return _attended(FactKind.ATTENDANCE, e, seq, None)
        case Case.WorkplanAgreed() | Case.WorkplanRevised():
            return Fact(seq, FactKind.WORKPLAN, e.meeting, coordinator=e.coordinator_appointed)
        case Case.RegistrationCompleted():
            return Fact(seq, FactKind.REGISTERED, e.meeting)
        case Case.MeetingRetracted():
            return Fact(seq, FactKind.RETRACTED, e.meeting)
        case Case.MeetingPlanned():
            return Fact(seq, FactKind.PLANNED, e.meeting, e.on.isoformat())
        case Case.MeetingCancelled():
            return Fact(seq, FactKind.CANCELLED, e.meeting)
        case (
            Case.Requested()
            | Case.RequestDeclined()
            | Case.ConsentGiven()
            | Case.ConsentWithdrawn()
            | Case.ChairAppointed()
            | Case.FollowUpScheduled()
            | Case.BottleneckReported()
            | Case.CaseClosed()
            | Case.PreparationRecorded()
            | Case.CoordinatorDesignated()
            | Case.CaseReopened()
            | Case.PersonalDataErased()
        ):
            return None
        case _:
            assert_never(e)


@dataclass(frozen=True)
class MeetingRow:
    """One held meeting as the statistics see it (corrections applied)."""

    case_id: str
    meeting: int
    programme: str
    region: str
    held_on: str
    youth: bool | None  # in integrale jeugdhulp, presence given as `client` counts here
    parents: bool | None
    workplan: bool
    coordinator: bool
    registered: bool
    client: bool | None  # the client's presence: `client` where given, else `youth`
    first: bool  # the case's earliest held meeting not retracted (eerste overleg)
    retracted: bool  # recorded in error: counts nowhere

    def counts_in(self, outcome: str) -> bool:
        """Whether this (fully registered) meeting counts in an outcome figure."""
        return bool(getattr(self, OUTCOMES[outcome]))


@dataclass(frozen=True)
class PlanRow:
    """The last plan of one meeting number, and what became of it."""

    case_id: str
    meeting: int
    programme: str
    region: str
    on: str
    cancelled: bool
    held_on: str | None  # when the meeting of this number was held, if it was
    retracted: bool  # that meeting was retracted: as if not held

    def not_held_by(self, last_day: date) -> bool:
        """Cancelled, or not held on or before ``last_day`` (a retracted meeting: not held)."""
        return (
            self.cancelled
            or self.retracted
            or self.held_on is None
            or self.held_on > last_day.isoformat()
        )


@dataclass
class _Held:
    held_on: str
    youth: bool | None
    parents: bool | None
    client: bool | None
    workplan: bool = False
    coordinator: bool = False
    registered: bool = False
    retracted: bool = False


@dataclass
class _Plan:
    on: str
    cancelled: bool = False


def _presence(programme: str, fact: Fact) -> tuple[bool | None, bool | None, bool | None]:
    """Youth, parents and client presence as the figures count them."""
    youth = fact.youth
    if youth is None and programme == Programme.INTEGRALE_JEUGDHULP:
        youth = fact.client  # the client is the young person
    client = fact.client if fact.client_given else fact.youth
    return youth, fact.parents, client


def fold(
    case_id: str, programme: str, region: str, facts: Iterable[Fact]
) -> tuple[list[MeetingRow], list[PlanRow]]:
    """A case's meetings and last plans from its facts, in the order they were recorded.

    A fact about a meeting not known (yet) is passed over, so any prefix of a case's facts
    folds to what was known then.
    """
    held: dict[int, _Held] = {}
    plans: dict[int, _Plan] = {}
    for fact in facts:
        meeting = held.get(fact.meeting)
        match fact.kind:
            case FactKind.HELD:
                assert fact.day is not None
                held[fact.meeting] = _Held(fact.day, *_presence(programme, fact))
            case FactKind.ATTENDANCE:
                if meeting is not None:
                    meeting.youth, meeting.parents, meeting.client = _presence(programme, fact)
            case FactKind.WORKPLAN:
                if meeting is not None:
                    meeting.workplan, meeting.coordinator = True, fact.coordinator
            case FactKind.REGISTERED:
                if meeting is not None:
                    meeting.registered = True
            case FactKind.RETRACTED:
                if meeting is not None:
                    meeting.retracted = True
            case FactKind.PLANNED:
                assert fact.day is not None
                plans[fact.meeting] = _Plan(fact.day)  # a new plan replaces the last one
            case FactKind.CANCELLED:
                if fact.meeting in plans:
                    plans[fact.meeting].cancelled = True
            case _:
                assert_never(fact.kind)
    live = sorted((m.held_on, number) for number, m in held.items() if not m.retracted)
    first = live[0][1] if live else None
    meetings = [
        MeetingRow(
            case_id,
            number,
            programme,
            region,
            m.held_on,
            m.youth,
            m.parents,
            m.workplan,
            m.coordinator,
            m.registered,
            m.client,
            first=number == first,
            retracted=m.retracted,
        )
        for number, m in sorted(held.items())
    ]
    last_plans = [
        PlanRow(
            case_id,
            number,
            programme,
            region,
            p.on,
            p.cancelled,
            held[number].held_on if number in held else None,
            number in held and held[number].retracted,
        )
        for number, p in sorted(plans.items())
    ]
    return meetings, last_plans


_FACT_COLUMNS = "seq, kind, meeting, day, youth, parents, client, client_given, coordinator"
_MEETING_COLUMNS = (
    "case_id, meeting, programme, region, held_on, youth, parents, workplan, coordinator,"
    " registered, client, first_meeting, retracted"
)
_PLAN_COLUMNS = "case_id, meeting, programme, region, planned_on, cancelled, held_on, retracted"


def _fact(row: Row) -> Fact:
    """A fact read back from ``_FACT_COLUMNS``."""
    return Fact(
        int(row[0]),
        FactKind(row[1]),
        int(row[2]),
        row[3],
        flag(row[4]),
        flag(row[5]),
        flag(row[6]),
        bool(row[7]),
        bool(row[8]),
    )


class AnnualStatistics(Projection):
    """Per case: the facts of its meetings with when each was recorded, their fold (one row
    per held meeting and per planned meeting number), designations and bottlenecks."""

    name: ClassVar[str] = "statistics"
    version: ClassVar[int] = 2
    tables: ClassVar[tuple[str, ...]] = (
        "stats_case",
        "stats_fact",
        "stats_meeting",
        "stats_plan",
        "stats_designation",
        "stats_bottleneck",
    )

    def create(self, tx: Tx) -> None:
        flag_type = boolean(tx.dialect)
        tx.execute(
            "CREATE TABLE IF NOT EXISTS stats_case ("
            " case_id TEXT PRIMARY KEY, programme TEXT NOT NULL, region TEXT NOT NULL)"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS stats_fact ("
            " case_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL,"
            " kind TEXT NOT NULL, meeting INTEGER NOT NULL, day TEXT, year INTEGER,"
            f" youth {flag_type}, parents {flag_type}, client {flag_type},"
            f" client_given {flag_type} NOT NULL, coordinator {flag_type} NOT NULL,"
            " PRIMARY KEY (case_id, seq))"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS stats_fact_year ON stats_fact (year, kind)")
        tx.execute(
            "CREATE TABLE IF NOT EXISTS stats_meeting ("
            " case_id TEXT NOT NULL, meeting INTEGER NOT NULL,"
            " programme TEXT NOT NULL, region TEXT NOT NULL,"
            " held_on TEXT NOT NULL, year INTEGER NOT NULL,"
            f" youth {flag_type}, parents {flag_type},"
            f" workplan {flag_type} NOT NULL, coordinator {flag_type} NOT NULL,"
            f" registered {flag_type} NOT NULL, client {flag_type},"
            f" first_meeting {flag_type} NOT NULL, retracted {flag_type} NOT NULL,"
            " PRIMARY KEY (case_id, meeting))"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS stats_meeting_year ON stats_meeting (year)")
        tx.execute(
            "CREATE TABLE IF NOT EXISTS stats_plan ("
            " case_id TEXT NOT NULL, meeting INTEGER NOT NULL,"
            " programme TEXT NOT NULL, region TEXT NOT NULL,"
            " planned_on TEXT NOT NULL, year INTEGER NOT NULL,"
            f" cancelled {flag_type} NOT NULL, held_on TEXT, retracted {flag_type} NOT NULL,"
            " PRIMARY KEY (case_id, meeting))"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS stats_plan_year ON stats_plan (year)")
        tx.execute(
            "CREATE TABLE IF NOT EXISTS stats_designation ("
            " case_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL,"
            f" chosen_by_client {flag_type} NOT NULL, PRIMARY KEY (case_id, seq))"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS stats_bottleneck ("
            " case_id TEXT NOT NULL, seq INTEGER NOT NULL,"
            " programme TEXT NOT NULL, region TEXT NOT NULL, at TEXT NOT NULL,"
            " reported_on TEXT NOT NULL, year INTEGER NOT NULL, theme TEXT NOT NULL,"
            " PRIMARY KEY (case_id, seq))"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS stats_bottleneck_year ON stats_bottleneck (year)")

    def apply(self, tx: Tx, events: Sequence[CaseEvent]) -> None:
        cases: list[tuple[Any, ...]] = []
        designations: list[tuple[Any, ...]] = []
        bottlenecks: list[tuple[Any, ...]] = []
        facts: list[tuple[Any, ...]] = []
        touched: dict[str, None] = {}
        for e in events:
            case_id, seq = str(e.originator_id), e.originator_version
            match e:
                case Case.Requested():
                    cases.append((case_id, e.programme, e.region))
                case Case.CoordinatorDesignated():
                    designations.append((case_id, seq, instant(e.timestamp), e.chosen_by_client))
                case Case.BottleneckReported():
                    # The year of the date it was recorded, as the bottleneck report counts.
                    day = e.timestamp.date()
                    at = instant(e.timestamp)
                    bottlenecks.append((case_id, seq, at, day.isoformat(), day.year, e.theme))
                case (
                    Case.MeetingHeld()
                    | Case.AttendanceCorrected()
                    | Case.WorkplanAgreed()
                    | Case.WorkplanRevised()
                    | Case.RegistrationCompleted()
                    | Case.MeetingRetracted()
                    | Case.MeetingPlanned()
                    | Case.MeetingCancelled()
                ):
                    fact = fact_of(e)
                    assert fact is not None
                    touched[case_id] = None
                    facts.append(
                        (
                            case_id,
                            instant(e.timestamp),
                            None if fact.day is None else int(fact.day[:4]),
                            fact.seq,
                            fact.kind.value,
                            fact.meeting,
                            fact.day,
                            fact.youth,
                            fact.parents,
                            fact.client,
                            fact.client_given,
                            fact.coordinator,
                        )
                    )
                case (
                    Case.RequestDeclined()
                    | Case.ConsentGiven()
                    | Case.ConsentWithdrawn()
                    | Case.ChairAppointed()
                    | Case.FollowUpScheduled()
                    | Case.CaseClosed()
                    | Case.PreparationRecorded()
                    | Case.CaseReopened()
                    | Case.PersonalDataErased()
                ):
                    pass  # no figure counts these
                case _:
                    assert_never(e)
        requested = {case_id: (programme, region) for case_id, programme, region in cases}
        tx.insert("stats_case", ("case_id", "programme", "region"), cases)
        tx.insert("stats_designation", ("case_id", "seq", "at", "chosen_by_client"), designations)
        # A bottleneck counts under its case's programme and region (a report of a case
        # never requested is not counted).
        where = programmes_and_regions(tx, "stats_case", requested, [b[0] for b in bottlenecks])
        tx.insert(
            "stats_bottleneck",
            ("case_id", "seq", "programme", "region", "at", "reported_on", "year", "theme"),
            [
                (case_id, seq, *where[case_id], *rest)
                for case_id, seq, *rest in bottlenecks
                if case_id in where
            ],
        )
        tx.insert("stats_fact", ("case_id", "at", "year", *_columns(_FACT_COLUMNS)), facts)
        # A case requested in this batch has all its facts here, and no fold stored yet:
        # it is folded from them. The others are folded again from every fact stored.
        new = sorted(
            ((f[0], *requested[f[0]], *f[3:]) for f in facts if f[0] in requested),
            key=lambda row: (row[0], row[3]),
        )
        self._keep(tx, _folded(new))
        for ids in chunks([c for c in touched if c not in requested]):
            self._fold_again(tx, ids)

    def _fold_again(self, tx: Tx, case_ids: Sequence[str]) -> None:
        """Fold the facts of these cases again and keep the result."""
        marks = placeholders(len(case_ids))
        rows = tx.fetchall(
            f"SELECT f.case_id, c.programme, c.region, {_prefixed('f', _FACT_COLUMNS)}"
            " FROM stats_fact f JOIN stats_case c ON c.case_id = f.case_id"
            f" WHERE f.case_id IN ({marks}) ORDER BY f.case_id, f.seq",
            case_ids,
        )
        for table in ("stats_meeting", "stats_plan"):
            tx.execute(f"DELETE FROM {table} WHERE case_id IN ({marks})", case_ids)
        self._keep(tx, _folded(rows))

    def _keep(self, tx: Tx, folded: tuple[list[MeetingRow], list[PlanRow]]) -> None:
        """Store the fold of some cases (whose earlier fold is not stored)."""
        meetings, plans = folded
        tx.insert(
            "stats_meeting",
            (*_columns(_MEETING_COLUMNS), "year"),
            [
                (
                    m.case_id,
                    m.meeting,
                    m.programme,
                    m.region,
                    m.held_on,
                    m.youth,
                    m.parents,
                    m.workplan,
                    m.coordinator,
                    m.registered,
                    m.client,
                    m.first,
                    m.retracted,
                    int(m.held_on[:4]),
                )
                for m in meetings
            ],
        )
        tx.insert(
            "stats_plan",
            (*_columns(_PLAN_COLUMNS), "year"),
            [
                (
                    p.case_id,
                    p.meeting,
                    p.programme,
                    p.region,
                    p.on,
                    p.cancelled,
                    p.held_on,
                    p.retracted,
                    int(p.on[:4]),
                )
                for p in plans
            ],
        )


def _prefixed(alias: str, columns: str) -> str:
    return ", ".join(f"{alias}.{c}" for c in _columns(columns))


def _columns(columns: str) -> list[str]:
    return [c.strip() for c in columns.split(",")]


def _folded(rows: Sequence[Row]) -> tuple[list[MeetingRow], list[PlanRow]]:
    """Fold rows of (case_id, programme, region, *fact columns), ordered by case and seq."""
    meetings: list[MeetingRow] = []
    plans: list[PlanRow] = []
    for (case_id, programme, region), own in groupby(rows, key=lambda r: tuple(r[:3])):
        held, planned = fold(case_id, programme, region, (_fact(r[3:]) for r in own))
        meetings += held
        plans += planned
    return meetings, plans


def pct(part: int, whole: int) -> float:
    """A percentage rounded half up to one decimal (0.0 of nothing)."""
    if whole == 0:
        return 0.0
    exact = Decimal(part) * 100 / Decimal(whole)
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


# -- the rows of one year -----------------------------------------------------------------


@dataclass(frozen=True)
class CoordinatorRow:
    """A case with a meeting held in the year, and its designated coordinator (spilfiguur)
    at the end of the year, if any."""

    case_id: str
    region: str
    designated: bool
    chosen_by_client: bool
    designated_on: str | None  # the date its last designation by the year's end was recorded


@dataclass(frozen=True)
class BottleneckRow:
    """A bottleneck reported in the year, under its theme of the analysts' list."""

    case_id: str
    seq: int
    region: str
    reported_on: str
    theme: str


@dataclass(frozen=True)
class YearRows:
    """Everything the figures of one year count, as known now or at an instant."""

    year: int
    meetings: list[MeetingRow]  # held in the year, retracted ones included
    previous: list[MeetingRow]  # held the year before, retracted ones included
    plans: list[PlanRow]  # last plans whose `on` is in the year
    coordinators: list[CoordinatorRow]  # cases with a (counted) meeting held in the year
    bottlenecks: list[BottleneckRow]  # reported in the year
    reference_day: date  # plans count once their day is before this one
    themes: BottleneckThemes = field(repr=False)

    def counted(self) -> list[MeetingRow]:
        """The year's meetings that count (not retracted)."""
        return [m for m in self.meetings if not m.retracted]

    def plan_counts(self, plan: PlanRow) -> bool:
        """Whether a plan counts as planned and not held: its day has passed and it was
        cancelled or not held by 31 December."""
        return plan.on < self.reference_day.isoformat() and plan.not_held_by(
            date(self.year, 12, 31)
        )


def reference_day(today: date | None = None, as_known_at: datetime | None = None) -> date:
    """The day plans must be before to count: today (in Belgium), or the date of
    ``as_known_at`` when that is earlier."""
    day = today if today is not None else datetime.now(BRUSSELS).date()
    if as_known_at is not None:
        day = min(day, brussels_day(as_known_at))
    return day


def _programme_filter(programme: Programme | None, column: str) -> tuple[str, list[Any]]:
    if programme is None:
        return "", []
    return f" AND {column} = ?", [programme.value]


def _meeting(r: Row) -> MeetingRow:
    return MeetingRow(
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
        client=flag(r[10]),
        first=bool(r[11]),
        retracted=bool(r[12]),
    )


def _plan(r: Row) -> PlanRow:
    return PlanRow(
        case_id=r[0],
        meeting=int(r[1]),
        programme=r[2],
        region=r[3],
        on=r[4],
        cancelled=bool(r[5]),
        held_on=r[6],
        retracted=bool(r[7]),
    )


def _meeting_order(m: MeetingRow) -> tuple[str, str, int]:
    return m.held_on, m.case_id, m.meeting


def _plan_order(p: PlanRow) -> tuple[str, str, int]:
    return p.on, p.case_id, p.meeting


def _meetings_and_plans(
    views: ViewStore, year: int, programme: Programme | None, until: str | None
) -> tuple[list[MeetingRow], list[PlanRow]]:
    """Meetings held in ``year`` and the year before, and last plans on a day of ``year``:
    from the projection's tables, or folded from the facts recorded by ``until``."""
    where, params = _programme_filter(programme, "programme")
    if until is None:
        meetings = [
            _meeting(r)
            for r in views.read(
                f"SELECT {_MEETING_COLUMNS} FROM stats_meeting WHERE year IN (?, ?){where}",
                [year - 1, year, *params],
            )
        ]
        plans = [
            _plan(r)
            for r in views.read(
                f"SELECT {_PLAN_COLUMNS} FROM stats_plan WHERE year = ?{where}", [year, *params]
            )
        ]
    else:
        where, params = _programme_filter(programme, "c.programme")
        rows = views.read(
            f"SELECT f.case_id, c.programme, c.region, {_prefixed('f', _FACT_COLUMNS)}"
            " FROM stats_fact f JOIN stats_case c ON c.case_id = f.case_id"
            " WHERE f.at <= ? AND f.case_id IN (SELECT g.case_id FROM stats_fact g"
            " WHERE g.at <= ? AND ((g.kind = ? AND g.year IN (?, ?)) OR (g.kind = ? AND"
            f" g.year = ?))){where} ORDER BY f.case_id, f.seq",
            [
                until,
                until,
                FactKind.HELD.value,
                year - 1,
                year,
                FactKind.PLANNED.value,
                year,
                *params,
            ],
        )
        folded, all_plans = _folded(rows)
        meetings = [m for m in folded if int(m.held_on[:4]) in (year - 1, year)]
        plans = [p for p in all_plans if int(p.on[:4]) == year]
    return sorted(meetings, key=_meeting_order), sorted(plans, key=_plan_order)


def _coordinators(
    views: ViewStore, year: int, meetings: Sequence[MeetingRow], until: str | None
) -> list[CoordinatorRow]:
    """Each case with a counted meeting in ``year``, with its last designation recorded by
    the end of the year (and by ``until``)."""
    regions = {m.case_id: m.region for m in meetings if not m.retracted}
    year_end = instant(datetime(year + 1, 1, 1, tzinfo=BRUSSELS))
    sql = (
        "SELECT case_id, at, chosen_by_client FROM stats_designation WHERE at < ?"
        " AND case_id IN (SELECT case_id FROM stats_fact WHERE kind = ? AND year = ?)"
    )
    params: list[Any] = [year_end, FactKind.HELD.value, year]
    if until is not None:
        sql += " AND at <= ?"
        params.append(until)
    last: dict[str, tuple[str, bool]] = {}
    for case_id, at, chosen in views.read(sql + " ORDER BY case_id, seq", params):
        last[case_id] = (at, bool(chosen))
    rows = []
    for case_id in sorted(regions):
        found = last.get(case_id)
        designated_on = None
        if found is not None:
            recorded = datetime.fromisoformat(found[0]).replace(tzinfo=UTC)
            designated_on = brussels_day(recorded).isoformat()
        rows.append(
            CoordinatorRow(
                case_id,
                regions[case_id],
                designated=found is not None,
                chosen_by_client=found is not None and found[1],
                designated_on=designated_on,
            )
        )
    return rows


def _bottlenecks(
    views: ViewStore,
    year: int,
    programme: Programme | None,
    themes: BottleneckThemes,
    until: str | None,
) -> list[BottleneckRow]:
    where, params = _programme_filter(programme, "programme")
    if until is not None:
        where += " AND at <= ?"
        params.append(until)
    rows = views.read(
        "SELECT case_id, seq, region, reported_on, theme FROM stats_bottleneck"
        f" WHERE year = ?{where} ORDER BY reported_on, case_id, seq",
        [year, *params],
    )
    return [BottleneckRow(r[0], int(r[1]), r[2], r[3], themes.theme_of(r[4])) for r in rows]


def year_rows(
    views: ViewStore,
    year: int,
    programme: Programme | None = None,
    *,
    as_known_at: datetime | None = None,
    themes: BottleneckThemes | None = None,
    today: date | None = None,
) -> YearRows:
    """The rows the figures of ``year`` count: as known now, or from the events recorded at
    or before ``as_known_at`` only."""
    themes = themes if themes is not None else packaged()
    until = None if as_known_at is None else instant(as_known_at)
    both, plans = _meetings_and_plans(views, year, programme, until)
    meetings = [m for m in both if m.held_on[:4] == str(year)]
    return YearRows(
        year=year,
        meetings=meetings,
        previous=[m for m in both if m.held_on[:4] != str(year)],
        plans=plans,
        coordinators=_coordinators(views, year, meetings, until),
        bottlenecks=_bottlenecks(views, year, programme, themes, until),
        reference_day=reference_day(today, as_known_at),
        themes=themes,
    )


def meetings_of(
    views: ViewStore,
    year: int,
    programme: Programme | None,
    *,
    as_known_at: datetime | None = None,
) -> list[MeetingRow]:
    """Every meeting held in ``year`` that counts (not retracted), in a stable order."""
    until = None if as_known_at is None else instant(as_known_at)
    both, _ = _meetings_and_plans(views, year, programme, until)
    return [m for m in both if m.held_on[:4] == str(year) and not m.retracted]


def _by_region(rows: Iterable[MeetingRow | CoordinatorRow | BottleneckRow]) -> dict[Region, int]:
    counts = dict.fromkeys(Region, 0)
    for row in rows:
        counts[Region(row.region)] += 1
    return counts


# -- the figures --------------------------------------------------------------------------


class RegionShare(BaseModel):
    """A region's meetings and their share of all meetings of the year."""

    count: int
    pct: float


class MeetingFigures(BaseModel):
    """Meetings held in the year: first and follow-up, the year before, per region."""

    total: int
    first: int = Field(description="the case's earliest held meeting (eerste overleg)")
    follow_up: int = Field(description="every later meeting of a case (vervolgoverleg)")
    previous_year_total: int
    planned_not_held: int = Field(
        description="last plans of a meeting on a day of the year that were cancelled or "
        "not held by 31 December (in the current year: plans whose day has passed)"
    )
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
    client_present: Outcome = Field(
        description="the client present (`client` where given, else `youth`)"
    )
    parents_present: Outcome
    workplans: Outcome
    coordinators: CoordinatorOutcome


class Spilfiguur(BaseModel):
    """Cases with a meeting held in the year that have a designated coordinator (spilfiguur)
    at the end of the year; workplan coordinators are not counted here."""

    cases: int
    chosen_by_client: int = Field(description="of those designations, chosen by the client")


class Statistics(BaseModel):
    """The annual figures, as the event-stream contract defines them."""

    model_config = ConfigDict(json_schema_extra={"examples": [STATISTICS_EXAMPLE]})

    year: int
    programme: Programme | None = Field(description="null: all programmes")
    meetings: MeetingFigures
    fully_registered: RegisteredFigures
    spilfiguur: Spilfiguur
    bottlenecks_by_theme: dict[str, int] = Field(
        description="bottlenecks reported in the year per theme of the analysts' list; "
        "any other theme counts as 'andere'"
    )

    def outcome(self, name: str) -> Outcome | CoordinatorOutcome:
        """One of the outcome figures by its name (a key of ``OUTCOMES``)."""
        found: Outcome | CoordinatorOutcome = getattr(self.fully_registered, name)
        return found


def figures(rows: YearRows, programme: Programme | None) -> Statistics:
    """The contract's statistics, counted from the rows of one year."""
    meetings = rows.counted()
    total = len(meetings)
    registered = [m for m in meetings if m.registered]
    fully = len(registered)

    def counted(name: str) -> list[MeetingRow]:
        return [m for m in registered if m.counts_in(name)]

    def outcome(name: str) -> Outcome:
        found = counted(name)
        return Outcome(total=len(found), pct=pct(len(found), fully), by_region=_by_region(found))

    workplans = outcome("workplans")
    coordinators = counted("coordinators")
    themes = dict.fromkeys(rows.themes.names, 0)
    for bottleneck in rows.bottlenecks:
        themes[bottleneck.theme] += 1
    designated = [c for c in rows.coordinators if c.designated]
    return Statistics(
        year=rows.year,
        programme=programme,
        meetings=MeetingFigures(
            total=total,
            first=sum(1 for m in meetings if m.first),
            follow_up=sum(1 for m in meetings if not m.first),
            previous_year_total=sum(1 for m in rows.previous if not m.retracted),
            planned_not_held=sum(1 for p in rows.plans if rows.plan_counts(p)),
            by_region={
                region: RegionShare(count=count, pct=pct(count, total))
                for region, count in _by_region(meetings).items()
            },
        ),
        fully_registered=RegisteredFigures(
            total=fully,
            youth_present=outcome("youth_present"),
            client_present=outcome("client_present"),
            parents_present=outcome("parents_present"),
            workplans=workplans,
            coordinators=CoordinatorOutcome(
                total=len(coordinators),
                pct=pct(len(coordinators), fully),
                pct_of_workplans=pct(len(coordinators), workplans.total),
                by_region=_by_region(coordinators),
            ),
        ),
        spilfiguur=Spilfiguur(
            cases=len(designated),
            chosen_by_client=sum(1 for c in designated if c.chosen_by_client),
        ),
        bottlenecks_by_theme=themes,
    )


def annual_statistics(
    views: ViewStore,
    year: int,
    programme: Programme | None = None,
    *,
    as_known_at: datetime | None = None,
    themes: BottleneckThemes | None = None,
    today: date | None = None,
) -> Statistics:
    """The statistics of ``year`` exactly as ``overleg stats --format json`` prints them.

    ``as_known_at``: only from the events recorded at or before that instant (the figures
    as they could have been published then). ``themes``: the analysts' list of bottleneck
    themes (the packaged one when not given). ``today``: the day plans must be before to
    count (today in Belgium when not given)."""
    rows = year_rows(views, year, programme, as_known_at=as_known_at, themes=themes, today=today)
    return figures(rows, programme)


def registered_by_region(meetings: Sequence[MeetingRow]) -> dict[Region, int]:
    """Fully registered meetings per region (the base of each region's rates)."""
    return _by_region([m for m in meetings if m.registered and not m.retracted])
