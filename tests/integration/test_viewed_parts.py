"""A case read from its view is seen by exactly those who see the case its events make.

``GET /cases/{id}`` answers a case not kept from the case view, without a replay, for the
callers whose part the view decides (the auditor, a team of integrale jeugdhulp, a chair:
``_view_decides``). The access rule is then asked of the view (``ViewedParts``) instead of
the case: for every such caller, every case and every moment of it, the two must agree.
"""

from __future__ import annotations

import json
import os
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overleg.adapters.views import ViewStore
from overleg.aggregates.values import Programme
from overleg.api.routers.cases import _view_decides
from overleg.application import Overleg
from overleg.policies import access
from overleg.policies.access import Principal, StaffRole
from overleg.projections.case_view import (
    NotInView,
    ViewedParts,
    get_case_view,
    view_of,
    viewed_parts,
)
from overleg.projections.runner import Projector
from overleg.streams import import_stream
from strategies import REGIONS, valid_streams, with_fresh_ids
from strategies_v2 import v1_streams

Lines = list[dict[str, Any]]
PROGRAMME_CLAIMS = [None, *Programme]


def callers(stream: Lines) -> list[Principal]:
    """Every kind of caller whose part the view decides, with every scope a token can name,
    and as every chair the stream appoints (and one it never does)."""
    chairs = {line["data"]["chair"] for line in stream if line["type"] == "ChairAppointed"}
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
    return found


def test_the_callers_whose_part_the_view_does_not_decide_are_left_to_the_events() -> None:
    """A professional (the view's participants are not the case's readers) and a team of
    lokaal cliëntoverleg (the view holds no municipality) are never answered from it."""
    assert not _view_decides(Principal("hv-1", StaffRole.PROFESSIONAL))
    lokaal = Principal(
        "team-gent", StaffRole.TEAM, programme=Programme.LOKAAL_CLIENTOVERLEG, municipality="Gent"
    )
    assert not _view_decides(lokaal)
    assert all(_view_decides(who) for who in callers([]))


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
    for case_id in dict.fromkeys(line["case"] for line in stream):
        case = app.get_case(UUID(case_id))
        view = get_case_view(views, UUID(case_id))
        assert view is not None and view.version == case.version
        # Read back from its tables, the view is the one its events fold to (consents in
        # the order given, whatever the offsets of their instants).
        assert view == view_of(app.replay(UUID(case_id))[1])
        parts = ViewedParts.of(view)
        assert views.read_together(lambda fetch, c=case_id: viewed_parts(fetch, UUID(c))) == parts
        for who in everyone:
            try:
                from_view = access.sees(who, parts)
            except NotInView as missing:  # the rule asked what the view does not hold
                pytest.fail(f"{who} asked the view for {missing}")
            assert from_view == access.sees(who, case), f"{who} on case {case_id}"


def test_what_the_view_does_not_hold_is_refused_not_guessed(store: Overleg) -> None:
    """Asked of the view, a rule that needs the case's municipality or readers fails loudly."""
    lokaal = Principal(
        "team-gent", StaffRole.TEAM, programme=Programme.LOKAAL_CLIENTOVERLEG, municipality="Gent"
    )
    professional = Principal("hv-1", StaffRole.PROFESSIONAL)
    view_stream = [
        {
            "case": str(UUID(int=41)),
            "seq": 1,
            "type": "Requested",
            "at": "2015-03-02T09:00:00+01:00",
            "by": "team-1",
            "data": {
                "programme": "lokaal_clientoverleg",
                "region": REGIONS[0],
                "requested_by": {"ref": "hv-1", "role": "professional"},
                "channel": "cobe",
                "client": {"ref": "jongere-41", "birth_date": None},
                "question": "Afstemming",
            },
        }
    ]
    import_stream(store, [json.dumps(line) for line in view_stream])
    views = ViewStore(store.database)
    try:
        Projector(store.event_log, views).catch_up()
        view = get_case_view(views, UUID(int=41))
    finally:
        views.close()
    assert view is not None
    for who in (lokaal, professional):
        with pytest.raises(NotInView):
            access.sees(who, ViewedParts.of(view))
