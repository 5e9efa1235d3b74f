"""Every event type and command is wired everywhere it must be: nothing is left out silently."""

from __future__ import annotations

import typing
import uuid
from datetime import date
from types import SimpleNamespace

import pytest

from overleg.aggregates.case import EVENT_CLASSES, EVENT_TOPICS, Case
from overleg.aggregates.values import Attendance, Party, Role
from overleg.commands import (
    AgreeWorkplan,
    AppointChair,
    CancelMeeting,
    CaseCommand,
    CloseCase,
    CompleteRegistration,
    CorrectAttendance,
    Decline,
    DesignateCoordinator,
    EraseCase,
    GiveConsent,
    HoldMeeting,
    PlanMeeting,
    RecordPreparation,
    ReopenCase,
    ReportBottleneck,
    RetractMeeting,
    ReviseWorkplan,
    ScheduleFollowUp,
    WithdrawConsent,
)
from overleg.policies.access import (
    AccessDenied,
    Operator,
    StaffRole,
    may_attempt,
    may_command,
    sees,
    who_may,
)
from overleg.streams import LINE_TYPES

CASE_ID = uuid.uuid4()


def declared_events() -> set[type[Case.Event]]:
    """Every event class the aggregate declares."""
    return {
        member
        for member in vars(Case).values()
        if isinstance(member, type) and issubclass(member, Case.Event) and member is not Case.Event
    }


def test_every_event_the_case_declares_is_in_the_union_every_reader_dispatches_on() -> None:
    assert declared_events() == set(EVENT_CLASSES)


def test_every_event_has_its_own_versioned_topic() -> None:
    assert len(set(EVENT_TOPICS)) == len(EVENT_TOPICS)
    for cls in EVENT_CLASSES:
        assert cls.TOPIC.startswith("overleg.case.") and cls.TOPIC.endswith(".v1"), cls


def test_every_event_type_is_a_line_type_of_the_stream_and_back() -> None:
    # The erasure is the service's own record, never a line of the stream.
    assert {cls.__name__ for cls in EVENT_CLASSES} - {"PersonalDataErased"} == set(LINE_TYPES)


EVERY_CASE_COMMAND: list[CaseCommand] = [
    Decline(CASE_ID, "x"),
    GiveConsent(CASE_ID, Party("jongere-1", Role.YOUTH)),
    WithdrawConsent(CASE_ID, Party("jongere-1", Role.YOUTH), None),
    AppointChair(CASE_ID, "vz-1"),
    HoldMeeting(CASE_ID, date(2015, 1, 1), "x", Attendance(None, None, None, ())),
    AgreeWorkplan(CASE_ID, 1, [], None, crisis_plan=False),
    CompleteRegistration(CASE_ID, 1),
    ScheduleFollowUp(CASE_ID, date(2015, 1, 1)),
    ReportBottleneck(CASE_ID, "wachtlijst", "x"),
    CloseCase(CASE_ID, "x"),
    PlanMeeting(CASE_ID, date(2015, 1, 1), None, [], []),
    CancelMeeting(CASE_ID, 1, "x"),
    RecordPreparation(CASE_ID, 1, {"client_informed": True}),
    DesignateCoordinator(CASE_ID, "hv-1", chosen_by_client=True),
    CorrectAttendance(CASE_ID, 1, Attendance(None, None, None, ()), "x"),
    ReviseWorkplan(CASE_ID, 1, [], None, crisis_plan=False, reason="x"),
    RetractMeeting(CASE_ID, 1, "x"),
    ReopenCase(CASE_ID, "x"),
    EraseCase(CASE_ID, "x"),
]


def test_the_examples_cover_every_command_on_a_case() -> None:
    assert {type(c) for c in EVERY_CASE_COMMAND} == set(typing.get_args(CaseCommand))


@pytest.mark.parametrize("command", EVERY_CASE_COMMAND, ids=lambda c: type(c).__name__)
def test_every_command_says_who_may_give_it(command: CaseCommand) -> None:
    roles, action = who_may(command)
    assert roles and roles <= {StaffRole.TEAM, StaffRole.CHAIR}
    assert action and action[0].islower()


@pytest.mark.parametrize("command", EVERY_CASE_COMMAND, ids=lambda c: type(c).__name__)
def test_the_operator_erases_any_case_and_does_nothing_else(command: CaseCommand) -> None:
    operator = Operator("functionaris-1")
    case = SimpleNamespace(programme=None, region="Limburg", municipality=None, chair=None)
    assert sees(operator, case)  # any case: erasure is not scoped to an area
    if isinstance(command, EraseCase):
        may_attempt(operator, command)
        may_command(operator, command, case)
        return
    with pytest.raises(AccessDenied, match="can only erase"):
        may_attempt(operator, command)
    with pytest.raises(AccessDenied, match="can only erase"):
        may_command(operator, command, case)
