"""The service's own record beside the events: who read which case's data, for auditors.

It lives in the event store's database: each read request is one row of ``read_request``
(who, what, when, under which request) naming its *read set*, the cases it read. A set is
written once, with a short row per case (``read_set_case``, indexed by case), however many
requests read it: a page of the case list read again and again is one row per request.
(Idempotency keys live with the events themselves: see ``adapters/recorders.py``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from overleg.adapters import budget
from overleg.adapters.eventstore import StoreUnavailable
from overleg.adapters.migrations import case_key, migrate, read_set_digest, write_read_set
from overleg.adapters.recent import Recent
from overleg.adapters.views import ViewStore
from overleg.i18n import _
from overleg.policies.access import Principal


@dataclass(frozen=True)
class CaseRead:
    """One recorded read of a case."""

    reader: str
    role: str
    what: str
    at: str
    request_id: str  # the service's own id of the request
    caller_request_id: str | None = None  # the X-Request-ID the caller sent, kept beside it


# A request on an event loop waiting for a group's commit: its loop, and what it awaits.
_Awaiting = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]

# The columns of ``read_request`` that a read fills (its ``id`` is the table's, its
# ``read_set`` the set of the cases it read).
COLUMNS = ("reader", "role", "what", "at", "request_id", "caller_request_id")

# A read waiting to be written: its request's row (``COLUMNS``) and the cases it read.
_Read = tuple[tuple[Any, ...], Sequence[str]]

_INSERT_REQUESTS = (
    f"INSERT INTO read_request ({', '.join(COLUMNS)}, read_set)"  # noqa: S608 - names only
    f" VALUES ({', '.join('?' * (len(COLUMNS) + 1))})"
)
# PostgreSQL: a group whose sets are all stored, in one statement committed on its own.
_INSERT_GROUP = """
INSERT INTO read_request (reader, role, what, at, request_id, caller_request_id, read_set)
SELECT * FROM unnest(
    %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::bigint[]
)
"""
# Read sets whose ids a process remembers (a set, once stored, never changes).
SETS_KEPT = 4096

# Under load (the last group, whose commit returned less than LOADED seconds ago, held
# several reads, or reads were waiting then), the log's writer lets the reads of the next
# LINGER seconds join the group it is about to write. Without it, every time a request on
# the loop gives the interpreter up (a statement on SQLite does), the writer takes the
# reads waiting then, and under load nearly every read cost a commit of its own
# (docs/performance.md, the sixteenth round). A read after a quiet moment, or one of a
# caller who reads one case after another, is written at once.
LINGER = 0.001
LOADED = 0.005


class ReadLog:
    """Who read which case's data, for auditors (table ``case_read``).

    A read is answered only once its record is committed. Reads arriving while another
    reader's record is being written are written together, in the next transaction, by
    whichever of them comes first (group commit): one commit for many readers under load,
    none of them answered before its own record is stored.

    A request answered on the event loop (``recorded``) cannot write: its rows join the
    next group all the same, and a thread of the log's own writes that group when no reader
    thread does (under load, ``LINGER`` after it took up the group); the request waits for
    that commit without holding a thread.
    """

    def __init__(self, store: ViewStore) -> None:
        self.store = store
        migrate(store)  # its table is the migrations' (adapters/migrations.py)
        self._turn = threading.Condition()
        self._sets_lock = threading.Lock()
        self._waiting: list[_Read] = []  # the reads of the next group
        # Requests on an event loop waiting for the next group: each is told when it is
        # written (or failed), on its own loop.
        self._awaiting: list[_Awaiting] = []
        self._group = 1  # the number of the next group to be written
        self._written = 0  # the number of the last group written (or failed)
        self._writing = False
        self._last_written = 0.0  # when the last group's commit returned (time.monotonic)
        self._backlog = False  # whether its group held several reads, or reads waited then
        self._failed: dict[int, BaseException] = {}  # recent groups that could not be written
        self._writer: threading.Thread | None = None  # writes the groups loops wait for
        self._closed = False
        # The ids of read sets known to be stored, by digest, the most recently used last.
        self._sets: Recent[bytes, int] = Recent(SETS_KEPT)

    def record(
        self,
        who: Principal,
        case_ids: Sequence[str],
        what: str,
        request_id: str,
        caller_request_id: str | None = None,
    ) -> None:
        """Record that ``who`` read these cases (before the data is sent), under the
        service's own request id, with the caller's own id for that request beside it."""
        if not case_ids:
            return
        read = _read(who, case_ids, what, request_id, caller_request_id)
        with self._turn:
            self._waiting.append(read)
            mine = self._group
            while self._written < mine and self._writing:
                self._turn.wait()
            if self._written >= mine:  # another reader wrote the group this read was in
                self._raise_if_failed(mine)
                return
            group = self._claim()  # nobody is writing: this reader writes every record
        failed = self._write_group(*group)
        if failed is not None:
            raise failed

    async def recorded(
        self,
        who: Principal,
        case_ids: Sequence[str],
        what: str,
        request_id: str,
        caller_request_id: str | None = None,
    ) -> None:
        """``record``, for a request answered on the event loop: its rows join the next
        group, and it waits for that group's commit (within the request's store budget)
        without holding a thread."""
        if not case_ids:
            return
        read = _read(who, case_ids, what, request_id, caller_request_id)
        loop = asyncio.get_running_loop()
        written: asyncio.Future[None] = loop.create_future()
        with self._turn:
            if self._closed:
                raise StoreUnavailable(_("The service is stopping"))
            self._waiting.append(read)
            self._awaiting.append((loop, written))
            self._turn.notify_all()  # wakes the log's writer, when no reader is writing
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_for_loops, name="overleg-read-log", daemon=True
                )
                self._writer.start()
        try:
            # Shielded: a request that gives up leaves its rows to be written (a read
            # recorded and not answered, never one answered and not recorded).
            await asyncio.wait_for(
                asyncio.shield(written), budget.remaining(self.store.database.timeout)
            )
        except TimeoutError:
            written.add_done_callback(_unheard)  # its outcome, when it comes, is nobody's
            raise StoreUnavailable(
                _("The store did not record the read in time; nothing was answered")
            ) from None

    def _write_for_loops(self) -> None:
        """The log's writer: writes each group that requests on an event loop wait for,
        while no reader thread is writing one; under load, after ``LINGER``."""
        while True:
            with self._turn:
                while not self._closed and (self._writing or not self._awaiting):
                    self._turn.wait()
                if self._closed:
                    return
                loaded = self._backlog and time.monotonic() - self._last_written < LOADED
                group = None if loaded else self._claim()
            if group is None:
                time.sleep(LINGER)  # the next moment's reads join this group
                with self._turn:
                    if self._closed or self._writing or not self._awaiting:
                        continue  # stopping, or a reader thread took them meanwhile
                    group = self._claim()
            self._write_group(*group)

    def _claim(self) -> tuple[int, list[_Read], list[_Awaiting]]:
        """Take every record waiting as the next group, to be written by the caller (who
        holds the turn, nobody else writing): its number, its reads, who waits for it."""
        self._writing = True
        mine = self._group
        self._group += 1
        reads, self._waiting = self._waiting, []
        awaiting, self._awaiting = self._awaiting, []
        return mine, reads, awaiting

    def _write_group(
        self, mine: int, reads: Sequence[_Read], awaiting: Sequence[_Awaiting]
    ) -> BaseException | None:
        """Write a claimed group, then tell whoever waits for it; the error, if it could not
        be written."""
        failed: BaseException | None = None
        try:
            self._write(reads)
        except BaseException as error:
            failed = error
        with self._turn:
            self._writing = False
            self._written = mine
            self._last_written = time.monotonic()
            self._backlog = len(reads) > 1 or bool(self._waiting)
            if failed is not None:
                self._failed[mine] = failed
                for old in [n for n in self._failed if n < mine - 64]:
                    del self._failed[old]
            self._turn.notify_all()
        _settle(awaiting, failed)
        return failed

    def close(self) -> None:
        """Stop the log's writer; a request still waiting for it is answered 503."""
        with self._turn:
            self._closed = True
            awaiting, self._awaiting = self._awaiting, []
            self._turn.notify_all()
        _settle(awaiting, StoreUnavailable(_("The service is stopping")))

    def _raise_if_failed(self, group: int) -> None:
        failed = self._failed.get(group)
        if failed is not None:
            raise failed

    def _write(self, reads: Sequence[_Read]) -> None:
        """Write a group of reads in one transaction: all of them, or none. On PostgreSQL a
        group whose sets are all known stored is one statement, committed on its own."""
        keyed = [(request, [case_key(case) for case in cases]) for request, cases in reads]
        digests = [read_set_digest(keys) for _, keys in keyed]
        with self._sets_lock:
            known = {d: n for d in digests if (n := self._sets.get(d)) is not None}
        if self.store.database.backend == "postgresql" and len(known) == len(set(digests)):
            rows = [(*request, known[d]) for (request, _), d in zip(keyed, digests, strict=True)]
            self.store.alone(_INSERT_GROUP, [list(column) for column in zip(*rows, strict=True)])
        else:
            with self.store.transaction() as tx:
                sets = dict(known)
                rows = [
                    (*request, write_read_set(tx, digest, keys, sets))
                    for (request, keys), digest in zip(keyed, digests, strict=True)
                ]
                tx.executemany(_INSERT_REQUESTS, rows)
            known = sets
        with self._sets_lock:  # stored: remembered only now
            for digest, number in known.items():
                self._sets.put(digest, number)

    def of(self, case_id: str) -> list[CaseRead]:
        """Everyone who read a case, oldest first."""
        rows = self.store.read(
            "SELECT r.reader, r.role, r.what, r.at, r.request_id, r.caller_request_id"
            " FROM read_set_case AS s JOIN read_request AS r ON r.read_set = s.read_set"
            " WHERE s.case_id = ?"
            " ORDER BY r.at, r.reader, r.id",
            (case_key(case_id),),
        )
        return [CaseRead(*row) for row in rows]


def _read(
    who: Principal,
    case_ids: Sequence[str],
    what: str,
    request_id: str,
    caller_request_id: str | None,
) -> _Read:
    at = datetime.now(UTC).isoformat()
    return (who.ref, who.role.value, what, at, request_id, caller_request_id), list(case_ids)


def _settle(awaiting: Sequence[_Awaiting], failed: BaseException | None) -> None:
    """Tell the requests waiting for a group how it went: one wake-up per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for loop, written in awaiting:
        by_loop.setdefault(loop, []).append(written)
    for loop, futures in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a loop closed: nobody waits there now
            loop.call_soon_threadsafe(_resolve, futures, failed)


def _resolve(futures: Sequence[asyncio.Future[None]], failed: BaseException | None) -> None:
    for written in futures:
        if written.done():
            continue
        if failed is None:
            written.set_result(None)
        else:
            written.set_exception(failed)


def _unheard(written: asyncio.Future[None]) -> None:
    """Take the outcome of a group no request waits for any more (else the loop would log
    it as never retrieved)."""
    if not written.cancelled():
        written.exception()
