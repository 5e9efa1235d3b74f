"""Checking the store against its links and checkpoints, and recording checkpoints.

``verify`` reads every stored event once, in case order, recomputes each case's chain of
links (``adapters/chain.py``) and compares it with the links recorded beside the events, then
recomputes the Merkle root of the latest checkpoint from the events up to its position. It
reports, per case, the first place where the store no longer is what was recorded: an event
changed (its content is not what its link was made of), moved (its content is that of
another seq of the case), deleted (a seq missing, or a link without its event), added (an
event without a link), a link changed, and a checkpoint whose root or count differs.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.sql import SQL, Identifier

from overleg.adapters.chain import (
    GENESIS,
    Checkpoint,
    Head,
    MerkleRoot,
    content_digest,
    link,
    links_of,
)
from overleg.adapters.commits import committed
from overleg.adapters.rows import case_key, row_values
from overleg.i18n import Message, _


@dataclass(frozen=True)
class Break:
    """The first place where one case (or a checkpoint) differs from what was recorded."""

    case_id: str | None
    seq: int | None
    what: str  # changed, moved, deleted, added, link-changed, unlinked, checkpoint
    detail: str

    @property
    def message(self) -> Message:
        """Where the break is and what it is, in words a user reads."""
        if self.case_id is None:
            where = _("checkpoint")
        elif self.seq is None:
            where = _("case {case_id}", case_id=self.case_id)
        else:
            where = _("case {case_id}, seq {seq}", case_id=self.case_id, seq=self.seq)
        return _("{what}: {why}", what=where, why=self.detail)

    def __str__(self) -> str:
        return str(self.message)


@dataclass
class Verification:
    """What ``verify`` found."""

    cases: int = 0
    events: int = 0
    checkpoint: Checkpoint | None = None
    breaks: list[Break] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks


@dataclass
class _Rows:
    """Raw access to the events, links and checkpoints of one store."""

    recorder: Any
    # Inside ``at_one_instant``: the transaction every read shares (PostgreSQL: its
    # connection; SQLite: its cursor).
    _shared: Any = None
    _cursors: int = 0

    @property
    def postgres(self) -> bool:
        return hasattr(self.recorder, "event_chain")

    def _events_table(self) -> Any:
        if self.postgres:
            return SQL("{s}.{t}").format(
                s=Identifier(self.recorder.datastore.schema),
                t=Identifier(self.recorder.events_table_name),
            )
        return self.recorder.events_table_name

    @contextmanager
    def at_one_instant(self) -> Iterator[None]:
        """The reads inside the block see the store as it was at one instant (one
        transaction; on PostgreSQL a repeatable read), so that what one read finds agrees
        with what the next finds, whatever is written meanwhile."""
        datastore = self.recorder.datastore
        if self.postgres:
            with datastore.get_connection() as conn, conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                self._shared = conn
                try:
                    yield
                finally:
                    self._shared = None
        else:
            with datastore.transaction(commit=False) as curs:
                self._shared = curs
                try:
                    yield
                finally:
                    self._shared = None

    @contextmanager
    def cursor(self, *, write: bool = False) -> Iterator[Any]:
        datastore = self.recorder.datastore
        if self._shared is not None and not write:
            if not self.postgres:  # a cursor of its own, so that two reads can be open at once
                curs = self._shared.sqlite_cursor.connection.cursor()
                try:
                    yield curs
                finally:
                    curs.close()
                return
            self._cursors += 1  # a named cursor of its own, in the shared transaction
            with self._shared.cursor(name=f"overleg_verify_{self._cursors}") as curs:
                yield curs
            return
        if self.postgres:
            # A named cursor streams the rows instead of loading them all.
            name = None if write else "overleg_verify"
            with (
                datastore.get_connection() as conn,
                committed(conn) if write else conn.transaction(),
                conn.cursor(name=name) as curs,
            ):
                yield curs
        else:
            with datastore.transaction(commit=write) as curs:
                yield curs

    def key_of(self, stored: Any) -> str | None:
        """The case a row names, when it names it as overleg writes it (PostgreSQL's uuid
        columns always do; on SQLite, the id's 32 lowercase hex digits); else ``None``."""
        if self.postgres:
            return case_key(stored)
        if isinstance(stored, str) and _STORED_HEX.fullmatch(stored):
            return str(UUID(stored))
        return None

    def case_param(self, case_id: str) -> Any:
        return case_id if self.postgres else UUID(case_id).hex

    def events(self, case_id: str | None) -> Any:
        """(case, seq, topic, state, position) of every event, in case and seq order."""
        if self.postgres:
            sql = SQL(
                "SELECT originator_id, originator_version, topic, state, notification_id FROM {t}"
            ).format(t=self._events_table())
            clause = SQL(" WHERE originator_id = %s") if case_id else SQL("")
            return sql + clause + SQL(" ORDER BY originator_id, originator_version")
        where = " WHERE originator_id = ?" if case_id else ""
        return (
            "SELECT originator_id, originator_version, topic, state, rowid"
            f" FROM {self._events_table()}{where} ORDER BY originator_id, originator_version"
        )

    def links(self, case_id: str | None) -> Any:
        if self.postgres:
            sql = SQL("SELECT case_id, seq, link, digest FROM {t}").format(
                t=self.recorder.event_chain
            )
            clause = SQL(" WHERE case_id = %s") if case_id else SQL("")
            return sql + clause + SQL(" ORDER BY case_id, seq")
        where = " WHERE case_id = ?" if case_id else ""
        return f"SELECT case_id, seq, link, digest FROM event_chain{where} ORDER BY case_id, seq"

    def checkpoints_sql(self) -> Any:
        columns = "number, made_at, position, cases, root"
        if self.postgres:
            return SQL("SELECT " + columns + " FROM {t} ORDER BY number").format(
                t=self.recorder.event_checkpoint
            )
        return f"SELECT {columns} FROM event_checkpoint ORDER BY number"

    def heads_sql(self) -> Any:
        """Each case's recorded link at its last event up to a position, in case order."""
        if self.postgres:
            return SQL(
                "SELECT c.case_id, c.seq, c.link FROM {chain} c JOIN ("
                " SELECT originator_id, max(originator_version) AS seq FROM {events}"
                " WHERE notification_id <= %s GROUP BY originator_id) h"
                " ON c.case_id = h.originator_id AND c.seq = h.seq ORDER BY c.case_id"
            ).format(chain=self.recorder.event_chain, events=self._events_table())
        return (
            "SELECT c.case_id, c.seq, c.link FROM event_chain c JOIN ("
            f" SELECT originator_id, max(originator_version) AS seq FROM {self._events_table()}"
            " WHERE rowid <= ? GROUP BY originator_id) h"
            " ON c.case_id = h.originator_id AND c.seq = h.seq ORDER BY c.case_id"
        )

    def insert_checkpoint_sql(self) -> Any:
        if self.postgres:
            return SQL(
                "INSERT INTO {t} (made_at, position, cases, root) VALUES (%s, %s, %s, %s)"
                " RETURNING number"
            ).format(t=self.recorder.event_checkpoint)
        return "INSERT INTO event_checkpoint (made_at, position, cases, root) VALUES (?, ?, ?, ?)"


# A case id as SQLite's tables hold it (overleg writes no other form).
_STORED_HEX = re.compile("[0-9a-f]{32}")
# One case's events (seq, topic, state, position), and its links (seq -> link, digest).
_Events = list[tuple[Any, ...]]
_Links = dict[int, tuple[bytes, bytes]]


def _fetched(curs: Any, size: int = 2000) -> Iterator[Any]:
    """The rows of an executed query, a page at a time."""
    # The SQLite wrapper keeps the driver's cursor apart.
    fetch = getattr(curs, "fetchmany", None) or curs.sqlite_cursor.fetchmany
    while rows := fetch(size):
        yield from rows


def checkpoints(recorder: Any) -> list[Checkpoint]:
    """Every recorded checkpoint, oldest first."""
    return _checkpoints(_Rows(recorder))


def _checkpoints(rows: _Rows) -> list[Checkpoint]:
    with rows.cursor() as curs:
        curs.execute(rows.checkpoints_sql())
        found = [row_values(r) for r in curs.fetchall()]
    return [
        Checkpoint(int(n), str(made), int(pos), int(cases), bytes(root))
        for n, made, pos, cases, root in found
    ]


def _scan(
    rows: _Rows, case_id: str | None, strays: list[tuple[str, int | None]]
) -> Generator[tuple[str, _Events], None, None]:
    """Each case with its events (seq, topic, state, position), in case order. A row that
    names its case in a form overleg never writes goes to ``strays`` (its id, its seq)."""
    with rows.cursor() as curs:
        params = (rows.case_param(case_id),) if case_id else ()
        curs.execute(rows.events(case_id), params)
        for case, found in _by_case(rows, _fetched(curs), strays):
            yield case, [(int(s), str(t), bytes(state), int(p)) for s, t, state, p in found]


def _linked(
    rows: _Rows, case_id: str | None, strays: list[tuple[str, int | None]]
) -> Generator[tuple[str, _Links], None, None]:
    """Each case with its recorded links (seq -> link, content digest), in case order. A
    link that names its case in a form overleg never writes goes to ``strays``."""
    with rows.cursor() as curs:
        params = (rows.case_param(case_id),) if case_id else ()
        curs.execute(rows.links(case_id), params)
        for case, found in _by_case(rows, _fetched(curs), strays):
            yield case, {int(seq): (bytes(made), bytes(digest)) for seq, made, digest in found}


def _by_case(
    rows: _Rows, fetched: Iterator[Any], strays: list[tuple[str, int | None]]
) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """Rows ordered by case (their first column; their second, a seq), one case's other
    columns at a time. Every case id overleg writes sorts as its case's key does, the order
    ``_joined`` and a checkpoint's root follow; a row whose id is written otherwise (added
    behind overleg's back) is set apart in ``strays``, with its seq."""
    current: str | None = None
    found: list[tuple[Any, ...]] = []
    for row in fetched:
        case, *rest = row_values(row)
        key = rows.key_of(case)
        if key is None:
            strays.append((str(case), rest[0] if isinstance(rest[0], int) else None))
            continue
        if key != current:
            if current is not None:
                if key < current:
                    raise RuntimeError(f"the store gave case {key} after case {current}")
                yield current, found
            current, found = key, []
        found.append(tuple(rest))
    if current is not None:
        yield current, found


def _joined(
    events: Iterator[tuple[str, _Events]], links: Iterator[tuple[str, _Links]]
) -> Iterator[tuple[str, _Events, _Links]]:
    """Every case of either (each given in case order), with its events and its links: a
    case without events, or without links, has none here."""
    event = next(events, None)
    linked = next(links, None)
    while event is not None or linked is not None:
        if linked is None or (event is not None and event[0] < linked[0]):
            assert event is not None
            yield event[0], event[1], {}
            event = next(events, None)
        elif event is None or linked[0] < event[0]:
            yield linked[0], [], linked[1]
            linked = next(links, None)
        else:
            yield event[0], event[1], linked[1]
            event, linked = next(events, None), next(links, None)


def verify(recorder: Any, case_id: UUID | None = None) -> Verification:
    """Recompute every link (of one case, or all) and the latest checkpoint's root.

    The events and their links are read side by side, in case order: one case's are held at
    a time, and the root is made as the cases come, however large the store."""
    rows = _Rows(recorder)
    only = None if case_id is None else str(case_id)
    report = Verification()
    heads = MerkleRoot()
    without_events: list[Break] = []
    strays: list[tuple[str, int | None]] = []  # event rows not written by overleg
    stray_links: list[tuple[str, int | None]] = []
    # The links and the events as they were at one instant: a command that commits between
    # the two reads is in both or in neither, never an event without its link.
    with rows.at_one_instant():
        recorded_checkpoints = [] if only else _checkpoints(rows)
        latest = recorded_checkpoints[-1] if recorded_checkpoints else None
        with (
            closing(_scan(rows, only, strays)) as events,
            closing(_linked(rows, only, stray_links)) as links,
        ):
            for case, found, recorded in _joined(events, links):
                if not found:  # links whose case has no event at all
                    without_events.append(
                        Break(
                            case,
                            min(recorded),
                            "deleted",
                            _("the case's events were deleted; their links remain"),
                        )
                    )
                    continue
                report.cases += 1
                report.events += len(found)
                head = _check_case(case, found, recorded, report, latest)
                if head is not None:
                    heads.add(head)
    report.breaks.extend(without_events)
    stray_event = _(
        "this event names its case in a form overleg never writes: it was not recorded by overleg"
    )
    stray_link = _(
        "this link names its case in a form overleg never writes: it was not made by overleg"
    )
    report.breaks += [Break(stored, seq, "added", stray_event) for stored, seq in strays]
    report.breaks += [Break(stored, seq, "link-changed", stray_link) for stored, seq in stray_links]
    if latest is not None:
        report.checkpoint = latest
        root = heads.root()
        if (root, heads.count) != (latest.root, latest.cases):
            report.breaks.append(
                Break(
                    None,
                    None,
                    "checkpoint",
                    _(
                        "checkpoint {number} of {made_at} (position {position}) recorded "
                        "{cases} case(s) with root {root}…; the events up to that position "
                        "now give {now_cases} case(s) with root {now_root}…",
                        number=latest.number,
                        made_at=latest.made_at,
                        position=latest.position,
                        cases=latest.cases,
                        root=latest.root.hex()[:16],
                        now_cases=heads.count,
                        now_root=root.hex()[:16],
                    ),
                )
            )
    return report


def _check_case(
    case: str,
    events: list[tuple[Any, ...]],
    links: dict[int, tuple[bytes, bytes]],
    report: Verification,
    latest: Checkpoint | None,
) -> Head | None:
    """Check one case's chain; report its first break. The case's head at the latest
    checkpoint's position, from the links recomputed over the events as they are."""
    previous = GENESIS
    head: Head | None = None
    broken = False
    digests = {d: seq for seq, (_, d) in links.items()}
    if not links:
        report.breaks.append(
            Break(
                case,
                None,
                "unlinked",
                _(
                    "no event of this case has a link: they were recorded without tamper "
                    "evidence, or their links were removed"
                ),
            )
        )
        broken = True
    for expected, (seq, topic, state, position) in enumerate(events, start=1):
        made = link(previous, case, seq, topic, state)
        previous = made
        if latest is not None and position <= latest.position:
            head = Head(case, seq, made)
        if broken:
            continue
        if seq != expected:
            report.breaks.append(
                Break(
                    case,
                    expected,
                    "deleted",
                    _("seq {expected} is missing (the next is {seq})", expected=expected, seq=seq),
                )
            )
            broken = True
            continue
        recorded = links.get(seq)
        if recorded is None:
            report.breaks.append(
                Break(
                    case, seq, "added", _("this event has no link: it was not recorded by overleg")
                )
            )
            broken = True
            continue
        recorded_link, recorded_digest = recorded
        digest = content_digest(topic, state)
        if digest != recorded_digest:
            other = digests.get(digest)
            detail = (
                _("this event is the one recorded as seq {other}: events were moved", other=other)
                if other is not None and other != seq
                else _("this event's content (type or data) is not what was recorded")
            )
            report.breaks.append(Break(case, seq, "moved" if other else "changed", detail))
            broken = True
        elif made != recorded_link:
            report.breaks.append(
                Break(
                    case,
                    seq,
                    "link-changed",
                    _("this event's link is not the one its chain gives"),
                )
            )
            broken = True
    if not broken and links and max(links) > len(events):
        report.breaks.append(
            Break(
                case,
                len(events) + 1,
                "deleted",
                _("seq {seq} was deleted (its link remains)", seq=len(events) + 1),
            )
        )
    return head


def checkpoint(recorder: Any, made_at: datetime) -> Checkpoint:
    """Record the Merkle root over every case's last link at the log's position now.

    The heads are read from the links recorded beside the events (one query, no event's
    bytes read), in case order, into a root kept one node per level: a checkpoint is cheap
    enough to make after every import, and its memory is the same for any number of cases."""
    rows = _Rows(recorder)
    position = int(recorder.max_notification_id() or 0)
    heads = MerkleRoot()
    with rows.cursor() as curs:
        curs.execute(rows.heads_sql(), (position,))
        for case, seq, made in (row_values(r) for r in _fetched(curs)):
            key = rows.key_of(case)
            if key is not None:  # a row overleg did not write is no case's head (verify says)
                heads.add(Head(key, int(seq), bytes(made)))
    root = heads.root()
    with rows.cursor(write=True) as curs:
        curs.execute(
            rows.insert_checkpoint_sql(), (made_at.isoformat(), position, heads.count, root)
        )
        number = int(row_values(curs.fetchone())[0]) if rows.postgres else int(curs.lastrowid)
    return Checkpoint(number, made_at.isoformat(), position, heads.count, root)


def link_unlinked(recorder: Any) -> int:
    """Link the events of every case that has no link at all (cases recorded before the
    store kept links), from their events as they are now; the number of events linked.

    Only for a store known to be untouched: whatever was changed in those cases before is
    sealed in as it is."""
    rows = _Rows(recorder)
    made_rows: list[tuple[Any, ...]] = []
    strays: list[tuple[str, int | None]] = []  # rows not written by overleg: left as they are
    with (
        rows.at_one_instant(),
        closing(_scan(rows, None, strays)) as events,
        closing(_linked(rows, None, strays)) as links,
    ):
        for case, found, recorded in _joined(events, links):
            if found and not recorded:
                made = links_of({}, [(case, seq, topic, state) for seq, topic, state, _ in found])
                made_rows += [(rows.case_param(c), n, h, d) for c, n, h, d in made]
    if made_rows:
        with rows.cursor(write=True) as curs:
            curs.executemany(recorder._insert_link_if_missing, made_rows)
    return len(made_rows)
