"""The service's own record beside the events: who read which case's data, for auditors.

It lives in the event store's database (table ``case_read``): who, which case, what, when,
under which request. (Idempotency keys live with the events themselves: see
``adapters/recorders.py``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

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


class ReadLog:
    """Who read which case's data, for auditors (table ``case_read``)."""

    def __init__(self, store: ViewStore) -> None:
        self.store = store
        migrate(store)  # its table is the migrations' (adapters/migrations.py)

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
        with self.store.transaction() as tx:
            tx.executemany(
                "INSERT INTO case_read (case_id, reader, role, what, at, request_id,"
                " caller_request_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (c, who.ref, who.role.value, what, at, request_id, caller_request_id)
                    for c in case_ids
                ],
            )

    def of(self, case_id: str) -> list[CaseRead]:
        """Everyone who read a case, oldest first."""
        rows = self.store.read(
            "SELECT reader, role, what, at, request_id, caller_request_id FROM case_read"
            " WHERE case_id = ?"
            " ORDER BY at, reader",
            (case_id,),
        )
        return [CaseRead(*row) for row in rows]
