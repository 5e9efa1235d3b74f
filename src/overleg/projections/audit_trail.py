"""The audit trail: every event of a case, in order, with when, by whom and what happened.

A meeting's line says whether it was the case's first meeting when it was recorded (its
earliest held meeting not retracted, by date and then number). A meeting at which a
professional was present whom the client did not want invited (the ``not_invited`` of that
meeting's last plan) is recorded as it happened, and its line says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import ClassVar, assert_never
from uuid import UUID

from overleg.adapters.views import Fetch, OneQuery, Row, Tx, ViewStore, boolean
from overleg.aggregates.case import Case, CaseEvent
from overleg.aggregates.values import Role
from overleg.i18n import Message, _, joined
from overleg.policies.rules import ROLE_NAMES
from overleg.projections.base import (
    Projection,
    at_head_checks,
    chunks,
    placeholders,
)
from overleg.projections.case_view import CaseViews, ViewAnswer, parts_columns, parts_of


def unwanted_present(not_invited: Iterable[str], present: Iterable[str]) -> list[str]:
    """Professionals present whom the client did not want invited (the flag of contract
    v2's rule set)."""
    return sorted(set(not_invited) & set(present))


# What a line calls each role: its name in the stream, in words (the young person is
# "youth" here, as the stream says, and the network "network").
_ROLES: dict[str, Message] = {
    **{role.value: name for role, name in ROLE_NAMES.items()},
    Role.YOUTH.value: _("youth"),
    Role.NETWORK.value: _("network"),
}


def _role(role: str) -> str:
    return _ROLES.get(role, role.replace("_", " "))


def _flagged(line: Message, flagged: Sequence[str]) -> Message:
    if not flagged:
        return line
    return _(
        "{line}; FLAGGED: present though the client did not want them invited: {refs}",
        line=line,
        refs=", ".join(flagged),
    )


def _presence(who: Message, present: bool | None) -> Message:
    if present is None:
        return _("{who} not registered", who=who)
    if present:
        return _("{who} present", who=who)
    return _("{who} absent", who=who)


def _attendance(event: Case.MeetingHeld | Case.AttendanceCorrected) -> Message:
    """Who was there: the young person, the parents, a trusted person, what contract v2
    adds as far as it was given (the client, a support figure, people of the client's
    network), and how many professionals."""
    extra = event.attendance_extra
    return _attendance_line(
        event.youth,
        event.parents,
        event.trusted_person,
        _given(extra, "client"),
        _given(extra, "support_figure"),
        extra.get("network"),
        event.professionals_present,
    )


def _given(extra: dict[str, bool | int | None], key: str) -> tuple[bool, bool | None]:
    """Whether contract v2's ``key`` was given, and whether they were present."""
    if key not in extra:
        return False, None
    value = extra[key]
    return True, None if value is None else bool(value)


@lru_cache(maxsize=4096)
def _attendance_line(
    youth: bool | None,
    parents: bool | None,
    trusted_person: bool | None,
    client: tuple[bool, bool | None],
    support_figure: tuple[bool, bool | None],
    network: bool | int | None,
    professionals: int,
) -> Message:
    """An attendance's line, made once for each way a meeting's attendance can be (a few
    dozen in practice: a rebuild summarises thousands of meetings). ``client`` and
    ``support_figure``: whether it was given, and what."""
    parts = [
        _presence(ROLE_NAMES[Role.YOUTH], youth),
        _presence(_("parents"), parents),
        _presence(ROLE_NAMES[Role.TRUSTED_PERSON], trusted_person),
    ]
    for (given, present), role in ((client, Role.CLIENT), (support_figure, Role.SUPPORT_FIGURE)):
        if given:
            parts.append(_presence(ROLE_NAMES[role], present))
    if network is not None:
        parts.append(_("{count} of the network", count=network))
    parts.append(_("{count} professional(s)", count=professionals))
    return joined(parts)


def summary(event: CaseEvent, flagged: Sequence[str] = (), first: bool | None = None) -> Message:
    """One line a chair or auditor reads: what the event recorded.

    References (pseudonyms) are shown; free text (questions, reasons, places,
    agreements) is not, so the trail can be read without exposing case content.
    For a meeting held: ``first``, whether it is the case's first meeting (``None``: when
    its number is 1); with its attendance corrected too: ``flagged``, the professionals
    present whom the client did not want invited. ``summaries`` finds both.
    """
    match event:
        case Case.Requested():
            return _(
                "Consultation requested ({programme}, {region}) by a {role} via {channel}",
                programme=event.programme,
                region=event.region,
                role=_role(event.requester_role),
                channel=event.channel,
            )
        case Case.RequestDeclined():
            return _("Request declined; the case ends")
        case Case.ConsentGiven(personal=p):
            return _("Consent given by {ref} ({role})", ref=p["ref"], role=_role(event.role))
        case Case.ConsentWithdrawn(personal=p):
            return _("Consent withdrawn by {ref} ({role})", ref=p["ref"], role=_role(event.role))
        case Case.ChairAppointed(personal=p):
            return _("Chair appointed: {chair}", chair=p["chair"])
        case Case.MeetingHeld():
            is_first = event.meeting == 1 if first is None else first
            kind = _("first meeting") if is_first else _("follow-up meeting")
            line = _(
                "Meeting {number} ({kind}) held on {day}: {attendance}",
                number=event.meeting,
                kind=kind,
                day=event.held_on.isoformat(),
                attendance=_attendance(event),
            )
            return _flagged(line, flagged)
        case Case.WorkplanAgreed(personal=p):
            return _workplan_agreed(event, p["coordinator"])
        case Case.RegistrationCompleted():
            return _("Registration of meeting {number} completed", number=event.meeting)
        case Case.FollowUpScheduled():
            return _("Follow-up meeting scheduled on {day}", day=event.on.isoformat())
        case Case.BottleneckReported():
            return _("Bottleneck reported (theme: {theme})", theme=event.theme)
        case Case.CaseClosed():
            return _("Case closed")
        case Case.MeetingPlanned():
            not_invited = event.personal["not_invited"]
            if not_invited:
                return _(
                    "Meeting {number} planned on {day}, {count} invited; not to be invited at "
                    "the client's wish: {refs}",
                    number=event.meeting,
                    day=event.on.isoformat(),
                    count=event.invited_count,
                    refs=", ".join(not_invited),
                )
            return _(
                "Meeting {number} planned on {day}, {count} invited",
                number=event.meeting,
                day=event.on.isoformat(),
                count=event.invited_count,
            )
        case Case.MeetingCancelled():
            return _("Meeting {number} cancelled", number=event.meeting)
        case Case.PreparationRecorded():
            done = sum(1 for v in event.checklist.values() if v)
            return _(
                "Preparation of meeting {number} recorded: {done} of {count} item(s) done",
                number=event.meeting,
                done=done,
                count=len(event.checklist),
            )
        case Case.CoordinatorDesignated(personal=p):
            if event.chosen_by_client:
                return _(
                    "Coordinator (spilfiguur) designated: {ref}, chosen by the client",
                    ref=p["coordinator"],
                )
            return _("Coordinator (spilfiguur) designated: {ref}", ref=p["coordinator"])
        case Case.AttendanceCorrected():
            line = _(
                "Attendance of meeting {number} corrected: {attendance}",
                number=event.meeting,
                attendance=_attendance(event),
            )
            return _flagged(line, flagged)
        case Case.WorkplanRevised(personal=p):
            if p["coordinator"]:
                return _(
                    "Workplan of meeting {number} revised: {count} agreement(s), "
                    "coordinator {coordinator}",
                    number=event.meeting,
                    count=event.agreement_count,
                    coordinator=p["coordinator"],
                )
            return _(
                "Workplan of meeting {number} revised: {count} agreement(s), coordinator none",
                number=event.meeting,
                count=event.agreement_count,
            )
        case Case.MeetingRetracted():
            return _("Meeting {number} retracted (recorded in error)", number=event.meeting)
        case Case.CaseReopened():
            return _("Case reopened")
        case Case.PersonalDataErased():
            return _(
                "Personal data erased ({grounds}): {reason}",
                grounds=event.grounds,
                reason=event.reason,
            )
        case _:
            assert_never(event)


def _workplan_agreed(event: Case.WorkplanAgreed, coordinator: str | None) -> Message:
    if coordinator and event.crisis_plan:
        return _(
            "Workplan of meeting {number} agreed: {count} agreement(s), coordinator "
            "{coordinator}, with crisis plan",
            number=event.meeting,
            count=event.agreement_count,
            coordinator=coordinator,
        )
    if coordinator:
        return _(
            "Workplan of meeting {number} agreed: {count} agreement(s), coordinator {coordinator}",
            number=event.meeting,
            count=event.agreement_count,
            coordinator=coordinator,
        )
    if event.crisis_plan:
        return _(
            "Workplan of meeting {number} agreed: {count} agreement(s), coordinator none, "
            "with crisis plan",
            number=event.meeting,
            count=event.agreement_count,
        )
    return _(
        "Workplan of meeting {number} agreed: {count} agreement(s), coordinator none",
        number=event.meeting,
        count=event.agreement_count,
    )


@dataclass(frozen=True)
class TrailEntry:
    """One line of a case's audit trail."""

    seq: int
    type: str
    at: str
    by: str
    summary: str


def trail_line(seq: int, kind: str, at: str, by: str, summary: str) -> str:
    """One line of the trail as the service sends it in a history (``HistoryEntry``, as
    its model renders it): its fields in the model's order, without spaces, texts as JSON
    writes them unescaped beyond what it must, an instant in UTC ending in ``Z`` (``at``
    as ``isoformat`` wrote it, ``+00:00`` replaced). The trail keeps each line so, and
    nothing else of it: a history is sent as its rows hold it, and read back as entries
    by ``trail_entry``."""
    if at.endswith("+00:00"):
        at = at[:-6] + "Z"
    line = {"seq": seq, "type": kind, "at": at, "by": by, "summary": summary}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def trail_entry(line: str) -> TrailEntry:
    """The entry a line of the trail holds (``trail_line``), its instant as ``isoformat``
    wrote it (an instant in UTC ends in ``+00:00`` again: ``isoformat`` never writes
    ``Z``)."""
    fields = json.loads(line)
    at: str = fields["at"]
    if at.endswith("Z"):
        at = at[:-1] + "+00:00"
    return TrailEntry(fields["seq"], fields["type"], at, fields["by"], fields["summary"])


@dataclass
class _Meeting:
    """What the trail keeps of one meeting number: when it was held, whether it was
    retracted, and whom the client did not want invited (its last plan)."""

    held_on: date | None = None
    retracted: bool = False
    not_invited: list[str] = field(default_factory=list)


class Summaries:
    """Summarises a case's events in order, keeping what its meetings' lines need."""

    def __init__(self, meetings: dict[str, dict[int, _Meeting]] | None = None) -> None:
        self.meetings = meetings if meetings is not None else {}  # case -> number -> meeting
        self.changed: set[tuple[str, int]] = set()

    def _meeting(self, case_id: str, number: int) -> _Meeting:
        self.changed.add((case_id, number))
        return self.meetings.setdefault(case_id, {}).setdefault(number, _Meeting())

    def _first(self, case_id: str, number: int, held_on: date) -> bool:
        """No meeting of the case held and not retracted comes before this one."""
        return not any(
            other.held_on is not None
            and not other.retracted
            and (other.held_on, n) < (held_on, number)
            for n, other in self.meetings.get(case_id, {}).items()
        )

    def __call__(self, e: CaseEvent) -> str:
        case_id = str(e.originator_id)
        match e:
            case Case.MeetingPlanned(personal=p):
                self._meeting(case_id, e.meeting).not_invited = sorted(set(p["not_invited"]))
            case Case.MeetingHeld(personal=p):
                first = self._first(case_id, e.meeting, e.held_on)
                meeting = self._meeting(case_id, e.meeting)
                meeting.held_on = e.held_on
                flagged = unwanted_present(meeting.not_invited, p["professionals"])
                return summary(e, flagged, first)
            case Case.AttendanceCorrected(personal=p):
                meeting = self._meeting(case_id, e.meeting)
                return summary(e, unwanted_present(meeting.not_invited, p["professionals"]))
            case Case.MeetingRetracted():
                self._meeting(case_id, e.meeting).retracted = True
            case _:
                pass
        return summary(e)


def summaries(events: Sequence[CaseEvent]) -> list[str]:
    """The summary of each of a case's events, in order, as the trail keeps them: the
    first meeting and flagged attendances included."""
    summarise = Summaries()
    return [summarise(e) for e in events]


# The events whose lines need (or change) what the trail keeps of the case's meetings.
_MEETING_EVENTS = (
    Case.MeetingPlanned,
    Case.MeetingHeld,
    Case.AttendanceCorrected,
    Case.MeetingRetracted,
)


class AuditTrail(Projection):
    """Per case, every event in order; and what the lines of its meetings need."""

    name: ClassVar[str] = "audit_trail"
    version: ClassVar[int] = 4
    tables: ClassVar[tuple[str, ...]] = ("audit_trail", "audit_trail_meeting")
    personal: ClassVar[bool] = True

    def create(self, tx: Tx) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS audit_trail ("
            " case_id TEXT NOT NULL, seq INTEGER NOT NULL, line TEXT NOT NULL,"
            " PRIMARY KEY (case_id, seq))"
        )
        # not_invited: the refs joined by spaces (a ref has none).
        tx.execute(
            "CREATE TABLE IF NOT EXISTS audit_trail_meeting ("
            " case_id TEXT NOT NULL, meeting INTEGER NOT NULL, held_on TEXT,"
            f" retracted {boolean(tx.dialect)} NOT NULL, not_invited TEXT NOT NULL,"
            " PRIMARY KEY (case_id, meeting))"
        )

    def apply(self, tx: Tx, events: Sequence[CaseEvent]) -> None:
        cases = list(
            dict.fromkeys(str(e.originator_id) for e in events if isinstance(e, _MEETING_EVENTS))
        )
        meetings: dict[str, dict[int, _Meeting]] = {}
        stored: set[tuple[str, int]] = set()
        for ids in chunks(cases):
            for case_id, number, held_on, retracted, not_invited in tx.fetchall(
                "SELECT case_id, meeting, held_on, retracted, not_invited"  # noqa: S608 - no values inlined
                f" FROM audit_trail_meeting WHERE case_id IN ({placeholders(len(ids))})",
                ids,
            ):
                stored.add((case_id, int(number)))
                meetings.setdefault(case_id, {})[int(number)] = _Meeting(
                    None if held_on is None else date.fromisoformat(held_on),
                    bool(retracted),
                    not_invited.split(),
                )
        summarise = Summaries(meetings)
        tx.insert(
            "audit_trail",
            ("case_id", "seq", "line"),
            [
                (
                    str(e.originator_id),
                    e.originator_version,
                    trail_line(
                        e.originator_version,
                        type(e).__name__,
                        e.timestamp.isoformat(),
                        e.recorded_by,
                        summarise(e),
                    ),
                )
                for e in events
            ],
        )
        changed = sorted(summarise.changed)
        tx.executemany(
            "DELETE FROM audit_trail_meeting WHERE case_id = ? AND meeting = ?",
            [key for key in changed if key in stored],  # the others have no row yet
        )
        tx.insert(
            "audit_trail_meeting",
            ("case_id", "meeting", "held_on", "retracted", "not_invited"),
            [
                (
                    case_id,
                    number,
                    None if m.held_on is None else m.held_on.isoformat(),
                    m.retracted,
                    " ".join(m.not_invited),
                )
                for case_id, number in changed
                for m in (meetings[case_id][number],)
            ],
        )


def history(views: ViewStore, case_id: UUID) -> list[TrailEntry]:
    """A case's audit trail, oldest first; empty when the case is unknown."""
    return views.read_together(lambda fetch: history_rows(fetch, case_id))


def whole_trail_and_parts(case_id: UUID) -> OneQuery[ViewAnswer | None]:
    """SQLite, where this process keeps the projections: a case's history as answered
    (``ViewAnswer``: the answer a JSON array of the lines as the trail keeps them, joined
    by the statement that reads them), when neither projection set an event of the case
    aside and the trail has each seq from 1 to the view's version; else ``None``, so that
    only the events themselves can tell its history. One statement (``_WHOLE_STATEMENT``),
    asked alone: a read on the event loop gives the interpreter up once, not once for each
    table, and takes the lines as the trail keeps them (``trail_line``)."""
    names = (AuditTrail.name, CaseViews.name)
    return OneQuery(_WHOLE_STATEMENT, (*names, str(case_id), str(case_id)), _whole)


def _answer(
    count: int | None, first: int | None, last: int | None, lines: str | None
) -> bytes | None:
    """The history as sent, when the trail's lines (``count`` of them, distinct seqs from
    ``first`` to ``last``) run from seq 1 to ``last`` without a gap."""
    if not count or first != 1 or last != count or lines is None:
        return None
    return b"[" + lines.encode() + b"]"


# SQLite: one case's history as answered and the parts of its view, with whether either
# projection set an event of the case aside, in one statement (one snapshot). The lines are
# joined in seq order: the subquery's ORDER BY holds, as SQLite keeps an ordered subquery
# of an aggregate apart (it does not flatten it) and steps through its rows in that order.
_WHOLE_STATEMENT = (
    "SELECT EXISTS (SELECT 1 FROM projection_failure f WHERE f.projection IN (?, ?)"  # noqa: S608
    "  AND f.case_id = v.case_id),"
    f" v.version, {parts_columns('json_group_array')}, t.n, t.lo, t.hi, t.lines"
    " FROM case_view v, (SELECT COUNT(*) AS n, MIN(seq) AS lo, MAX(seq) AS hi,"
    "  group_concat(line, ',') AS lines"
    "  FROM (SELECT seq, line FROM audit_trail WHERE case_id = ? ORDER BY seq)) t"
    " WHERE v.case_id = ?"
)


def _whole(rows: list[Row]) -> ViewAnswer | None:
    if not rows:
        return None
    aside, version, programme, region, chair, municipality, readers, *trail = rows[0]
    count, first, last, lines = trail
    body = None if aside or last != version else _answer(count, first, last, lines)
    if body is None:
        return None
    return parts_of(programme, region, chair, municipality, json.loads(readers)), version, body


@lru_cache
def _at_head_statement(events_table: str) -> str:
    """PostgreSQL: one case's history as answered, the parts of its view access decisions
    read, and what says whether both hold all of the case, in one statement (one snapshot,
    one round trip): the case's last seq in the event store, a failure either set aside for
    the case, whether both were folded by this code's versions, the view's version, and the
    trail's lines (how many, the first and last seq, and the lines joined in seq order)."""
    return (
        f"SELECT {at_head_checks(events_table, [AuditTrail, CaseViews])},"  # noqa: S608
        f" v.version, {parts_columns('json_agg')}, t.n, t.lo, t.hi, t.lines"
        " FROM case_view v, LATERAL (SELECT COUNT(*) AS n, MIN(seq) AS lo,"
        "  MAX(seq) AS hi, string_agg(line, ',' ORDER BY seq) AS lines"
        "  FROM audit_trail a WHERE a.case_id = v.case_id) t"
        " WHERE v.case_id = ?"
    )


def trail_at_head(case_id: UUID, events_table: str) -> OneQuery[ViewAnswer | None]:
    """PostgreSQL, where another process keeps the projections: a case's history as
    answered (``ViewAnswer``), when, in one snapshot, both projections applied every event
    the store holds of the case (the view's version is the case's last seq, the trail has
    each seq from 1 to it), set none of them aside, and were folded by this code's versions
    of the projections; else ``None``, so that only the events themselves can tell its
    history. One statement, asked alone."""
    return OneQuery(_at_head_statement(events_table), (case_id, str(case_id)), _at_head)


def _at_head(rows: list[Row]) -> ViewAnswer | None:
    if not rows:
        return None
    stored, aside, current, version, *parts, count, first, last, lines = rows[0]
    if aside or not current or stored != version or last != stored:
        return None
    body = _answer(count, first, last, lines)
    return None if body is None else (parts_of(*parts), stored, body)


def history_rows(fetch: Fetch, case_id: UUID) -> list[TrailEntry]:
    """A case's audit trail as its rows hold it, oldest first."""
    rows = fetch("SELECT line FROM audit_trail WHERE case_id = ? ORDER BY seq", (str(case_id),))
    return [trail_entry(line) for (line,) in rows]
