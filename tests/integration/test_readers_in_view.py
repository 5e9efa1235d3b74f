"""The case view knows who may read a case, as the case itself decides it, for contract v2.

A professional reads the cases they take part in (``Case.readers``), and a team of lokaal
cliëntoverleg the cases of its municipality: the case view keeps both, so that a case, its
history and a case list are answered from it for every caller. Random v2 command
sequences (plans with invitees in every role, attendance and its corrections, revised and
retracted workplans, designated coordinators, consents in every role, municipalities
written in any letter case and spacing) are given through the service on both backends;
after each batch the view, read back from its tables, must decide every caller's part as
the case's events do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from datetime import date, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_viewed_parts import lists_agree, lokaal_teams

from overleg.adapters.views import ViewStore
from overleg.aggregates.case import Case
from overleg.aggregates.errors import CaseRuleBroken
from overleg.aggregates.values import (
    Agreement,
    Attendance,
    Channel,
    Client,
    Invitee,
    Party,
    Programme,
    Region,
    Role,
)
from overleg.application import CaseNotFound, Overleg
from overleg.commands import (
    AgreeWorkplan,
    AppointChair,
    CancelMeeting,
    CaseCommand,
    CloseCase,
    CorrectAttendance,
    DesignateCoordinator,
    GiveConsent,
    HoldMeeting,
    PlanMeeting,
    ReopenCase,
    RetractMeeting,
    ReviseWorkplan,
    SubmitRequest,
    WithdrawConsent,
)
from overleg.policies import access
from overleg.policies.access import AccessDenied, Principal, StaffRole
from overleg.projections.case_view import ViewedParts, get_case_view, view_of
from overleg.projections.runner import Projector

# Small pools, so that the same people turn up in every part: as parties in family roles
# and as professionals, invited, present, named in agreements and designated.
PEOPLE = ("jongere-1", "ouder-1", "buur-1", "hv-1", "hv-2", "hv-3", "vz-1")
CHAIRS = ("vz-1", "vz-2")
MUNICIPALITIES = ("Gent", "  gent ", "Sint-Niklaas", "SINT-NIKLAAS")
PARTY_ROLES = [r for r in Role if r not in (Role.SERVICE, Role.RESIDENT)]
START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=1)))
LATER = START + timedelta(days=45)  # when the commands are given: every meeting day is past

refs = st.sampled_from(PEOPLE)
parties = st.builds(Party, refs, st.sampled_from(PARTY_ROLES))
invitees = st.builds(Invitee, refs, st.sampled_from(PARTY_ROLES))
days = st.integers(1, 40).map(lambda n: START.date() + timedelta(days=n))
attendances = st.builds(
    Attendance,
    st.none() | st.booleans(),
    st.none() | st.booleans(),
    st.none() | st.booleans(),
    st.lists(refs, max_size=3, unique=True).map(tuple),
)
agreements = st.lists(
    st.builds(Agreement, refs, st.just("Opvolgen"), st.none(), st.none()), min_size=1, max_size=3
)
coordinators = st.none() | refs

Build = Callable[[UUID, Case], CaseCommand]


def number(numbers: Collection[int], k: int) -> int:
    """One of a case's meeting numbers (the next one where it has none)."""
    return sorted(numbers)[k % len(numbers)] if numbers else 1


def steps() -> st.SearchStrategy[Build]:
    """One command on a case (some are refused by the rules, and left out); meetings, their
    plans and workplans most often, the case's end seldom. A meeting is named by its place
    among the case's meetings held (or planned), so that most commands find theirs."""
    k = st.integers(0, 3)
    plan = st.builds(
        lambda n, on, inv, out: lambda c, _: PlanMeeting(c, on, None, inv, out, meeting=n),
        st.sampled_from([None, None, 1, 2]),
        days,
        st.lists(invitees, max_size=4, unique_by=lambda i: i.ref),
        st.lists(refs, max_size=1),
    )
    hold = st.builds(  # the next meeting, as a rule
        lambda n, on, a: lambda c, _: HoldMeeting(c, on, "School", a, meeting=n),
        st.sampled_from([None, None, None, 1, 2]),
        days,
        attendances,
    )
    agree = st.builds(
        lambda k, a, who: (
            lambda c, case: AgreeWorkplan(c, number(case.meetings, k), a, who, crisis_plan=False)
        ),
        k,
        agreements,
        coordinators,
    )
    revise = st.builds(
        lambda k, a, who: (
            lambda c, case: ReviseWorkplan(
                c, number(case.meetings, k), a, who, False, "Bijgestuurd"
            )
        ),
        k,
        agreements,
        coordinators,
    )
    choices: list[st.SearchStrategy[Build]] = [
        *[plan] * 3,
        *[hold] * 5,
        *[agree] * 3,
        revise,
        st.builds(lambda p: lambda c, _: GiveConsent(c, p), parties),
        st.builds(lambda p: lambda c, _: WithdrawConsent(c, p, None), parties),
        st.builds(lambda r: lambda c, _: AppointChair(c, r), st.sampled_from(CHAIRS)),
        st.builds(lambda k: lambda c, case: CancelMeeting(c, number(case.plans, k), "Ziek"), k),
        st.builds(
            lambda k, a: (
                lambda c, case: CorrectAttendance(
                    c, number(case.meetings, k), a, "Verkeerd genoteerd"
                )
            ),
            k,
            attendances,
        ),
        st.builds(
            lambda k: lambda c, case: RetractMeeting(c, number(case.meetings, k), "Vergissing"),
            k,
        ),
        st.builds(
            lambda who, mine: lambda c, _: DesignateCoordinator(c, who, mine),
            refs,
            st.booleans(),
        ),
        st.just(lambda c, _: CloseCase(c, "Afgerond")),
        st.just(lambda c, _: ReopenCase(c, "Opnieuw nodig")),
    ]
    return st.sampled_from(choices).flatmap(lambda chosen: chosen)


def callers(chairs: set[str]) -> list[Principal]:
    """Professionals under every ref (and one never named), lokaal cliëntoverleg teams of
    every municipality and spelling (and one no case names), as every chair, and the
    other teams and chairs."""
    found = [Principal("auditor-1", StaffRole.AUDITOR)]
    for programme in (None, *Programme):
        found += [
            Principal(ref, StaffRole.PROFESSIONAL, programme=programme)
            for ref in (*PEOPLE, "hv-nooit")
        ]
        found += [Principal(ref, StaffRole.CHAIR, programme=programme) for ref in chairs]
    found += lokaal_teams(
        [*chairs, "coordinator-nooit"],
        [*MUNICIPALITIES, "Nergensdorp"],
        (None, Region.ANTWERPEN.value),
    )
    found += [Principal("team-1", StaffRole.TEAM, region=r.value) for r in Region]
    return found


def team_for(case: Any) -> Principal:
    """The continuity team (or, in lokaal cliëntoverleg, the municipality's coordinator)
    that works on the case."""
    return Principal(
        "team-1",
        StaffRole.TEAM,
        region=case.region.value,
        programme=case.programme,
        municipality=case.municipality,
    )


def given_by(app: Overleg, case_id: UUID, command: CaseCommand) -> bool:
    """Give the command as the team, else as the appointed chair; whether it was stored."""
    case = app.get_case(case_id)
    chair = Principal(case.chair or "geen-voorzitter", StaffRole.CHAIR)
    for who in (team_for(case), chair):
        try:
            app.handle(command, who)
        except (AccessDenied, CaseNotFound):  # not theirs to give (no chair: none sees it)
            continue
        except CaseRuleBroken:
            return False
        return True
    return False


def agree(app: Overleg, views: ViewStore, case_ids: list[UUID]) -> None:
    chairs = {c.chair for c in map(app.get_case, case_ids) if c.chair is not None}
    everyone = callers(chairs | set(CHAIRS))
    for case_id in case_ids:
        case = app.get_case(case_id)
        view = get_case_view(views, case_id)
        assert view is not None and view.version == case.version
        assert view == view_of(app.replay(case_id)[1])
        parts = ViewedParts.of(view)
        assert set(parts.readers()) == case.readers()
        assert parts.municipality == case.municipality
        for who in everyone:
            assert access.sees(who, parts) == access.sees(who, case), f"{who} on {case_id}"
    lists_agree(views, app, everyone)


@settings(
    max_examples=int(os.environ.get("OVERLEG_FOLD_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_the_view_decides_every_callers_part_as_the_case_does(
    projected: tuple[Overleg, ViewStore], data: st.DataObject
) -> None:
    app, views = projected
    projector = Projector(app.event_log, views)
    case_ids: list[UUID] = []
    app.clock = lambda: START
    for _ in range(data.draw(st.integers(1, 2), label="cases")):
        programme = data.draw(st.sampled_from(Programme), label="programme")
        lokaal = programme is Programme.LOKAAL_CLIENTOVERLEG
        request = SubmitRequest(
            programme=programme,
            region=data.draw(st.sampled_from([Region.ANTWERPEN, Region.LIMBURG])),
            requested_by=data.draw(
                st.builds(Party, refs, st.sampled_from([*PARTY_ROLES, Role.SERVICE])),
                label="requester",
            ),
            channel=Channel.COBE,
            client=Client("jongere-1", date(2010, 5, 1)),
            question="Afstemming",
            municipality=data.draw(st.sampled_from(MUNICIPALITIES)) if lokaal else None,
        )
        outcome = app.handle(request, team_for(request))
        case_ids.append(outcome.case_id)
        if data.draw(st.integers(0, 5), label="going"):  # most cases get going at once
            client = Role.CLIENT if lokaal else Role.YOUTH
            given_by(app, outcome.case_id, GiveConsent(outcome.case_id, Party("jongere-1", client)))
            given_by(app, outcome.case_id, AppointChair(outcome.case_id, "vz-2"))
    app.clock = lambda: LATER
    for _ in range(data.draw(st.integers(1, 4), label="batches")):
        for build in data.draw(st.lists(steps(), min_size=3, max_size=12), label="commands"):
            case_id = data.draw(st.sampled_from(case_ids), label="case")
            given_by(app, case_id, build(case_id, app.get_case(case_id)))
        projector.catch_up()
        agree(app, views, case_ids)
