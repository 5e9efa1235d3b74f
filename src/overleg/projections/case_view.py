"""The case view for caseworkers: where each case stands now, and the list of cases to act on.

The fold keeps what each meeting number of a case went through (planned, prepared, held,
cancelled, retracted; its attendance, workplan and registration) and the refs the case
names; everything a caseworker reads (the last meeting, the next planned one, the open
agreements, the coordinator, flagged meetings, the status, who takes part) is derived from
that after every event, so a correction or a retraction changes it truthfully.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, ClassVar, assert_never
from uuid import UUID

from overleg.adapters.views import Fetch, OneQuery, Row, Tx, ViewStore, boolean, flag
from overleg.aggregates.case import Case, CaseEvent
from overleg.aggregates.values import FAMILY_ROLES, Programme, Role
from overleg.policies.access import municipality_key
from overleg.projections.base import (
    Projection,
    at_head_checks,
    chunks,
    placeholders,
)
from overleg.projections.case_answer import Status, answer_on, case_answer, overdue


@dataclass(frozen=True)
class Consent:
    """A standing consent."""

    ref: str
    role: str
    given_at: str
    # The seq of the event that gave it: consents are shown in the order they were given
    # (``given_at`` orders them only within one UTC offset).
    seq: int


@dataclass(frozen=True)
class OpenAgreement:
    """An agreement of a workplan (the open agreements: those of the case's current one)."""

    meeting: int
    position: int
    who: str
    what: str
    due: str | None
    domain: str | None


@dataclass(frozen=True)
class FlaggedMeeting:
    """A held meeting at which professionals the client did not want invited were present
    (recorded as it happened, and flagged)."""

    meeting: int
    refs: list[str]


# The kinds of refs kept per meeting number.
PRESENT, INVITED, NOT_INVITED, OTHERS = "present", "invited", "not_invited", "others"


@dataclass
class MeetingSlot:
    """One meeting number of a case: planned (its last plan), prepared, held, cancelled or
    retracted, with its workplan and registration."""

    meeting: int
    planned_on: str | None = None
    cancelled: bool = False
    held_on: str | None = None
    retracted: bool = False
    workplan: bool = False
    registered: bool = False
    prepared: bool = False  # a preparation was recorded (the last one stands)
    checklist_done: int = 0  # items of that preparation's checklist that are done
    checklist_given: int = 0  # items of it that were given
    # When its workplan was first agreed (the case version; a revision keeps the place)
    # and the coordinator that workplan names now.
    workplan_order: int | None = None
    workplan_coordinator: str | None = None
    present: list[str] = field(default_factory=list)  # professionals, as attendance stands
    invited: list[str] = field(default_factory=list)  # professionals invited by the last plan
    not_invited: list[str] = field(default_factory=list)  # not invited, at the client's wish
    # Invited by the last plan in a role other than professional, each as "role:ref" (a
    # role has no colon): what the case knows them as decides whether they may read it.
    others: list[str] = field(default_factory=list)

    @property
    def live(self) -> bool:
        """Held and not retracted: a meeting that counts."""
        return self.held_on is not None and not self.retracted

    @property
    def open(self) -> bool:
        """Planned, and neither held nor cancelled."""
        return self.planned_on is not None and self.held_on is None and not self.cancelled

    @property
    def state(self) -> str:
        """retracted, held, cancelled, planned, or prepared (for the next meeting)."""
        if self.held_on is not None:
            return "retracted" if self.retracted else "held"
        if self.planned_on is not None:
            return "cancelled" if self.cancelled else "planned"
        return "prepared"

    @property
    def flagged(self) -> list[str]:
        """Professionals present whom the client did not want invited."""
        if not self.live:
            return []
        return sorted(set(self.present) & set(self.not_invited))


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
    # The designated coordinator (spilfiguur) if any, else the latest workplan's.
    coordinator: str | None = None
    meetings_held: int = 0  # held and not retracted
    last_meeting_on: str | None = None
    last_meeting_workplan: bool = False
    last_meeting_registered: bool = False
    workplan_meeting: int | None = None
    next_follow_up_on: str | None = None
    ended: str | None = None
    updated_at: str = ""
    designated_coordinator: str | None = None  # CoordinatorDesignated's, the last one
    coordinator_chosen_by_client: bool | None = None  # None: none designated
    next_meeting: int | None = None  # the planned meeting that comes first
    next_meeting_on: str | None = None
    erased_at: str | None = None  # when its personal data was erased
    # The municipality the request names (lokaal cliëntoverleg), and its key: the name as
    # a team's token is matched against it (``policies.access.municipality_key``).
    municipality: str | None = None
    municipality_key: str | None = None
    consents: list[Consent] = field(default_factory=list)
    agreements: list[OpenAgreement] = field(default_factory=list)
    # Everyone with a part in the case (requester, client, parties, professionals named
    # in it); of them, ``readers`` may read it.
    participants: set[str] = field(default_factory=set)
    # The professionals who may read the case, as the case decides it (``Case.readers``).
    readers: set[str] = field(default_factory=set)
    meetings: list[MeetingSlot] = field(default_factory=list)  # by number
    # Kept to derive the rest: every workplan's agreements (of every meeting), the refs
    # the case names outside its meetings (requester, client, parties, coordinators), the
    # roles the requester and the consenting parties were named in, and every coordinator
    # ever designated.
    workplans: list[OpenAgreement] = field(default_factory=list)
    named: set[str] = field(default_factory=set)
    roles: dict[str, set[str]] = field(default_factory=dict)
    designated: set[str] = field(default_factory=set)

    @property
    def flagged_meetings(self) -> list[FlaggedMeeting]:
        """Held meetings (not retracted) at which a professional the client did not want
        invited was present, with those professionals."""
        return [FlaggedMeeting(s.meeting, s.flagged) for s in self.meetings if s.flagged]

    def follow_up_overdue(self, today: date) -> bool:
        """The scheduled follow-up date has passed and no meeting was held since."""
        return overdue(self.ended, self.next_follow_up_on, today)

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

    def slot(self, number: int) -> MeetingSlot:
        """The meeting of this number, added when the case did not know it yet."""
        for slot in self.meetings:
            if slot.meeting == number:
                return slot
        slot = MeetingSlot(number)
        self.meetings.append(slot)
        self.meetings.sort(key=lambda s: s.meeting)
        return slot

    def derive(self) -> None:
        """Everything shown that follows from the meetings and the named refs."""
        live = [s for s in self.meetings if s.live]
        self.meetings_held = len(live)
        last = max(live, key=lambda s: (s.held_on, s.meeting), default=None)
        self.last_meeting_on = None if last is None else last.held_on
        self.last_meeting_workplan = last is not None and last.workplan
        self.last_meeting_registered = last is not None and last.registered
        # The workplans in the order they were agreed: a later one for an earlier meeting
        # does not replace the current one, and one naming no coordinator keeps the last.
        current: int | None = None
        coordinator: str | None = None
        for s in sorted((s for s in live if s.workplan), key=lambda s: s.workplan_order or 0):
            if current is None or s.meeting >= current:
                current = s.meeting
                coordinator = s.workplan_coordinator or coordinator
        self.workplan_meeting = current
        self.coordinator = self.designated_coordinator or coordinator
        self.agreements = (
            []
            if self.ended is not None or current is None
            else [a for a in self.workplans if a.meeting == current]
        )
        planned = [s for s in self.meetings if s.open]
        upcoming = min(planned, key=lambda s: (s.planned_on or "", s.meeting), default=None)
        self.next_meeting = None if upcoming is None else upcoming.meeting
        self.next_meeting_on = None if upcoming is None else upcoming.planned_on
        live_numbers = {s.meeting for s in live}
        self.participants = set(self.named)
        for s in self.meetings:
            self.participants.update(s.invited)
            if s.live:
                self.participants.update(s.present)
                if s.workplan_coordinator is not None:
                    self.participants.add(s.workplan_coordinator)
        self.participants.update(a.who for a in self.workplans if a.meeting in live_numbers)
        self.readers = self._readers(live)
        self.status = self.derive_status()

    def _readers(self, live: list[MeetingSlot]) -> set[str]:
        """``Case.readers`` from what the view keeps: the professionals of the case (present
        at a meeting that counts, invited as a professional, designated coordinator, named
        as a party or requester in the role professional), and those named in a workplan of
        a meeting that counts, in an agreement or as coordinator, unless the case knows
        them only in family or network roles."""
        known = {ref: set(roles) for ref, roles in self.roles.items()}
        professionals = set(self.designated)
        professionals.update(r for r, roles in self.roles.items() if Role.PROFESSIONAL in roles)
        for s in self.meetings:
            professionals.update(s.invited)
            for ref in s.invited:
                known.setdefault(ref, set()).add(Role.PROFESSIONAL)
            for other in s.others:
                role, ref = other.split(":", 1)
                known.setdefault(ref, set()).add(role)
        family = {ref for ref, roles in known.items() if roles and roles <= FAMILY_ROLES}
        agreed: set[str] = set()
        for s in live:
            professionals.update(s.present)
            if s.workplan_coordinator is not None:
                agreed.add(s.workplan_coordinator)
        numbers = {s.meeting for s in live}
        agreed.update(a.who for a in self.workplans if a.meeting in numbers)
        return professionals | (agreed - family)


_COLLECTIONS = (
    "consents",
    "agreements",
    "participants",
    "readers",
    "meetings",
    "workplans",
    "named",
    "roles",
    "designated",
)
_COLUMNS = [f.name for f in fields(CaseView) if f.name not in _COLLECTIONS]
_FLAGS = ("last_meeting_workplan", "last_meeting_registered")
# Kept as one text each, the refs joined by spaces.
_REFS = (PRESENT, INVITED, NOT_INVITED, OTHERS)
_SLOT_COLUMNS = [f.name for f in fields(MeetingSlot)]
_SLOT_FLAGS = ("cancelled", "retracted", "workplan", "registered", "prepared")


MeetingEvent = (
    Case.MeetingPlanned
    | Case.MeetingCancelled
    | Case.PreparationRecorded
    | Case.MeetingHeld
    | Case.AttendanceCorrected
    | Case.WorkplanAgreed
    | Case.WorkplanRevised
    | Case.RegistrationCompleted
    | Case.MeetingRetracted
)


def _meeting(view: CaseView, e: MeetingEvent) -> None:
    """What an event tells of one meeting number of the case."""
    slot = view.slot(e.meeting)
    match e:
        case Case.MeetingPlanned(personal=p):
            slot.planned_on, slot.cancelled = e.on.isoformat(), False  # replaces the last plan
            slot.invited = sorted(
                {i["ref"] for i in p["invited"] if i["role"] == Role.PROFESSIONAL}
            )
            slot.not_invited = sorted(set(p["not_invited"]))
            slot.others = sorted(
                {f"{i['role']}:{i['ref']}" for i in p["invited"] if i["role"] != Role.PROFESSIONAL}
            )
        case Case.MeetingCancelled():
            slot.cancelled = True
            view.next_follow_up_on = None  # the scheduled follow-up date goes with it
        case Case.PreparationRecorded():
            slot.prepared = True
            slot.checklist_done = sum(1 for done in e.checklist.values() if done)
            slot.checklist_given = len(e.checklist)
        case Case.MeetingHeld(personal=p):
            slot.held_on = e.held_on.isoformat()
            slot.present = sorted(set(p["professionals"]))
            view.next_follow_up_on = None  # the scheduled follow-up took place
        case Case.AttendanceCorrected(personal=p):
            slot.present = sorted(set(p["professionals"]))
        case Case.WorkplanAgreed(personal=p) | Case.WorkplanRevised(personal=p):
            slot.workplan = True
            if slot.workplan_order is None:
                slot.workplan_order = e.originator_version
            slot.workplan_coordinator = p["coordinator"]
            kept = [a for a in view.workplans if a.meeting != e.meeting]
            agreed = [
                OpenAgreement(e.meeting, n, a["who"], a["what"], a["due"], a["domain"])
                for n, a in enumerate(p["agreements"], start=1)
            ]
            view.workplans = sorted(kept + agreed, key=lambda a: (a.meeting, a.position))
        case Case.RegistrationCompleted():
            slot.registered = True
        case Case.MeetingRetracted():
            slot.retracted = True
        case _:
            assert_never(e)


def _fold(views: dict[str, CaseView], e: CaseEvent) -> None:
    """Record what one event tells of its case; ``CaseView.derive`` then shows it."""
    case_id = str(e.originator_id)
    at = e.timestamp.isoformat()
    if isinstance(e, Case.Requested):
        views[case_id] = CaseView(
            case_id,
            0,
            e.programme,
            e.region,
            e.channel,
            at,
            Status.REQUESTED,
            municipality=e.municipality,
            municipality_key=municipality_key(e.municipality),
        )
        views[case_id].named.update((e.personal["requester_ref"], e.personal["client_ref"]))
        views[case_id].roles.setdefault(e.personal["requester_ref"], set()).add(e.requester_role)
    view = views[case_id]
    view.version = e.originator_version
    # Kept in UTC so that ordering by it is ordering in time, whatever the offsets.
    view.updated_at = e.timestamp.astimezone(UTC).isoformat()
    match e:
        case Case.Requested() | Case.BottleneckReported():
            pass
        case Case.RequestDeclined():
            view.ended, view.next_follow_up_on = Status.DECLINED, None
        case Case.CaseClosed():
            view.ended, view.next_follow_up_on = Status.CLOSED, None
        case Case.CaseReopened():
            view.ended = None  # active again: its status follows from its meetings
        case Case.ConsentGiven(personal=p):
            view.consents.append(Consent(p["ref"], e.role, at, e.originator_version))
            view.named.add(p["ref"])
            view.roles.setdefault(p["ref"], set()).add(e.role)
        case Case.ConsentWithdrawn(personal=p):
            view.consents = [c for c in view.consents if (c.ref, c.role) != (p["ref"], e.role)]
        case Case.ChairAppointed(personal=p):
            view.chair = p["chair"]
        case (
            Case.MeetingPlanned()
            | Case.MeetingCancelled()
            | Case.PreparationRecorded()
            | Case.MeetingHeld()
            | Case.AttendanceCorrected()
            | Case.WorkplanAgreed()
            | Case.WorkplanRevised()
            | Case.RegistrationCompleted()
            | Case.MeetingRetracted()
        ):
            _meeting(view, e)
        case Case.CoordinatorDesignated(personal=p):
            view.designated_coordinator = p["coordinator"]
            view.coordinator_chosen_by_client = e.chosen_by_client
            view.named.add(p["coordinator"])
            view.designated.add(p["coordinator"])
        case Case.FollowUpScheduled():
            view.next_follow_up_on = e.on.isoformat()
        case Case.PersonalDataErased():
            view.erased_at = at
        case _:
            assert_never(e)


class CaseViews(Projection):
    """The current state of every case: its meetings, standing consents, workplans, flagged
    meetings, who takes part and who may read it."""

    name: ClassVar[str] = "case_view"
    version: ClassVar[int] = 6
    personal: ClassVar[bool] = True
    tables: ClassVar[tuple[str, ...]] = (
        "case_view",
        "case_view_consent",
        "case_view_agreement",
        "case_view_participant",
        "case_view_meeting",
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
            " updated_at TEXT NOT NULL, designated_coordinator TEXT,"
            f" coordinator_chosen_by_client {flag_type}, next_meeting INTEGER,"
            " next_meeting_on TEXT, erased_at TEXT, municipality TEXT, municipality_key TEXT,"
            " answer TEXT NOT NULL)"
        )
        tx.execute(
            "CREATE INDEX IF NOT EXISTS case_view_municipality_key ON case_view (municipality_key)"
        )
        # A list's order (most recently changed first): a page is read from the index.
        tx.execute(
            "CREATE INDEX IF NOT EXISTS case_view_updated ON case_view (updated_at DESC, case_id)"
        )
        # A list filtered on one of these: its count is read from the index alone, and its
        # page in the list's order from it, however many cases match (the single-column
        # indexes of earlier versions of the code made both read every matching row).
        for column in _LISTED_BY:
            tx.execute(f"DROP INDEX IF EXISTS case_view_{column}")
            tx.execute(
                f"CREATE INDEX IF NOT EXISTS case_view_{column}_updated"
                f" ON case_view ({column}, updated_at DESC, case_id)"
            )
        # The cases whose follow-up may be overdue (open, with a follow-up date): counted
        # from the first; a page of them read from the second, open cases in the list's
        # order with their follow-up date beside, so that only the page's rows are read
        # (without it, every overdue case was read and sorted for each page).
        tx.execute(
            "CREATE INDEX IF NOT EXISTS case_view_follow_up"
            " ON case_view (next_follow_up_on) WHERE ended IS NULL"
        )
        tx.execute(
            "CREATE INDEX IF NOT EXISTS case_view_open_updated"
            " ON case_view (updated_at DESC, case_id, next_follow_up_on) WHERE ended IS NULL"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS case_view_consent ("
            " case_id TEXT NOT NULL, ref TEXT NOT NULL, role TEXT NOT NULL,"
            " given_at TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (case_id, ref, role))"
        )
        # Every workplan's agreements; the open ones are those of the current workplan.
        tx.execute(
            "CREATE TABLE IF NOT EXISTS case_view_agreement ("
            " case_id TEXT NOT NULL, meeting INTEGER NOT NULL, position INTEGER NOT NULL,"
            " who TEXT NOT NULL, what TEXT NOT NULL, due TEXT, domain TEXT,"
            " PRIMARY KEY (case_id, meeting, position))"
        )
        # Who takes part; `named`: named by the case outside its meetings; `roles`: the
        # roles the case names them in as a party or requester (joined by spaces);
        # `designated`: designated coordinator, now or before; `reader`: may read the case.
        tx.execute(
            "CREATE TABLE IF NOT EXISTS case_view_participant ("
            f" case_id TEXT NOT NULL, ref TEXT NOT NULL, named {flag_type} NOT NULL,"
            f" roles TEXT NOT NULL, designated {flag_type} NOT NULL,"
            f" reader {flag_type} NOT NULL, PRIMARY KEY (case_id, ref))"
        )
        tx.execute(
            "CREATE INDEX IF NOT EXISTS case_view_participant_ref ON case_view_participant (ref)"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS case_view_meeting ("
            " case_id TEXT NOT NULL, meeting INTEGER NOT NULL, planned_on TEXT,"
            f" cancelled {flag_type} NOT NULL, held_on TEXT, retracted {flag_type} NOT NULL,"
            f" workplan {flag_type} NOT NULL, registered {flag_type} NOT NULL,"
            f" prepared {flag_type} NOT NULL, checklist_done INTEGER NOT NULL,"
            " checklist_given INTEGER NOT NULL, workplan_order INTEGER,"
            " workplan_coordinator TEXT, present TEXT NOT NULL, invited TEXT NOT NULL,"
            " not_invited TEXT NOT NULL, others TEXT NOT NULL, PRIMARY KEY (case_id, meeting))"
        )

    def apply(self, tx: Tx, events: Sequence[CaseEvent]) -> None:
        touched = list(dict.fromkeys(str(e.originator_id) for e in events))
        views = _load(tx.fetchall, touched)
        stored = list(views)  # the cases new in this batch have no rows to replace
        for e in events:
            _fold(views, e)
        for case_id in touched:
            views[case_id].derive()
        for ids in chunks(stored):
            marks = placeholders(len(ids))
            for table in self.tables:
                tx.execute(f"DELETE FROM {table} WHERE case_id IN ({marks})", ids)
        rows = [views[c] for c in touched]
        tx.insert(
            "case_view",
            (*_COLUMNS, "answer"),
            [(*(getattr(v, c) for c in _COLUMNS), case_answer(v, None).decode()) for v in rows],
        )
        tx.insert(
            "case_view_consent",
            ("case_id", "ref", "role", "given_at", "seq"),
            [(v.case_id, c.ref, c.role, c.given_at, c.seq) for v in rows for c in v.consents],
        )
        tx.insert(
            "case_view_agreement",
            ("case_id", "meeting", "position", "who", "what", "due", "domain"),
            [
                (v.case_id, a.meeting, a.position, a.who, a.what, a.due, a.domain)
                for v in rows
                for a in v.workplans
            ],
        )
        tx.insert(
            "case_view_participant",
            ("case_id", "ref", "named", "roles", "designated", "reader"),
            [
                (
                    v.case_id,
                    ref,
                    ref in v.named,
                    " ".join(sorted(v.roles.get(ref, ()))),
                    ref in v.designated,
                    ref in v.readers,
                )
                for v in rows
                for ref in sorted(v.participants | v.readers)
            ],
        )
        tx.insert(
            "case_view_meeting",
            ("case_id", *_SLOT_COLUMNS),
            [
                (
                    v.case_id,
                    *(
                        " ".join(getattr(s, c)) if c in _REFS else getattr(s, c)
                        for c in _SLOT_COLUMNS
                    ),
                )
                for v in rows
                for s in v.meetings
            ],
        )


def _view(row: Sequence[Any]) -> CaseView:
    values = dict(zip(_COLUMNS, row, strict=True))
    for name in _FLAGS:
        values[name] = bool(values[name])
    values["coordinator_chosen_by_client"] = flag(values["coordinator_chosen_by_client"])
    return CaseView(**values)


def _slot(row: Sequence[Any]) -> MeetingSlot:
    values = dict(zip(_SLOT_COLUMNS, row, strict=True))
    for name in _SLOT_FLAGS:
        values[name] = bool(values[name])
    for name in _REFS:
        values[name] = values[name].split()
    return MeetingSlot(**values)


# What the view keeps of each participant (the rest is derived from it).
_PARTICIPANT_COLUMNS = ("ref", "named", "roles", "designated")


def _participant(view: CaseView, ref: str, named: Any, roles: str, designated: Any) -> None:
    if named:
        view.named.add(ref)
    if roles:
        view.roles[ref] = set(roles.split())
    if designated:
        view.designated.add(ref)


def _load(fetch: Fetch, case_ids: Sequence[str]) -> dict[str, CaseView]:
    views: dict[str, CaseView] = {}
    for ids in chunks(case_ids):
        marks = placeholders(len(ids))
        for row in fetch(
            f"SELECT {', '.join(_COLUMNS)} FROM case_view WHERE case_id IN ({marks})", ids
        ):
            views[row[0]] = _view(row)
        for case_id, ref, role, given_at, seq in fetch(
            "SELECT case_id, ref, role, given_at, seq FROM case_view_consent"
            f" WHERE case_id IN ({marks}) ORDER BY case_id, seq",
            ids,
        ):
            views[case_id].consents.append(Consent(ref, role, given_at, seq))
        for case_id, *agreement in fetch(
            "SELECT case_id, meeting, position, who, what, due, domain FROM case_view_agreement"
            f" WHERE case_id IN ({marks}) ORDER BY meeting, position",
            ids,
        ):
            views[case_id].workplans.append(OpenAgreement(*agreement))
        for case_id, *participant in fetch(
            f"SELECT case_id, {', '.join(_PARTICIPANT_COLUMNS)} FROM case_view_participant"
            f" WHERE case_id IN ({marks})",
            ids,
        ):
            _participant(views[case_id], *participant)
        for case_id, *columns in fetch(
            f"SELECT case_id, {', '.join(_SLOT_COLUMNS)} FROM case_view_meeting"
            f" WHERE case_id IN ({marks}) ORDER BY case_id, meeting",
            ids,
        ):
            views[case_id].meetings.append(_slot(columns))
    for view in views.values():
        view.derive()  # what is shown follows from what is kept, as when it was stored
    return views


def view_of(events: Sequence[CaseEvent]) -> CaseView:
    """The view of one case folded straight from its events (what the projection stores)."""
    views: dict[str, CaseView] = {}
    for e in events:
        _fold(views, e)
    (view,) = views.values()
    view.derive()
    return view


@dataclass(frozen=True)
class MunicipalityOrChair:
    """The cases of a team of lokaal cliëntoverleg: those of its municipality (by its key,
    ``policies.access.municipality_key``; and of its region, when its token names one),
    and those its member was appointed to chair."""

    municipality_key: str
    region: str | None
    chair: str


@dataclass(frozen=True)
class CaseFilter:
    """Which cases a list shows; ``None`` does not filter."""

    status: str | None = None
    region: str | None = None
    programme: str | None = None
    chair: str | None = None
    coordinator: str | None = None
    overdue_on: date | None = None  # only cases whose follow-up is overdue on this day
    reader: str | None = None  # only cases this professional may read (``Case.readers``)
    municipality_or_chair: MunicipalityOrChair | None = None


@dataclass(frozen=True)
class CasePage:
    """One page of a case list: each case listed, with its answer as sent on the day it is
    read (``case_answer.answer_on``), in the list's order."""

    case_ids: list[str]
    answers: list[bytes]
    total: int
    offset: int
    limit: int


def get_case_view(views: ViewStore, case_id: UUID) -> CaseView | None:
    """One case's view, or ``None`` when the projection does not know the case."""
    return views.read_together(lambda fetch: _load(fetch, [str(case_id)])).get(str(case_id))


class NotInView(LookupError):
    """A question about a case that its view does not answer (``ViewedParts``)."""


@dataclass(frozen=True)
class ViewedParts:
    """What access decisions on reading read of a case (``policies.access.CaseParts``), as
    its view holds it: the programme, the region, the municipality, the chair and the
    professionals who may read it. Enough for every caller who reads cases; the case's
    parties (which only decisions on commands read) are not in the view, and asking for
    them raises ``NotInView`` rather than answer wrongly."""

    programme: Programme
    region: str
    chair: str | None
    municipality: str | None
    reader_refs: frozenset[str]

    @classmethod
    def of(cls, view: CaseView) -> ViewedParts:
        return cls(
            Programme(view.programme),
            view.region,
            view.chair,
            view.municipality,
            frozenset(view.readers),
        )

    @property
    def parties(self) -> Collection[str]:
        raise NotInView("parties")

    def readers(self) -> Collection[str]:
        return self.reader_refs


def parts_columns(aggregate: str) -> str:
    """The columns of ``parts_of`` read from ``case_view v`` in one statement, the readers
    as one JSON array made by the dialect's ``aggregate`` (``json_agg``,
    ``json_group_array``)."""
    return (
        "v.programme, v.region, v.chair, v.municipality,"
        f" (SELECT {aggregate}(r.ref) FROM case_view_participant r"
        "  WHERE r.case_id = v.case_id AND r.reader)"
    )


def parts_of(
    programme: str, region: str, chair: str | None, municipality: str | None, readers: Any
) -> ViewedParts:
    """The parts of a case's view that ``parts_columns`` read."""
    return ViewedParts(Programme(programme), region, chair, municipality, frozenset(readers or ()))


# A case's answer read from the projections (its view's, or its history from the trail):
# the parts of the view that access decisions read, the case's version, and the answer as
# sent (a case's on the day it is read: ``case_answer.answer_on``).
ViewAnswer = tuple[ViewedParts, int, bytes]

# What a statement reads of a case's answer, beside the parts of its view (on ``case_view
# v``): the version, the answer as stored, and what says whether a follow-up is overdue.
_ANSWER_COLUMNS = "v.version, v.answer, v.ended, v.next_follow_up_on"


def whole_case_answer(case_id: UUID, today: date) -> OneQuery[ViewAnswer | None]:
    """SQLite, where this process keeps the projections: a case's answer from its view
    (``ViewAnswer``), when the projection applied every event of the case it read: ``None``
    when it does not know the case, or set one of its events aside as failed. One statement,
    asked alone, whose answer is sent as the view stores it."""
    return OneQuery(
        _WHOLE_ANSWER, (CaseViews.name, str(case_id)), lambda rows: _whole_answer(rows, today)
    )


_WHOLE_ANSWER = (
    "SELECT EXISTS (SELECT 1 FROM projection_failure f"
    "  WHERE f.projection = ? AND f.case_id = v.case_id),"
    f" {_ANSWER_COLUMNS}, {parts_columns('json_group_array')}"
    " FROM case_view v WHERE v.case_id = ?"
)


def _whole_answer(rows: list[Row], today: date) -> ViewAnswer | None:
    if not rows:
        return None
    aside, version, stored, ended, next_follow_up_on, *parts = rows[0]
    if aside:
        return None
    programme, region, chair, municipality, readers = parts
    return (
        parts_of(programme, region, chair, municipality, json.loads(readers)),
        version,
        answer_on(stored, ended, next_follow_up_on, today),
    )


@lru_cache
def _answer_at_head_statement(events_table: str) -> str:
    """PostgreSQL: a case's answer from its view and the parts access decisions read, with
    what says whether the view holds all of the case (``at_head_checks``), in one statement
    (one snapshot, one round trip)."""
    return (
        f"SELECT {at_head_checks(events_table, [CaseViews])},"
        f" {_ANSWER_COLUMNS}, {parts_columns('json_agg')}"
        " FROM case_view v WHERE v.case_id = ?"
    )


def case_answer_at_head(
    case_id: UUID, events_table: str, today: date
) -> OneQuery[ViewAnswer | None]:
    """PostgreSQL, where another process keeps the projections: a case's answer from its
    view (``ViewAnswer``), when, in one snapshot, the view applied every event the store
    holds of the case (its version is the case's last seq), set none of them aside, and was
    folded by this code's version of the projection; else ``None``. One statement, asked
    alone, whose answer is sent as the view stores it."""
    return OneQuery(
        _answer_at_head_statement(events_table),
        (case_id, str(case_id)),
        lambda rows: _answer_at_head(rows, today),
    )


def _answer_at_head(rows: list[Row], today: date) -> ViewAnswer | None:
    if not rows:
        return None
    last, aside, current, version, stored, ended, next_follow_up_on, *parts = rows[0]
    if aside or not current or last != version:
        return None
    return parts_of(*parts), version, answer_on(stored, ended, next_follow_up_on, today)


def list_cases(
    views: ViewStore, where: CaseFilter, today: date, *, offset: int = 0, limit: int = 50
) -> CasePage:
    """Cases matching ``where``, most recently changed first, each with the answer its view
    keeps as sent on ``today`` (``list_page``, asked alone)."""
    return views.ask(list_page(where, today, offset=offset, limit=limit))


def list_page(
    where: CaseFilter, today: date, *, offset: int = 0, limit: int = 50
) -> OneQuery[CasePage]:
    """A page of the cases matching ``where``, most recently changed first, each with the
    answer its view keeps as sent on ``today``, and how many match: one statement (one
    snapshot, one round trip), its count one row even where the page is empty."""
    condition, params = _condition(where)
    statement = (
        "SELECT n.total, p.case_id, p.answer, p.ended, p.next_follow_up_on"
        f" FROM (SELECT COUNT(*) AS total FROM case_view{condition}) AS n"
        " LEFT JOIN (SELECT case_id, answer, ended, next_follow_up_on, updated_at"
        f" FROM case_view{condition} ORDER BY updated_at DESC, case_id LIMIT ? OFFSET ?) AS p"
        " ON 1 = 1 ORDER BY p.updated_at DESC, p.case_id"
    )
    return OneQuery(
        statement,
        (*params, *params, limit, offset),
        lambda rows: _page(rows, today, offset, limit),
    )


def _page(rows: list[Row], today: date, offset: int, limit: int) -> CasePage:
    listed = [row for row in rows if row[1] is not None]  # an empty page: its count alone
    return CasePage(
        [case_id for _, case_id, *_ in listed],
        [answer_on(stored, ended, follow_up, today) for *_, stored, ended, follow_up in listed],
        int(rows[0][0]),
        offset,
        limit,
    )


# The columns a list is filtered on by equality (``CaseFilter``), each indexed in the
# list's order.
_LISTED_BY = ("status", "region", "programme", "chair", "coordinator")


def _condition(where: CaseFilter) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause (or none) on ``case_view`` that ``where`` asks, and its values."""
    clauses: list[str] = []
    params: list[Any] = []
    for column in _LISTED_BY:
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if where.overdue_on is not None:
        clauses.append("ended IS NULL AND next_follow_up_on < ?")
        params.append(where.overdue_on.isoformat())
    if where.reader is not None:
        clauses.append(
            "case_id IN (SELECT case_id FROM case_view_participant WHERE ref = ? AND reader)"
        )
        params.append(where.reader)
    area = where.municipality_or_chair
    if area is not None:
        own = (
            "municipality_key = ?" if area.region is None else "municipality_key = ? AND region = ?"
        )
        clauses.append(f"(({own}) OR chair = ?)")
        params += [area.municipality_key, *([] if area.region is None else [area.region])]
        params.append(area.chair)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def ended_before(views: ViewStore, before: datetime) -> list[str]:
    """Cases the view shows ended (declined or closed), not erased, and last changed before
    ``before``: the candidates of a retention run, each confirmed from its events."""
    rows = views.read(
        "SELECT case_id, updated_at FROM case_view"
        " WHERE ended IS NOT NULL AND erased_at IS NULL ORDER BY updated_at, case_id"
    )
    return [str(case_id) for case_id, updated in rows if datetime.fromisoformat(updated) < before]
