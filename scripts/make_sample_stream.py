"""Write a synthetic v1 event stream (JSON Lines) of client consultations that obeys every rule.

All people are pseudonyms and every fact is drawn from a seeded random generator, so the
same arguments always give the same stream. Used for the README's tour, for demos and for
the import benchmark:

    python scripts/make_sample_stream.py --cases 12 --seed 2015 > samples/sample-stream.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

REGIONS = [
    "Antwerpen",
    "Brussel",
    "Limburg",
    "Oost-Vlaanderen",
    "Vlaams-Brabant",
    "West-Vlaanderen",
]
CHANNELS = ["aanvraagformulier", "cobe", "email", "telefoon", "andere"]
DOMAINS = ["wonen", "onderwijs", "gezondheid", "inkomen", "vrije tijd", "opvoeding", None]
THEMES = ["wachtlijst", "betaalbaar wonen", "vervoer", "overgang naar 18+"]
QUESTIONS = [
    "Afstemming tussen school, CLB en thuisbegeleiding",
    "Overzicht in de hulpverlening: wie doet wat?",
    "Perspectief na 18 jaar uitwerken",
    "Hulptraject geraakt niet opgestart",
]
BELGIAN = [timezone(timedelta(hours=1)), timezone(timedelta(hours=2)), UTC]
NAMESPACE = uuid.UUID("0b6f5a52-5c1e-4d8e-9a43-0f0e7a11c0de")


def case_events(rng: random.Random, number: int, year: int) -> list[dict[str, Any]]:
    """The events of one synthetic case, each with its recording time."""
    case = str(uuid.uuid5(NAMESPACE, f"case-{year}-{number}"))
    tz = rng.choice(BELGIAN)
    at = datetime(year, 1, 1, 9, tzinfo=tz) + timedelta(
        days=rng.randrange(0, 300), minutes=rng.randrange(0, 480)
    )
    region = rng.choice(REGIONS)
    team = f"team-{region.lower()}-{rng.randrange(1, 4)}"
    youth = f"jongere-{number}"
    parent = f"ouder-{number}"
    professionals = [f"hulpverlener-{number}-{k}" for k in range(1, rng.randrange(2, 5))]
    requester_role = rng.choice(["professional", "professional", "youth", "parent"])
    requester = {"professional": professionals[0], "youth": youth, "parent": parent}[requester_role]
    events: list[dict[str, Any]] = []

    def add(kind: str, data: dict[str, Any], by: str, later: timedelta) -> None:
        nonlocal at
        at = at + later
        events.append(
            {
                "case": case,
                "seq": len(events) + 1,
                "type": kind,
                "at": at.isoformat(),
                "by": by,
                "data": data,
            }
        )

    birth = date(year - rng.randrange(6, 24), rng.randrange(1, 13), rng.randrange(1, 29))
    add(
        "Requested",
        {
            "programme": rng.choice(["integrale_jeugdhulp"] * 4 + ["lokaal_clientoverleg"]),
            "region": region,
            "requested_by": {"ref": requester, "role": requester_role},
            "channel": "cobe" if requester_role == "professional" else rng.choice(CHANNELS),
            "client": {
                "ref": youth,
                "birth_date": birth.isoformat() if rng.random() < 0.8 else None,
            },
            "question": rng.choice(QUESTIONS),
        },
        requester if requester_role != "professional" else team,
        timedelta(0),
    )
    if rng.random() < 0.08:
        add(
            "RequestDeclined",
            {"reason": "Geen cliëntoverleg nodig: hulp is al afgestemd"},
            team,
            timedelta(days=rng.randrange(1, 10)),
        )
        return events
    consenting = [{"ref": youth, "role": "youth"}, {"ref": parent, "role": "parent"}]
    for party in consenting if rng.random() < 0.7 else consenting[:1]:
        add("ConsentGiven", {"party": party}, team, timedelta(days=rng.randrange(1, 5)))
    chair = f"voorzitter-{region.lower()}-{rng.randrange(1, 6)}"
    add("ChairAppointed", {"chair": chair}, team, timedelta(days=rng.randrange(1, 7)))
    for meeting in range(1, rng.choice([1, 1, 1, 2, 2, 3]) + 1):
        held_on = (at + timedelta(days=rng.randrange(7, 40))).date()
        present = rng.sample(professionals, rng.randrange(1, len(professionals) + 1))
        youth_present = rng.random() < 0.35
        parents_present = rng.random() < 0.7
        add(
            "MeetingHeld",
            {
                "meeting": meeting,
                "held_on": held_on.isoformat(),
                "place": rng.choice(["CAW", "school", "thuis", "OCMW", "jeugdhulpaanbieder"]),
                "attendance": {
                    "youth": youth_present,
                    "parents": parents_present,
                    "trusted_person": rng.choice([True, False, None]),
                    "professionals": present,
                },
            },
            chair,
            timedelta(days=(held_on - at.date()).days, hours=3),
        )
        if rng.random() < 0.65:
            agreements = [
                {
                    "who": rng.choice([*present, youth, parent]),
                    "what": rng.choice(
                        [
                            "contact met school",
                            "budgetbegeleiding starten",
                            "wekelijks gesprek",
                            "zoeken naar kamertraining",
                        ]
                    ),
                    "due": (held_on + timedelta(days=rng.randrange(14, 90))).isoformat()
                    if rng.random() < 0.6
                    else None,
                    "domain": rng.choice(DOMAINS),
                }
                for _ in range(rng.randrange(1, 4))
            ]
            add(
                "WorkplanAgreed",
                {
                    "meeting": meeting,
                    "agreements": agreements,
                    "coordinator": rng.choice(present) if rng.random() < 0.95 else None,
                    "crisis_plan": rng.random() < 0.3,
                },
                chair,
                timedelta(hours=1),
            )
        if rng.random() < 0.9:
            add(
                "RegistrationCompleted",
                {"meeting": meeting},
                chair,
                timedelta(days=rng.randrange(0, 5)),
            )
        if rng.random() < 0.4:
            add(
                "FollowUpScheduled",
                {"on": (held_on + timedelta(days=rng.randrange(30, 120))).isoformat()},
                chair,
                timedelta(hours=2),
            )
        if rng.random() < 0.1:
            add(
                "BottleneckReported",
                {
                    "theme": rng.choice(THEMES),
                    "description": "Structureel knelpunt dat in meerdere dossiers terugkomt",
                },
                chair,
                timedelta(hours=1),
            )
    if rng.random() < 0.5:
        add(
            "CaseClosed",
            {"reason": "Werkplan loopt; hulpcoördinator volgt op"},
            chair,
            timedelta(days=rng.randrange(20, 90)),
        )
    return events


def stream(cases: int, seed: int, year: int) -> Iterator[dict[str, Any]]:
    """Every case's events, interleaved in the order they were recorded."""
    rng = random.Random(seed)
    events = [e for n in range(1, cases + 1) for e in case_events(rng, n, year)]
    events.sort(key=lambda e: (datetime.fromisoformat(e["at"]), e["case"], e["seq"]))
    yield from events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=12, help="number of cases (default 12)")
    parser.add_argument("--seed", type=int, default=2015, help="random seed (default 2015)")
    parser.add_argument("--year", type=int, default=2015, help="year the cases start in")
    args = parser.parse_args()
    out = sys.stdout
    for event in stream(args.cases, args.seed, args.year):
        out.write(json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
