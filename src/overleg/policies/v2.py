"""Rule set v2: the clauses of contract version 2 that replace v1's of the same name.

Cases requested from the v2 effective instant on keep these for their whole life
(``event-stream-v2.md``, "The v2 rule set"). Each clause cites the source text it rests on
(``docs/rules.md`` quotes the sentences).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from overleg.aggregates.errors import (
    AtOutOfOrder,
    AttendanceUnknown,
    ChairNotNeutral,
    ConsentRequired,
    CoordinatorNotProfessional,
    HeldInFuture,
)
from overleg.aggregates.values import Programme, Role
from overleg.i18n import Message, _
from overleg.policies.rules import (
    ROLE_NAMES,
    CaseFacts,
    MeetingFacts,
    brussels_day,
    coordinator_not_chair,
    is_minor,
)


def consent_required(case: CaseFacts, held_on: date) -> None:
    """A meeting needs the standing consent of the client or a legal representative (or, for
    a minor in integrale jeugdhulp, a parent), and no standing withdrawal of the client, a
    legal representative or, for a minor, a parent: everyone must agree."""
    minor = is_minor(case, held_on)
    ijh_minor = minor and case.programme is Programme.INTEGRALE_JEUGDHULP

    def counts(ref: str, role: Role, *, to_allow: bool) -> bool:
        # A party is its ref: a withdrawal counts in every role the person consented in.
        roles = {role, *case.party_roles.get(ref, ())}
        if ref == case.client_ref or Role.LEGAL_REPRESENTATIVE in roles:
            return True
        return Role.PARENT in roles and (ijh_minor if to_allow else minor)

    withdrawn = sorted(
        ref
        for ref, last in case.consent_by_ref.items()
        if not last.standing and counts(ref, last.role, to_allow=False)
    )
    if withdrawn:
        raise ConsentRequired(
            _(
                "A meeting needs everyone's agreement: {refs} withdrew their consent",
                refs=", ".join(withdrawn),
            )
        )
    if not any(
        last.standing and counts(ref, last.role, to_allow=True)
        for ref, last in case.consent_by_ref.items()
    ):
        if ijh_minor:
            raise ConsentRequired(
                _(
                    "A meeting needs the standing consent of the client, a legal "
                    "representative or a parent"
                )
            )
        raise ConsentRequired(
            _("A meeting needs the standing consent of the client or a legal representative")
        )


def attendance_known(case: CaseFacts, number: int, meeting: MeetingFacts) -> None:
    """A registration needs the client's presence known; in integrale jeugdhulp, while the
    client is a minor, the parents' too."""
    client_unknown = meeting.client_present is None
    parents_unknown = (
        case.programme is Programme.INTEGRALE_JEUGDHULP
        and is_minor(case, meeting.held_on)
        and meeting.parents is None
    )
    if client_unknown or parents_unknown:
        if client_unknown and parents_unknown:
            who = _("client and the parents")
        else:
            who = ROLE_NAMES[Role.CLIENT] if client_unknown else _("parents")
        raise AttendanceUnknown(
            _(
                "The registration of meeting {number} needs the attendance of the "
                "{who} to be known (present or not)",
                number=number,
                who=who,
            )
        )


def chair_neutral(case: CaseFacts, chair: str) -> None:
    """The appointee is not a party, an invited person, a professional of the case or its
    coordinator (retracted meetings aside)."""
    if chair in case.parties:
        raise ChairNotNeutral(
            _("The chair must be neutral: {chair} is a party of this case", chair=chair)
        )
    if chair in case.professionals:
        raise ChairNotNeutral(
            _("The chair must be neutral: {chair} is a professional of this case", chair=chair)
        )
    invited = {i.ref for plan in case.plans.values() for i in plan.invited}
    if chair in invited:
        raise ChairNotNeutral(
            _("The chair must be neutral: {chair} is invited to a meeting", chair=chair)
        )


def chair_not_named(case: CaseFacts, refs: Iterable[str], what: Message) -> None:
    """No line may name the chair in office as a party, an invited person, a professional
    present or the coordinator."""
    if case.chair is not None and case.chair in set(refs):
        raise ChairNotNeutral(
            _(
                "The chair must stay neutral: {chair} chairs this case and cannot be "
                "named as {what}",
                chair=case.chair,
                what=what,
            )
        )


def coordinator(case: CaseFacts, number: int, meeting: MeetingFacts, ref: str) -> None:
    """A workplan's coordinator is a professional of the case, not the chair; presence at
    that very meeting is no longer required."""
    coordinator_not_chair(case, ref)
    if ref not in case.professionals:
        raise CoordinatorNotProfessional(
            _(
                "The coordinator (hulpcoördinator) must be a professional of the case; {ref} is "
                "not (present at a meeting, invited as a professional, or designated)",
                ref=ref,
            )
        )


def held_not_in_future(case: CaseFacts, held_on: date, at: datetime) -> None:
    """A meeting is recorded after it was held: ``held_on`` is not after the date of ``at``."""
    recorded_on = brussels_day(at)
    if held_on > recorded_on:
        raise HeldInFuture(
            _(
                "A meeting held on {held_on} cannot be recorded on "
                "{recorded_on}: record it once it was held (or plan it)",
                held_on=held_on.isoformat(),
                recorded_on=recorded_on.isoformat(),
            )
        )


def at_order(case: CaseFacts, at: datetime) -> None:
    """Within a case, the time of recording never goes back."""
    if case.last_at is not None and at < case.last_at:
        raise AtOutOfOrder(
            _(
                "This case's last fact was recorded at {last_at}; a later one "
                "cannot be recorded earlier ({at})",
                last_at=case.last_at.isoformat(),
                at=at.isoformat(),
            )
        )


def bottleneck_allowed(case: CaseFacts) -> None:
    """A bottleneck may also follow a closed case or a declined request (a request declined
    because the help needed does not exist is exactly such a signal)."""
