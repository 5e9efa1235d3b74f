"""The service's own records beside the events: who read which case, and idempotency keys.

Both live in the event store's database (tables ``case_read`` and ``idempotency_key``).
Reads of case data are kept for auditors: who, which case, what, when, under which request.
An idempotency key remembers the first response to a command so that a retry returns it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from overleg.adapters.views import Tx, ViewStore
from overleg.policies.access import Principal

KEY_LIFETIME = timedelta(hours=24)
# A first request that has not answered within this time is taken to have died (a crash,
# a kill): a retry may take its key over.
KEY_LEASE = timedelta(seconds=60)


@dataclass(frozen=True)
class CaseRead:
    """One recorded read of a case."""

    reader: str
    role: str
    what: str
    at: str
    request_id: str


class ReadLog:
    """Who read which case's data, for auditors (table ``case_read``)."""

    def __init__(self, store: ViewStore) -> None:
        self.store = store
        with store.transaction() as tx:
            tx.execute(
                "CREATE TABLE IF NOT EXISTS case_read ("
                " case_id TEXT NOT NULL, reader TEXT NOT NULL, role TEXT NOT NULL,"
                " what TEXT NOT NULL, at TEXT NOT NULL, request_id TEXT NOT NULL)"
            )
            tx.execute("CREATE INDEX IF NOT EXISTS case_read_case ON case_read (case_id, at)")

    def record(self, who: Principal, case_ids: Sequence[str], what: str, request_id: str) -> None:
        """Record that ``who`` read these cases (before the data is sent)."""
        if not case_ids:
            return
        at = datetime.now(UTC).isoformat()
        with self.store.transaction() as tx:
            tx.executemany(
                "INSERT INTO case_read (case_id, reader, role, what, at, request_id)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(c, who.ref, who.role.value, what, at, request_id) for c in case_ids],
            )

    def of(self, case_id: str) -> list[CaseRead]:
        """Everyone who read a case, oldest first."""
        rows = self.store.read(
            "SELECT reader, role, what, at, request_id FROM case_read WHERE case_id = ?"
            " ORDER BY at, reader",
            (case_id,),
        )
        return [CaseRead(*row) for row in rows]


@dataclass(frozen=True)
class StoredResponse:
    """The first response to a command sent with an idempotency key."""

    status: int
    body: str
    headers: dict[str, str]


@dataclass(frozen=True)
class KeyClaim:
    """What claiming an idempotency key found."""

    fresh: bool  # the key is new: run the command, then ``finish``
    same_request: bool = True
    response: StoredResponse | None = None  # None with fresh=False: still in progress


class IdempotencyKeys:
    """The first response to each command sent with an ``Idempotency-Key`` (per caller)."""

    def __init__(self, store: ViewStore) -> None:
        self.store = store
        with store.transaction() as tx:
            tx.execute(
                "CREATE TABLE IF NOT EXISTS idempotency_key ("
                " owner TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL,"
                " status INTEGER, body TEXT, headers TEXT, created_at TEXT NOT NULL,"
                " PRIMARY KEY (owner, key))"
            )

    def claim(self, owner: str, key: str, fingerprint: str) -> KeyClaim:
        """Claim a key for a request, or find what the key already holds."""
        now = datetime.now(UTC)
        with self.store.transaction() as tx:
            tx.execute(
                "DELETE FROM idempotency_key WHERE created_at < ?",
                ((now - KEY_LIFETIME).isoformat(),),
            )
            inserted = tx.fetchall(
                "INSERT INTO idempotency_key (owner, key, fingerprint, created_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (owner, key) DO NOTHING RETURNING key",
                (owner, key, fingerprint, now.isoformat()),
            )
            if inserted:
                return KeyClaim(fresh=True)
            found = self._find(tx, owner, key)
            if found is not None and found[1] is None and found[0] == fingerprint:
                taken = tx.fetchall(
                    "UPDATE idempotency_key SET created_at = ? WHERE owner = ? AND key = ?"
                    " AND status IS NULL AND created_at < ? RETURNING key",
                    (now.isoformat(), owner, key, (now - KEY_LEASE).isoformat()),
                )
                if taken:
                    return KeyClaim(fresh=True)
        if found is None:  # expired and deleted by another request just now
            return KeyClaim(fresh=False)
        stored_fingerprint, status, body, headers = found
        if stored_fingerprint != fingerprint:
            return KeyClaim(fresh=False, same_request=False)
        if status is None:
            return KeyClaim(fresh=False)
        return KeyClaim(
            fresh=False, response=StoredResponse(int(status), body, json.loads(headers))
        )

    @staticmethod
    def _find(tx: Tx, owner: str, key: str) -> tuple[str, int | None, str, str] | None:
        rows = tx.fetchall(
            "SELECT fingerprint, status, body, headers FROM idempotency_key"
            " WHERE owner = ? AND key = ?",
            (owner, key),
        )
        return None if not rows else (rows[0][0], rows[0][1], rows[0][2], rows[0][3])

    def finish(self, owner: str, key: str, response: StoredResponse) -> None:
        """Keep the response of a claimed key, for retries."""
        with self.store.transaction() as tx:
            tx.execute(
                "UPDATE idempotency_key SET status = ?, body = ?, headers = ?"
                " WHERE owner = ? AND key = ?",
                (response.status, response.body, json.dumps(response.headers), owner, key),
            )

    def release(self, owner: str, key: str) -> None:
        """Forget a claimed key whose command failed unexpectedly, so a retry can run it."""
        with self.store.transaction() as tx:
            tx.execute("DELETE FROM idempotency_key WHERE owner = ? AND key = ?", (owner, key))
