"""The service's own record beside the events: who read which case's data, for auditors.

It lives in the event store's database (table ``case_read``): who, which case, what, when,
under which request. (Idempotency keys live with the events themselves: see
``adapters/recorders.py``.)
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from overleg.adapters.migrations import migrate
from overleg.adapters.views import ViewStore
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


# The columns of ``case_read`` that a read fills, in the order ``ReadLog.record`` gives them.
COLUMNS = ("case_id", "reader", "role", "what", "at", "request_id", "caller_request_id")


class ReadLog:
    """Who read which case's data, for auditors (table ``case_read``).

    A read is answered only once its record is committed. Reads arriving while another
    reader's record is being written are written together, in the next transaction, by
    whichever of them comes first (group commit): one commit for many readers under load,
    none of them answered before its own record is stored.
    """

    def __init__(self, store: ViewStore) -> None:
        self.store = store
        migrate(store)  # its table is the migrations' (adapters/migrations.py)
        self._turn = threading.Condition()
        self._waiting: list[tuple[Any, ...]] = []  # rows of the next group
        self._group = 1  # the number of the next group to be written
        self._written = 0  # the number of the last group written (or failed)
        self._writing = False
        self._failed: dict[int, BaseException] = {}  # recent groups that could not be written

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
        at = datetime.now(UTC).isoformat()
        rows = [
            (c, who.ref, who.role.value, what, at, request_id, caller_request_id) for c in case_ids
        ]
        with self._turn:
            self._waiting.extend(rows)
            mine = self._group
            while self._written < mine and self._writing:
                self._turn.wait()
            if self._written >= mine:  # another reader wrote the group this read was in
                self._raise_if_failed(mine)
                return
            # Nobody is writing: this reader writes every record waiting, its own too.
            self._writing = True
            group, self._waiting = self._waiting, []
            self._group += 1
        failed: BaseException | None = None
        try:
            self._write(group)
        except BaseException as error:
            failed = error
        with self._turn:
            self._writing = False
            self._written = mine
            if failed is not None:
                self._failed[mine] = failed
                for old in [n for n in self._failed if n < mine - 64]:
                    del self._failed[old]
            self._turn.notify_all()
        if failed is not None:
            raise failed

    def _raise_if_failed(self, group: int) -> None:
        failed = self._failed.get(group)
        if failed is not None:
            raise failed

    def _write(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.store.append("case_read", COLUMNS, rows)

    def of(self, case_id: str) -> list[CaseRead]:
        """Everyone who read a case, oldest first."""
        rows = self.store.read(
            "SELECT reader, role, what, at, request_id, caller_request_id FROM case_read"
            " WHERE case_id = ?"
            " ORDER BY at, reader",
            (case_id,),
        )
        return [CaseRead(*row) for row in rows]
