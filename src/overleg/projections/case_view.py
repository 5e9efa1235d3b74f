"""The case view for caseworkers: where each case stands now, and the list of cases to act on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date
from enum import StrEnum
from typing import Any, ClassVar, assert_never
from uuid import UUID

from overleg.adapters.views import Row, Tx, ViewStore, boolean
from overleg.aggregates.case import Case, CaseEvent
from overleg.projections.base import Projection, chunks, placeholders

Fetch = Callable[[str, Sequence[Any]], list[Row]]


class Status(StrEnum):
    """Where a case stands, from its request to its end."""

    REQUESTED = "requested"
    DECLINED = "declined"
    CONSENTED = "consented"
    CHAIR_APPOINTED = "chair_appointed"
    MEETING_HELD = "meeting_held"
    WORKPLAN_AGREED = "workplan_agreed"
    REGISTRATION_COMPLETED = "registration_completed"
    FOLLOW_UP_SCHEDULED = "follow_up_scheduled"
    CLOSED = "closed"


@dataclass(frozen=True)
class Consent:
    """A standing consent."""

    ref: str
    role: str
    given_at: str


@dataclass(frozen=True)
class OpenAgreement:
    """An agreement of the case's current workplan."""

    meeting: int
    position: int
    who: str
    what: str
    due: str | None
    domain: str | None


@dataclass
class CaseView:
    """One case as a caseworker sees it now."""

    case_id: str
    version: int
    programme: str
    region: str
    channel: str
    requested_at: str
    status: str
    chair: str | None = None
    coordinator: str | None = None
    meetings_held: int = 0
    last_meeting_on: str | None = None
    last_meeting_workplan: bool = False
    last_meeting_registered: bool = False
    workplan_meeting: int | None = None
    next_follow_up_on: str | None = None
    ended: str | None = None
    updated_at: str = ""
    consents: list[Consent] = field(default_factory=list)
    agreements: list[OpenAgreement] = field(default_factory=list)
    # Everyone with a part in the case (requester, client, parties, professionals named
    # in it): whom a professional's case list shows.
    participants: set[str] = field(default_factory=set)

    def follow_up_overdue(self, today: date) -> bool:
        """The scheduled follow-up date has passed and no meeting was held since."""
        return (
            self.ended is None
            and self.next_follow_up_on is not None
            and self.next_follow_up_on < today.isoformat()
        )

    def derive_status(self) -> str:
        """The latest stage the case reached (a scheduled follow-up waits for its meeting)."""
        if self.ended is not None:
            return self.ended
        if self.next_follow_up_on is not None:
            return Status.FOLLOW_UP_SCHEDULED
        if self.meetings_held:
            if self.last_meeting_registered:
                return Status.REGISTRATION_COMPLETED
            if self.last_meeting_workplan:
                return Status.WORKPLAN_AGREED
            return Status.MEETING_HELD
        if self.chair is not None:
            return Status.CHAIR_APPOINTED
        if self.consents:
            return Status.CONSENTED
        return Status.REQUESTED


_COLUMNS = [
    f.name for f in fields(CaseView) if f.name not in ("consents", "agreements", "participants")
]
_FLAGS = ("last_meeting_workplan", "last_meeting_registered")


def _fold(views: dict[str, CaseView], e: CaseEvent) -> None:
    case_id = str(e.originator_id)
    at = e.timestamp.isoformat()
    if isinstance(e, Case.Requested):
        views[case_id] = CaseView(
            case_id, 0, e.programme, e.region, e.channel, at, Status.REQUESTED
        )
        views[case_id].participants.update((e.personal["requester_ref"], e.personal["client_ref"]))
    view = views[case_id]
    view.version = e.originator_version
    # Kept in UTC so that ordering by it is ordering in time, whatever the offsets.
    view.updated_at = e.timestamp.astimezone(UTC).isoformat()
    match e:
        case Case.Requested() | Case.BottleneckReported():
            pass
        case Case.RequestDeclined():
            view.ended, view.next_follow_up_on, view.agreements = Status.DECLINED, None, []
        case Case.CaseClosed():
            view.ended, view.next_follow_up_on, view.agreements = Status.CLOSED, None, []
        case Case.ConsentGiven(personal=p):
            view.consents.append(Consent(p["ref"], e.role, at))
            view.participants.add(p["ref"])
        case Case.ConsentWithdrawn(personal=p):
            view.consents = [c for c in view.consents if (c.ref, c.role) != (p["ref"], e.role)]
        case Case.ChairAppointed(personal=p):
            view.chair = p["chair"]
        case Case.MeetingHeld(personal=p):
            view.meetings_held = e.meeting
            view.last_meeting_on = e.held_on.isoformat()
            view.last_meeting_workplan = view.last_meeting_registered = False
            view.next_follow_up_on = None  # the scheduled follow-up took place
            view.participants.update(p["professionals"])
        case Case.WorkplanAgreed(personal=p):
            if e.meeting == view.meetings_held:
                view.last_meeting_workplan = True
            if view.workplan_meeting is None or e.meeting >= view.workplan_meeting:
                view.workplan_meeting = e.meeting
                view.agreements = [
                    OpenAgreement(e.meeting, n, a["who"], a["what"], a["due"], a["domain"])
                    for n, a in enumerate(p["agreements"], start=1)
                ]
                if p["coordinator"] is not None:
                    view.coordinator = p["coordinator"]
            view.participants.update(a["who"] for a in p["agreements"])
        case Case.RegistrationCompleted():
            if e.meeting == view.meetings_held:
                view.last_meeting_registered = True
        case Case.FollowUpScheduled():
            view.next_follow_up_on = e.on.isoformat()
        case (
            Case.MeetingPlanned()
            | Case.MeetingCancelled()
            | Case.PreparationRecorded()
            | Case.CoordinatorDesignated()
            | Case.AttendanceCorrected()
            | Case.WorkplanRevised()
            | Case.MeetingRetracted()
            | Case.CaseReopened()
        ):
            pass  # contract v2's events: their view follows in the next step
        case _:
            assert_never(e)
    view.status = view.derive_status()


class CaseViews(Projection):
    """The current state of every case, with its standing consents and open agreements."""

    name: ClassVar[str] = "case_view"
    version: ClassVar[int] = 1
    tables: ClassVar[tuple[str, ...]] = (
        "case_view",
        "case_view_consent",
        "case_view_agreement",
        "case_view_participant",
    )

    def create(self, tx: Tx) -> None:
        flag_type = boolean(tx.dialect)
        tx.execute(
            "CREATE TABLE IF NOT EXISTS case_view ("
            " case_id TEXT PRIMARY KEY, version INTEGER NOT NULL,"
            " programme TEXT NOT NULL, region TEXT NOT NULL, channel TEXT NOT NULL,"
            " requested_at TEXT NOT NULL, status TEXT NOT NULL, chair TEXT, coordinator TEXT,"
            " meetings_held INTEGER NOT NULL, last_meeting_on TEXT,"
            f" last_meeting_workplan {flag_type} NOT NULL,"
            f" last_meeting_registered {flag_type} NOT NULL,"
            " workplan_meeting INTEGER, next_follow_up_on TEXT, ended TEXT,"
            " updated_at TEXT NOT NULL)"
        )
        for column in ("status", "region", "programme", "chair", "coordinator"):
            tx.execute(f"CREATE INDEX IF NOT EXISTS case_view_{column} ON case_view ({column})")
        tx.execute(
            "CREATE TABLE IF NOT EXISTS case_view_consent ("
            " case_id TEXT NOT NULL, ref TEXT NOT NULL, role TEXT NOT NULL,"
            " given_at TEXT NOT NULL, PRIMARY KEY (case_id, ref, role))"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS case_view_agreement ("
            " case_id TEXT NOT NULL, meeting INTEGER NOT NULL, position INTEGER NOT NULL,"
            " who TEXT NOT NULL, what TEXT NOT NULL, due TEXT, domain TEXT,"
            " PRIMARY KEY (case_id, meeting, position))"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS case_view_participant ("
            " case_id TEXT NOT NULL, ref TEXT NOT NULL, PRIMARY KEY (case_id, ref))"
        )
        tx.execute(
            "CREATE INDEX IF NOT EXISTS case_view_participant_ref ON case_view_participant (ref)"
        )

    def apply(self, tx: Tx, events: Sequence[CaseEvent]) -> None:
        touched = list(dict.fromkeys(str(e.originator_id) for e in events))
        views = _load(tx.fetchall, touched)
        for e in events:
            _fold(views, e)
        for ids in chunks(touched):
            marks = placeholders(len(ids))
            for table in self.tables:
                tx.execute(f"DELETE FROM {table} WHERE case_id IN ({marks})", ids)
        rows = [views[c] for c in touched]
        tx.executemany(
            f"INSERT INTO case_view ({', '.join(_COLUMNS)}) VALUES ({placeholders(len(_COLUMNS))})",
            [tuple(getattr(v, c) for c in _COLUMNS) for v in rows],
        )
        tx.executemany(
            "INSERT INTO case_view_consent (case_id, ref, role, given_at) VALUES (?, ?, ?, ?)",
            [(v.case_id, c.ref, c.role, c.given_at) for v in rows for c in v.consents],
        )
        tx.executemany(
            "INSERT INTO case_view_agreement (case_id, meeting, position, who, what, due,"
            " domain) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (v.case_id, a.meeting, a.position, a.who, a.what, a.due, a.domain)
                for v in rows
                for a in v.agreements
            ],
        )
        tx.executemany(
            "INSERT INTO case_view_participant (case_id, ref) VALUES (?, ?)",
            [(v.case_id, ref) for v in rows for ref in sorted(v.participants)],
        )


def _view(row: Sequence[Any]) -> CaseView:
    values = dict(zip(_COLUMNS, row, strict=True))
    for name in _FLAGS:
        values[name] = bool(values[name])
    return CaseView(**values)


def _load(fetch: Fetch, case_ids: Sequence[str]) -> dict[str, CaseView]:
    views: dict[str, CaseView] = {}
    for ids in chunks(case_ids):
        marks = placeholders(len(ids))
        for row in fetch(
            f"SELECT {', '.join(_COLUMNS)} FROM case_view WHERE case_id IN ({marks})", ids
        ):
            views[row[0]] = _view(row)
        for case_id, ref, role, given_at in fetch(
            "SELECT case_id, ref, role, given_at FROM case_view_consent"
            f" WHERE case_id IN ({marks}) ORDER BY given_at, ref, role",
            ids,
        ):
            views[case_id].consents.append(Consent(ref, role, given_at))
        for case_id, *agreement in fetch(
            "SELECT case_id, meeting, position, who, what, due, domain FROM case_view_agreement"
            f" WHERE case_id IN ({marks}) ORDER BY meeting, position",
            ids,
        ):
            views[case_id].agreements.append(OpenAgreement(*agreement))
        for case_id, ref in fetch(
            f"SELECT case_id, ref FROM case_view_participant WHERE case_id IN ({marks})", ids
        ):
            views[case_id].participants.add(ref)
    return views


def view_of(events: Sequence[CaseEvent]) -> CaseView:
    """The view of one case folded straight from its events (what the projection stores)."""
    views: dict[str, CaseView] = {}
    for e in events:
        _fold(views, e)
    (view,) = views.values()
    return view


@dataclass(frozen=True)
class CaseFilter:
    """Which cases a list shows; ``None`` does not filter."""

    status: str | None = None
    region: str | None = None
    programme: str | None = None
    chair: str | None = None
    coordinator: str | None = None
    overdue_on: date | None = None  # only cases whose follow-up is overdue on this day
    participant: str | None = None  # only cases this reference takes part in


@dataclass(frozen=True)
class CasePage:
    """One page of a case list."""

    items: list[CaseView]
    total: int
    offset: int
    limit: int


def get_case_view(views: ViewStore, case_id: UUID) -> CaseView | None:
    """One case's view, or ``None`` when the projection does not know the case."""
    return _load(views.read, [str(case_id)]).get(str(case_id))


def list_cases(
    views: ViewStore, where: CaseFilter, *, offset: int = 0, limit: int = 50
) -> CasePage:
    """Cases matching ``where``, most recently changed first."""
    clauses: list[str] = []
    params: list[Any] = []
    for column in ("status", "region", "programme", "chair", "coordinator"):
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if where.overdue_on is not None:
        clauses.append("ended IS NULL AND next_follow_up_on < ?")
        params.append(where.overdue_on.isoformat())
    if where.participant is not None:
        clauses.append("case_id IN (SELECT case_id FROM case_view_participant WHERE ref = ?)")
        params.append(where.participant)
    condition = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    total = int(views.read(f"SELECT COUNT(*) FROM case_view{condition}", params)[0][0])
    ids_page = [
        r[0]
        for r in views.read(
            f"SELECT case_id FROM case_view{condition}"
            " ORDER BY updated_at DESC, case_id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
    ]
    loaded = _load(views.read, ids_page)
    return CasePage([loaded[c] for c in ids_page], total, offset, limit)
