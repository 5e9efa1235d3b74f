"""The store's side of sealing: the cases' data keys and the erased forms, kept apart from
the events, written in the events' own transactions.

A new case's data key is written in the transaction of its first events; an erasure
destroys the key, keeps the erased form of each event's personal part, and drops the case's
idempotency records, in the transaction of the erasure's event. So neither an event without
its key nor an erasure event without the erasure can ever be stored.
"""

from __future__ import annotations

import json
from collections.abc import Container, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import IntegrityError, StoredEvent

from overleg.adapters.rows import case_key, row_values
from overleg.adapters.sealing import Keyring, KeyRow, MasterKeys
from overleg.i18n import _


@dataclass(frozen=True)
class Erasure:
    """What an erasure writes beside its event: the erased form of each earlier event's
    personal part, by seq."""

    case_id: str
    forms: dict[int, dict[str, Any]]


@dataclass(frozen=True)
class Rotation:
    """What ``rotate`` did: data keys wrapped again, and those already under the current key."""

    rewrapped: int
    current: int
    erased: int


class KeyTables:
    """The SQL of the key tables; each store's recorder fills in its own."""

    keyring: Keyring | None = None
    _case_keys: Any = "case_keys"
    _erased_personal: Any = "erased_personal"
    _command_log: Any = "command_log"

    @contextmanager
    def _reading(self) -> Iterator[Any]:
        raise NotImplementedError

    @contextmanager
    def _writing(self) -> Iterator[Any]:
        raise NotImplementedError

    def _format(self, text: str) -> Any:
        """A statement with the store's table names (and, on PostgreSQL, placeholders)."""
        return text.format(
            keys=self._case_keys, erased=self._erased_personal, log=self._command_log
        )

    # -- in the events' transaction ------------------------------------------------------

    def _write_keys(self, cursor: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        """Store the new data keys of these events' cases; carry out an erasure.

        ``keyed`` (an import's later batches): cases whose key this transaction stored
        already, with their first events."""
        if self.keyring is None:
            return
        keyed: Container[str] = kwargs.get("keyed") or ()
        cases = (case_key(e.originator_id) for e in stored_events)
        pending = self.keyring.pending(c for c in cases if c not in keyed)
        if pending:
            now = datetime.now(UTC).isoformat()
            cursor.executemany(
                self._format(
                    "INSERT INTO {keys} (case_id, master_id, wrapped, created_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
                ),
                [(c, m, w, now) for c, m, w in pending],
            )
            mine = {c: w for c, _, w in pending}
            found = self._rows_in(cursor, list(mine))
            for case_id, wrapped in mine.items():
                row = found.get(case_id)
                if row is None or row.wrapped != wrapped:
                    # Another writer stored a key for this case first: these events were
                    # sealed with a key that would not be kept, so none of them is stored.
                    raise IntegrityError(
                        _("case {case_id} got its data key from another writer", case_id=case_id)
                    )
        erasure: Erasure | None = kwargs.get("erasure")
        if erasure is not None:
            self._erase(cursor, erasure)

    def _erase(self, cursor: Any, erasure: Erasure) -> None:
        row = self._rows_in(cursor, [erasure.case_id]).get(erasure.case_id)
        if row is None or row.wrapped is None:
            raise IntegrityError(
                _("case {case_id} has no data key to destroy", case_id=erasure.case_id)
            )
        cursor.execute(
            self._format(
                "UPDATE {keys} SET master_id = NULL, wrapped = NULL, erased_at = ?"
                " WHERE case_id = ?"
            ),
            (datetime.now(UTC).isoformat(), erasure.case_id),
        )
        cursor.executemany(
            self._format("INSERT INTO {erased} (case_id, seq, personal) VALUES (?, ?, ?)"),
            [
                (erasure.case_id, seq, json.dumps(form, ensure_ascii=False, sort_keys=True))
                for seq, form in sorted(erasure.forms.items())
            ],
        )
        # Its idempotency records fingerprint requests that named its people.
        cursor.execute(self._format("DELETE FROM {log} WHERE case_id = ?"), (erasure.case_id,))

    def _committed(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        """After the events' transaction committed."""
        self.committed_cases(case_key(e.originator_id) for e in stored_events)
        erasure: Erasure | None = kwargs.get("erasure")
        if erasure is not None and self.keyring is not None:
            self.keyring.forget(erasure.case_id)
            self._after_erasure()

    def committed_cases(self, case_ids: Iterable[str]) -> None:
        """These cases' events (and new data keys) were committed."""
        if self.keyring is None:
            return
        self.keyring.stored(case_ids)

    def _after_erasure(self) -> None:
        """What a store does to leave no copy of a destroyed key behind."""

    # The columns of a key row, in ``key_rows``' order.
    KEY_COLUMNS = "SELECT case_id, master_id, wrapped, erased_at FROM {keys}"

    def _rows_in(self, cursor: Any, case_ids: Sequence[str]) -> dict[str, KeyRow]:
        return key_rows(self._each(cursor, self.KEY_COLUMNS, case_ids))

    def _each(self, cursor: Any, select: str, case_ids: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        """The rows of ``select`` for these cases, asked 500 cases at a time."""
        for start in range(0, len(case_ids), 500):
            ids = list(case_ids[start : start + 500])
            marks = ", ".join("?" * len(ids))
            cursor.execute(self._format(f"{select} WHERE case_id IN ({marks})"), ids)
            yield from map(row_values, cursor.fetchall())

    # -- reads (the keyring's store) -----------------------------------------------------

    def select_keys(self, case_ids: Sequence[str]) -> dict[str, KeyRow]:
        """The key rows of these cases (a case without one is left out)."""
        with self._reading() as cursor:
            return self._rows_in(cursor, case_ids)

    def select_erased(self, case_ids: Sequence[str]) -> dict[str, dict[int, dict[str, Any]]]:
        """The erased forms of these cases' personal parts, by case and seq."""
        forms: dict[str, dict[int, dict[str, Any]]] = {c: {} for c in case_ids}
        with self._reading() as cursor:
            for case_id, seq, personal in self._each(
                cursor, "SELECT case_id, seq, personal FROM {erased}", case_ids
            ):
                forms[str(case_id)][int(seq)] = json.loads(personal)
        return forms

    # -- rotation -----------------------------------------------------------------------

    def rotate(self, masters: MasterKeys, batch: int = 1000) -> Rotation:
        """Wrap every data key that another master key wraps again with the current one.
        The events are not touched; a key that cannot be unwrapped stops the rotation with
        ``KeyProblem`` and what was done so far stays done."""
        rewrapped = 0
        while True:
            with self._writing() as cursor:
                cursor.execute(
                    self._format(
                        "SELECT case_id, master_id, wrapped FROM {keys}"
                        " WHERE wrapped IS NOT NULL AND master_id <> ? ORDER BY case_id LIMIT ?"
                    ),
                    (masters.current.id, batch),
                )
                rows = [row_values(r) for r in cursor.fetchall()]
                updates = []
                for case_id, master_id, wrapped in rows:
                    data_key = masters.unwrap(str(case_id), master_id, bytes(wrapped))
                    new_master, new_wrapped = masters.wrap(str(case_id), data_key)
                    updates.append((new_master, new_wrapped, case_id))
                cursor.executemany(
                    self._format("UPDATE {keys} SET master_id = ?, wrapped = ? WHERE case_id = ?"),
                    updates,
                )
            rewrapped += len(rows)
            if len(rows) < batch:
                break
        with self._reading() as cursor:
            cursor.execute(
                self._format(
                    "SELECT count(*) FILTER (WHERE wrapped IS NOT NULL) AS live,"
                    " count(*) FILTER (WHERE wrapped IS NULL) AS erased FROM {keys}"
                )
            )
            row = cursor.fetchone()
        live, erased = row_values(row)
        return Rotation(rewrapped, int(live) - rewrapped, int(erased))


def key_rows(rows: Iterable[tuple[Any, ...]]) -> dict[str, KeyRow]:
    """Rows of ``case_keys`` (``KeyTables.KEY_COLUMNS``) by case."""
    return {
        str(case_id): KeyRow(
            str(case_id), master_id, None if wrapped is None else bytes(wrapped), erased_at
        )
        for case_id, master_id, wrapped, erased_at in rows
    }
