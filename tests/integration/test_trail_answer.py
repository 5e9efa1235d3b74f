"""A case's history read from the audit trail is its lines as the trail keeps them
(``trail_line``), joined by the statement that reads them (SQLite's
``whole_trail_and_parts``, PostgreSQL's ``trail_at_head``): byte for byte the answer the
service renders with its model from the same rows, whatever the texts hold and whatever the
offset of an instant, and only when the trail runs from seq 1 without a gap."""

from __future__ import annotations

import json
from dataclasses import astuple
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_stream_import import event, requested

from by_table import answered
from overleg.adapters.views import ViewStore
from overleg.application import Overleg
from overleg.projections.audit_trail import (
    TrailEntry,
    history,
    trail_at_head,
    trail_line,
    whole_trail_and_parts,
)
from overleg.projections.case_view import ViewAnswer
from overleg.projections.runner import Projector
from overleg.streams import import_stream

# Texts as a line may hold them: any character a text column stores (PostgreSQL's hold no
# NUL), quotes, backslashes and control characters included.
texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)
lines = st.tuples(texts, instants, texts, texts)


def _case(app: Overleg, views: ViewStore) -> UUID:
    """A case of two events, caught up."""
    case = str(uuid4())
    youth = {"party": {"ref": "jongere-a", "role": "youth"}}
    import_stream(
        app, [json.dumps(requested(case)), json.dumps(event(case, 2, "ConsentGiven", youth))]
    )
    Projector(app.event_log, views).catch_up()
    return UUID(case)


def _read(app: Overleg, views: ViewStore, case_id: UUID) -> ViewAnswer | None:
    if views.dialect == "sqlite":
        return views.ask(whole_trail_and_parts(case_id))
    return views.ask(trail_at_head(case_id, app.commands.events_table_name))


def _rewrite(views: ViewStore, case_id: UUID, trail: list[TrailEntry]) -> None:
    """The case's trail rows replaced by ``trail``'s, each with its line as the projection
    renders it (``trail_line``)."""
    with views.transaction() as tx:
        tx.execute("DELETE FROM audit_trail WHERE case_id = ?", (str(case_id),))
        tx.executemany(
            "INSERT INTO audit_trail (case_id, seq, line) VALUES (?, ?, ?)",
            [(str(case_id), t.seq, trail_line(*astuple(t))) for t in trail],
        )


@pytest.fixture
def probed(projected: tuple[Overleg, ViewStore]) -> tuple[Overleg, ViewStore, UUID]:
    """A case of two events, caught up, whose trail each example rewrites."""
    app, views = projected
    return app, views, _case(app, views)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=st.lists(lines, min_size=2, max_size=2))
def test_the_statement_renders_the_history_as_the_service_does(
    probed: tuple[Overleg, ViewStore, UUID], drawn: list[tuple[str, datetime, str, str]]
) -> None:
    app, views, case_id = probed
    trail = [
        TrailEntry(seq, kind, at.isoformat(), by, summary)
        for seq, (kind, at, by, summary) in enumerate(drawn, start=1)
    ]
    _rewrite(views, case_id, list(reversed(trail)))  # stored out of order: read in order
    found = _read(app, views, case_id)
    assert found is not None
    assert found[1] == 2
    assert found[2] == answered(trail)
    assert [line["summary"] for line in json.loads(found[2])] == [t.summary for t in trail]
    assert history(views, case_id) == trail  # the lines read back as the entries written


def test_an_instant_in_utc_ends_in_z_and_keeps_its_microseconds(
    projected: tuple[Overleg, ViewStore],
) -> None:
    app, views = projected
    case_id = _case(app, views)
    at = datetime(2015, 3, 2, 9, 0, 0, 120, tzinfo=UTC)
    trail = [
        TrailEntry(1, "Requested", at.isoformat(), "team-a", "a"),
        TrailEntry(2, "ConsentGiven", at.replace(microsecond=0).isoformat(), "team-a", "b"),
    ]
    _rewrite(views, case_id, trail)
    found = _read(app, views, case_id)
    assert found is not None
    assert [line["at"] for line in json.loads(found[2])] == [
        "2015-03-02T09:00:00.000120Z",
        "2015-03-02T09:00:00Z",
    ]


@pytest.mark.parametrize(
    "seqs", [[2], [1], [1, 3], [2, 3]], ids=["no-first", "short", "gap", "shifted"]
)
def test_a_trail_not_from_seq_one_without_a_gap_is_not_answered(
    projected: tuple[Overleg, ViewStore], seqs: list[int]
) -> None:
    app, views = projected
    case_id = _case(app, views)
    at = datetime(2015, 3, 2, 9, tzinfo=UTC).isoformat()
    _rewrite(views, case_id, [TrailEntry(seq, "Requested", at, "team-a", "x") for seq in seqs])
    assert _read(app, views, case_id) is None
