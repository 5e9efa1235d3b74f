"""A case read from its view is seen by exactly those who see the case its events make.

``GET /cases/{id}`` answers a case not kept from the case view, without a replay, and a
case list is read from the view alone. The access rule is then asked of the view
(``ViewedParts``) instead of the case, and the list's filter (``_scoped``) stands for it:
for every caller, every case and every moment of it, they must agree with the case.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import date
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from by_table import answered, viewed_parts, whole_trail
from overleg.adapters.views import ViewStore
from overleg.aggregates.values import Programme
from overleg.api.routers import cases as case_routes
from overleg.api.routers.cases import _scoped
from overleg.application import Overleg
from overleg.policies import access
from overleg.policies.access import Principal, StaffRole
from overleg.projections.audit_trail import whole_trail_and_parts
from overleg.projections.case_answer import case_answer
from overleg.projections.case_view import (
    CaseFilter,
    NotInView,
    ViewedParts,
    get_case_view,
    list_cases,
    view_of,
    whole_case_answer,
)
from overleg.projections.runner import Projector
from overleg.streams import import_stream
from strategies import REGIONS, valid_streams, with_fresh_ids
from strategies_v2 import v1_streams

Lines = list[dict[str, Any]]
PROGRAMME_CLAIMS = [None, *Programme]


def refs_in(value: Any) -> set[str]:
    """Every ref a line's data names (in ``ref``, ``who``, ``chair``, ``coordinator`` or a
    list of professionals)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("ref", "who", "chair", "coordinator") and isinstance(item, str):
                found.add(item)
            elif key == "professionals" and isinstance(item, list):
                found.update(r for r in item if isinstance(r, str))
            else:
                found |= refs_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= refs_in(item)
    return found


def callers(stream: Lines, municipalities: Sequence[str | None] = ()) -> list[Principal]:
    """Every kind of caller, with every scope a token can name: as every chair the stream
    appoints (and one it never does), as a professional under every ref the stream names
    (and one it never does), and as a team of lokaal cliëntoverleg of each municipality
    (written as the cases write it, and otherwise), and of one no case names."""
    chairs = {line["data"]["chair"] for line in stream if line["type"] == "ChairAppointed"}
    refs = set().union(*(refs_in(line["data"]) for line in stream)) | {"hulpverlener-nooit"}
    found = [Principal("auditor-1", StaffRole.AUDITOR)]
    found += [
        Principal("team-1", StaffRole.TEAM, region=region, programme=programme)
        for region in REGIONS
        for programme in (None, Programme.INTEGRALE_JEUGDHULP)
    ]
    found += [
        Principal(ref, StaffRole.CHAIR, region=region, programme=programme)
        for ref in sorted(chairs | {"voorzitter-nooit-aangesteld"})
        for programme in PROGRAMME_CLAIMS
        for region in (None, REGIONS[0])
    ]
    found += [
        Principal(ref, StaffRole.PROFESSIONAL, programme=programme)
        for ref in sorted(refs)
        for programme in PROGRAMME_CLAIMS
    ]
    named = {m for m in municipalities if m is not None}
    spellings = named | {f"  {m.upper()} " for m in named} | {"Nergensdorp"}
    refs = sorted(chairs | {"coordinator-nooit"})
    return found + lokaal_teams(refs, sorted(spellings), (None, REGIONS[0]))


def lokaal_teams(
    refs: Sequence[str], municipalities: Sequence[str], regions: Sequence[str | None]
) -> list[Principal]:
    """A team of lokaal cliëntoverleg under each ref, for each municipality and region."""
    return [
        Principal(
            ref,
            StaffRole.TEAM,
            region=region,
            programme=Programme.LOKAAL_CLIENTOVERLEG,
            municipality=municipality,
        )
        for ref in refs
        for municipality in municipalities
        for region in regions
    ]


def lists_agree(views: ViewStore, app: Overleg, everyone: Sequence[Principal]) -> None:
    """For every caller: the cases its list shows (``_scoped`` on the view) are exactly the
    stored cases it has a part in, as each case's events decide."""
    cases = {c: app.get_case(c) for c in app.stored_cases()}
    for who in everyone:
        if who.role is StaffRole.ANALYST:
            continue
        listed = list_cases(views, _scoped(CaseFilter(), who), date(2026, 1, 1), limit=10_000)
        expected = {str(c) for c, case in cases.items() if access.has_part(who, case)}
        assert set(listed.case_ids) == expected, who
        assert listed.total == len(expected), who


@settings(
    max_examples=int(os.environ.get("OVERLEG_FOLD_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=st.one_of(valid_streams(), v1_streams(quirky=False)).map(with_fresh_ids))
def test_the_view_and_the_events_let_the_same_callers_see_a_case(
    projected: tuple[Overleg, ViewStore], stream: Lines
) -> None:
    app, views = projected
    import_stream(app, [json.dumps(line) for line in stream])
    Projector(app.event_log, views).catch_up()
    everyone = callers(stream)
    lists_agree(views, app, everyone)
    for case_id in dict.fromkeys(line["case"] for line in stream):
        case = app.get_case(UUID(case_id))
        view = get_case_view(views, UUID(case_id))
        assert view is not None and view.version == case.version
        # Read back from its tables, the view is the one its events fold to (consents in
        # the order given, whatever the offsets of their instants).
        assert view == view_of(app.replay(UUID(case_id))[1])
        parts = ViewedParts.of(view)
        assert views.read_together(lambda fetch, c=case_id: viewed_parts(fetch, UUID(c))) == parts
        if views.dialect == "sqlite":  # and read in one statement, as a read on the loop does
            today = date(2026, 11, 28)
            said = (parts, view.version, case_answer(view, today))
            assert views.ask(whole_case_answer(UUID(case_id), today)) == said
            assert views.ask_now(whole_case_answer(UUID(case_id), today)) == (said,)
            trail = views.read_together(lambda fetch, c=case_id: whole_trail(fetch, UUID(c)))
            assert trail is not None and len(trail) == view.version
            events = app.replay(UUID(case_id))[1]
            body = case_routes._rendered_history(case_routes._history(events))
            answer = (parts, view.version, body)
            assert answered(trail) == body
            assert views.ask(whole_trail_and_parts(UUID(case_id))) == answer
        for who in everyone:
            try:
                from_view = access.sees(who, parts)
            except NotInView as missing:  # the rule asked what the view does not hold
                pytest.fail(f"{who} asked the view for {missing}")
            assert from_view == access.sees(who, case), f"{who} on case {case_id}"


def test_what_the_view_does_not_hold_is_refused_not_guessed() -> None:
    """Asked of the view, a rule that needs the case's parties (a rule on commands, never on
    reading) fails loudly."""
    parts = ViewedParts(Programme.LOKAAL_CLIENTOVERLEG, REGIONS[0], None, "Gent", frozenset())
    with pytest.raises(NotInView):
        parts.parties  # noqa: B018
