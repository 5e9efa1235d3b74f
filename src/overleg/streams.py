"""Import and export of case histories as the v1 event stream (JSON Lines, one event a line).

The contract is ``shared/spec/event-stream-v1.md``. An import validates the whole stream
(against the case rules and what the store holds) before it writes anything, then writes
every new event in one transaction. Memory grows with the number of cases in the stream,
not with the number of lines: validated events wait in a temporary spool file.
"""

from __future__ import annotations

import json
import pickle
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import IO, Annotated, Any, Literal, Protocol
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)

from overleg.aggregates.case import Case
from overleg.aggregates.errors import CaseRuleBroken, RequestMustComeFirst
from overleg.aggregates.values import (
    Agreement,
    Attendance,
    Channel,
    Client,
    Party,
    Programme,
    Region,
    Role,
)
from overleg.application import Overleg
from overleg.storage import insert_atomically

# -- the contract's shapes ----------------------------------------------------------------


def no_nul(value: str) -> str:
    """Refuse the NUL character (U+0000): no person types it, and PostgreSQL text cannot
    hold it."""
    if "\x00" in value:
        raise ValueError("text cannot contain the NUL character (U+0000)")
    return value


Text = Annotated[str, AfterValidator(no_nul)]
Ref = Annotated[
    str, Field(min_length=1, description="opaque reference of a person"), AfterValidator(no_nul)
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class PartyData(_Strict):
    ref: Ref
    role: Role


class ClientData(_Strict):
    ref: Ref
    birth_date: date | None


class AttendanceData(_Strict):
    youth: bool | None
    parents: bool | None
    trusted_person: bool | None
    professionals: list[Ref]


class AgreementData(_Strict):
    who: Ref
    what: Text
    due: date | None
    domain: Text | None


class RequestedData(_Strict):
    programme: Programme
    region: Region
    requested_by: PartyData
    channel: Channel
    client: ClientData
    question: Text


class ReasonData(_Strict):
    reason: Text


class ConsentGivenData(_Strict):
    party: PartyData


class ConsentWithdrawnData(_Strict):
    party: PartyData
    reason: Text | None


class ChairAppointedData(_Strict):
    chair: Ref


class MeetingHeldData(_Strict):
    meeting: Annotated[int, Field(ge=1)]
    held_on: date
    place: Text
    attendance: AttendanceData


class WorkplanAgreedData(_Strict):
    meeting: Annotated[int, Field(ge=1)]
    agreements: list[AgreementData]
    coordinator: Ref | None
    crisis_plan: bool


class MeetingRefData(_Strict):
    meeting: Annotated[int, Field(ge=1)]


class FollowUpScheduledData(_Strict):
    on: date


class BottleneckReportedData(_Strict):
    theme: Text
    description: Text


_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _canonical_case(value: object) -> object:
    # The export writes ids in this one form; any other spelling would not round-trip.
    if isinstance(value, str) and not _CANONICAL_UUID.match(value):
        raise ValueError(
            "a case id is a UUID written in lower case with hyphens, "
            f"e.g. 6f1c2a9e-3d5b-4c8e-9a7f-0b1d2e3f4a5b, not {value!r}"
        )
    return value


class _Line(_Strict):
    case: Annotated[UUID, BeforeValidator(_canonical_case)]
    seq: Annotated[int, Field(ge=1)]
    at: AwareDatetime
    by: Annotated[str, Field(min_length=1), AfterValidator(no_nul)]


class RequestedLine(_Line):
    type: Literal["Requested"]
    data: RequestedData


class RequestDeclinedLine(_Line):
    type: Literal["RequestDeclined"]
    data: ReasonData


class ConsentGivenLine(_Line):
    type: Literal["ConsentGiven"]
    data: ConsentGivenData


class ConsentWithdrawnLine(_Line):
    type: Literal["ConsentWithdrawn"]
    data: ConsentWithdrawnData


class ChairAppointedLine(_Line):
    type: Literal["ChairAppointed"]
    data: ChairAppointedData


class MeetingHeldLine(_Line):
    type: Literal["MeetingHeld"]
    data: MeetingHeldData


class WorkplanAgreedLine(_Line):
    type: Literal["WorkplanAgreed"]
    data: WorkplanAgreedData


class RegistrationCompletedLine(_Line):
    type: Literal["RegistrationCompleted"]
    data: MeetingRefData


class FollowUpScheduledLine(_Line):
    type: Literal["FollowUpScheduled"]
    data: FollowUpScheduledData


class BottleneckReportedLine(_Line):
    type: Literal["BottleneckReported"]
    data: BottleneckReportedData


class CaseClosedLine(_Line):
    type: Literal["CaseClosed"]
    data: ReasonData


StreamLine = Annotated[
    RequestedLine
    | RequestDeclinedLine
    | ConsentGivenLine
    | ConsentWithdrawnLine
    | ChairAppointedLine
    | MeetingHeldLine
    | WorkplanAgreedLine
    | RegistrationCompletedLine
    | FollowUpScheduledLine
    | BottleneckReportedLine
    | CaseClosedLine,
    Field(discriminator="type"),
]
LINE = TypeAdapter[StreamLine](StreamLine)

EVENT_TYPES = (
    "Requested",
    "RequestDeclined",
    "ConsentGiven",
    "ConsentWithdrawn",
    "ChairAppointed",
    "MeetingHeld",
    "WorkplanAgreed",
    "RegistrationCompleted",
    "FollowUpScheduled",
    "BottleneckReported",
    "CaseClosed",
)
CASE_TOPICS = tuple(getattr(Case, name).TOPIC for name in EVENT_TYPES)


# -- errors and reports -------------------------------------------------------------------


@dataclass(frozen=True)
class LineProblem:
    """What is wrong with one line of a stream."""

    line: int
    case: str | None
    problem: str
    rule: str | None = None

    def __str__(self) -> str:
        where = f"line {self.line}"
        if self.case:
            where += f", case {self.case}"
        rule = f" [{self.rule}]" if self.rule else ""
        return f"{where}:{rule} {self.problem}"


class StreamRefused(Exception):
    """The stream was not imported; nothing of it was written."""

    def __init__(self, problems: list[LineProblem], *, truncated: bool = False) -> None:
        self.problems = problems
        self.truncated = truncated
        more = " (stopped looking after these)" if truncated else ""
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(
            f"The stream was not imported; nothing was written. "
            f"{len(problems)} problem(s){more}:\n{lines}"
        )


@dataclass
class ImportReport:
    """What an import did."""

    lines: int = 0
    cases: int = 0
    new_events: int = 0
    already_stored: int = 0


class Progress(Protocol):
    """Receives progress of a long import or export (a progress bar, or nothing)."""

    def phase(self, description: str, total: int | None) -> None: ...
    def advance(self, amount: int) -> None: ...


class _Silent:
    def phase(self, description: str, total: int | None) -> None:
        return None

    def advance(self, amount: int) -> None:
        return None


# -- mapping between lines and the aggregate ------------------------------------------------


def _party(data: PartyData) -> Party:
    return Party(data.ref, data.role)


def apply_line(case: Case | None, line: StreamLine) -> Case:
    """Carry out a stream line as the command it records; the case's rules apply."""
    at, by = line.at, line.by
    if isinstance(line, RequestedLine):
        if case is not None:
            raise RequestMustComeFirst("A case starts with its request, and only once")
        d = line.data
        return Case.request(
            id=line.case,
            programme=d.programme,
            region=d.region,
            requested_by=_party(d.requested_by),
            channel=d.channel,
            client=Client(d.client.ref, d.client.birth_date),
            question=d.question,
            at=at,
            by=by,
        )
    if case is None:
        raise RequestMustComeFirst(
            f"A case starts with its request; this case has none before this {line.type}"
        )
    if isinstance(line, RequestDeclinedLine):
        case.decline(reason=line.data.reason, at=at, by=by)
    elif isinstance(line, ConsentGivenLine):
        case.give_consent(party=_party(line.data.party), at=at, by=by)
    elif isinstance(line, ConsentWithdrawnLine):
        case.withdraw_consent(party=_party(line.data.party), reason=line.data.reason, at=at, by=by)
    elif isinstance(line, ChairAppointedLine):
        case.appoint_chair(chair=line.data.chair, at=at, by=by)
    elif isinstance(line, MeetingHeldLine):
        m = line.data
        case.hold_meeting(
            meeting=m.meeting,
            held_on=m.held_on,
            place=m.place,
            attendance=Attendance(
                m.attendance.youth,
                m.attendance.parents,
                m.attendance.trusted_person,
                tuple(m.attendance.professionals),
            ),
            at=at,
            by=by,
        )
    elif isinstance(line, WorkplanAgreedLine):
        w = line.data
        case.agree_workplan(
            meeting=w.meeting,
            agreements=[Agreement(a.who, a.what, a.due, a.domain) for a in w.agreements],
            coordinator=w.coordinator,
            crisis_plan=w.crisis_plan,
            at=at,
            by=by,
        )
    elif isinstance(line, RegistrationCompletedLine):
        case.complete_registration(meeting=line.data.meeting, at=at, by=by)
    elif isinstance(line, FollowUpScheduledLine):
        case.schedule_follow_up(on=line.data.on, at=at, by=by)
    elif isinstance(line, BottleneckReportedLine):
        case.report_bottleneck(
            theme=line.data.theme, description=line.data.description, at=at, by=by
        )
    else:
        case.close(reason=line.data.reason, at=at, by=by)
    return case


def event_data(event: Case.Event) -> dict[str, Any]:
    """The contract's ``data`` of a stored event: its facts and personal fields joined again."""
    p: dict[str, Any] = getattr(event, "personal", {})
    if isinstance(event, Case.Requested):
        return {
            "programme": event.programme,
            "region": event.region,
            "requested_by": {"ref": p["requester_ref"], "role": event.requester_role},
            "channel": event.channel,
            "client": {"ref": p["client_ref"], "birth_date": p["client_birth_date"]},
            "question": p["question"],
        }
    if isinstance(event, Case.RequestDeclined | Case.CaseClosed):
        return {"reason": p["reason"]}
    if isinstance(event, Case.ConsentGiven):
        return {"party": {"ref": p["ref"], "role": event.role}}
    if isinstance(event, Case.ConsentWithdrawn):
        return {"party": {"ref": p["ref"], "role": event.role}, "reason": p["reason"]}
    if isinstance(event, Case.ChairAppointed):
        return {"chair": p["chair"]}
    if isinstance(event, Case.MeetingHeld):
        return {
            "meeting": event.meeting,
            "held_on": event.held_on.isoformat(),
            "place": p["place"],
            "attendance": {
                "youth": event.youth,
                "parents": event.parents,
                "trusted_person": event.trusted_person,
                "professionals": list(p["professionals"]),
            },
        }
    if isinstance(event, Case.WorkplanAgreed):
        return {
            "meeting": event.meeting,
            "agreements": [dict(a) for a in p["agreements"]],
            "coordinator": p["coordinator"],
            "crisis_plan": event.crisis_plan,
        }
    if isinstance(event, Case.RegistrationCompleted):
        return {"meeting": event.meeting}
    if isinstance(event, Case.FollowUpScheduled):
        return {"on": event.on.isoformat()}
    if isinstance(event, Case.BottleneckReported):
        return {"theme": event.theme, "description": p["description"]}
    raise TypeError(f"Not a case event of the v1 stream: {type(event).__qualname__}")


def event_line(event: Case.Event) -> dict[str, Any]:
    """One line of the v1 stream for a stored case event."""
    return {
        "case": str(event.originator_id),
        "seq": event.originator_version,
        "type": type(event).__name__,
        "at": event.timestamp.isoformat(),
        "by": event.recorded_by,
        "data": event_data(event),
    }


def dumps_line(line: dict[str, Any]) -> str:
    """A stream line as compact JSON (UTF-8 text, not escaped)."""
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


# -- import ---------------------------------------------------------------------------------

MAX_PROBLEMS = 20
BATCH = 2000


@dataclass
class _CaseTrack:
    """An import's running knowledge of one case."""

    case: Case | None
    stored_version: int
    last_seq: int = 0
    stored: dict[int, Case.Event] = field(default_factory=dict)
    broken: bool = False


def parse_line(raw: bytes | str) -> StreamLine:
    """Parse one stream line; raises pydantic's ``ValidationError``."""
    return LINE.validate_json(raw)


def _describe(error: ValidationError, raw: bytes | str) -> tuple[str | None, str]:
    """The case of a malformed line (when it can be read) and what is wrong with it."""
    case: str | None = None
    try:
        loaded = json.loads(raw)
        if isinstance(loaded, dict) and isinstance(loaded.get("case"), str):
            case = loaded["case"]
    except ValueError:
        pass
    parts = []
    for detail in error.errors()[:3]:
        kind = detail["type"]
        loc = [str(x) for x in detail["loc"]]
        if loc and loc[0] in EVENT_TYPES:
            loc = loc[1:]  # the union's tag, not a key of the line
        where = ".".join(loc)
        if kind == "json_invalid":
            parts.append(f"not valid JSON ({detail['msg'].removeprefix('Invalid JSON: ')})")
        elif kind == "union_tag_invalid":
            given = detail.get("ctx", {}).get("tag", "?")
            parts.append(f"unknown event type {given!r}; expected one of {', '.join(EVENT_TYPES)}")
        elif kind == "union_tag_not_found":
            parts.append("missing key 'type'")
        elif kind == "extra_forbidden":
            parts.append(f"unknown key {where!r}")
        elif kind == "missing":
            parts.append(f"missing key {where!r}")
        elif kind == "model_type" and not loc:
            parts.append("a line must be a JSON object")
        else:
            parts.append(f"{where}: {detail['msg']}" if where else detail["msg"])
    return case, "; ".join(parts)


def _differences(line: StreamLine, stored: Case.Event) -> list[str]:
    stored_line = parse_line(dumps_line(event_line(stored)))
    keys = [k for k in ("type", "at", "by") if getattr(line, k) != getattr(stored_line, k)]
    if line.type != stored_line.type:
        return keys
    new = line.data.model_dump(mode="json")
    old = stored_line.data.model_dump(mode="json")
    keys += [f"data.{k}" for k in new if new[k] != old.get(k)]
    return keys


class _Spool:
    """Validated events waiting to be written, on disk rather than in memory."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the spool
        self.batch: list[StoredEvent] = []
        self.count = 0

    def add(self, stored: StoredEvent) -> None:
        self.batch.append(stored)
        self.count += 1
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            pickle.dump(self.batch, self.file, protocol=pickle.HIGHEST_PROTOCOL)
            self.batch = []

    def batches(self) -> Iterator[list[StoredEvent]]:
        self.flush()
        self.file.seek(0)
        while True:
            try:
                yield pickle.load(self.file)  # noqa: S301 - our own temporary file
            except EOFError:
                return

    def close(self) -> None:
        self.file.close()


def import_stream(
    app: Overleg,
    lines: Iterable[bytes | str],
    *,
    progress: Progress | None = None,
    size: int | None = None,
) -> ImportReport:
    """Validate a whole stream, then write its new events in one transaction.

    Raises ``StreamRefused`` (nothing written) when any line is malformed, breaks a rule,
    is out of order, or conflicts with what the store holds. ``size`` (bytes, when known)
    sizes the progress bar.
    """
    progress = progress or _Silent()
    report = ImportReport()
    problems: list[LineProblem] = []
    tracks: dict[UUID, _CaseTrack] = {}
    spool = _Spool()
    try:
        progress.phase("validating", size)
        truncated = _validate(app, lines, tracks, spool, problems, report, progress)
        if problems:
            raise StreamRefused(problems, truncated=truncated)
        report.cases = len(tracks)
        report.new_events = spool.count
        if spool.count:
            progress.phase("writing", spool.count)
            try:
                insert_atomically(app.recorder, _advancing(spool.batches(), progress))
            except IntegrityError as error:
                raise StreamRefused(
                    [
                        LineProblem(
                            0,
                            None,
                            "another writer added events to a case of this stream while it "
                            f"was being imported ({error}); run the import again",
                            "concurrent-write",
                        )
                    ]
                ) from error
    finally:
        spool.close()
    return report


def _advancing(
    batches: Iterator[list[StoredEvent]], progress: Progress
) -> Iterator[list[StoredEvent]]:
    for batch in batches:
        yield batch
        progress.advance(len(batch))


def _validate(
    app: Overleg,
    lines: Iterable[bytes | str],
    tracks: dict[UUID, _CaseTrack],
    spool: _Spool,
    problems: list[LineProblem],
    report: ImportReport,
    progress: Progress,
) -> bool:
    """Check every line; spool the new events. Returns whether it stopped early."""
    for number, given in enumerate(lines, start=1):
        progress.advance(len(given))
        report.lines = number
        raw = given
        if number == 1:  # a byte-order mark some editors write is not part of the JSON
            raw = (
                given.removeprefix(b"\xef\xbb\xbf")
                if isinstance(given, bytes)
                else given.removeprefix("\ufeff")
            )
        if not raw.strip():
            continue
        try:
            line = parse_line(raw)
        except ValidationError as error:
            case, problem = _describe(error, raw)
            problems.append(LineProblem(number, case, problem))
            if case is not None:
                _mark_broken(tracks, case)
        else:
            problem_found = _check_line(app, number, line, tracks, spool, report)
            if problem_found is not None:
                problems.append(problem_found)
        if len(problems) >= MAX_PROBLEMS:
            return True
    return False


def _mark_broken(tracks: dict[UUID, _CaseTrack], case: str) -> None:
    try:
        case_id = UUID(case)
    except ValueError:
        return
    track = tracks.get(case_id)
    if track is None:
        track = tracks[case_id] = _CaseTrack(case=None, stored_version=0)
    track.broken = True


def _load(app: Overleg, case_id: UUID) -> _CaseTrack:
    case, events = app.replay(case_id)
    return _CaseTrack(
        case=case,
        stored_version=len(events),
        stored={e.originator_version: e for e in events},
    )


def _check_line(
    app: Overleg,
    number: int,
    line: StreamLine,
    tracks: dict[UUID, _CaseTrack],
    spool: _Spool,
    report: ImportReport,
) -> LineProblem | None:
    track = tracks.get(line.case)
    if track is None:
        track = tracks[line.case] = _load(app, line.case)
    if track.broken:
        return None  # the case's first problem was reported; later lines follow from it
    case_ref = str(line.case)

    def refuse(problem: str, rule: str | None = None) -> LineProblem:
        track.broken = True
        track.stored.clear()
        return LineProblem(number, case_ref, problem, rule)

    expected = track.last_seq + 1 if track.last_seq else None
    if expected is None:
        if line.seq > track.stored_version + 1:
            return refuse(
                f"seq {line.seq} leaves a gap: the case has {track.stored_version} stored "
                f"event(s) and no earlier line, so the next seq is {track.stored_version + 1}",
                "seq-contiguous",
            )
        # Lines before the first one of this stream are no longer needed for comparison.
        for seq in [s for s in track.stored if s < line.seq]:
            del track.stored[seq]
    elif line.seq < expected:
        return refuse(
            f"seq {line.seq} comes after seq {track.last_seq} of the same case: "
            "a case's lines must be in order, without repeats",
            "seq-order",
        )
    elif line.seq > expected:
        return refuse(f"seq {line.seq} leaves a gap: expected seq {expected}", "seq-contiguous")
    track.last_seq = line.seq

    if line.seq <= track.stored_version:
        stored = track.stored.pop(line.seq)
        differences = _differences(line, stored)
        if differences:
            return refuse(
                f"seq {line.seq} is already stored with different content "
                f"(differs in {', '.join(differences)})",
                "conflict",
            )
        report.already_stored += 1
        return None

    try:
        track.case = apply_line(track.case, line)
    except CaseRuleBroken as broken:
        if track.case is not None:
            track.case.collect_events()  # nothing of the refused command is kept
        return refuse(f"{line.type}: {broken.message}", broken.rule)
    for event in track.case.collect_events():
        spool.add(app.mapper.to_stored_event(event))
    return None


# -- export ---------------------------------------------------------------------------------

PAGE = 1000


def export_stream(app: Overleg, case_id: UUID | None = None) -> Iterator[str]:
    """Every stored case event as a v1 stream line, in the order they were recorded."""
    if case_id is not None:
        for event in app.case_events(case_id):
            yield dumps_line(event_line(event))
        return
    start = 1
    while True:
        notifications = app.recorder.select_notifications(
            start=start, limit=PAGE, topics=CASE_TOPICS
        )
        for notification in notifications:
            stored = app.mapper.to_domain_event(notification)
            if isinstance(stored, Case.Event):
                yield dumps_line(event_line(stored))
        if len(notifications) < PAGE:
            return
        start = notifications[-1].id + 1


def write_stream(
    app: Overleg,
    out: IO[str],
    case_id: UUID | None = None,
    on_line: Callable[[], None] | None = None,
) -> int:
    """Write the export to a text file; returns the number of lines."""
    count = 0
    for text in export_stream(app, case_id):
        out.write(text + "\n")
        count += 1
        if on_line is not None:
            on_line()
    return count
