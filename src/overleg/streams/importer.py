"""Import of case histories from the event stream (JSON Lines, one event a line).

An import validates the whole stream (against the case rules and what the store holds)
before it writes anything, then writes every new event in one transaction. Memory is that
of the few thousand cases met last, however many lines and cases the stream holds:
validated events wait in a temporary spool file, the other cases (and the data keys made
for new ones) in a private temporary database, and of a case's stored events only a 16-byte
digest is kept to compare the stream's lines with.
"""

from __future__ import annotations

import hashlib
import pickle
import sqlite3
import tempfile
import time
import zlib
from collections.abc import Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC
from typing import BinaryIO
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import IntegrityError, StoredEvent
from pydantic import ValidationError

from overleg.adapters.chain import Checkpoint
from overleg.adapters.eventstore import insert_atomically, translating
from overleg.adapters.integrity import checkpoint
from overleg.adapters.recent import Recent
from overleg.adapters.sealing import decrypt, encrypt
from overleg.aggregates.case import Case, CaseEvent, is_case_event
from overleg.aggregates.errors import CaseRuleBroken
from overleg.application import Overleg, execute
from overleg.i18n import Message, _, joined
from overleg.metrics import IMPORT_LINES, IMPORT_SECONDS
from overleg.progress import Progress, Silent
from overleg.streams.contract import LINE_TYPES, StreamLine, case_of, parse_line
from overleg.streams.mapping import command_of, dumps_line, event_line, in_contract
from overleg.validation import explain

# -- errors and reports -------------------------------------------------------------------


@dataclass(frozen=True)
class LineProblem:
    """What is wrong with one line of a stream."""

    line: int
    case: str | None
    problem: Message
    rule: str | None = None
    rule_set: str | None = None  # the case's rule set (v1, v2), for a broken case rule

    @property
    def message(self) -> Message:
        """The problem with where it is (line, case) and the rule it breaks."""
        if self.case:
            where = _("line {line}, case {case}", line=self.line, case=self.case)
        else:
            where = _("line {line}", line=self.line)
        if self.rule and self.rule_set:
            return _(
                "{where}: [{rule}, rule set {rule_set}] {problem}",
                where=where,
                rule=self.rule,
                rule_set=self.rule_set,
                problem=self.problem,
            )
        if self.rule:
            return _(
                "{where}: [{rule}] {problem}", where=where, rule=self.rule, problem=self.problem
            )
        return _("{where}: {problem}", where=where, problem=self.problem)

    def __str__(self) -> str:
        return self.message


class StreamRefused(Exception):
    """The stream was not imported; nothing of it was written."""

    def __init__(self, problems: list[LineProblem], *, truncated: bool = False) -> None:
        self.problems = problems
        self.truncated = truncated
        lines = joined([p.message for p in problems], "\n  ")
        if truncated:
            message = _(
                "The stream was not imported; nothing was written. "
                "{count} problem(s) (stopped looking after these):\n  {lines}",
                count=len(problems),
                lines=lines,
            )
        else:
            message = _(
                "The stream was not imported; nothing was written. {count} problem(s):\n  {lines}",
                count=len(problems),
                lines=lines,
            )
        super().__init__(message)


@dataclass
class ImportReport:
    """What an import did."""

    lines: int = 0
    cases: int = 0
    new_events: int = 0
    already_stored: int = 0
    checkpoint: Checkpoint | None = None  # made after the import wrote its events


# -- import ---------------------------------------------------------------------------------

MAX_PROBLEMS = 20
BATCH = 2000
# No valid line comes near this: the longest the contract's limits allow (200 agreements of
# 10,000 characters, each written as a 12-byte escape) is about 25 MB.
MAX_LINE_BYTES = 64 * 1024 * 1024


def read_lines(source: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[bytes]:
    """The lines of a stream file, each with its line feed. A line longer than ``limit``
    bytes comes cut to ``limit + 1`` (the importer refuses it); the rest of it is skipped
    without being held in memory."""
    while line := source.readline(limit + 1):
        if len(line) > limit and not line.endswith(b"\n"):
            while (rest := source.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
        yield line


DIGEST_SIZE = 16


def fingerprint(line: StreamLine) -> bytes:
    """A digest of what a line says: equal for lines of equal content, whatever their key
    order, spelling or the UTC offset of their `at`."""
    content = line.model_dump_json(exclude={"at"}, exclude_unset=True).encode()
    instant = line.at.astimezone(UTC).isoformat().encode()
    return hashlib.blake2b(content + b"|" + instant, digest_size=DIGEST_SIZE).digest()


@dataclass(slots=True)
class _CaseTrack:
    """An import's running knowledge of one case.

    ``digests`` holds the fingerprints of the stored events from seq ``first_stored`` on,
    one after the other: enough to tell whether a line repeats a stored event, a fraction
    of the events' size. The event itself is read again only when a line differs from it.
    """

    case: Case | None
    stored_version: int
    last_seq: int = 0
    first_stored: int = 1
    digests: bytes = b""
    broken: bool = False

    def digest_of(self, seq: int) -> bytes:
        start = (seq - self.first_stored) * DIGEST_SIZE
        return self.digests[start : start + DIGEST_SIZE]


def _shown(text: str, limit: int = 60) -> str:
    """A value quoted in a problem, cut short: a line may hold megabytes of it."""
    if len(text) <= limit:
        return text
    return _("{start}… ({count:,} characters)", start=text[:limit], count=len(text))


# More problems than this in one line are counted, not listed one by one: listing a line
# of a million unknown keys would take longer than any stream should.
MAX_DETAILS = 1000


def _describe(error: ValidationError) -> Message:
    """What is wrong with a malformed line."""
    count = error.error_count()
    if count > MAX_DETAILS:
        return _(
            "{count:,} keys or values of this line are not as the contract defines them",
            count=count,
        )
    parts: list[str] = []
    for detail in error.errors(include_url=False, include_input=False)[:3]:
        kind = detail["type"]
        loc = [_shown(str(x)) for x in detail["loc"]]
        if loc and loc[0] in LINE_TYPES:
            loc = loc[1:]  # the union's tag, not a key of the line
        where = joined(loc, ".")
        if kind == "json_invalid":
            reason = detail["msg"].removeprefix("Invalid JSON: ")
            parts.append(_("not valid JSON ({reason})", reason=reason))
        elif kind == "union_tag_invalid":
            given = _shown(str(detail.get("ctx", {}).get("tag", "?")))
            parts.append(
                _(
                    "unknown event type {given}; expected one of {types}",
                    given=repr(str(given)),
                    types=", ".join(LINE_TYPES),
                )
            )
        elif kind == "union_tag_not_found":
            parts.append(_("missing key 'type'"))
        elif kind == "extra_forbidden":
            parts.append(_("unknown key {key}", key=repr(str(where))))
        elif kind == "missing":
            parts.append(_("missing key {key}", key=repr(str(where))))
        elif kind == "model_type" and not loc:
            parts.append(_("a line must be a JSON object"))
        elif where:
            parts.append(_("{where}: {problem}", where=where, problem=explain(detail)))
        else:
            parts.append(explain(detail))
    if count > 3:
        parts.append(_("and {count:,} more", count=count - 3))
    return joined(parts, "; ")


def _differences(line: StreamLine, stored: CaseEvent) -> list[str]:
    if not in_contract(stored):
        return ["type"]  # the service's own record (an erasure) is stored at this seq
    stored_line = parse_line(dumps_line(event_line(stored)))
    keys = [k for k in ("type", "at", "by") if getattr(line, k) != getattr(stored_line, k)]
    if line.type != stored_line.type:
        return keys
    new = line.data.model_dump(mode="json", exclude_unset=True)
    old = stored_line.data.model_dump(mode="json", exclude_unset=True)
    keys += [
        f"data.{k}" for k in sorted(new.keys() | old.keys()) if new.get(k, ...) != old.get(k, ...)
    ]
    return keys


# Cases an import keeps as live objects; the others wait on disk until their next line. A
# stream is in the order facts were recorded, so a case's lines are spread over the whole
# stream: without this, an import's memory would grow by the whole state of every case it
# met (about 6 KiB each).
LIVE_CASES = 5_000


class _Scratch:
    """An import's private temporary database (on disk, deleted when it is closed), and a
    key of this import only, never written anywhere, that seals what it holds of the
    cases: their state between their lines, and their new data keys until the commit.
    Nothing of it is readable once the import ends."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("")  # "": a private temporary database, on disk
        self.db.execute("CREATE TABLE waiting (case_id BLOB PRIMARY KEY, track BLOB NOT NULL)")
        self.db.execute(
            "CREATE TABLE new_keys (case_id TEXT PRIMARY KEY, sealed BLOB NOT NULL,"
            " master_id TEXT NOT NULL, wrapped BLOB NOT NULL)"
        )
        self._cipher = AESGCM(AESGCM.generate_key(bit_length=256))

    def seal(self, plain: bytes, bound_to: bytes) -> bytes:
        return encrypt(self._cipher, plain, bound_to)

    def open(self, sealed: bytes, bound_to: bytes) -> bytes:
        return decrypt(self._cipher, sealed, bound_to)

    def close(self) -> None:
        self.db.close()


class _NewKeys(MutableMapping[str, tuple[bytes, str, bytes]]):
    """The data keys an import makes for its new cases, waiting for the commit in its
    scratch database (``Keyring.making_keys_in``); the ``LIVE_CASES`` used last are also
    kept in memory, as the cases themselves are."""

    def __init__(self, scratch: _Scratch) -> None:
        self._scratch = scratch
        self._recent: Recent[str, tuple[bytes, str, bytes]] = Recent(LIVE_CASES)

    def __getitem__(self, case_id: str) -> tuple[bytes, str, bytes]:
        made = self._recent.touch(case_id)
        if made is not None:
            return made
        row = self._scratch.db.execute(
            "SELECT sealed, master_id, wrapped FROM new_keys WHERE case_id = ?", (case_id,)
        ).fetchone()
        if row is None:
            raise KeyError(case_id)
        made = (self._scratch.open(row[0], case_id.encode()), str(row[1]), bytes(row[2]))
        self._recent.put(case_id, made)
        return made

    def __setitem__(self, case_id: str, made: tuple[bytes, str, bytes]) -> None:
        key, master_id, wrapped = made
        self._scratch.db.execute(
            "INSERT OR REPLACE INTO new_keys VALUES (?, ?, ?, ?)",
            (case_id, self._scratch.seal(key, case_id.encode()), master_id, wrapped),
        )
        self._recent.put(case_id, made)

    def __delitem__(self, case_id: str) -> None:
        self._recent.pop(case_id)
        deleted = self._scratch.db.execute("DELETE FROM new_keys WHERE case_id = ?", (case_id,))
        if not deleted.rowcount:
            raise KeyError(case_id)

    def __iter__(self) -> Iterator[str]:
        for (case_id,) in self._scratch.db.execute("SELECT case_id FROM new_keys").fetchall():
            yield str(case_id)

    def __len__(self) -> int:
        return int(self._scratch.db.execute("SELECT count(*) FROM new_keys").fetchone()[0])


class _Tracks:
    """What an import knows of each case it met, and which cases the store held when it
    began (read in one query, so that a case the store does not hold costs no look-up).

    The ``LIVE_CASES`` cases met last are kept as they are; a case met longer ago waits in
    the scratch database, its track pickled, compressed and sealed (bound to its case), and
    is taken back when its next line comes. Memory stays the same however many cases the
    stream holds."""

    def __init__(self, stored: set[UUID], scratch: _Scratch) -> None:
        self.stored = stored
        self.count = 0  # the cases met
        self._live: Recent[UUID, _CaseTrack] = Recent(LIVE_CASES)
        self._scratch = scratch

    def of(self, app: Overleg, case_id: UUID, first_seq: int) -> _CaseTrack:
        """The case's track, made when its first line comes (``first_seq`` that line's)."""
        track = self._known(case_id)
        if track is None:
            if case_id in self.stored:
                track = _load(app, case_id, first_seq)
            else:  # new to the store (another writer adding it meanwhile fails the insert)
                track = _CaseTrack(case=None, stored_version=0, first_stored=first_seq)
            self._met(case_id, track)
        return track

    def mark_broken(self, case_id: UUID) -> None:
        """A line of the case is malformed: its later lines are not checked."""
        track = self._known(case_id)
        if track is None:
            track = _CaseTrack(case=None, stored_version=0)
            self._met(case_id, track)
        track.broken = True

    def let_go(self) -> None:
        """The stream is checked: its cases' state is no longer needed."""
        self._live.clear()

    def _known(self, case_id: UUID) -> _CaseTrack | None:
        track = self._live.touch(case_id)
        if track is not None:
            return track
        row = self._scratch.db.execute(
            "SELECT track FROM waiting WHERE case_id = ?", (case_id.bytes,)
        ).fetchone()
        if row is None:
            return None
        plain = self._scratch.open(bytes(row[0]), case_id.bytes)
        track = pickle.loads(zlib.decompress(plain))  # noqa: S301 - sealed by us, below
        assert isinstance(track, _CaseTrack)
        self._keep(case_id, track)
        return track

    def _met(self, case_id: UUID, track: _CaseTrack) -> None:
        self.count += 1
        self._keep(case_id, track)

    def _keep(self, case_id: UUID, track: _CaseTrack) -> None:
        for oldest, waiting in self._live.put(case_id, track):
            plain = zlib.compress(pickle.dumps(waiting, pickle.HIGHEST_PROTOCOL), 1)
            self._scratch.db.execute(
                "INSERT OR REPLACE INTO waiting VALUES (?, ?)",
                (oldest.bytes, self._scratch.seal(plain, oldest.bytes)),
            )


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
    progress = progress or Silent()
    report = ImportReport()
    problems: list[LineProblem] = []
    scratch = _Scratch()
    spool = _Spool()
    started = time.perf_counter()
    try:
        with translating():
            tracks = _Tracks(app.stored_cases(), scratch)
        with app.keyring.making_keys_in(_NewKeys(scratch)):
            progress.phase("validating", size)
            truncated = _validate(app, lines, tracks, spool, problems, report, progress)
            if problems:
                raise StreamRefused(problems, truncated=truncated)
            report.cases = tracks.count
            report.new_events = spool.count
            tracks.let_go()  # before the write, which needs none of it
            if spool.count:
                progress.phase("writing", spool.count)
                report.checkpoint = _write(app, spool, progress)
    finally:
        spool.close()
        scratch.close()
        IMPORT_LINES.inc(report.lines)
        IMPORT_SECONDS.inc(time.perf_counter() - started)
    return report


def _write(app: Overleg, spool: _Spool, progress: Progress) -> Checkpoint:
    """Write the spooled events in one transaction; the checkpoint made after it."""
    try:
        with translating():
            insert_atomically(
                app.recorder, _advancing(spool.batches(), progress), keys_in_memory=False
            )
    except IntegrityError as error:
        raise StreamRefused(
            [
                LineProblem(
                    0,
                    None,
                    _(
                        "another writer added events to a case of this stream while "
                        "it was being imported ({error}); run the import again",
                        error=str(error),
                    ),
                    "concurrent-write",
                )
            ]
        ) from error
    # A checkpoint over every case after each import: a later rewrite of what this
    # import stored no longer gives its root.
    with translating():
        return checkpoint(app.recorder, app.clock())


def _advancing(
    batches: Iterator[list[StoredEvent]], progress: Progress
) -> Iterator[list[StoredEvent]]:
    for batch in batches:
        yield batch
        progress.advance(len(batch))


def _too_long(raw: bytes | str) -> bool:
    ends = raw.endswith(b"\n") if isinstance(raw, bytes) else raw.endswith("\n")
    return len(raw) - ends > MAX_LINE_BYTES


def _validate(
    app: Overleg,
    lines: Iterable[bytes | str],
    tracks: _Tracks,
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
        if _too_long(raw):
            problems.append(
                LineProblem(
                    number,
                    None,
                    _(
                        "the line is longer than {limit:,} bytes; no event of the "
                        "contract comes near that",
                        limit=MAX_LINE_BYTES,
                    ),
                )
            )
        else:
            try:
                line = parse_line(raw)
            except ValidationError as error:
                case = case_of(raw)
                problems.append(
                    LineProblem(number, None if case is None else _shown(case), _describe(error))
                )
                if case is not None:
                    _mark_broken(tracks, case)
            else:
                problem_found = _check_line(app, number, line, tracks, spool, report)
                if problem_found is not None:
                    problems.append(problem_found)
        if len(problems) >= MAX_PROBLEMS:
            return True
    return False


def _mark_broken(tracks: _Tracks, case: str) -> None:
    try:
        case_id = UUID(case)
    except ValueError:
        return
    tracks.mark_broken(case_id)


def _load(app: Overleg, case_id: UUID, first_seq: int) -> _CaseTrack:
    """What an import needs of a stored case: its state, and the digests of its events from
    ``first_seq`` (the seq of the stream's first line of it) on."""
    case, events = app.replay(case_id)
    compared = [e for e in events if e.originator_version >= first_seq and in_contract(e)]
    return _CaseTrack(
        case=case,
        stored_version=len(events),
        first_stored=first_seq,
        digests=b"".join(fingerprint(parse_line(dumps_line(event_line(e)))) for e in compared),
    )


def _stored_event(app: Overleg, case_id: UUID, seq: int) -> CaseEvent:
    """One stored event, read again to say how a line differs from it."""
    with translating():
        found = [e for e in app.events.get(case_id, gt=seq - 1, lte=seq) if is_case_event(e)]
    return found[0]


def _check_line(
    app: Overleg,
    number: int,
    line: StreamLine,
    tracks: _Tracks,
    spool: _Spool,
    report: ImportReport,
) -> LineProblem | None:
    track = tracks.of(app, line.case, line.seq)
    if track.broken:
        return None  # the case's first problem was reported; later lines follow from it
    case_ref = str(line.case)

    def refuse(
        problem: Message, rule: str | None = None, rule_set: str | None = None
    ) -> LineProblem:
        track.broken = True
        track.digests = b""
        return LineProblem(number, case_ref, problem, rule, rule_set)

    expected = track.last_seq + 1 if track.last_seq else None
    if expected is None:
        if line.seq > track.stored_version + 1:
            return refuse(
                _(
                    "seq {seq} leaves a gap: the case has {stored} stored "
                    "event(s) and no earlier line, so the next seq is {next}",
                    seq=line.seq,
                    stored=track.stored_version,
                    next=track.stored_version + 1,
                ),
                "seq-contiguous",
            )
    elif line.seq < expected:
        return refuse(
            _(
                "seq {seq} comes after seq {last} of the same case: "
                "a case's lines must be in order, without repeats",
                seq=line.seq,
                last=track.last_seq,
            ),
            "seq-order",
        )
    elif line.seq > expected:
        return refuse(
            _("seq {seq} leaves a gap: expected seq {expected}", seq=line.seq, expected=expected),
            "seq-contiguous",
        )
    track.last_seq = line.seq

    if line.seq <= track.stored_version:
        if fingerprint(line) != track.digest_of(line.seq):
            # The digests differ: the stored event, read again, says where (and decides).
            differences = _differences(line, _stored_event(app, line.case, line.seq))
            if differences and track.case is not None and track.case.erased_at is not None:
                return refuse(
                    _(
                        "seq {seq} is stored with its personal data erased, and a stream "
                        "cannot bring erased data back (the export of the case gives its lines "
                        "as they are now)",
                        seq=line.seq,
                    ),
                    "case-erased",
                )
            if differences:
                return refuse(
                    _(
                        "seq {seq} is already stored with different content (differs in {keys})",
                        seq=line.seq,
                        keys=", ".join(differences),
                    ),
                    "conflict",
                )
        if line.seq == track.stored_version:
            track.digests = b""  # every stored event was met
        report.already_stored += 1
        return None

    try:
        track.case = execute(track.case, command_of(line), line.at, line.by, app.v2_from)
    except CaseRuleBroken as broken:
        if track.case is not None:
            track.case.collect_events()  # nothing of the refused command is kept
        return refuse(
            _("{type}: {message}", type=line.type, message=broken.message),
            broken.rule,
            broken.rule_set,
        )
    for event in track.case.collect_events():
        if is_case_event(event):
            spool.add(app.mapper.to_stored_event(event))
    return None
