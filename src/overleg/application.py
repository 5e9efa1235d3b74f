"""The overleg application: one path for every command, and the reads of a case's events."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from enum import Enum
from typing import Generic, Protocol, TypeVar, assert_never, cast
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import (
    IntegrityError,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoding,
)

from overleg.adapters import budget
from overleg.adapters.eventstore import (
    UNAVAILABLE,
    DamagedStore,
    Database,
    EventLog,
    StoreUnavailable,
    decoded,
    translating,
)
from overleg.adapters.grouping import GroupWriter, Write
from overleg.adapters.keystore import Erasure, KeyTables
from overleg.adapters.recorders import (
    KEY_LIFETIME,
    CommandEntry,
    OutcomeUnknown,
    PostgresEventRecorder,
    SQLiteEventRecorder,
)
from overleg.adapters.sealing import (
    DEV_MASTER_KEYS,
    Keyring,
    KeyRow,
    MasterKeys,
    SealingMapper,
    is_sealed,
    load_master_keys,
)
from overleg.adapters.watch import WriteWatch
from overleg.aggregates.case import Case, CaseEvent, is_case_event
from overleg.aggregates.errors import CaseRuleBroken, ErasureNotPossible, RequestMustComeFirst
from overleg.aggregates.personal import Pseudonyms, erased_form
from overleg.commands import (
    AgreeWorkplan,
    AppointChair,
    CancelMeeting,
    CloseCase,
    Command,
    CompleteRegistration,
    CorrectAttendance,
    Decline,
    DesignateCoordinator,
    EraseCase,
    GiveConsent,
    HoldMeeting,
    PlanMeeting,
    RecordPreparation,
    ReopenCase,
    ReportBottleneck,
    RetractMeeting,
    ReviseWorkplan,
    ScheduleFollowUp,
    SubmitRequest,
    WithdrawConsent,
)
from overleg.i18n import _
from overleg.logs import get_logger
from overleg.metrics import COMMANDS_REFUSED, EVENTS_APPENDED
from overleg.policies import access
from overleg.policies.access import Caller
from overleg.policies.rulesets import DEFAULT_V2_FROM, in_force

log = get_logger("overleg.application")
T = TypeVar("T")
Clock = Callable[[], datetime]
# What a second attempt at a write whose commit may have landed can still run into.
UNCERTAIN: tuple[type[Exception], ...] = (OutcomeUnknown, StoreUnavailable, *UNAVAILABLE)


def utc_now() -> datetime:
    """The current time, in UTC."""
    return datetime.now(UTC)


class DateAsISO(Transcoding):
    """Stores a calendar date as its ISO 8601 text."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class CaseNotFound(LookupError):
    """No case has that id."""

    def __init__(self, case_id: UUID) -> None:
        super().__init__(_("No case {case_id}", case_id=str(case_id)))
        self.case_id = case_id


class StaleCase(Exception):
    """The case changed since the version the caller saw; nothing was written."""

    def __init__(self, case_id: UUID, expected: int, actual: int) -> None:
        super().__init__(
            _(
                "Case {case_id} is at version {actual}, not {expected}: reload it and try again",
                case_id=str(case_id),
                actual=actual,
                expected=expected,
            )
        )
        self.case_id, self.expected, self.actual = case_id, expected, actual


def execute(
    case: Case | None,
    command: Command,
    at: datetime,
    by: str,
    v2_from: datetime = DEFAULT_V2_FROM,
) -> Case:
    """Carry out one command on a case (``None``: no case yet), as recorded ``at`` by ``by``.

    The case's rules apply: a refused command raises a ``CaseRuleBroken`` that names the rule
    and the case's rule set, and the case keeps no new event. A new case keeps the rule set
    in force at ``at`` (v2 from ``v2_from`` on). The service's use case and the stream
    importer both come through here.
    """
    if isinstance(command, SubmitRequest):
        if case is not None:
            raise RequestMustComeFirst(
                _("A case starts with its request, and only once"), case.rule_set.value
            )
        assert command.case_id is not None, "the use case or the stream names the new case"
        rule_set = in_force(at, v2_from)
        try:
            return Case.request(
                id=command.case_id,
                programme=command.programme,
                region=command.region,
                requested_by=command.requested_by,
                channel=command.channel,
                client=command.client,
                question=command.question,
                municipality=command.municipality,
                goal=command.goal,
                rule_set=rule_set,
                at=at,
                by=by,
            )
        except CaseRuleBroken as broken:
            broken.rule_set = rule_set.value
            raise
    if case is None:
        raise RequestMustComeFirst(
            _(
                "A case starts with its request; this case has none before this {command}",
                command=type(command).__name__,
            )
        )
    try:
        _carry_out(case, command, at, by)
    except CaseRuleBroken as broken:
        broken.rule_set = case.rule_set.value
        raise
    return case


def _meeting_to_hold(case: Case) -> int:
    """The meeting a caller who names no number holds: the earliest one planned and still
    open, else the next number."""
    open_plans = [n for n, plan in case.plans.items() if plan.open]
    return min(open_plans) if open_plans else case.numbering.next


def _carry_out(case: Case, command: Command, at: datetime, by: str) -> None:
    match command:
        case SubmitRequest():
            raise RequestMustComeFirst(_("A case starts with its request, and only once"))
        case Decline(reason=reason):
            case.decline(reason=reason, at=at, by=by)
        case GiveConsent(party=party):
            case.give_consent(party=party, at=at, by=by)
        case WithdrawConsent(party=party, reason=reason):
            case.withdraw_consent(party=party, reason=reason, at=at, by=by)
        case AppointChair(chair=chair):
            case.appoint_chair(chair=chair, at=at, by=by)
        case HoldMeeting():
            number = _meeting_to_hold(case) if command.meeting is None else command.meeting
            case.hold_meeting(
                meeting=number,
                held_on=command.held_on,
                place=command.place,
                attendance=command.attendance,
                at=at,
                by=by,
            )
        case AgreeWorkplan():
            case.agree_workplan(
                meeting=command.meeting,
                agreements=command.agreements,
                coordinator=command.coordinator,
                crisis_plan=command.crisis_plan,
                crisis_steps=command.crisis_steps,
                at=at,
                by=by,
            )
        case CompleteRegistration(meeting=meeting):
            case.complete_registration(meeting=meeting, at=at, by=by)
        case ScheduleFollowUp(on=on):
            case.schedule_follow_up(on=on, at=at, by=by)
        case ReportBottleneck(theme=theme, description=description):
            case.report_bottleneck(theme=theme, description=description, at=at, by=by)
        case CloseCase(reason=reason):
            case.close(reason=reason, at=at, by=by)
        case PlanMeeting():
            number = case.numbering.next if command.meeting is None else command.meeting
            case.plan_meeting(
                meeting=number,
                on=command.on,
                place=command.place,
                goal=command.goal,
                invited=command.invited,
                not_invited=command.not_invited,
                at=at,
                by=by,
            )
        case CancelMeeting(meeting=meeting, reason=reason):
            case.cancel_meeting(meeting=meeting, reason=reason, at=at, by=by)
        case RecordPreparation():
            case.record_preparation(
                meeting=command.meeting,
                checklist=command.checklist,
                prepared_by=command.prepared_by,
                at=at,
                by=by,
            )
        case DesignateCoordinator(coordinator=coordinator, chosen_by_client=chosen):
            case.designate_coordinator(
                coordinator=coordinator, chosen_by_client=chosen, at=at, by=by
            )
        case CorrectAttendance(meeting=meeting, attendance=attendance, reason=reason):
            case.correct_attendance(
                meeting=meeting, attendance=attendance, reason=reason, at=at, by=by
            )
        case ReviseWorkplan():
            case.revise_workplan(
                meeting=command.meeting,
                agreements=command.agreements,
                coordinator=command.coordinator,
                crisis_plan=command.crisis_plan,
                crisis_steps=command.crisis_steps,
                reason=command.reason,
                at=at,
                by=by,
            )
        case RetractMeeting(meeting=meeting, reason=reason):
            case.retract_meeting(meeting=meeting, reason=reason, at=at, by=by)
        case ReopenCase(reason=reason):
            case.reopen(reason=reason, at=at, by=by)
        case EraseCase(reason=reason, grounds=grounds):
            case.erase(grounds=grounds, reason=reason, at=at, by=by)
        case _:
            assert_never(command)


@dataclass(frozen=True)
class Outcome:
    """What a command recorded: the case, its version now, and the new events.

    ``replayed``: the command had been recorded before (the same idempotency key and
    request), and these are the events it recorded then; nothing new was written.
    """

    case_id: UUID
    version: int
    events: tuple[CaseEvent, ...]
    replayed: bool = False

    @property
    def event_types(self) -> tuple[str, ...]:
        """The names of the recorded events (``MeetingHeld``, …)."""
        return tuple(type(e).__name__ for e in self.events)


@dataclass(frozen=True)
class CommandKey:
    """Who gave a command, under which idempotency key, and a fingerprint of the request.

    ``given``: the caller chose the key (a retry carries it again); otherwise the service
    made it for this one command.
    """

    owner: str
    key: str
    fingerprint: str = ""
    given: bool = False


class KeyReused(Exception):
    """An idempotency key that already stands for another request; nothing was written."""

    def __init__(self, key: str) -> None:
        super().__init__(
            _(
                "The Idempotency-Key {key} was used for a different request; use a new key",
                key=repr(key),
            )
        )
        self.key = key


class CommandOutcomeUnknown(Exception):
    """The store stopped answering while the command was being committed, and did not come
    back in time to tell whether it was: the same request with the same key will tell."""

    def __init__(self, key: str) -> None:
        super().__init__(
            _(
                "The event store stopped answering while this command was being recorded; it "
                "may or may not have been recorded. Send the same request with Idempotency-Key "
                "{key} to find out: if it was recorded you get its answer, otherwise it is "
                "recorded now.",
                key=key,
            )
        )
        self.key = key


class CommandRecorder(Protocol):
    """What the use case needs of the store's recorder beyond the library's."""

    timeout: float
    events_table_name: str

    def find_command(self, owner: str, key: str) -> CommandEntry | None: ...
    def forget_command(self, owner: str, key: str) -> None: ...
    def case_version(self, case_id: UUID) -> int: ...
    def select_case(
        self, case_id: UUID, *, last_link: bool = False
    ) -> tuple[Sequence[StoredEvent], dict[str, KeyRow]]: ...
    def case_ids(self) -> set[UUID]: ...


class Replay:
    """A case as its events make it at one version, for readers only (never changed), with
    what readers derive from it kept beside it (its view, its history's lines)."""

    def __init__(self, case: Case, events: list[CaseEvent]) -> None:
        self.case, self.events = case, events
        self.version = events[-1].originator_version
        self._derived: dict[str, object] = {}
        self._lock = threading.Lock()

    def derived(self, name: str, compute: Callable[[], T]) -> T:
        """``compute()``'s value, computed once for this version of the case."""
        with self._lock:
            if name not in self._derived:
                self._derived[name] = compute()
            return cast(T, self._derived[name])

    def derived_already(self, name: str) -> object | None:
        """What ``derived(name, ...)`` computed, if it was (never computes: for the event
        loop); else ``None``."""
        return self._derived.get(name)


# Cases kept replayed for readers, and for how long: a case's personal data stays in a
# process's memory no longer than a data key does (sealing's 60 s).
REPLAYS_KEPT = 256
REPLAY_LIFETIME = 60.0
# Cases kept for the next command on them (a case is a few kilobytes in memory).
DRAFTS_KEPT = 1024


class Versioned(Protocol):
    @property
    def version(self) -> int: ...


V = TypeVar("V", bound=Versioned)


class Gone(Enum):
    """A case kept in memory that the store no longer holds."""

    GONE = "gone"


GONE = Gone.GONE


class Replays(Generic[V]):
    """Cases kept in memory, each at the version it had: the store is asked only the case's
    version (one indexed look-up) while it has not changed, instead of reading and opening
    every event again. Readers keep ``Replay``s (never changed); the command path keeps the
    case its last command saved, and takes it out to use it.

    Beside each case, the mark of the store's watch (``adapters/watch.py``) it was last
    confirmed under: while the watch gives that mark, the case is known current without
    asking the store anything (``known``)."""

    def __init__(self, size: int = REPLAYS_KEPT, lifetime: float = REPLAY_LIFETIME) -> None:
        self.size, self.lifetime = size, lifetime
        self._kept: OrderedDict[UUID, tuple[float, V]] = OrderedDict()
        self._marks: dict[UUID, Hashable] = {}  # the mark each case was confirmed under
        self._lock = threading.Lock()

    def get(self, case_id: UUID, version: int, mark: Hashable | None = None) -> V | None:
        """The case kept at ``version`` (the store's version, asked under ``mark``)."""
        with self._lock:
            self._drop_expired()
            found = self._kept.get(case_id)
            if found is None:
                return None
            kept = found[1]
            if kept.version != version:
                self._drop(case_id)
                return None
            self._mark(case_id, mark)
            return kept

    def known(self, case_id: UUID, mark: Hashable) -> V | None:
        """The case kept, if it was confirmed under ``mark`` (the store's mark now)."""
        with self._lock:
            self._drop_expired()
            found = self._kept.get(case_id)
            return None if found is None or self._marks.get(case_id) != mark else found[1]

    def take(self, case_id: UUID, version: int) -> V | None:
        """The case kept at ``version``, no longer kept: whoever takes it may change it."""
        with self._lock:
            self._drop_expired()
            found = self._kept.get(case_id)
            self._drop(case_id)
            return found[1] if found is not None and found[1].version == version else None

    def holds(self, case_id: UUID) -> bool:
        with self._lock:
            return case_id in self._kept

    def keep(self, case_id: UUID, kept: V, mark: Hashable | None = None) -> None:
        """Keep ``kept`` (read from the store under ``mark``) from now on, for at most its
        lifetime. The oldest kept goes first when there are too many: the order is the
        order of keeping, so that expiry can stop at the first case still within its
        lifetime."""
        with self._lock:
            self._drop_expired()
            self._drop(case_id)
            self._kept[case_id] = (time.monotonic(), kept)
            self._mark(case_id, mark)
            while len(self._kept) > self.size:
                self._drop(next(iter(self._kept)))

    def _mark(self, case_id: UUID, mark: Hashable | None) -> None:
        if mark is None:
            self._marks.pop(case_id, None)
        else:
            self._marks[case_id] = mark

    def _drop(self, case_id: UUID) -> None:
        self._kept.pop(case_id, None)
        self._marks.pop(case_id, None)

    def _drop_expired(self) -> None:
        """Every case kept longer than its lifetime goes, read or not."""
        now = time.monotonic()
        while self._kept:
            case_id, (at, _kept) = next(iter(self._kept.items()))
            if now - at <= self.lifetime:
                return
            self._drop(case_id)

    def forget(self, case_id: UUID) -> None:
        with self._lock:
            self._drop(case_id)


class Overleg(Application[UUID]):
    """The client-consultation service: commands in, events stored, cases read back."""

    name = "overleg"

    def __init__(
        self,
        database: Database,
        clock: Clock = utc_now,
        v2_from: datetime = DEFAULT_V2_FROM,
        masters: MasterKeys | None = None,
    ) -> None:
        self.v2_from = v2_from
        # Opens and seals the personal parts of events with their cases' data keys.
        self.keyring = Keyring(masters or load_master_keys(None, None, DEV_MASTER_KEYS))
        with translating():
            database.ensure_schema()
        self.database = database
        self.clock = clock
        self.timeout = database.timeout
        # One writer of this process at a time: commands wait for their turn here, rather
        # than inside the connection pool (readers keep flowing) or at the events' table
        # lock, and those that queue while one is written are written together, in one
        # commit (``adapters/grouping.py``).
        self._group: GroupWriter | None = None
        with translating():
            super().__init__(env=database.eventsourcing_env())
        self.commands: CommandRecorder = cast(CommandRecorder, self.recorder)
        self.commands.timeout = database.timeout
        self.keys = cast(KeyTables, self.recorder)
        self.keys.keyring = self.keyring
        self.keyring.store = self.keys
        if isinstance(self.recorder, SQLiteEventRecorder | PostgresEventRecorder):
            self._group = GroupWriter(self._write_group)
        self.event_log = EventLog(self.recorder, self.mapper, self.keyring)
        self.replays: Replays[Replay] = Replays()
        # Tells, without a query, that nothing was written since a kept case was confirmed
        # (``adapters/watch.py``); the service sets it, for reads answered on its event loop.
        self.writes: WriteWatch | None = None
        # The case each command saved, at its new version, for the next command on it.
        self.drafts: Replays[Case] = Replays(size=DRAFTS_KEPT)

    def construct_mapper(self) -> Mapper[UUID]:
        return SealingMapper(self.construct_transcoder(), self.keyring)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    # -- commands -----------------------------------------------------------------------

    def handle(
        self,
        command: Command,
        caller: Caller,
        expected_version: int | None = None,
        key: CommandKey | None = None,
    ) -> Outcome:
        """Carry out one command for ``caller``: load the case once, authorise on it, run
        the command, and save its events (only if the case is still at the version seen),
        together with the command's key, in one transaction.

        A command whose key was recorded before answers what it recorded then. Raises
        ``AccessDenied``, ``CaseNotFound``, ``StaleCase``, a ``CaseRuleBroken``,
        ``KeyReused`` or ``StoreUnavailable``, and in each case nothing was recorded; or
        ``CommandOutcomeUnknown`` when the store went away in the middle of the commit.
        """
        at = self.clock()
        key = key or CommandKey(owner="service", key=uuid.uuid4().hex)
        # Its waits for the store share one deadline: the answer comes within the timeout.
        with translating(), budget.budget(self.timeout):
            if key.given:
                earlier = self._earlier(key, at)
                if earlier is not None:
                    return earlier
            try:
                case, seen = self._run(command, caller, expected_version, at)
            except (StaleCase, CaseRuleBroken) as refused:
                # A retry can overtake its own first attempt: that one may have committed
                # after the look above, and this attempt then finds the case already past
                # the version it names, or the fact already recorded. The key tells.
                earlier = self._earlier(key, at) if key.given else None
                if earlier is not None:
                    return earlier
                if isinstance(refused, CaseRuleBroken):
                    COMMANDS_REFUSED.labels(refused.rule).inc()
                raise
            events = tuple(e for e in case.collect_events() if is_case_event(e))
            entry = CommandEntry(
                key.owner, key.key, key.fingerprint, case.id, seen + 1, case.version, at
            )
            erasure = self._erasure(case.id, seen) if isinstance(command, EraseCase) else None
            try:
                outcome = self._store(events, entry, erasure)
            finally:
                # Readers replay it afresh (an erased case's personal data leaves this
                # process's memory), whether or not the store's watch has seen it yet; and
                # nothing kept under the watch's earlier marks (an answer read from the
                # projections) is given after it.
                self.replays.forget(case.id)
                if self.writes is not None:
                    self.writes.touched()
            if erasure is None and not outcome.replayed:
                self.drafts.keep(case.id, case)  # at the version its events were stored with
            if not outcome.replayed:
                for name in outcome.event_types:
                    EVENTS_APPENDED.labels(name).inc()
            return outcome

    def _run(
        self, command: Command, caller: Caller, expected_version: int | None, at: datetime
    ) -> tuple[Case, int]:
        """Load the case, authorise, check the version and run the command; the case with
        its new events, and the version it was at."""
        if isinstance(command, SubmitRequest):
            access.may_request(caller, command)
            if command.case_id is None:
                command = replace(command, case_id=uuid.uuid4())
            return execute(None, command, at, caller.ref, self.v2_from), 0
        if isinstance(caller, access.PublicForm):
            raise access.AccessDenied(_("The public form can only submit a request"))
        access.may_attempt(caller, command)
        found = self._current(command.case_id)
        if found is None or not access.sees(caller, found):
            raise CaseNotFound(command.case_id)  # the same answer: existence is not told
        access.may_command(caller, command, found)
        if expected_version is not None and found.version != expected_version:
            raise StaleCase(command.case_id, expected_version, found.version)
        seen = found.version
        execute(found, command, at, caller.ref, self.v2_from)
        return found, seen

    def _current(self, case_id: UUID) -> Case | None:
        """The case as it is now, for a command to change (``None`` for an unknown case):
        the one the last command on it in this process saved, if nothing was recorded on it
        since (one indexed look-up), else replayed from the store."""
        kept = self._kept(self.drafts, case_id, take=True)
        if kept is GONE:
            return None
        return kept if kept is not None else self.replay(case_id, to_change=True)[0]

    def _kept(
        self,
        kept: Replays[V],
        case_id: UUID,
        *,
        take: bool = False,
        mark: Hashable | None = None,
    ) -> V | Gone | None:
        """The case kept in ``kept``, if the store has recorded nothing on it since (one
        indexed look-up, made only when one is kept, under the watch's ``mark``; with
        ``take`` it is kept no longer); ``GONE`` when the store holds no such case."""
        if not kept.holds(case_id):
            return None
        with translating():
            version = self.commands.case_version(case_id)
        if version == 0:
            kept.forget(case_id)
            return GONE
        return kept.take(case_id, version) if take else kept.get(case_id, version, mark)

    def _earlier(self, key: CommandKey, now: datetime) -> Outcome | None:
        """What a command sent before under this key recorded, if it was."""
        found = self.commands.find_command(key.owner, key.key)
        if found is None:
            return None
        if found.recorded_at < now - KEY_LIFETIME:
            self.commands.forget_command(key.owner, key.key)  # expired: the key is free
            return None
        if found.fingerprint != key.fingerprint:
            raise KeyReused(key.key)
        return self._replayed(found)

    def _replayed(self, entry: CommandEntry) -> Outcome:
        with translating(), self.keyring.reading([str(entry.case_id)]):
            stored = self.recorder.select_events(
                entry.case_id, gt=entry.first_version - 1, lte=entry.last_version
            )
            events = tuple(decoded(self.mapper, s) for s in stored)
        return Outcome(entry.case_id, entry.last_version, events, replayed=True)

    def _erasure(self, case_id: UUID, version: int) -> Erasure:
        """The erased form of the personal part of each of the case's first ``version``
        events, computed while its key still opens them. A case with events recorded before
        personal parts were sealed cannot be erased: their plaintext is in the events."""
        with translating(), self.keyring.reading([str(case_id)]):
            stored = self.recorder.select_events(case_id, lte=version)
            unsealed = [
                s.originator_version
                for s in stored
                if b'"personal"' in s.state and not is_sealed(_personal_of(s.state))
            ]
            if unsealed:
                raise ErasureNotPossible(
                    _(
                        "Events of this case were recorded before personal data was sealed "
                        "(seq {seqs}): export the store and import it into a new one to seal "
                        "them, then erase",
                        seqs=", ".join(map(str, unsealed[:5])),
                    )
                )
            events = [decoded(self.mapper, s) for s in stored]
        pseudonyms = Pseudonyms()
        forms = {
            e.originator_version: erased_form(vars(e)["personal"], pseudonyms)
            for e in events
            if isinstance(vars(e).get("personal"), dict)
        }
        return Erasure(str(case_id), forms)

    def _store(
        self, events: tuple[CaseEvent, ...], entry: CommandEntry, erasure: Erasure | None = None
    ) -> Outcome:
        """Save the events with their command's entry; settle every unclear failure by
        reading the entry back, so an answer never contradicts what the store holds."""
        try:
            self._save(events, entry, erasure)
        except IntegrityError:
            return self._settle(entry)
        except OutcomeUnknown:
            return self._confirm(events, entry, erasure)
        return Outcome(entry.case_id, entry.last_version, events)

    def _confirm(
        self, events: tuple[CaseEvent, ...], entry: CommandEntry, erasure: Erasure | None = None
    ) -> Outcome:
        # The commit may have landed. Writing the same again either stores it now, or fails
        # on the entry's key because it had landed: then the entry says so. Until the store
        # has said one or the other, the outcome stays unknown (never "nothing recorded").
        deadline = budget.deadline(self.timeout)
        while True:
            try:
                try:
                    self._save(events, entry, erasure)
                except IntegrityError:
                    settled = self._settle(entry)
                    log.warning("commit_cut", case_id=str(entry.case_id), outcome="had_landed")
                    return settled
            except UNCERTAIN:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning("commit_cut", case_id=str(entry.case_id), outcome="unknown")
                    raise CommandOutcomeUnknown(entry.key) from None
                time.sleep(min(0.2, left))
            except (StaleCase, KeyReused):
                log.warning("commit_cut", case_id=str(entry.case_id), outcome="had_not_landed")
                raise
            else:
                log.warning("commit_cut", case_id=str(entry.case_id), outcome="stored_again")
                return Outcome(entry.case_id, entry.last_version, events)

    def _settle(self, entry: CommandEntry) -> Outcome:
        """After the store refused the write on a key: this command's own earlier commit,
        a concurrent identical request, another request with the key, or another writer
        that recorded this version first."""
        found = self.commands.find_command(entry.owner, entry.key)
        if found is not None:
            if found.fingerprint != entry.fingerprint:
                raise KeyReused(entry.key)
            return self._replayed(found)
        current = self.replay(entry.case_id)[0]
        actual = 0 if current is None else current.version
        raise StaleCase(entry.case_id, entry.first_version - 1, actual)

    def _save(
        self, events: tuple[CaseEvent, ...], entry: CommandEntry, erasure: Erasure | None = None
    ) -> None:
        extra: dict[str, object] = {"command": entry}
        if erasure is not None:
            extra["erasure"] = erasure
        if self._group is None:
            self.save(*events, **extra)
            return
        # Sealed and encoded before the writer's turn: the turn is only the writing.
        stored = [self.mapper.to_stored_event(e) for e in events]
        if not self._group.write(Write(stored, extra), budget.remaining(self.timeout)):
            raise StoreUnavailable(_("the store is busy with other writes"))

    def _write_group(self, group: Sequence[Write]) -> None:
        """Commands' events written in one transaction (``adapters/grouping.py``)."""
        cast(SQLiteEventRecorder | PostgresEventRecorder, self.recorder).insert_group(group)

    # -- reads --------------------------------------------------------------------------

    def get_case(self, case_id: UUID) -> Case:
        """The case as its events make it now."""
        case = self.replay(case_id)[0]
        if case is None:
            raise CaseNotFound(case_id)
        return case

    def case_events(self, case_id: UUID) -> list[CaseEvent]:
        """Every event of one case, in order."""
        events = self.replay(case_id)[1]
        if not events:
            raise CaseNotFound(case_id)
        return events

    def stored_cases(self) -> set[UUID]:
        """Every case the store holds an event of."""
        return self.commands.case_ids()

    def read(self, case_id: UUID) -> Replay | None:
        """The case as it is now, for a reader (``None`` for an unknown case): kept from an
        earlier read while the case's version has not changed. A case not kept is replayed
        at once: the store's version is looked up only to check a kept one."""
        # Taken before the store is asked: what is written after it moves the next mark.
        mark = None if self.writes is None else self.writes.mark()
        kept = self._kept(self.replays, case_id, mark=mark)
        if kept is GONE:
            return None
        if kept is not None:
            return kept
        case, events = self.replay(case_id)
        if case is None:
            return None
        replay = Replay(case, events)
        self.replays.keep(case_id, replay, mark)
        return replay

    def known_read(self, case_id: UUID) -> Replay | None:
        """The case kept for readers, if it is known without asking the store, and without
        waiting, that nothing was written since it was confirmed (for the event loop);
        else ``None``: ``read`` it."""
        if self.writes is None or not self.replays.holds(case_id):
            return None  # not kept: no mark asked of the store's watch
        mark = self.writes.mark_now()
        return None if mark is None else self.replays.known(case_id, mark)

    def replay(
        self, case_id: UUID, *, to_change: bool = False
    ) -> tuple[Case | None, list[CaseEvent]]:
        """The case as its events make it, and those events, from one read of the store
        (``None`` and no events for an unknown case). ``to_change``: for a command, which
        will write the case's next chain link (the last one is asked with the events)."""
        with translating():
            stored, keys = self.commands.select_case(case_id, last_link=to_change)
            if not stored:
                return None, []
            with self.keyring.reading([str(case_id)], keys):
                events = [decoded(self.mapper, s) for s in stored]
        case: Case | None = None
        for expected, event in enumerate(events, start=1):
            seq = event.originator_version
            if seq != expected:
                raise DamagedStore(case_id, expected, _("seq {seq} is missing", seq=expected))
            try:
                case = event.mutate(case)
            except Exception as error:  # a fact no rule ever let through
                raise DamagedStore(
                    case_id,
                    seq,
                    _("its facts do not fit the case ({kind})", kind=type(error).__name__),
                ) from None
        return case, events


def _personal_of(state: bytes) -> object:
    """The personal part of a stored event's state, as stored (sealed or not)."""
    try:
        return json.loads(state).get("personal")
    except ValueError:
        return None
