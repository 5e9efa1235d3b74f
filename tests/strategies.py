"""Hypothesis strategies: valid v1 streams, built case by case from the contract's rules."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

OFFSETS = [timezone(timedelta(hours=h)) for h in (0, 1, 2, -5)] + [UTC]
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
CHAIRS = ["vz-1", "vz-2", "vz-3"]  # never a party or a professional: always neutral
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
    "follow_up",
    "bottleneck",
]

# Free text as people type it, in any script (no lone surrogates, not valid UTF-8; no NUL,
# which the contract refuses).
text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20)


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
    """A case being generated, and what the rules need to know of it."""

    id: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    at: datetime = datetime(2015, 1, 1, tzinfo=UTC)
    requested_on: date = date(2015, 1, 1)
    parties: dict[str, str] = field(default_factory=dict)  # ref -> role
    consents: set[tuple[str, str]] = field(default_factory=set)
    chair: str | None = None
    meetings: list[_Meeting] = field(default_factory=list)
    ended: bool = False

    def add(self, draw: st.DrawFn, kind: str, data: dict[str, Any]) -> None:
        self.at += draw(st.timedeltas(timedelta(minutes=1), timedelta(days=40)))
        offset = draw(st.sampled_from(OFFSETS))
        by = self.chair if kind in ("MeetingHeld", "WorkplanAgreed") and self.chair else "team-1"
        self.lines.append(
            {
                "case": self.id,
                "seq": len(self.lines) + 1,
                "type": kind,
                "at": self.at.astimezone(offset).isoformat(),
                "by": by,
                "data": data,
            }
        )


def _party(case: _Case, ref: str) -> dict[str, str]:
    return {"ref": ref, "role": case.parties[ref]}


def _step(draw: st.DrawFn, case: _Case, action: str) -> None:
    if action == "decline" and not case.meetings:
        case.add(draw, "RequestDeclined", {"reason": draw(text)})
        case.ended = True
    elif action == "close":
        case.add(draw, "CaseClosed", {"reason": draw(text)})
        case.ended = True
    elif action == "consent":
        ref = draw(st.sampled_from(sorted(case.parties)))
        key = (ref, case.parties[ref])
        if key in case.consents:
            reason = draw(st.none() | text)
            case.add(draw, "ConsentWithdrawn", {"party": _party(case, ref), "reason": reason})
            case.consents.discard(key)
        else:
            case.add(draw, "ConsentGiven", {"party": _party(case, ref)})
            case.consents.add(key)
    elif action == "chair":
        case.chair = draw(st.sampled_from(CHAIRS))
        case.add(draw, "ChairAppointed", {"chair": case.chair})
    elif action == "meeting":
        consented = any(role in ("youth", "parent") for _, role in case.consents)
        if case.chair is None or not consented:
            return
        last = case.meetings[-1].held_on if case.meetings else case.requested_on
        meeting = _Meeting(
            held_on=last + timedelta(days=draw(st.integers(0, 200))),
            youth=draw(st.none() | st.booleans()),
            parents=draw(st.none() | st.booleans()),
            professionals=draw(st.lists(st.sampled_from(PROFESSIONALS), unique=True, max_size=3)),
        )
        case.meetings.append(meeting)
        case.add(
            draw,
            "MeetingHeld",
            {
                "meeting": len(case.meetings),
                "held_on": meeting.held_on.isoformat(),
                "place": draw(text),
                "attendance": {
                    "youth": meeting.youth,
                    "parents": meeting.parents,
                    "trusted_person": draw(st.none() | st.booleans()),
                    "professionals": meeting.professionals,
                },
            },
        )
    elif action == "workplan":
        open_ = [n for n, m in enumerate(case.meetings, 1) if not (m.workplan or m.registered)]
        if not open_:
            return
        number = draw(st.sampled_from(open_))
        meeting = case.meetings[number - 1]
        meeting.workplan = True
        who = st.sampled_from([*PROFESSIONALS, *sorted(case.parties)])
        agreement = st.fixed_dictionaries(
            {
                "who": who,
                "what": text,
                "due": st.none() | st.dates(date(2014, 1, 1), date(2018, 1, 1)).map(str),
                "domain": st.none() | st.sampled_from(["gezin", "onderwijs", "vrije tijd"]),
            }
        )
        coordinators = st.none()
        if meeting.professionals:
            coordinators |= st.sampled_from(meeting.professionals)
        case.add(
            draw,
            "WorkplanAgreed",
            {
                "meeting": number,
                "agreements": draw(st.lists(agreement, min_size=1, max_size=3)),
                "coordinator": draw(coordinators),
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
        theme = draw(st.sampled_from(["wachtlijst", "vervoer", "aanbod", "samenwerking"]))
        case.add(draw, "BottleneckReported", {"theme": theme, "description": draw(text)})


@st.composite
def case_streams(draw: st.DrawFn, case_id: str | None = None) -> list[dict[str, Any]]:
    """The lines of one case that obeys every rule of the contract."""
    case = _Case(id=case_id or str(uuid.UUID(int=draw(st.integers(1, 2**122)))))
    case.at = draw(
        st.datetimes(datetime(2014, 1, 1), datetime(2016, 12, 31), timezones=st.just(UTC))
    )
    case.requested_on = case.at.date()
    programme = draw(st.sampled_from(PROGRAMMES))
    youth, parent = f"jongere-{case.id[:4]}", f"ouder-{case.id[:4]}"
    trusted = f"vertrouwenspersoon-{case.id[:4]}"
    case.parties = {youth: "youth", parent: "parent", trusted: "trusted_person"}
    day = case.requested_on
    oldest = date(day.year - 25, day.month, 28 if (day.month, day.day) == (2, 29) else day.day)
    oldest += timedelta(days=1)
    birth = draw(st.none() | st.dates(oldest, case.requested_on))
    requester = draw(st.sampled_from([youth, parent, trusted]))
    case.at -= timedelta(minutes=1)  # the request is recorded at the drawn instant
    case.add(
        draw,
        "Requested",
        {
            "programme": programme,
            "region": draw(st.sampled_from(REGIONS)),
            "requested_by": _party(case, requester),
            "channel": draw(st.sampled_from(CHANNELS)),
            "client": {"ref": youth, "birth_date": None if birth is None else birth.isoformat()},
            "question": draw(text),
        },
    )
    case.requested_on = datetime.fromisoformat(case.lines[0]["at"]).date()
    if draw(st.integers(0, 3)):  # most cases get going: the young person consents, a chair
        case.add(draw, "ConsentGiven", {"party": _party(case, youth)})
        case.consents.add((youth, "youth"))
        _step(draw, case, "chair")
    for action in draw(st.lists(st.sampled_from(ACTIONS), max_size=20)):
        _step(draw, case, action)
    _step(draw, case, draw(st.sampled_from(["open", "open", "close", "decline"])))
    return case.lines


@st.composite
def valid_streams(draw: st.DrawFn, max_cases: int = 4) -> list[dict[str, Any]]:
    """Several valid cases, their lines interleaved (each case's lines stay in order)."""
    cases = draw(
        st.lists(case_streams(), min_size=1, max_size=max_cases, unique_by=lambda c: c[0]["case"])
    )
    rng = draw(st.randoms(use_true_random=False))
    queues = [list(lines) for lines in cases]
    stream: list[dict[str, Any]] = []
    while queues:
        queue = rng.choice(queues)
        stream.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return stream


def with_fresh_ids(stream: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same stream with new case ids, so that examples can share one store."""
    fresh: dict[str, str] = {}
    return [{**line, "case": fresh.setdefault(line["case"], str(uuid.uuid4()))} for line in stream]
