"""The case view keeps each case's answer as the service sends it (``case_answer``), and a
read from the view sends it as stored (SQLite's ``whole_case_answer``, PostgreSQL's
``case_answer_at_head``), with only whether a follow-up is overdue set on the day it is
read: byte for byte the answer the case's events give that day, and an answer the
documented model (``CaseOut``) reads back unchanged. A page of the case list is joined
from those answers (``list_cases``, ``page_answer``): byte for byte the page rendered from
the listed cases' events."""

from __future__ import annotations

import json
import os
from datetime import date
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_stream_import import base_case, with_data, workplan

from overleg.adapters.views import ViewStore
from overleg.api.answers import rendered
from overleg.api.routers.cases import page_answer
from overleg.api.schemas import CaseList
from overleg.application import Overleg
from overleg.projections.case_answer import CaseOut, Status, case_answer, case_out
from overleg.projections.case_view import (
    CaseFilter,
    CaseViews,
    ViewAnswer,
    ViewedParts,
    case_answer_at_head,
    list_cases,
    list_page,
    view_of,
    whole_case_answer,
)
from overleg.projections.runner import Projector
from overleg.streams import import_stream
from strategies import valid_streams, with_fresh_ids

Lines = list[dict[str, Any]]
FOLDED = settings(
    max_examples=int(os.environ.get("OVERLEG_FOLD_EXAMPLES", "30")),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
STREAMS = valid_streams().map(with_fresh_ids)
DAYS = st.dates(min_value=date(2014, 1, 1), max_value=date(2031, 12, 31))


def _read(app: Overleg, views: ViewStore, case_id: UUID, today: date) -> ViewAnswer | None:
    """The case's answer read from its view, as the service reads it on each backend."""
    if views.dialect == "sqlite":
        return views.ask(whole_case_answer(case_id, today))
    return views.ask(case_answer_at_head(case_id, app.commands.events_table_name, today))


def _imported(app: Overleg, views: ViewStore, stream: Lines) -> list[UUID]:
    import_stream(app, [json.dumps(line) for line in stream])
    Projector(app.event_log, views).catch_up()
    return [UUID(c) for c in dict.fromkeys(line["case"] for line in stream)]


def _as_the_events_say(app: Overleg, case_id: UUID, today: date) -> ViewAnswer:
    view = view_of(app.replay(case_id)[1])
    return ViewedParts.of(view), view.version, case_answer(view, today)


def _follow_up(case: str, ended: bool) -> Lines:
    """A case whose workplan was registered and whose follow-up is due on 2015-06-01
    (``ended``: closed afterwards); an agreement's text holds quotes and a line break."""
    lines = base_case(case)
    assert lines[5]["type"] == "WorkplanAgreed" and lines[-1]["type"] == "CaseClosed"
    plan = workplan()
    plan["agreements"][0]["what"] = 'Elke week "huisbezoek"\nen een telefoon'
    lines = with_data(6, plan)(lines)
    return lines if ended else lines[:-1]


def test_a_follow_up_is_overdue_from_the_day_after_it_was_due_until_the_case_ends(
    projected: tuple[Overleg, ViewStore],
) -> None:
    app, views = projected
    due, closed = str(uuid4()), str(uuid4())
    _imported(app, views, _follow_up(due, ended=False) + _follow_up(closed, ended=True))
    for case, day, overdue in [
        (due, date(2015, 6, 1), False),
        (due, date(2015, 6, 2), True),
        (due, date(2026, 11, 28), True),
        (closed, date(2026, 11, 28), False),
    ]:
        found = _read(app, views, UUID(case), day)
        assert found is not None
        assert found == _as_the_events_say(app, UUID(case), day)
        answer = json.loads(found[2])
        assert answer["follow_up_overdue"] is overdue
        assert answer["next_follow_up_on"] == (None if case == closed else "2015-06-01")
        assert CaseOut.model_validate_json(found[2]).model_dump_json(by_alias=True) == (
            found[2].decode()
        )


@FOLDED
@given(
    stream=STREAMS,
    today=DAYS,
)
def test_the_answer_the_view_keeps_is_the_answer_its_events_give_on_any_day(
    projected: tuple[Overleg, ViewStore], stream: Lines, today: date
) -> None:
    app, views = projected
    for case_id in _imported(app, views, stream):
        found = _read(app, views, case_id, today)
        assert found == _as_the_events_say(app, case_id, today), f"case {case_id} on {today}"
        assert CaseOut.model_validate_json(found[2]).model_dump_json(by_alias=True) == (
            found[2].decode()
        )


@FOLDED
@given(
    stream=STREAMS,
    today=DAYS,
    status=st.none() | st.sampled_from([s.value for s in Status]),
    overdue=st.booleans(),
    offset=st.integers(0, 4),
    limit=st.integers(1, 5),
)
def test_a_page_of_the_list_is_the_page_its_cases_events_give_on_any_day(
    projected: tuple[Overleg, ViewStore],
    stream: Lines,
    today: date,
    status: str | None,
    overdue: bool,
    offset: int,
    limit: int,
) -> None:
    """A page is joined from the answers the view keeps: byte for byte the page rendered
    from each listed case's events that day, of the cases the events say match, counted
    as they do."""
    app, views = projected
    _imported(app, views, stream)
    where = CaseFilter(status=status, overdue_on=today if overdue else None)
    page = list_cases(views, where, today, offset=offset, limit=limit)
    folded = [view_of(app.replay(c)[1]) for c in app.stored_cases()]
    matching = {
        v.case_id: v
        for v in folded
        if (status is None or v.status == status) and (not overdue or v.follow_up_overdue(today))
    }
    assert page.total == len(matching)
    assert len(page.case_ids) == max(0, min(limit, len(matching) - offset))
    expected = CaseList(
        items=[case_out(matching[c], today) for c in page.case_ids],
        total=page.total,
        offset=offset,
        limit=limit,
    )
    assert page_answer(page) == rendered(expected)


FILTERS = [
    CaseFilter(),
    *(CaseFilter(**{column: "x"}) for column in ("status", "region", "programme", "chair")),
    CaseFilter(coordinator="x"),
    CaseFilter(overdue_on=date(2026, 1, 1)),
    CaseFilter(status="open", chair="x"),
]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "where", FILTERS, ids=lambda where: "-".join(k for k, v in vars(where).items() if v) or "all"
)
def test_a_list_is_counted_and_paged_from_indexes_whatever_it_filters_on(
    projected: tuple[Overleg, ViewStore], where: CaseFilter
) -> None:
    """SQLite's plan of a page (the case view made as the projector makes it, over a store
    made with the single-column indexes of earlier versions): every read of the view goes
    through an index, and the page's cases come in the list's order from it (no sort of
    the matching cases), so that a page costs about the same however many cases match;
    overdue follow-ups from the open cases' index, which holds the follow-up date, so
    that a case not overdue is passed over without its row being read."""
    app, views = projected
    with views.transaction() as tx:
        CaseViews().create(tx)
        tx.execute("CREATE INDEX case_view_status ON case_view (status)")  # an earlier one
    Projector(app.event_log, views)  # its set-up: what is missing made, the old let go
    query = list_page(where, date(2026, 1, 1), offset=3)
    plan = [r[3] for r in views.read(f"EXPLAIN QUERY PLAN {query.statement}", query.params)]
    on_view = [step for step in plan if " case_view " in f"{step} "]
    assert on_view and all("INDEX" in step for step in on_view), plan
    page = plan[plan.index("MATERIALIZE p") : plan.index("SCAN n")]
    assert not any("TEMP B-TREE" in step for step in page), plan
    if where.overdue_on is not None:  # open cases in order, the follow-up date beside
        assert any("case_view_open_updated" in step for step in page), plan
    names = {r[0] for r in views.read("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "case_view_status" not in names and "case_view_status_updated" in names
