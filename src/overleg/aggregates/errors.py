"""The errors a case raises when a command would break one of its rules."""

from __future__ import annotations


class CaseRuleBroken(Exception):
    """A command would break a rule of the case; nothing was recorded.

    ``rule`` is a stable short name (used in problem details and import reports);
    the message says in a chair's words what is wrong.
    """

    rule = "case-rule"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestMustComeFirst(CaseRuleBroken):
    rule = "request-first"


class ClientTooOld(CaseRuleBroken):
    rule = "client-age"


class CaseEnded(CaseRuleBroken):
    rule = "case-ended"


class DeclineAfterMeeting(CaseRuleBroken):
    rule = "decline-before-meeting"


class ConsentAlreadyStanding(CaseRuleBroken):
    rule = "consent-once"


class ConsentNotStanding(CaseRuleBroken):
    rule = "consent-standing"


class ChairNotNeutral(CaseRuleBroken):
    rule = "chair-neutral"


class ChairRequired(CaseRuleBroken):
    rule = "chair-required"


class ConsentRequired(CaseRuleBroken):
    rule = "consent-required"


class MeetingBeforeRequest(CaseRuleBroken):
    rule = "meeting-after-request"


class MeetingOutOfSequence(CaseRuleBroken):
    rule = "meeting-sequence"


class MeetingNotHeld(CaseRuleBroken):
    rule = "meeting-held"


class WorkplanAlreadyAgreed(CaseRuleBroken):
    rule = "workplan-once"


class WorkplanWithoutAgreements(CaseRuleBroken):
    rule = "workplan-agreements"


class RegistrationAlreadyCompleted(CaseRuleBroken):
    rule = "registration-once"


class CoordinatorNotPresent(CaseRuleBroken):
    rule = "coordinator-present"


class CoordinatorIsChair(CaseRuleBroken):
    rule = "coordinator-not-chair"


class AttendanceUnknown(CaseRuleBroken):
    rule = "attendance-known"


class FollowUpWithoutMeeting(CaseRuleBroken):
    rule = "follow-up-after-meeting"


class FollowUpBeforeLastMeeting(CaseRuleBroken):
    rule = "follow-up-date"
