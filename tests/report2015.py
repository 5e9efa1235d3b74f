"""A synthetic stream that encodes the situations behind the 2015 report, and its own ledger.

Every meeting the generator writes is also noted in a ledger (programme, region, year,
number, attendance, workplan, coordinator, registration), so the tests can count any figure
by hand, independently of overleg. For integrale jeugdhulp in 2015 the counts are those of
the published report (event-stream-v1.md, "Reference figures"). Around them: meetings of
2014 and 2016, the local programme, unfinished registrations (some with a workplan that must
not count), declined requests, withdrawn and given-again consents, replaced chairs, follow-ups,
bottlenecks and closed cases. Every line obeys the contract's rules.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

IJH, LCO = "integrale_jeugdhulp", "lokaal_clientoverleg"
REGIONS = [
    "Antwerpen",
    "Brussel",
    "Limburg",
    "Oost-Vlaanderen",
    "Vlaams-Brabant",
    "West-Vlaanderen",
]
# region: meetings, youth, parents, workplans, coordinators (the report), fully registered
# (chosen here: at least the largest attendance or outcome count, 336 in all).
REPORT_2015 = {
    "Antwerpen": (119, 58, 82, 68, 68, 110),
    "Brussel": (4, 1, 3, 3, 3, 4),
    "Limburg": (37, 9, 14, 11, 11, 30),
    "Oost-Vlaanderen": (87, 12, 51, 33, 33, 70),
    "Vlaams-Brabant": (54, 11, 27, 23, 23, 47),
    "West-Vlaanderen": (78, 17, 62, 72, 65, 75),
}
MEETINGS_2014 = 252
CET = timezone(timedelta(hours=1))
NAMESPACE = uuid.UUID("6f1c2a9e-3d5b-4c8e-9a7f-0b1d2e3f4a5b")


@dataclass(frozen=True)
class Slot:
    """One meeting as the ledger has it."""

    programme: str
    region: str
    held_on: date
    number: int
    youth: bool | None
    parents: bool | None
    workplan: bool
    coordinator: bool
    registered: bool


@dataclass
class Report:
    """The stream and the ledger of what it holds."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    meetings: list[Slot] = field(default_factory=list)
    bottlenecks: list[tuple[str, str, str, int]] = field(default_factory=list)
    # programme, region, theme, year


def _slots_2015(region: str) -> list[dict[str, Any]]:
    """The report's meetings of one region: flags spread so that every count is exact."""
    meetings, youth, parents, workplans, coordinators, registered = REPORT_2015[region]
    slots = []
    for i in range(meetings):
        if i < registered:
            slots.append(
                {
                    "youth": i < youth,
                    "parents": (i + youth) % registered < parents,
                    "workplan": i < workplans,
                    "coordinator": i < coordinators,
                    "registered": True,
                }
            )
        else:  # an unfinished registration; some have a workplan that must not count
            slots.append(
                {
                    "youth": None if i % 2 else True,
                    "parents": False,
                    "workplan": i % 3 == 0,
                    "coordinator": i % 3 == 0,
                    "registered": False,
                }
            )
    return slots


class _Writer:
    def __init__(self, report: Report, rng: random.Random) -> None:
        self.report, self.rng, self.count = report, rng, 0

    def case(
        self,
        programme: str,
        region: str,
        meetings: list[tuple[date, dict[str, Any]]],
        *,
        decline: bool = False,
    ) -> None:
        """One case: request, consents, chair, its meetings in order, and what follows."""
        self.count += 1
        n, rng = self.count, self.rng
        case = str(uuid.uuid5(NAMESPACE, f"case-{n}"))
        youth, parent, chair = f"jongere-{n}", f"ouder-{n}", f"voorzitter-{region.lower()}-{n % 5}"
        professionals = [f"hulpverlener-{n}-{k}" for k in range(1, 4)]
        first = meetings[0][0] if meetings else date(2015, 3, 1)
        at = datetime(first.year, first.month, first.day, 10, tzinfo=CET) - timedelta(days=30)
        seq = 0

        def add(kind: str, data: dict[str, Any], by: str) -> None:
            nonlocal seq, at
            seq += 1
            at += timedelta(hours=1)
            self.report.lines.append(
                {
                    "case": case,
                    "seq": seq,
                    "type": kind,
                    "at": at.isoformat(),
                    "by": by,
                    "data": data,
                }
            )

        team = f"team-{region.lower()}"
        birth = date(first.year - rng.randint(6, 24), rng.randint(1, 12), rng.randint(1, 28))
        add(
            "Requested",
            {
                "programme": programme,
                "region": region,
                "requested_by": {"ref": parent, "role": "parent"},
                "channel": rng.choice(["aanvraagformulier", "cobe", "email", "telefoon"]),
                "client": {"ref": youth, "birth_date": birth.isoformat()},
                "question": "Hulp afstemmen tussen thuis, school en begeleiding",
            },
            team,
        )
        if decline:
            add("RequestDeclined", {"reason": "Er is al een afgestemd hulpverleningsplan"}, team)
            return
        add("ConsentGiven", {"party": {"ref": youth, "role": "youth"}}, team)
        if n % 4 == 0:  # a parent consents, withdraws, and (sometimes) consents again
            add("ConsentGiven", {"party": {"ref": parent, "role": "parent"}}, team)
            add(
                "ConsentWithdrawn",
                {"party": {"ref": parent, "role": "parent"}, "reason": None},
                team,
            )
            if n % 8 == 0:
                add("ConsentGiven", {"party": {"ref": parent, "role": "parent"}}, team)
        if n % 6 == 0:  # the first chair is replaced
            add("ChairAppointed", {"chair": f"voorzitter-{region.lower()}-x{n}"}, team)
        add("ChairAppointed", {"chair": chair}, team)
        for number, (held_on, flags) in enumerate(meetings, start=1):
            at = max(at, datetime(held_on.year, held_on.month, held_on.day, 9, tzinfo=CET))
            present = professionals[: 1 + number % 3]
            add(
                "MeetingHeld",
                {
                    "meeting": number,
                    "held_on": held_on.isoformat(),
                    "place": "Overlegruimte",
                    "attendance": {
                        "youth": flags["youth"],
                        "parents": flags["parents"],
                        "trusted_person": None,
                        "professionals": present,
                    },
                },
                chair,
            )
            if flags["workplan"]:
                add(
                    "WorkplanAgreed",
                    {
                        "meeting": number,
                        "agreements": [
                            {
                                "who": present[0],
                                "what": "Huisbezoek",
                                "due": None,
                                "domain": "gezin",
                            }
                        ],
                        "coordinator": present[-1] if flags["coordinator"] else None,
                        "crisis_plan": n % 5 == 0,
                    },
                    chair,
                )
            if flags["registered"]:
                add("RegistrationCompleted", {"meeting": number}, chair)
            self.report.meetings.append(
                Slot(
                    programme,
                    region,
                    held_on,
                    number,
                    flags["youth"],
                    flags["parents"],
                    flags["workplan"],
                    flags["coordinator"],
                    flags["registered"],
                )
            )
        if meetings and n % 3 == 0:
            later = meetings[-1][0] + timedelta(days=45)
            add("FollowUpScheduled", {"on": later.isoformat()}, chair)
        if n % 7 == 0:
            theme = rng.choice(["wachtlijst", "vervoer", "aanbod"])
            add("BottleneckReported", {"theme": theme, "description": "Structureel"}, chair)
            self.report.bottlenecks.append((programme, region, theme, at.year))
        if n % 2 == 0:
            add("CaseClosed", {"reason": "Werkplan loopt"}, chair)


def _day(rng: random.Random, year: int, first_month: int = 1, last_month: int = 12) -> date:
    return date(year, rng.randint(first_month, last_month), rng.randint(1, 28))


def _plain(rng: random.Random, youth: bool | None = True) -> dict[str, Any]:
    registered = youth is not None and rng.random() < 0.8
    workplan = rng.random() < 0.6
    return {
        "youth": youth,
        "parents": rng.random() < 0.6,
        "workplan": workplan,
        "coordinator": workplan and rng.random() < 0.9,
        "registered": registered,
    }


def report_2015(seed: int = 2015) -> Report:
    """The whole stream, every line in the order it was recorded."""
    rng = random.Random(seed)
    report = Report()
    writer = _Writer(report, rng)
    meetings_2014 = 0
    for region in REGIONS:
        slots = _slots_2015(region)
        rng.shuffle(slots)
        i = 0
        # Cases whose first meeting was in 2014 and whose follow-up counts in 2015.
        for _ in range(len(slots) // 6):
            earlier = (_day(rng, 2014, 9, 12), _plain(rng))
            writer.case(IJH, region, [earlier, (_day(rng, 2015, 2, 6), slots[i])])
            meetings_2014 += 1
            i += 1
        # Cases with two meetings in 2015, then cases with one.
        for _ in range(len(slots) // 5):
            writer.case(
                IJH,
                region,
                [(_day(rng, 2015, 1, 5), slots[i]), (_day(rng, 2015, 7, 11), slots[i + 1])],
            )
            i += 2
        for slot in slots[i:]:
            writer.case(IJH, region, [(_day(rng, 2015, 1, 11), slot)])
    while meetings_2014 < MEETINGS_2014:  # the rest of 2014, in every region
        writer.case(IJH, rng.choice(REGIONS), [(_day(rng, 2014, 1, 11), _plain(rng))])
        meetings_2014 += 1
    for _ in range(40):  # 2016, and the local programme in 2015
        writer.case(IJH, rng.choice(REGIONS), [(_day(rng, 2016), _plain(rng))])
    for _ in range(30):
        writer.case(LCO, rng.choice(REGIONS), [(_day(rng, 2015), _plain(rng, rng.random() < 0.5))])
    for _ in range(25):
        writer.case(IJH, rng.choice(REGIONS), [], decline=True)
    # Lines in the order they were recorded; a case's own lines keep their order.
    report.lines.sort(key=lambda x: (datetime.fromisoformat(x["at"]), x["case"], x["seq"]))
    return report


def pct(part: int, whole: int) -> float:
    """Half up to one decimal, by integer arithmetic."""
    if whole == 0:
        return 0.0
    tenths, rest = divmod(part * 1000, whole)
    return (tenths + (1 if 2 * rest >= whole else 0)) / 10


def counted(report: Report, year: int, programme: str | None) -> dict[str, Any]:
    """The statistics of the contract, counted from the ledger by hand."""

    def of(year: int) -> list[Slot]:
        return [
            m
            for m in report.meetings
            if m.held_on.year == year and programme in (None, m.programme)
        ]

    meetings = of(year)
    registered = [m for m in meetings if m.registered]
    total, fully = len(meetings), len(registered)

    def by_region(slots: list[Slot]) -> dict[str, int]:
        return {r: sum(1 for m in slots if m.region == r) for r in REGIONS}

    outcome = {}
    for name, test in [
        ("youth_present", lambda m: m.youth),
        ("parents_present", lambda m: m.parents),
        ("workplans", lambda m: m.workplan),
        ("coordinators", lambda m: m.coordinator),
    ]:
        hits = [m for m in registered if test(m)]
        outcome[name] = {"total": len(hits), "pct": pct(len(hits), fully)}
        if name == "coordinators":
            outcome[name]["pct_of_workplans"] = pct(len(hits), outcome["workplans"]["total"])
        outcome[name]["by_region"] = by_region(hits)
    return {
        "year": year,
        "programme": programme,
        "meetings": {
            "total": total,
            "first": sum(1 for m in meetings if m.number == 1),
            "follow_up": sum(1 for m in meetings if m.number > 1),
            "previous_year_total": len(of(year - 1)),
            "by_region": {
                r: {"count": c, "pct": pct(c, total)} for r, c in by_region(meetings).items()
            },
        },
        "fully_registered": {"total": fully, **outcome},
    }
