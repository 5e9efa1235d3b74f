"""The service's own record beside the events: who read which case's data, for auditors.

It lives in the event store's database (table ``case_read``): who, which case, what, when,
under which request. (Idempotency keys live with the events themselves: see
``adapters/recorders.py``.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from overleg.adapters.views import Tx, ViewStore
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
        with store.transaction() as tx:
            tx.schema_changes()
            tx.execute(
                "CREATE TABLE IF NOT EXISTS case_read ("
                " case_id TEXT NOT NULL, reader TEXT NOT NULL, role TEXT NOT NULL,"
                " what TEXT NOT NULL, at TEXT NOT NULL, request_id TEXT NOT NULL)"
            )
            tx.execute("CREATE INDEX IF NOT EXISTS case_read_case ON case_read (case_id, at)")
            if not _has_caller_column(tx):  # a read log made before callers' ids were kept
                tx.execute("ALTER TABLE case_read ADD COLUMN caller_request_id TEXT")

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


def _has_caller_column(tx: Tx) -> bool:
    if tx.dialect == "sqlite":
        rows = tx.fetchall(
            "SELECT COUNT(*) FROM pragma_table_info('case_read') WHERE name = 'caller_request_id'"
        )
    else:
        rows = tx.fetchall(
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema ="
            " current_schema() AND table_name = 'case_read'"
            " AND column_name = 'caller_request_id'"
        )
    return int(rows[0][0]) > 0
