"""A v1 stream whose integrale jeugdhulp meetings of 2015 are those of the published 2015 report.

The plan of every case (programme, region, its meetings with their attendance, workplan,
coordinator and registration, and what else happens in it) is drawn once from a seeded
``random.Random``; the stream is rendered from that plan, and every expected figure is counted
from the plan, never from overleg. Around the report's meetings the stream holds what the
report's rules must ignore: the local programme, 2014 and 2016, unfinished registrations (some
with a workplan), declined requests, withdrawn and given-again consents, replaced chairs,
follow-ups, bottlenecks and closed cases. Every line obeys the contract's rules.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from itertools import groupby
from typing import Any

IJH = "integrale_jeugdhulp"
LCO = "lokaal_clientoverleg"
SEED = 2015_0612

# The spec's reference table, as printed.
_TABLE = """
Antwerpen        119  31.4  58  82  68  68
Brussel            4   1.1   1   3   3   3
Limburg           37   9.8   9  14  11  11
Oost-Vlaanderen   87  23.0  12  51  33  33
Vlaams-Brabant    54  14.2  11  27  23  23
West-Vlaanderen   78  20.6  17  62  72  65
"""
OUTCOMES = ("youth_present", "parents_present", "workplans", "coordinators")
REPORT: dict[str, dict[str, Any]] = {
    name: {"meetings": int(m), "pct": float(p), **dict(zip(OUTCOMES, map(int, rest), strict=True))}
    for name, m, p, *rest in (row.split() for row in _TABLE.strip().splitlines())
}
REGIONS = tuple(REPORT)
TOTALS = {"youth_present": 108, "parents_present": 239, "workplans": 210, "coordinators": 203}
SHARES = {"youth_present": 32.1, "parents_present": 71.1, "workplans": 62.5, "coordinators": 60.4}
MEETINGS_2015 = 379
FULLY_REGISTERED_2015 = 336
COORDINATORS_OF_WORKPLANS = 96.7
HELD_2014 = 252

# Fully registered meetings per region: not in the report, chosen here (at least the largest
# attendance or outcome count of the region, at most its meetings, 336 in all).
REGISTERED_2015 = {
    "Antwerpen": 108,
    "Brussel": 4,
    "Limburg": 31,
    "Oost-Vlaanderen": 72,
    "Vlaams-Brabant": 46,
    "West-Vlaanderen": 75,
}

THEMES = ("wachtlijst residentiële zorg", "vervoer naar school", "aanbod kinderpsychiatrie")
_CODES = {r: r[:3].lower() for r in REGIONS}
_NAMESPACE = uuid.UUID("0d6e2f1c-5b1a-4c55-8f0e-2015a1b2c3d4")


@dataclass(frozen=True)
class Meeting:
    """A planned meeting: when, who was there, and how far its registration got."""

    held_on: date
    youth: bool | None
    parents: bool | None
    workplan: bool = False
    coordinator: bool = False
    registered: bool = False


@dataclass
class Plan:
    """Everything one case goes through."""

    case: str
    programme: str
    region: str
    requested_on: date
    meetings: list[Meeting] = field(default_factory=list)
    consent: str = "youth"
    chair_replaced: bool = False
    follow_up: bool = False
    bottlenecks: list[tuple[str, date]] = field(default_factory=list)
    ending: str | None = None  # "declined" or "closed"


@dataclass(frozen=True)
class Held:
    """One held meeting as the plan has it (the ledger the figures are counted from)."""

    case: str
    number: int
    programme: str
    region: str
    meeting: Meeting


def _flags_2015(region: str, rng: random.Random) -> list[Meeting]:
    """The report's meetings of one region, without dates: exact counts, drawn at random."""
    report, registered = REPORT[region], REGISTERED_2015[region]
    slots = range(registered)
    youth = set(rng.sample(slots, report["youth_present"]))
    parents = set(rng.sample(slots, report["parents_present"]))
    workplans = rng.sample(slots, report["workplans"])
    coordinators = set(rng.sample(workplans, report["coordinators"]))
    flags = [
        Meeting(date.min, i in youth, i in parents, i in workplans, i in coordinators, True)
        for i in slots
    ]
    # The rest is not fully registered: attendance unknown, or simply not completed, some
    # with a workplan (and a coordinator) that must not count.
    unfinished = [
        Meeting(date.min, None, False),
        Meeting(date.min, True, None, True, True),
        Meeting(date.min, False, True, True, False),
        Meeting(date.min, None, None),
        Meeting(date.min, True, True, True, True),
    ]
    flags += [unfinished[k % len(unfinished)] for k in range(report["meetings"] - registered)]
    rng.shuffle(flags)
    return flags


def _loose(rng: random.Random, day: date) -> Meeting:
    """A meeting outside the report: any attendance, registered now and then."""
    youth = rng.choices([True, False, None], [5, 4, 1])[0]
    parents = rng.choices([True, False, None], [6, 3, 1])[0]
    workplan = rng.random() < 0.6
    known = youth is not None and parents is not None
    return Meeting(
        day,
        youth,
        parents,
        workplan,
        workplan and rng.random() < 0.85,
        known and rng.random() < 0.8,
    )


def _days(rng: random.Random, years: tuple[int, ...]) -> list[date]:
    """Increasing meeting days, one per year given (the years in order)."""
    days: list[date] = []
    for year, group in groupby(years):
        length = (date(year + 1, 1, 1) - date(year, 1, 1)).days
        offsets = sorted(rng.sample(range(length), len(list(group))))
        days += [date(year, 1, 1) + timedelta(days=o) for o in offsets]
    return days


class _Planner:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.plans: list[Plan] = []

    def case(
        self, programme: str, region: str, meetings: list[Meeting], requested_on: date | None = None
    ) -> Plan:
        rng = self.rng
        first = meetings[0].held_on if meetings else requested_on
        assert first is not None
        plan = Plan(
            case=str(uuid.uuid5(_NAMESPACE, f"case-{len(self.plans)}")),
            programme=programme,
            region=region,
            requested_on=first - timedelta(days=rng.randint(3, 60) if meetings else 0),
            meetings=meetings,
            consent=rng.choices(
                ["youth", "parent", "both", "regiven", "handover", "lapsed"], [4, 4, 3, 2, 2, 1]
            )[0],
            chair_replaced=rng.random() < 0.15,
            follow_up=bool(meetings) and rng.random() < 0.3,
        )
        if rng.random() < 0.12:
            after = meetings[-1].held_on + timedelta(days=40) if meetings else first
            start = rng.randint(5, 200) if meetings else rng.randint(5, 30)
            plan.bottlenecks = [
                (rng.choice(THEMES), after + timedelta(days=start + 3 * k))
                for k in range(rng.choice([1, 1, 2]))
            ]
        if rng.random() < 0.35:
            plan.ending = "closed"
        self.plans.append(plan)
        return plan

    def with_years(
        self, programme: str, region: str, years: tuple[int, ...], flags: list[Meeting]
    ) -> None:
        """A case with a meeting in each of ``years``; 2015 ones take ``flags`` in order."""
        days = _days(self.rng, years)
        self.dated(programme, region, days, flags)

    def dated(self, programme: str, region: str, days: list[date], flags: list[Meeting]) -> None:
        own = iter(flags)
        meetings = [
            replace(next(own), held_on=day)
            if day.year == 2015 and programme == IJH
            else _loose(self.rng, day)
            for day in days
        ]
        self.case(programme, region, meetings)


# Case shapes around the report's meetings: the year of each meeting, meeting 1 first.
_SHAPES = {
    (2015,): 16,
    (2015, 2015): 2,
    (2015, 2015, 2015): 1,
    (2014, 2015): 3,
    (2014, 2014, 2015): 1,
    (2015, 2016): 3,
    (2014, 2015, 2016): 1,
}


def _report_cases(planner: _Planner, region: str) -> None:
    rng = planner.rng
    flags = _flags_2015(region, rng)
    if len(flags) >= 10:  # meetings on either side of new year's eve
        planner.dated(IJH, region, [date(2014, 12, 31), date(2015, 1, 1)], [flags.pop()])
        planner.dated(IJH, region, [date(2015, 12, 31), date(2016, 1, 1)], [flags.pop()])
    while flags:
        years = rng.choices(list(_SHAPES), list(_SHAPES.values()))[0]
        wanted = years.count(2015)
        if wanted > len(flags):
            years = (2015,)
            wanted = 1
        taken, flags = flags[:wanted], flags[wanted:]
        planner.with_years(IJH, region, years, taken)


def _noise(planner: _Planner) -> None:
    rng = planner.rng

    def region() -> str:
        return rng.choice(REGIONS)

    while (left := HELD_2014 - _count(planner.plans, IJH, 2014)) > 0:
        shapes = [(2014,), (2014, 2016)] + ([(2014, 2014)] if left >= 2 else [])
        planner.with_years(IJH, region(), rng.choice(shapes), [])
    for _ in range(45):
        planner.with_years(IJH, region(), rng.choice([(2016,), (2016,), (2016, 2016)]), [])
    lco = [(2015,), (2015,), (2015, 2015), (2014,), (2014, 2015), (2015, 2016), (2016,)]
    for _ in range(48):
        planner.with_years(LCO, region(), rng.choice(lco), [])
    for k in range(30):  # requests that never reach a meeting
        day = date(2014 + k % 3, 1, 1) + timedelta(days=rng.randrange(360))
        plan = planner.case(rng.choice([IJH, IJH, LCO]), region(), [], requested_on=day)
        plan.ending = "declined" if k % 3 else rng.choice(["closed", None])


def _count(plans: list[Plan], programme: str, year: int) -> int:
    return sum(
        1 for h in held(plans) if h.programme == programme and h.meeting.held_on.year == year
    )


def held(plans: list[Plan]) -> Iterator[Held]:
    """Every planned meeting, with its case and number."""
    for plan in plans:
        for number, meeting in enumerate(plan.meetings, start=1):
            yield Held(plan.case, number, plan.programme, plan.region, meeting)


def plan_cases(seed: int = SEED) -> list[Plan]:
    """The plan of every case of the stream."""
    planner = _Planner(random.Random(seed))
    for region in REGIONS:
        _report_cases(planner, region)
    _noise(planner)
    return planner.plans


PLANS = plan_cases()
LEDGER = list(held(PLANS))


# -- rendering ----------------------------------------------------------------------------

_WINTER, _SUMMER = timezone(timedelta(hours=1)), timezone(timedelta(hours=2))


def _local(day: date, hour: int, minute: int = 0) -> datetime:
    """A time in Belgium on ``day`` (summer time roughly April to October)."""
    zone = _SUMMER if 4 <= day.month <= 10 else _WINTER
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


class _Case:
    """Writes one case's lines, each recorded after the one before."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.case)
        code = _CODES[plan.region]
        number = plan.case[:8]
        self.youth = {"ref": f"jo-{number}", "role": "youth"}
        self.parent = {"ref": f"ou-{number}", "role": "parent"}
        self.team = self.rng.sample([f"hv-{code}-{k:02d}" for k in range(40)], 4)
        chairs = self.rng.sample([f"vz-{code}-{k}" for k in range(9)], 2)
        self.chair, self.next_chair = chairs
        self.office = f"continuiteit-{code}"
        self.lines: list[dict[str, Any]] = []
        self.at: datetime | None = None

    def add(self, kind: str, data: dict[str, Any], by: str, when: datetime | None = None) -> None:
        assert self.at is not None or when is not None
        if self.at is not None and (when is None or when <= self.at):
            when = self.at + timedelta(minutes=self.rng.randint(5, 90))
        assert when is not None
        self.at = when
        self.lines.append(
            {
                "case": self.plan.case,
                "seq": len(self.lines) + 1,
                "type": kind,
                "at": when.isoformat(),
                "by": by,
                "data": data,
            }
        )

    def consent(self, party: dict[str, str], give: bool = True) -> None:
        if give:
            self.add("ConsentGiven", {"party": dict(party)}, self.office)
        else:
            reason = self.rng.choice([None, "Wil eerst zelf met de school praten"])
            self.add("ConsentWithdrawn", {"party": dict(party), "reason": reason}, self.office)

    def render(self) -> list[dict[str, Any]]:
        plan, rng = self.plan, self.rng
        self.request()
        story = plan.consent
        if story in ("youth", "both", "handover"):
            self.consent(self.youth)
        if story in ("parent", "both", "regiven", "lapsed"):
            self.consent(self.parent)
        if story == "regiven":
            self.consent(self.parent, give=False)
            self.consent(self.parent)
        if story == "lapsed" or rng.random() < 0.1:
            self.consent(
                {
                    "ref": f"vp-{plan.case[:8]}",
                    "role": rng.choice(["trusted_person", "support_figure"]),
                }
            )
        if plan.ending != "declined" and (plan.meetings or rng.random() < 0.5):
            self.appoint(self.chair, plan.chair_replaced and len(plan.meetings) < 2)
        for number, meeting in enumerate(plan.meetings, start=1):
            self.meeting(number, meeting)
            following = plan.meetings[number] if number < len(plan.meetings) else None
            if plan.follow_up:
                on = following.held_on if following else meeting.held_on + timedelta(days=45)
                self.add("FollowUpScheduled", {"on": on.isoformat()}, self.chair)
            if number == 1 and story == "handover":
                self.consent(self.parent)
                self.consent(self.youth, give=False)
            if number == 1 and following and plan.chair_replaced:
                self.appoint(self.next_chair, False)
        if story == "lapsed" and plan.meetings:
            self.consent(self.parent, give=False)
        for theme, day in plan.bottlenecks:
            self.add(
                "BottleneckReported",
                {"theme": theme, "description": "Geen plaats binnen redelijke termijn"},
                self.office,
                _local(day, 11, rng.randint(0, 59)),
            )
            assert self.at is not None and self.at.date() == day
        if plan.ending == "declined":
            self.add("RequestDeclined", {"reason": "Geen nood aan overleg"}, self.office)
        elif plan.ending == "closed":
            self.add("CaseClosed", {"reason": "Hulp loopt zoals afgesproken"}, self.chair)
        return self.lines

    def request(self) -> None:
        plan, rng = self.plan, self.rng
        day = plan.requested_on
        age = rng.randint(2, 23) if plan.programme == IJH else rng.randint(2, 80)
        born = date(day.year - age - 1, rng.randint(1, 12), rng.randint(1, 28))
        requester = rng.choice(
            [self.parent, self.youth, {"ref": self.team[0], "role": "professional"}]
        )
        self.add(
            "Requested",
            {
                "programme": plan.programme,
                "region": plan.region,
                "requested_by": dict(requester),
                "channel": rng.choice(["aanvraagformulier", "cobe", "email", "telefoon", "andere"]),
                "client": {
                    "ref": self.youth["ref"],
                    "birth_date": None if rng.random() < 0.1 else born.isoformat(),
                },
                "question": "Afstemming tussen school, thuisbegeleiding en psychiatrie",
            },
            self.office,
            _local(day, 9, rng.randint(0, 59)),
        )

    def appoint(self, chair: str, replaced: bool) -> None:
        if replaced:
            self.add("ChairAppointed", {"chair": self.next_chair}, self.office)
        self.add("ChairAppointed", {"chair": chair}, self.office)
        self.chair = chair

    def meeting(self, number: int, meeting: Meeting) -> None:
        rng, day = self.rng, meeting.held_on
        present = rng.sample(self.team, rng.randint(1, len(self.team)))
        attendance = {
            "youth": meeting.youth,
            "parents": meeting.parents,
            "trusted_person": rng.choice([True, False, None]),
            "professionals": present,
        }
        place = rng.choice(["Gemeentehuis", "School", "Thuis", "Dienst"])
        data = {"meeting": number, "held_on": day.isoformat(), "place": place}
        self.add("MeetingHeld", {**data, "attendance": attendance}, self.chair, _local(day, 17))
        if meeting.workplan:
            agreements = [
                {
                    "who": rng.choice([*present, self.youth["ref"]]),
                    "what": what,
                    "due": rng.choice([None, (day + timedelta(days=60)).isoformat()]),
                    "domain": rng.choice([None, "onderwijs", "gezin", "vrije tijd"]),
                }
                for what in rng.sample(["Huisbezoek", "Schoolgesprek", "Aanmelding"], 2)
            ]
            workplan = {
                "meeting": number,
                "agreements": agreements,
                "coordinator": rng.choice(present) if meeting.coordinator else None,
                "crisis_plan": rng.random() < 0.1,
            }
            self.add("WorkplanAgreed", workplan, self.chair, _local(day, 19, 30))
        if meeting.registered:
            later = day + timedelta(days=rng.randint(0, 20))
            self.add("RegistrationCompleted", {"meeting": number}, self.chair, _local(later, 22))


def reference_stream() -> list[dict[str, Any]]:
    """Every line of every case, in the order they were recorded (a case's own in seq order)."""
    lines = [line for plan in PLANS for line in _Case(plan).render()]
    lines.sort(key=lambda line: datetime.fromisoformat(line["at"]))
    return lines


# -- the figures, counted from the plan ----------------------------------------------------


def share(part: int, whole: int) -> float:
    """A percentage, half up to one decimal, in integers."""
    return 0.0 if whole == 0 else (part * 2000 + whole) // (2 * whole) / 10


def _meets(h: Held, outcome: str) -> bool:
    m = h.meeting
    return bool(
        {
            "youth_present": m.youth,
            "parents_present": m.parents,
            "workplans": m.workplan,
            "coordinators": m.coordinator,
        }[outcome]
    )


def figures(year: int, programme: str | None) -> dict[str, Any]:
    """The contract's statistics of ``year`` as the plan makes them."""
    scope = [
        h for h in LEDGER if programme in (None, h.programme) and h.meeting.held_on.year == year
    ]
    done = [h for h in scope if h.meeting.registered]
    per_region = Counter(h.region for h in scope)
    registered: dict[str, Any] = {"total": len(done)}
    for outcome in OUTCOMES:
        hits = Counter(h.region for h in done if _meets(h, outcome))
        count = sum(hits.values())
        registered[outcome] = {"total": count, "pct": share(count, len(done))}
        registered[outcome]["by_region"] = {r: hits[r] for r in REGIONS}
    registered["coordinators"]["pct_of_workplans"] = share(
        registered["coordinators"]["total"], registered["workplans"]["total"]
    )
    return {
        "year": year,
        "programme": programme,
        "meetings": {
            "total": len(scope),
            "first": sum(1 for h in scope if h.number == 1),
            "follow_up": sum(1 for h in scope if h.number > 1),
            "previous_year_total": sum(
                1
                for h in LEDGER
                if programme in (None, h.programme) and h.meeting.held_on.year == year - 1
            ),
            "by_region": {
                r: {"count": per_region[r], "pct": share(per_region[r], len(scope))}
                for r in REGIONS
            },
        },
        "fully_registered": registered,
    }


def _first_meetings_2015() -> tuple[int, int]:
    numbers = [h.number for h in LEDGER if h.programme == IJH and h.meeting.held_on.year == 2015]
    return sum(1 for n in numbers if n == 1), sum(1 for n in numbers if n > 1)


_FIRST, _FOLLOW_UP = _first_meetings_2015()

EXPECTED_2015: dict[str, Any] = {
    "year": 2015,
    "programme": IJH,
    "meetings": {
        "total": MEETINGS_2015,
        "first": _FIRST,
        "follow_up": _FOLLOW_UP,
        "previous_year_total": HELD_2014,
        "by_region": {
            r: {"count": REPORT[r]["meetings"], "pct": REPORT[r]["pct"]} for r in REGIONS
        },
    },
    "fully_registered": {
        "total": FULLY_REGISTERED_2015,
        **{
            outcome: {
                "total": TOTALS[outcome],
                "pct": SHARES[outcome],
                **(
                    {"pct_of_workplans": COORDINATORS_OF_WORKPLANS}
                    if outcome == "coordinators"
                    else {}
                ),
                "by_region": {r: REPORT[r][outcome] for r in REGIONS},
            }
            for outcome in OUTCOMES
        },
    },
}


def bottlenecks(year: int, programme: str | None = None) -> Counter[tuple[str, str]]:
    """How many bottlenecks the plan reports in ``year``, per (theme, region)."""
    return Counter(
        (theme, plan.region)
        for plan in PLANS
        if programme in (None, plan.programme)
        for theme, day in plan.bottlenecks
        if day.year == year
    )
