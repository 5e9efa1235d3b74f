"""The projections of one case read table by table, one query each: the reference that
the reads in one statement (``whole_case_view``, ``whole_trail_and_parts``, the readings at
the head on PostgreSQL) are held against."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import TypeAdapter

from overleg.adapters.views import Fetch
from overleg.api.schemas import HistoryEntry
from overleg.projections.audit_trail import AuditTrail, TrailEntry, history_rows
from overleg.projections.case_view import CaseViews, ViewedParts, parts_of


def set_aside(fetch: Fetch, projection: str, case_id: str) -> bool:
    """Whether ``projection`` set an event of the case aside as failed."""
    return bool(
        fetch(
            "SELECT 1 FROM projection_failure WHERE projection = ? AND case_id = ? LIMIT 1",
            (projection, case_id),
        )
    )


def viewed_parts(fetch: Fetch, case_id: UUID) -> ViewedParts | None:
    """What access decisions read of one case, from its view, when the view applied every
    event of the case it read; else ``None``."""
    key = str(case_id)
    if set_aside(fetch, CaseViews.name, key):
        return None
    rows = fetch(
        "SELECT programme, region, chair, municipality FROM case_view WHERE case_id = ?", (key,)
    )
    if not rows:
        return None
    readers = fetch("SELECT ref FROM case_view_participant WHERE case_id = ? AND reader", (key,))
    programme, region, chair, municipality = rows[0]
    return parts_of(programme, region, chair, municipality, [ref for (ref,) in readers])


def whole_trail(fetch: Fetch, case_id: UUID) -> list[TrailEntry] | None:
    """A case's audit trail when the projection applied every event of the case it read,
    each seq from 1 on; else ``None``."""
    if set_aside(fetch, AuditTrail.name, str(case_id)):
        return None
    trail = history_rows(fetch, case_id)
    whole = [entry.seq for entry in trail] == list(range(1, len(trail) + 1))
    return trail if trail and whole else None


_HISTORY = TypeAdapter(list[HistoryEntry])


def answered(trail: list[TrailEntry]) -> bytes:
    """A trail as the service answers it when it renders each line itself (``HistoryEntry``,
    as a case replayed is answered): the reference for the answer a statement renders."""
    entries = [
        HistoryEntry(
            seq=t.seq, type=t.type, at=datetime.fromisoformat(t.at), by=t.by, summary=t.summary
        )
        for t in trail
    ]
    return _HISTORY.dump_json(entries, by_alias=True)
