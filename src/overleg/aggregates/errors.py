"""The errors a case raises when a command would break one of its rules."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the module's classes are its errors, and nothing else
    from overleg.i18n import Message


class CaseRuleBroken(Exception):
    """A command would break a rule of the case; nothing was recorded.

    ``rule`` is a stable short name (used in problem details and import reports);
    the message says in a chair's words what is wrong (a ``Message``, said in the
    reader's language where it is shown).
    """

    rule = "case-rule"

    def __init__(self, message: Message, rule_set: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # The rule set (``v1``, ``v2``) of the case whose rule this is; set by the case.
        self.rule_set = rule_set


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


# -- added with contract v2 -------------------------------------------------------------


class RequesterRoleNotAllowed(CaseRuleBroken):
    rule = "requester-role"


class InviteeConflict(CaseRuleBroken):
    rule = "invited-or-not"


class MeetingNotPlanned(CaseRuleBroken):
    rule = "meeting-planned"


class WorkplanMissing(CaseRuleBroken):
    rule = "workplan-exists"


class CoordinatorNotProfessional(CaseRuleBroken):
    rule = "coordinator"


class ReopenWithoutClose(CaseRuleBroken):
    rule = "reopen-after-close"


class HeldInFuture(CaseRuleBroken):
    rule = "held-not-in-future"


class AtOutOfOrder(CaseRuleBroken):
    rule = "at-order"


class ClientAttendanceTwice(CaseRuleBroken):
    rule = "attendance-client"


class CaseErased(CaseRuleBroken):
    rule = "case-erased"


class ErasureNotPossible(CaseRuleBroken):
    rule = "erasure-sealed"
