"""Hypothesis strategies for contract v2's tests: v1 streams that lean on what only v1 allows.

Every case is requested before the v2 effective instant (2026-01-01) and obeys every rule of
contract v1 (``event-stream-v1.md``), so it must import, keep the v1 rule set and export
unchanged. Some cases also record what the v2 rule set would refuse (``QUIRKS``): a line
whose `at` goes back, a meeting recorded before the day it was held, a parent's consent
alone for an adult client, a meeting after the young person withdrew while a parent still
consents, the chair named later as a professional present or as a party, a party consenting
under a second role. Each such case is refused as a whole once its rule set is v2.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

OFFSETS = [timezone(timedelta(hours=h)) for h in (0, 1, 2, -5, 9)] + [UTC]
REGIONS = [
    "Antwerpen",
    "Brussel",
    "Limburg",
    "Oost-Vlaanderen",
    "Vlaams-Brabant",
    "West-Vlaanderen",
]
PROGRAMMES = ["integrale_jeugdhulp", "lokaal_clientoverleg"]
CHANNELS = ["aanvraagformulier", "cobe", "email", "telefoon", "andere"]
PROFESSIONALS = ["hv-1", "hv-2", "hv-3", "hv-4"]
CHAIRS = ["vz-1", "vz-2", "vz-3", "vz-4"]
# The last request is well before the default v2 effective instant, 2026-01-01T00:00+01:00.
LAST_REQUEST = datetime(2025, 12, 30, tzinfo=UTC)

# What v1 allows and v2 refuses; a case may record any of these, each once.
QUIRKS = (
    "at_back",  # v2: at-order
    "held_ahead",  # v2: held-not-in-future
    "parent_only",  # v2: consent-required (the client is an adult, or the case is local)
    "youth_withdrew",  # v2: consent-required (everyone must agree)
    "chair_present",  # v2: chair-neutral (a professional present)
    "chair_party",  # v2: chair-neutral (a party)
    "two_roles",  # v2: consent-once (a party is its ref)
)
ACTIONS = [
    "consent",
    "chair",
    "meeting",
    "meeting",
    "meeting",
    "workplan",
    "workplan",
    "register",
    "register",
    "register",
    "follow_up",
    "bottleneck",
]

# Present or not, and sometimes not known (a registration then waits for it).
PRESENCE = st.sampled_from([True, False, True, False, None])
text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)


@dataclass
class _Meeting:
    held_on: date
    youth: bool | None
    parents: bool | None
    professionals: list[str]
    workplan: bool = False
    registered: bool = False


@dataclass
class _Case:
    """A case being written, and what v1's rules need to know of it."""

    id: str
    programme: str
    quirks: set[str]
    lines: list[dict[str, Any]] = field(default_factory=list)
    at: datetime = LAST_REQUEST
    requested_on: date = date(2025, 12, 30)
    youth: str = ""
    parent: str = ""
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (ref, role) that may consent
    consents: set[tuple[str, str]] = field(default_factory=set)
    named: set[str] = field(default_factory=set)  # parties and professionals: never a chair
    chair: str | None = None
    meetings: list[_Meeting] = field(default_factory=list)
    ended: bool = False

    def add(
        self, draw: st.DrawFn, kind: str, data: dict[str, Any], at: datetime | None = None
    ) -> None:
        step = draw(st.timedeltas(timedelta(minutes=1), timedelta(days=30)))
        if at is not None:
            self.at = at
        elif "at_back" in self.quirks:
            self.quirks.discard("at_back")
            self.at -= step  # v1 does not order a case's lines in time
        else:
            self.at += step
        offset = draw(st.sampled_from(OFFSETS))
        self.lines.append(
            {
                "case": self.id,
                "seq": len(self.lines) + 1,
                "type": kind,
                "at": self.at.astimezone(offset).isoformat(),
                "by": draw(st.sampled_from(["team-1", "team-2", *CHAIRS[:1]])),
                "data": data,
            }
        )

    def consent(self, draw: st.DrawFn, pair: tuple[str, str]) -> None:
        party = {"ref": pair[0], "role": pair[1]}
        if pair in self.consents:
            reason = draw(st.none() | text)
            self.add(draw, "ConsentWithdrawn", {"party": party, "reason": reason})
            self.consents.discard(pair)
        else:
            self.add(draw, "ConsentGiven", {"party": party})
            self.consents.add(pair)

    def ensure(self, draw: st.DrawFn, pair: tuple[str, str]) -> None:
        """The party consents (if it does not already)."""
        if pair not in self.consents:
            self.consent(draw, pair)

    def may_meet(self) -> bool:
        return self.chair is not None and any(r in ("youth", "parent") for _, r in self.consents)


def _appoint(draw: st.DrawFn, case: _Case) -> None:
    free = [c for c in CHAIRS if c not in case.named]
    if free:
        case.chair = draw(st.sampled_from(free))
        case.add(draw, "ChairAppointed", {"chair": case.chair})


def _meeting(draw: st.DrawFn, case: _Case) -> None:
    if not case.may_meet():
        return
    last = case.meetings[-1].held_on if case.meetings else case.requested_on
    held_on = last + timedelta(days=draw(st.integers(0, 150)))
    at = None
    if "held_ahead" in case.quirks:
        case.quirks.discard("held_ahead")
        # Recorded days before it was held: v1 does not compare the two.
        at = case.at + draw(st.timedeltas(timedelta(minutes=1), timedelta(days=30)))
        ahead = (at + timedelta(days=2)).date() + timedelta(days=draw(st.integers(0, 60)))
        held_on = max(held_on, ahead)
    present = draw(st.lists(st.sampled_from(PROFESSIONALS), unique=True, max_size=3))
    if "chair_present" in case.quirks and case.chair is not None:
        case.quirks.discard("chair_present")
        present.append(case.chair)  # v1 checks the chair's neutrality at appointment only
    meeting = _Meeting(
        held_on=held_on,
        youth=draw(PRESENCE),
        parents=draw(PRESENCE),
        professionals=present,
    )
    case.meetings.append(meeting)
    case.named.update(present)
    case.add(
        draw,
        "MeetingHeld",
        {
            "meeting": len(case.meetings),
            "held_on": held_on.isoformat(),
            "place": draw(text),
            "attendance": {
                "youth": meeting.youth,
                "parents": meeting.parents,
                "trusted_person": draw(st.none() | st.booleans()),
                "professionals": present,
            },
        },
        at,
    )


def _step(draw: st.DrawFn, case: _Case, action: str) -> None:
    if case.ended:
        return
    if action == "consent":
        case.consent(draw, draw(st.sampled_from(case.pairs)))
    elif action == "chair":
        _appoint(draw, case)
    elif action == "meeting":
        _meeting(draw, case)
    elif action == "workplan":
        open_ = [n for n, m in enumerate(case.meetings, 1) if not (m.workplan or m.registered)]
        if not open_:
            return
        number = draw(st.sampled_from(open_))
        meeting = case.meetings[number - 1]
        meeting.workplan = True
        who = st.sampled_from([*PROFESSIONALS, case.youth, case.parent])
        agreement = st.fixed_dictionaries(
            {
                "who": who,
                "what": text,
                "due": st.none() | st.dates(date(2014, 1, 1), date(2027, 1, 1)).map(str),
                "domain": st.none() | st.sampled_from(["gezin", "onderwijs", "vrije tijd"]),
            }
        )
        agreed = draw(st.lists(agreement, min_size=1, max_size=3))
        candidates = [p for p in meeting.professionals if p != case.chair]
        coordinator = draw(st.none() | st.sampled_from(candidates)) if candidates else None
        case.named.update(a["who"] for a in agreed)
        case.add(
            draw,
            "WorkplanAgreed",
            {
                "meeting": number,
                "agreements": agreed,
                "coordinator": coordinator,
                "crisis_plan": draw(st.booleans()),
            },
        )
    elif action == "register":
        ready = [
            n
            for n, m in enumerate(case.meetings, 1)
            if not m.registered and m.youth is not None and m.parents is not None
        ]
        if ready:
            number = draw(st.sampled_from(ready))
            case.meetings[number - 1].registered = True
            case.add(draw, "RegistrationCompleted", {"meeting": number})
    elif action == "follow_up" and case.meetings:
        on = case.meetings[-1].held_on + timedelta(days=draw(st.integers(0, 120)))
        case.add(draw, "FollowUpScheduled", {"on": on.isoformat()})
    elif action == "bottleneck":
        theme = draw(st.sampled_from(["wachtlijst", "vervoer", "aanbod"]))
        case.add(draw, "BottleneckReported", {"theme": theme, "description": draw(text)})
    elif action == "close":
        case.add(draw, "CaseClosed", {"reason": draw(text)})
        case.ended = True
    elif action == "decline" and not case.meetings:
        case.add(draw, "RequestDeclined", {"reason": draw(text)})
        case.ended = True


def _birth_date(draw: st.DrawFn, case: _Case) -> date | None:
    day = case.requested_on
    if "parent_only" in case.quirks and case.programme == "integrale_jeugdhulp":
        youngest, oldest = 18, 25  # an adult: v2 no longer takes a parent's word for it
    elif case.programme == "integrale_jeugdhulp":
        youngest, oldest = 0, 25
        if draw(st.booleans()):
            return None
    else:
        youngest, oldest = 0, 95
        if draw(st.booleans()):
            return None
    latest = _years_before(day, youngest)
    earliest = _years_before(day, oldest + 1) + timedelta(days=1)
    return draw(st.dates(earliest, latest))


def _years_before(day: date, years: int) -> date:
    if (day.month, day.day) == (2, 29):
        day -= timedelta(days=1)
    return day.replace(year=day.year - years)


def _opening(draw: st.DrawFn, case: _Case) -> None:
    """How the case gets going: as most do, or as the case's quirks of v1 allow. Every quirk
    is recorded here, so that a case with quirks is sure to break a v2 rule."""
    youth, parent = (case.youth, "youth"), (case.parent, "parent")
    if "two_roles" in case.quirks:
        second = (case.parent, "trusted_person")  # v1: a party is its ref and role
        case.pairs.append(second)
        case.ensure(draw, parent)
        case.ensure(draw, second)
    if "parent_only" in case.quirks:
        case.ensure(draw, parent)
        _appoint(draw, case)
        _meeting(draw, case)
    elif "youth_withdrew" in case.quirks:
        case.ensure(draw, youth)
        case.ensure(draw, parent)
        case.consent(draw, youth)  # withdrawn, while the parent still consents
        _appoint(draw, case)
        _meeting(draw, case)
    elif case.quirks or draw(st.integers(0, 3)):  # most cases get going
        case.ensure(draw, youth)
        _appoint(draw, case)
    if "chair_party" in case.quirks and case.chair is not None:
        # v1 checks the chair's neutrality at appointment only.
        case.pairs.append((case.chair, "support_figure"))
        case.consent(draw, (case.chair, "support_figure"))
        case.named.add(case.chair)
    if case.quirks & {"chair_present", "held_ahead"}:
        _meeting(draw, case)
    assert not case.quirks & {"at_back", "held_ahead", "chair_present"}, "a quirk was not recorded"


@st.composite
def v1_case_streams(draw: st.DrawFn, quirky: bool = False) -> list[dict[str, Any]]:
    """The lines of one v1 case, requested before 2026; ``quirky``: with at least one line
    that the v2 rule set would refuse."""
    case_id = str(uuid.UUID(int=draw(st.integers(1, 2**122)), version=4))
    chosen = draw(st.sets(st.sampled_from(QUIRKS), min_size=1 if quirky else 0, max_size=3))
    programme = draw(st.sampled_from(PROGRAMMES))
    case = _Case(id=case_id, programme=programme, quirks=set(chosen))
    offset = draw(st.sampled_from(OFFSETS))
    requested_at = draw(
        st.datetimes(
            datetime(2014, 1, 1), LAST_REQUEST.replace(tzinfo=None), timezones=st.just(UTC)
        )
    )
    # v1 reads the request date as written in `at`.
    case.requested_on = requested_at.astimezone(offset).date()
    short = case_id[:6]
    case.youth, case.parent = f"jongere-{short}", f"ouder-{short}"
    trusted = f"vertrouwenspersoon-{short}"
    case.pairs = [(case.youth, "youth"), (case.parent, "parent"), (trusted, "trusted_person")]
    requester = draw(st.sampled_from([*case.pairs, (f"hv-aanvrager-{short}", "professional")]))
    case.named = {case.youth, case.parent, trusted, requester[0]}
    birth = _birth_date(draw, case)
    case.at = requested_at
    case.lines.append(
        {
            "case": case_id,
            "seq": 1,
            "type": "Requested",
            "at": requested_at.astimezone(offset).isoformat(),
            "by": "team-1",
            "data": {
                "programme": programme,
                "region": draw(st.sampled_from(REGIONS)),
                "requested_by": {"ref": requester[0], "role": requester[1]},
                "channel": draw(st.sampled_from(CHANNELS)),
                "client": {
                    "ref": case.youth,
                    "birth_date": None if birth is None else birth.isoformat(),
                },
                "question": draw(text),
            },
        }
    )
    _opening(draw, case)
    for action in draw(st.lists(st.sampled_from(ACTIONS), max_size=16)):
        _step(draw, case, action)
    _step(draw, case, draw(st.sampled_from(["open", "open", "close", "decline"])))
    return case.lines


@st.composite
def v1_streams(draw: st.DrawFn, max_cases: int = 4, quirky: bool = True) -> list[dict[str, Any]]:
    """Several v1 cases, their lines interleaved (each case's lines in order); ``quirky``:
    the first case records at least one line the v2 rule set would refuse."""
    first = draw(v1_case_streams(quirky=quirky))
    others = draw(st.lists(v1_case_streams(), max_size=max_cases - 1))
    cases: dict[str, list[dict[str, Any]]] = {}
    for lines in [first, *others]:  # a case drawn with the id of one before it is left out
        cases.setdefault(lines[0]["case"], lines)
    rng = draw(st.randoms(use_true_random=False))
    queues = [list(lines) for lines in cases.values()]
    stream: list[dict[str, Any]] = []
    while queues:
        queue = rng.choice(queues)
        stream.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return stream
