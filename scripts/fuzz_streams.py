"""Stream fuzzing: valid v1 streams, mutated, imported as `overleg import` does, all checked.

The generator's model is the v1 rule set, and its instants reach the year 2999: its stores
therefore keep every case on the v1 rules (``OVERLEG_V2_FROM`` after the last instant).

Each stream is generated from a seed and its number: one to six valid cases (dates, instants
and offsets up to the edges of their ranges, texts and references up to their limits, any
script), interleaved, sometimes re-sending or continuing cases the store already holds. Most
streams are then mutated (bytes, whole lines, JSON types, keys, dates and offsets at and
beyond their edges, encodings, nesting, lengths, broken rules) and written out with varying
JSON spelling (key order, escapes, whitespace, CRLF, a byte-order mark, blank lines).

Every stream is imported into a store made with ``bootstrap`` through the reader and the
``import_stream`` that `overleg import` uses; a sample is imported by real `overleg import`
processes. A refusal must name a line of the stream for every problem, exit 1 (2 for a
missing file), and leave the store's digest (SHA-256 over every stored event record, in
recorded order) unchanged. An accepted stream must store exactly its lines (the export gives
them back), import again as a no-op, project without an event set aside, report (statistics,
explanations, bottlenecks, histories, case views), and rebuild to the same projection rows.
A mutation whose outcome is certain (a missing key must be refused at its line; a line
moved among other cases must be accepted) is held to it. No check may raise.

    scripts/fuzz --streams 10000 --seed 1
    scripts/fuzz --streams 2000 --backend postgresql --seconds 1800

Exits 1 on any violation and writes a reproducer to --failures: the stream, the streams its
store accepted before it, and the `overleg import` commands that replay them. docs/fuzzing.md
tells more.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from random import Random
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rich.console import Console
from rich.table import Table

from overleg.adapters.eventstore import Database
from overleg.aggregates.values import Programme
from overleg.aggregates.vocabulary import (
    FIRST_DAY,
    FIRST_INSTANT,
    LAST_DAY,
    LAST_INSTANT,
    REF_MAX_LENGTH,
    SHORT_TEXT_MAX_LENGTH,
    TEXT_MAX_LENGTH,
)
from overleg.bootstrap import Services, bootstrap
from overleg.projections.audit_trail import history
from overleg.projections.bottlenecks import bottleneck_report
from overleg.projections.case_view import get_case_view
from overleg.projections.explain import explain
from overleg.projections.statistics import annual_statistics, meetings_of, registered_by_region
from overleg.reports import (
    bottleneck_csv,
    bottleneck_table,
    explanation_text,
    history_table,
    statistics_csv,
    statistics_table,
)
from overleg.settings import Settings
from overleg.streams import StreamRefused, export_stream, import_stream
from overleg.streams.importer import read_lines

Line = dict[str, Any]
OVERLEG = Path(sys.executable).parent / "overleg"
PG = os.environ.get("OVERLEG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")

# The contract's limits beyond the shared vocabulary (streams/contract.py).
MAX_SEQ = 1_000_000
MAX_MEETING = 10_000
MAX_PROFESSIONALS = 100
MAX_AGREEMENTS = 200

# ---------------------------------------------------------------------------------------------
# Valid streams
# ---------------------------------------------------------------------------------------------

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
PHRASES = [
    "Afstemming tussen school, CLB en thuisbegeleiding",
    "Perspectief na 18 jaar uitwerken",
    "Hulptraject geraakt niet opgestart",
    "CAW Genk",
    "thuis",
    "Werkplan loopt; hulpcoördinator volgt op",
    'Ze zei: "niet nu" \\ later',
    "regel één\nregel twee\ttab\r\n",
    "Ωμέγα · 中文 · العربية · עברית · हिन्दी · 😀🧒🏽 · e\u0301 · \u2028\u2029 · \ufeff · \uffff",
    "\x01\x1f\x7f\x85\u00a0\u200b\u202e",
]
OFFSETS = [
    timedelta(0),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=-5),
    timedelta(hours=5, minutes=45),
    timedelta(hours=-9, minutes=-30),
    timedelta(hours=14),
    timedelta(hours=-14),
    timedelta(hours=23, minutes=59),
    timedelta(hours=-23, minutes=-59),
]
REF_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:@/+-" + "".join(
    chr(c) for c in range(0xC0, 0x100) if c not in (0xD7, 0xF7)
)
LEAP_DAYS = [date(1904, 2, 29), date(2000, 2, 29), date(2016, 2, 29), date(2400, 2, 29)]


def _char(rng: Random) -> str:
    """Any character a person could type: every plane, no NUL, no lone surrogate."""
    low, high = rng.choice(
        [(0x01, 0x7F), (0x80, 0x7FF), (0x800, 0xD7FF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF)]
    )
    return chr(rng.randint(low, high))


def text(rng: Random, limit: int = TEXT_MAX_LENGTH, least: int = 0) -> str:
    """Free text: phrases, any script, control characters, empty, or exactly at the limit."""
    roll = rng.random()
    if roll < 0.02:
        chunk = "".join(_char(rng) for _ in range(100))
        return (chunk * (limit // 100 + 1))[:limit]
    if roll < 0.05 and least == 0:
        return ""
    if roll < 0.4:
        value = "".join(_char(rng) for _ in range(rng.randint(max(1, least), 40)))
    else:
        value = rng.choice(PHRASES)
    return value[:limit] or "x"


def ref(rng: Random, prefix: str) -> str:
    """A reference: a prefix (kept apart from other kinds), sometimes a long unusual tail."""
    roll = rng.random()
    if roll < 0.03:
        size = REF_MAX_LENGTH - len(prefix) - 1
        return prefix + "-" + "".join(rng.choice(REF_ALPHABET) for _ in range(size))
    if roll < 0.15:
        size = rng.randint(1, 20)
        return prefix + "-" + "".join(rng.choice(REF_ALPHABET) for _ in range(size))
    return f"{prefix}-{rng.randint(1, 9999)}"


def age_on(born: date, day: date) -> int:
    return day.year - born.year - int((day.month, day.day) < (born.month, born.day))


def any_day(rng: Random) -> date:
    roll = rng.random()
    if roll < 0.1:
        return rng.choice([FIRST_DAY, LAST_DAY, *LEAP_DAYS])
    return date(2014, 1, 1) + timedelta(days=rng.randint(0, 1500))


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

    rng: Random
    id: str
    moment: datetime
    step: timedelta
    lines: list[Line] = field(default_factory=list)
    requested_on: date = FIRST_DAY
    parties: dict[str, str] = field(default_factory=dict)
    professionals: list[str] = field(default_factory=list)
    consents: set[tuple[str, str]] = field(default_factory=set)
    chair: str | None = None
    meetings: list[_Meeting] = field(default_factory=list)
    ended: bool = False

    def add(self, kind: str, data: dict[str, Any], *, first: bool = False) -> None:
        rng = self.rng
        if not first:
            later = timedelta(seconds=rng.randint(0, int(self.step.total_seconds())))
            self.moment = min(self.moment + later, LAST_INSTANT)
        moment = self.moment
        if rng.random() < 0.2:
            moment = moment.replace(microsecond=rng.choice([0, 1, 999999, rng.randint(0, 999999)]))
            moment = min(max(moment, FIRST_INSTANT), LAST_INSTANT)
        at = moment.astimezone(timezone(rng.choice(OFFSETS))).isoformat()
        if at.endswith("+00:00") and rng.random() < 0.3:
            at = at[:-6] + "Z"
        by = self.chair if kind in ("MeetingHeld", "WorkplanAgreed") and self.chair else None
        self.lines.append(
            {
                "case": self.id,
                "seq": len(self.lines) + 1,
                "type": kind,
                "at": at,
                "by": by or ref(rng, "team"),
                "data": data,
            }
        )

    def party(self, who: str) -> dict[str, str]:
        return {"ref": who, "role": self.parties[who]}

    def day_from(self, start: date, spread: int) -> date | None:
        """A day not before ``start`` and within the calendar the contract allows."""
        start = max(start, FIRST_DAY)
        if start > LAST_DAY:
            return None
        leap = [d for d in LEAP_DAYS if start <= d <= start + timedelta(days=spread)]
        if leap and self.rng.random() < 0.3:
            return self.rng.choice(leap)
        room = (LAST_DAY - start).days
        return start + timedelta(days=self.rng.randint(0, min(spread, room)))


def _birth(rng: Random, programme: str, requested_on: date) -> str | None:
    if rng.random() < 0.2:
        return None
    if programme == "lokaal_clientoverleg":
        return any_day(rng).isoformat()
    latest = max(min(requested_on, LAST_DAY), FIRST_DAY)
    earliest = max(FIRST_DAY, latest - timedelta(days=25 * 366))
    options = [
        earliest,
        latest,
        earliest + timedelta(days=rng.randint(0, (latest - earliest).days)),
    ]
    with suppress(ValueError):
        options.append(requested_on.replace(year=requested_on.year - 25))
    options += [d for d in LEAP_DAYS if earliest <= d <= latest]
    born = rng.choice(options)
    if not FIRST_DAY <= born <= LAST_DAY or age_on(born, requested_on) > 25:
        return None
    return born.isoformat()


def _start(rng: Random) -> tuple[datetime, timedelta]:
    """When a case starts, and how far apart its events may lie: mostly 2014-2017, some at
    the first and the last instants the contract allows."""
    roll = rng.random()
    if roll < 0.1:
        start = (
            FIRST_INSTANT
            if rng.random() < 0.3
            else FIRST_INSTANT + timedelta(hours=rng.randint(0, 72))
        )
        return start, timedelta(hours=rng.choice([0, 1, 30]))
    if roll < 0.2:
        start = LAST_INSTANT - timedelta(hours=rng.choice([0, 1, 20, 24 * 40]))
        return start, timedelta(hours=rng.choice([0, 1, 30]))
    start = datetime(2014, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randint(0, 3 * 525_600))
    return start, timedelta(days=rng.choice([1, 40]))


def _step(case: _Case, action: str) -> None:  # noqa: PLR0915 - one branch per line type
    rng = case.rng
    if action == "decline" and not case.meetings:
        case.add("RequestDeclined", {"reason": text(rng)})
        case.ended = True
    elif action == "close":
        case.add("CaseClosed", {"reason": text(rng)})
        case.ended = True
    elif action == "consent":
        who = rng.choice(sorted(case.parties))
        key = (who, case.parties[who])
        if key in case.consents:
            reason = None if rng.random() < 0.5 else text(rng)
            case.add("ConsentWithdrawn", {"party": case.party(who), "reason": reason})
            case.consents.discard(key)
        else:
            case.add("ConsentGiven", {"party": case.party(who)})
            case.consents.add(key)
    elif action == "chair":
        case.chair = ref(rng, "vz")
        case.add("ChairAppointed", {"chair": case.chair})
    elif action == "meeting":
        consented = any(role in ("youth", "parent") for _, role in case.consents)
        held_on = case.day_from(case.requested_on, 200)
        if case.chair is None or not consented or held_on is None:
            return
        if len(case.meetings) >= MAX_MEETING:
            return
        many = rng.random() < 0.01
        present = (
            [*case.professionals, *(f"hv-extra-{k}" for k in range(MAX_PROFESSIONALS))][
                :MAX_PROFESSIONALS
            ]
            if many
            else rng.sample(case.professionals, rng.randint(0, len(case.professionals)))
        )
        meeting = _Meeting(
            held_on,
            rng.choice([True, False, None]),
            rng.choice([True, False, None]),
            present,
        )
        case.meetings.append(meeting)
        case.add(
            "MeetingHeld",
            {
                "meeting": len(case.meetings),
                "held_on": held_on.isoformat(),
                "place": text(rng),
                "attendance": {
                    "youth": meeting.youth,
                    "parents": meeting.parents,
                    "trusted_person": rng.choice([True, False, None]),
                    "professionals": present,
                },
            },
        )
    elif action == "workplan":
        open_ = [n for n, m in enumerate(case.meetings, 1) if not (m.workplan or m.registered)]
        if not open_:
            return
        number = rng.choice(open_)
        meeting = case.meetings[number - 1]
        meeting.workplan = True
        people = [*case.professionals, *sorted(case.parties)]
        count = MAX_AGREEMENTS if rng.random() < 0.01 else rng.randint(1, 3)
        agreements = [
            {
                "who": rng.choice(people),
                "what": text(rng),
                "due": None if rng.random() < 0.4 else any_day(rng).isoformat(),
                "domain": None if rng.random() < 0.3 else text(rng, SHORT_TEXT_MAX_LENGTH, least=1),
            }
            for _ in range(count)
        ]
        coordinator = rng.choice(meeting.professionals) if meeting.professionals else None
        case.add(
            "WorkplanAgreed",
            {
                "meeting": number,
                "agreements": agreements,
                "coordinator": coordinator if rng.random() < 0.9 else None,
                "crisis_plan": rng.random() < 0.3,
            },
        )
    elif action == "register":
        ready = [
            n
            for n, m in enumerate(case.meetings, 1)
            if not m.registered and m.youth is not None and m.parents is not None
        ]
        if ready:
            number = rng.choice(ready)
            case.meetings[number - 1].registered = True
            case.add("RegistrationCompleted", {"meeting": number})
    elif action == "follow_up" and case.meetings:
        on = case.day_from(case.meetings[-1].held_on, 120)
        if on is not None:
            case.add("FollowUpScheduled", {"on": on.isoformat()})
    elif action == "bottleneck":
        theme = text(rng, SHORT_TEXT_MAX_LENGTH, least=1)
        case.add("BottleneckReported", {"theme": theme, "description": text(rng)})


ACTIONS = ["consent", "chair", "meeting", "meeting", "meeting", "workplan", "workplan"]
ACTIONS += ["register", "register", "follow_up", "bottleneck"]


def valid_case(rng: Random) -> list[Line]:
    """The lines of one case that obeys every rule of the contract."""
    moment, step = _start(rng)
    case = _Case(rng, str(uuid.UUID(int=rng.getrandbits(128), version=4)), moment, step)
    programme = rng.choice(PROGRAMMES)
    youth, parent = ref(rng, "jongere"), ref(rng, "ouder")
    case.parties = {youth: "youth", parent: "parent", ref(rng, "vp"): "trusted_person"}
    case.parties[ref(rng, "sf")] = "support_figure"
    case.professionals = [ref(rng, "hv") for _ in range(rng.randint(0, 4))]
    requester = rng.choice([*case.parties, "hv-aanvrager"])
    role = case.parties.get(requester, "professional")
    case.parties[requester] = role
    case.add(
        "Requested",
        {
            "programme": programme,
            "region": rng.choice(REGIONS),
            "requested_by": {"ref": requester, "role": role},
            "channel": rng.choice(CHANNELS),
            "client": {"ref": youth, "birth_date": None},
            "question": text(rng),
        },
        first=True,
    )
    first = case.lines[0]
    case.requested_on = datetime.fromisoformat(first["at"].replace("Z", "+00:00")).date()
    first["data"]["client"]["birth_date"] = _birth(rng, programme, case.requested_on)
    if rng.random() < 0.75:  # most cases get going: the young person consents, a chair
        case.add("ConsentGiven", {"party": case.party(youth)})
        case.consents.add((youth, "youth"))
        _step(case, "chair")
    steps = rng.choice([3, 10, 20, 20, 300 if rng.random() < 0.05 else 20])
    for action in rng.choices(ACTIONS, k=rng.randint(0, steps)):
        _step(case, action)
    _step(case, rng.choice(["open", "open", "close", "decline"]))
    return case.lines


def interleaved(rng: Random, cases: list[list[Line]]) -> list[Line]:
    """The cases' lines interleaved; each case's lines stay in order."""
    queues = [list(lines) for lines in cases if lines]
    stream: list[Line] = []
    while queues:
        queue = rng.choice(queues)
        stream.append(queue.pop(0))
        if not queue:
            queues.remove(queue)
    return stream


# ---------------------------------------------------------------------------------------------
# Samples: a stream on its way to bytes, and what must come of it
# ---------------------------------------------------------------------------------------------


@dataclass
class Expect:
    """What a mutation makes certain: the outcome, and for a refusal the line it must name
    (0-based: a value's index before encoding, a raw line's index after), its rule, a text."""

    outcome: str  # "accepted" or "refused"
    index: int | None = None
    rule: str | None = None
    fragment: str | None = None


@dataclass
class Sample:
    """One stream: its lines as JSON values, then as bytes, and what it was made of."""

    number: int
    origin: str  # fresh, again, continued, prefix
    values: list[Any]
    stored: set[tuple[str, int]] = field(default_factory=set)
    mutations: list[str] = field(default_factory=list)
    expect: Expect | None = None
    raw: list[bytes] = field(default_factory=list)
    end: bytes = b"\n"
    last_end: bool = True
    whole: Callable[[bytes], bytes] | None = None  # a re-encoding of the whole stream
    full: list[Line] = field(default_factory=list)  # whole cases, when only a prefix is sent

    def blob(self) -> bytes:
        data = self.end.join(self.raw) + (self.end if self.last_end and self.raw else b"")
        return self.whole(data) if self.whole is not None else data


def _lines_of(sample: Sample) -> list[Line]:
    return [v for v in sample.values if isinstance(v, dict)]


def _pick(rng: Random, sample: Sample, *kinds: str) -> int | None:
    """The index of a line (of one of ``kinds``), or None."""
    found = [
        i
        for i, v in enumerate(sample.values)
        if isinstance(v, dict) and (not kinds or v.get("type") in kinds)
    ]
    return rng.choice(found) if found else None


def _renumbered(values: list[Any], case: str) -> None:
    seq = 0
    for value in values:
        if isinstance(value, dict) and value.get("case") == case:
            seq += 1
            value["seq"] = seq


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside a JSON value."""
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _paths(inner, (*prefix, index))


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _set(value: Any, path: tuple[Any, ...], new: Any) -> None:
    _get(value, path[:-1])[path[-1]] = new


def _copy(value: Any) -> Any:
    return copy.deepcopy(value)


@dataclass(frozen=True)
class Deep:
    """Arrays and objects nested ``depth`` deep, kept as their JSON text: deeper than this
    program (or any reader) could hold as values."""

    text: str


def _nested(rng: Random, depth: int) -> Deep:
    opening = [rng.choice(["[", '{"a":']) for _ in range(depth)]
    closing = "".join("]" if o == "[" else "}" for o in reversed(opening))
    return Deep("".join(opening) + rng.choice(["1", '"x"', "null", "[]", "{}"]) + closing)


OTHER_TYPES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    1e300,
    2**64,
    "",
    "x",
    [],
    {},
    [1],
    {"a": 1},
]
EDGE_INSTANTS_OUT = [
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59+00:00",
    "9999-12-31T23:59:59.999999-23:59",
    "0001-01-01T00:00:00+23:59",
    "1899-12-31T23:59:59.999999+00:00",
    "1900-01-01T00:00:00+00:01",
    "3000-01-01T00:00:00+00:00",
    "2999-12-31T23:59:59-00:01",
    "2999-12-31T23:59:59.999999-14:00",
    "2015-02-29T10:00:00+01:00",
    "1900-02-29T10:00:00+01:00",
    "2015-03-02T24:00:00+01:00",
    "2015-03-02T23:59:60+01:00",
    "2015-03-02T10:00:00+24:00",
    "2015-03-02T10:00:00-24:00",
    "2015-03-02T10:00:00+14:60",
    "2015-03-02T10:00:00",
    "2015-03-02",
    "2015-13-01T10:00:00+01:00",
    "2015-03-02T10+01:00",
    "2015-03-02T10:00:00.1234567+01:00",
    "2015-03-02T10:00:00.000000001Z",
    "1425286800",
    "1425286800.5",
    "",
    "gisteren",
]
EDGE_INSTANTS_IN = [
    "1900-01-01T00:00:00+00:00",
    "1900-01-01T00:00:00Z",
    "1900-01-01T23:58:00+23:58",
    "1900-01-02T00:00:00+23:59",
    "1899-12-31T00:01:00-23:59",
    "2999-12-31T23:59:59.999999+00:00",
    "2999-12-31T23:59:59.999999+23:59",
    "2999-12-31T10:00:00-13:59",
    "2000-02-29T12:00:00+14:00",
    "2016-02-29T00:00:00-14:00",
    "2400-02-29T23:59:59.5+05:45",
    "2015-03-02T10:00:00.1234560+01:00",
    "2015-03-02t10:00:00,5+0100",
    "2015-03-02 10:00Z",
]
EDGE_DAYS_OUT = [
    "0001-01-01",
    "9999-12-31",
    "1899-12-31",
    "3000-01-01",
    "2015-02-29",
    "1900-02-29",
    "2100-02-29",
    "2015-13-01",
    "2015-00-10",
    "2015-04-31",
    "2015-1-5",
    "20150105",
    "1425254400",
    "2015-01-05T00:00:00",
    "",
    " 2015-01-05",
]
EDGE_DAYS_IN = ["1900-01-01", "2999-12-31", "2000-02-29", "2016-02-29", "2400-02-29", "1904-02-29"]

# Where a kind of event holds a field: paths into its line, by event type.
Fields = dict[str, list[tuple[Any, ...]]]

DAY_FIELDS: Fields = {
    "MeetingHeld": [("data", "held_on")],
    "FollowUpScheduled": [("data", "on")],
    "Requested": [("data", "client", "birth_date")],
    "WorkplanAgreed": [("data", "agreements", 0, "due")],
}
TEXT_FIELDS: Fields = {
    "Requested": [("data", "question")],
    "RequestDeclined": [("data", "reason")],
    "CaseClosed": [("data", "reason")],
    "MeetingHeld": [("data", "place")],
    "WorkplanAgreed": [("data", "agreements", 0, "what")],
    "BottleneckReported": [("data", "description")],
}
SHORT_FIELDS: Fields = {
    "BottleneckReported": [("data", "theme")],
    "WorkplanAgreed": [("data", "agreements", 0, "domain")],
}
REF_FIELDS: Fields = {
    "ChairAppointed": [("data", "chair")],
    "ConsentGiven": [("data", "party", "ref")],
    "WorkplanAgreed": [("data", "agreements", 0, "who")],
}
Mutation = Callable[[Random, Sample], Expect | None]


def _refuse_at(index: int, rule: str | None = None, fragment: str | None = None) -> Expect:
    return Expect("refused", index, rule, fragment)


ACCEPT = Expect("accepted")
UNSURE = Expect("")  # anything may come of it; only the general checks hold


# -- whole lines ---------------------------------------------------------------------------


def drop_line(rng: Random, sample: Sample) -> Expect | None:
    index = _pick(rng, sample)
    if index is None:
        return None
    del sample.values[index]
    return UNSURE


def duplicate_line(rng: Random, sample: Sample) -> Expect | None:
    index = _pick(rng, sample)
    if index is None:
        return None
    sample.values.insert(index + 1, _copy(sample.values[index]))
    return _refuse_at(index + 1, "seq-order")


def swap_lines(rng: Random, sample: Sample) -> Expect | None:
    """Lines of different cases may change places, as long as each case's lines keep
    their order; lines of one case may not."""
    if len(sample.values) < 2:
        return None
    i, j = sorted(rng.sample(range(len(sample.values)), 2))
    a, b = sample.values[i], sample.values[j]
    sample.values[i], sample.values[j] = b, a
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return UNSURE
    between = {v.get("case") for v in sample.values[i + 1 : j] if isinstance(v, dict)}
    if a["case"] == b["case"] or a["case"] in between or b["case"] in between:
        return Expect("refused")
    return ACCEPT


def move_line(rng: Random, sample: Sample) -> Expect | None:
    if len(sample.values) < 2:
        return None
    value = sample.values.pop(rng.randrange(len(sample.values)))
    sample.values.insert(rng.randrange(len(sample.values) + 1), value)
    return UNSURE


def foreign_line(rng: Random, sample: Sample) -> Expect | None:
    """A JSON value that is not an object where a line belongs."""
    index = rng.randrange(len(sample.values) + 1)
    sample.values.insert(index, rng.choice([[], [1, 2], 1, -0.5, "x", None, True, {}]))
    return _refuse_at(index)


def renumber(rng: Random, sample: Sample) -> Expect | None:
    """Another seq: a gap or a repeat in a new case; in a stored case it may also be the
    next seq after the stored ones, or a stored one of the same content."""
    index = _pick(rng, sample)
    if index is None:
        return None
    line = sample.values[index]
    line["seq"] = rng.choice(
        [line["seq"] + 1, line["seq"] - 1, 0, -1, MAX_SEQ + 1, 2**31, 2**63, 2**64, 10**30]
    )
    if any(case == line["case"] for case, _ in sample.stored) and 1 <= line["seq"] <= MAX_SEQ:
        return UNSURE
    return _refuse_at(index)


def new_case_id(rng: Random, sample: Sample) -> Expect | None:
    """Another spelling of a case's id is refused; another id is another case."""
    index = _pick(rng, sample)
    if index is None:
        return None
    line = sample.values[index]
    case = line["case"]
    huge = "x" * rng.choice([1000, 1_000_000])
    spelled = rng.choice(
        [
            case.upper(),
            case.replace("-", ""),
            f"{{{case}}}",
            f"urn:uuid:{case}",
            case + " ",
            "",
            huge,
        ]
    )
    if rng.random() < 0.3:
        line["case"] = rng.choice([str(uuid.UUID(int=0)), str(uuid.UUID(int=rng.getrandbits(128)))])
        return UNSURE
    line["case"] = spelled
    return _refuse_at(index)


def change_type(rng: Random, sample: Sample) -> Expect | None:
    index = _pick(rng, sample)
    if index is None:
        return None
    sample.values[index]["type"] = rng.choice(
        ["Requested", "CaseClosed", "RequestDeclined", "MeetingCancelled", "requested", ""]
    )
    return UNSURE


# -- keys and JSON types -------------------------------------------------------------------


def retype(rng: Random, sample: Sample) -> Expect | None:
    """A value of another JSON type somewhere in a line."""
    index = _pick(rng, sample)
    if index is None:
        return None
    line = sample.values[index]
    path = rng.choice([p for p in _paths(line) if p])
    old = _get(line, path)
    new = rng.choice([v for v in OTHER_TYPES if type(v) is not type(old)])
    _set(line, path, _copy(new))
    return _refuse_at(index) if len(path) == 1 else UNSURE


def remove_key(rng: Random, sample: Sample) -> Expect | None:
    """Every key of every object is required."""
    index = _pick(rng, sample)
    if index is None:
        return None
    line = sample.values[index]
    holders = [p for p in _paths(line) if isinstance(_get(line, p), dict) and _get(line, p)]
    holder = _get(line, rng.choice(holders))
    del holder[rng.choice(sorted(holder))]
    return _refuse_at(index)


def add_key(rng: Random, sample: Sample) -> Expect | None:
    """No object may have a key the contract does not name."""
    index = _pick(rng, sample)
    if index is None:
        return None
    line = sample.values[index]
    holders = [p for p in _paths(line) if isinstance(_get(line, p), dict)]
    holder = _get(line, rng.choice(holders))
    key = rng.choice(["note", "Seq", "", "é", "\u0000", "x" * 1000, "seq "])
    if key in holder:
        return None
    holder[key] = rng.choice([None, 1, "x", []])
    return _refuse_at(index)


def many_keys(rng: Random, sample: Sample) -> Expect | None:
    """An object with a great many keys the contract does not name."""
    index = _pick(rng, sample)
    if index is None:
        return None
    line = sample.values[index]
    holder = line if rng.random() < 0.5 else line.get("data")
    if not isinstance(holder, dict):
        return None
    for key in range(rng.choice([2, 1000, 1001, 300_000])):
        holder[f"k{key}"] = key
    return _refuse_at(index)


def nest(rng: Random, sample: Sample) -> Expect | None:
    """Arrays and objects nested deeper than any reader should follow."""
    index = _pick(rng, sample)
    depth = rng.choice([2, 64, 127, 128, 129, 200, 255, 256, 500, 980, 981, 1000, 5000, 100_000])
    deep = _nested(rng, depth)
    if index is None or rng.random() < 0.2:
        where = rng.randrange(len(sample.values) + 1)
        sample.values.insert(where, deep)
        return _refuse_at(where)
    line = sample.values[index]
    path = rng.choice([p for p in _paths(line) if p])
    if rng.random() < 0.5 and isinstance(_get(line, path), dict):
        _get(line, path)["deep"] = deep
    else:
        _set(line, path, deep)
    return _refuse_at(index)


# -- dates, instants, offsets ----------------------------------------------------------------


def edge_instant(rng: Random, sample: Sample) -> Expect | None:
    """An `at` at, or beyond, the edges: out of range or ill-formed is refused at its line;
    in range it is only the recording time, except on a request (it dates the case)."""
    index = _pick(rng, sample)
    if index is None:
        return None
    line = sample.values[index]
    if rng.random() < 0.5:
        line["at"] = rng.choice(EDGE_INSTANTS_OUT)
        return _refuse_at(index, fragment="at")
    line["at"] = rng.choice(EDGE_INSTANTS_IN)
    stored = (line["case"], line["seq"]) in sample.stored
    return UNSURE if line["type"] == "Requested" or stored else ACCEPT


def shift_offset(rng: Random, sample: Sample) -> Expect | None:
    """The same instant in another offset: no difference, except the request's local date."""
    index = _pick(rng, sample)
    if index is None:
        return None
    line = sample.values[index]
    moment = datetime.fromisoformat(line["at"].replace("Z", "+00:00"))
    if rng.random() < 0.2:
        line["at"] = line["at"][:-6] + rng.choice(["+24:00", "-24:00", "+14:60", "+1:00", "+0100x"])
        return _refuse_at(index, fragment="at")
    line["at"] = moment.astimezone(timezone(rng.choice(OFFSETS))).isoformat()
    stored = (line["case"], line["seq"]) in sample.stored
    return ACCEPT if line["type"] != "Requested" or stored else UNSURE


def edge_day(rng: Random, sample: Sample) -> Expect | None:
    index = _pick(rng, sample, *DAY_FIELDS)
    if index is None:
        return None
    line = sample.values[index]
    path = rng.choice(DAY_FIELDS[line["type"]])
    if (line["case"], line["seq"]) in sample.stored:
        return None
    if rng.random() < 0.5:
        _set(line, path, rng.choice(EDGE_DAYS_OUT))
        return _refuse_at(index)
    _set(line, path, rng.choice(EDGE_DAYS_IN))
    return ACCEPT if line["type"] == "WorkplanAgreed" else UNSURE


# -- lengths and characters ------------------------------------------------------------------


def lengthen(rng: Random, sample: Sample) -> Expect | None:
    """Text, short text and references at their limits and beyond (far beyond, sometimes)."""
    kind, fields, limit = rng.choice(
        [
            ("text", TEXT_FIELDS, TEXT_MAX_LENGTH),
            ("short", SHORT_FIELDS, SHORT_TEXT_MAX_LENGTH),
            ("ref", REF_FIELDS, REF_MAX_LENGTH),
        ]
    )
    index = _pick(rng, sample, *fields)
    if index is None:
        return None
    line = sample.values[index]
    if (line["case"], line["seq"]) in sample.stored:
        return None
    path = rng.choice(fields[line["type"]])
    size = rng.choice([limit, limit + 1, limit * 10, 1_000_000, 20_000_000])
    if size >= 1_000_000 and rng.random() < 0.8:
        size = limit + 1  # very long values are slow to make; a few suffice
    char = rng.choice(["x", "é", "😀"]) if kind != "ref" else rng.choice(["x", "é"])
    _set(line, path, char * size)
    if size > limit:
        return _refuse_at(index)
    return ACCEPT if kind == "text" else UNSURE


def lengthen_list(rng: Random, sample: Sample) -> Expect | None:
    index = _pick(rng, sample, "MeetingHeld", "WorkplanAgreed")
    if index is None:
        return None
    line = sample.values[index]
    if (line["case"], line["seq"]) in sample.stored:
        return None
    over = rng.random() < 0.5
    if line["type"] == "MeetingHeld":
        size = MAX_PROFESSIONALS + int(over)
        present = line["data"]["attendance"]["professionals"]
        present[:] = [*present, *(f"hv-lang-{k}" for k in range(size))][:size]
    else:
        size = MAX_AGREEMENTS + int(over)
        agreements = line["data"]["agreements"]
        agreements[:] = (agreements * size)[:size]
    return _refuse_at(index) if over else UNSURE


# -- broken rules ----------------------------------------------------------------------------


def _case_lines(sample: Sample, case: str) -> list[int]:
    return [i for i, v in enumerate(sample.values) if isinstance(v, dict) and v.get("case") == case]


def _fresh_case(rng: Random, sample: Sample, *kinds: str) -> int | None:
    """A line of a case that is new to the store, of one of ``kinds``."""
    index = _pick(rng, sample, *kinds)
    if index is None:
        return None
    case = sample.values[index]["case"]
    if any(c == case for c, _ in sample.stored):
        return None
    return index


def _day_of(line: Line) -> date:
    """The local date of a line's `at` (a request's date)."""
    return datetime.fromisoformat(line["at"].replace("Z", "+00:00")).date()


def _chair_is_party(rng: Random, sample: Sample) -> Expect | None:
    index = _fresh_case(rng, sample, "ChairAppointed")
    if index is None:
        return None
    values = sample.values
    first = values[_case_lines(sample, values[index]["case"])[0]]
    if first.get("type") != "Requested":
        return None
    values[index]["data"]["chair"] = first["data"]["client"]["ref"]
    return _refuse_at(index, "chair-neutral")


def _without_before_meeting(rng: Random, sample: Sample, rule: str) -> Expect | None:
    """The chair's appointments, or the consents of young person and parents, removed from
    before a case's first meeting."""
    index = _fresh_case(rng, sample, "MeetingHeld")
    if index is None:
        return None
    values = sample.values
    case = values[index]["case"]
    mine = _case_lines(sample, case)
    first = next(i for i in mine if values[i]["type"] == "MeetingHeld")

    def gone(line: Line) -> bool:
        if rule == "chair-required":
            return bool(line["type"] == "ChairAppointed")
        consent = line["type"] in ("ConsentGiven", "ConsentWithdrawn")
        return consent and line["data"]["party"]["role"] in ("youth", "parent")

    before = [i for i in mine if i < first and gone(values[i])]
    for i in reversed(before):
        del values[i]
    _renumbered(values, case)
    return _refuse_at(first - len(before), rule)


def _no_chair(rng: Random, sample: Sample) -> Expect | None:
    return _without_before_meeting(rng, sample, "chair-required")


def _no_consent(rng: Random, sample: Sample) -> Expect | None:
    return _without_before_meeting(rng, sample, "consent-required")


def _inserted(
    rng: Random, sample: Sample, after: str, kind: str, data: dict[str, Any] | None, rule: str
) -> Expect | None:
    """A line of ``kind`` right after a line of type ``after`` of a new case."""
    index = _fresh_case(rng, sample, after)
    if index is None:
        return None
    extra = _copy(sample.values[index])
    extra["type"] = kind
    if data is not None:
        extra["data"] = data
    sample.values.insert(index + 1, extra)
    _renumbered(sample.values, extra["case"])
    return _refuse_at(index + 1, rule)


def _after_end(rng: Random, sample: Sample) -> Expect | None:
    ended = rng.choice(["CaseClosed", "RequestDeclined"])
    data = {"theme": "wachtlijst", "description": "na het einde"}
    return _inserted(rng, sample, ended, "BottleneckReported", data, "case-ended")


def _request_twice(rng: Random, sample: Sample) -> Expect | None:
    return _inserted(rng, sample, "Requested", "Requested", None, "request-first")


def _consent_twice(rng: Random, sample: Sample) -> Expect | None:
    return _inserted(rng, sample, "ConsentGiven", "ConsentGiven", None, "consent-once")


def _decline_after_meeting(rng: Random, sample: Sample) -> Expect | None:
    data = {"reason": "te laat"}
    return _inserted(rng, sample, "MeetingHeld", "RequestDeclined", data, "decline")


def _withdraw_without_consent(rng: Random, sample: Sample) -> Expect | None:
    data = {"party": {"ref": "buur-1", "role": "support_figure"}, "reason": None}
    return _inserted(rng, sample, "Requested", "ConsentWithdrawn", data, "consent-standing")


def _client_too_old(rng: Random, sample: Sample) -> Expect | None:
    index = _fresh_case(rng, sample, "Requested")
    if index is None:
        return None
    line = sample.values[index]
    day = _day_of(line)
    if line["data"]["programme"] != "integrale_jeugdhulp" or day.year - 27 < FIRST_DAY.year:
        return None
    line["data"]["client"]["birth_date"] = date(day.year - 27, 1, 1).isoformat()
    return _refuse_at(index, "client-age")


def _meeting_before_request(rng: Random, sample: Sample) -> Expect | None:
    index = _fresh_case(rng, sample, "MeetingHeld")
    if index is None:
        return None
    values = sample.values
    day = _day_of(values[_case_lines(sample, values[index]["case"])[0]]) - timedelta(days=1)
    if not FIRST_DAY <= day <= LAST_DAY:
        return None
    values[index]["data"]["held_on"] = day.isoformat()
    return _refuse_at(index, "meeting-after-request")


def _follow_up_too_early(rng: Random, sample: Sample) -> Expect | None:
    index = _fresh_case(rng, sample, "FollowUpScheduled")
    if index is None:
        return None
    values = sample.values
    held = [
        values[i]["data"]["held_on"]
        for i in _case_lines(sample, values[index]["case"])
        if i < index and values[i]["type"] == "MeetingHeld"
    ]
    day = date.fromisoformat(held[-1]) - timedelta(days=1)
    if day < FIRST_DAY:
        return None
    values[index]["data"]["on"] = day.isoformat()
    return _refuse_at(index, "follow-up-date")


def _bad_workplan(rng: Random, sample: Sample) -> Expect | None:
    index = _fresh_case(rng, sample, "WorkplanAgreed")
    if index is None:
        return None
    values = sample.values
    data = values[index]["data"]
    how = rng.choice(["no-agreements", "coordinator-absent", "coordinator-is-chair"])
    if how == "no-agreements":
        data["agreements"] = []
        return _refuse_at(index, "workplan-agreements")
    if how == "coordinator-absent":
        data["coordinator"] = "hv-afwezig"
        return _refuse_at(index, "coordinator-present")
    chairs = [
        values[i]["data"]["chair"]
        for i in _case_lines(sample, values[index]["case"])
        if i < index and values[i]["type"] == "ChairAppointed"
    ]
    data["coordinator"] = chairs[-1]
    return _refuse_at(index, "coordinator-not-chair")


def _attendance_unknown(rng: Random, sample: Sample) -> Expect | None:
    index = _fresh_case(rng, sample, "RegistrationCompleted")
    if index is None:
        return None
    values = sample.values
    number = values[index]["data"]["meeting"]
    held = next(
        i
        for i in _case_lines(sample, values[index]["case"])
        if values[i]["type"] == "MeetingHeld" and values[i]["data"]["meeting"] == number
    )
    values[held]["data"]["attendance"][rng.choice(["youth", "parents"])] = None
    return _refuse_at(index, "attendance-known")


def _meeting_skipped(rng: Random, sample: Sample) -> Expect | None:
    index = _fresh_case(rng, sample, "MeetingHeld")
    if index is None:
        return None
    number = sample.values[index]["data"]["meeting"]
    sample.values[index]["data"]["meeting"] = rng.choice([number + 1, number + 2, MAX_MEETING])
    return _refuse_at(index, "meeting-sequence")


def _no_request(rng: Random, sample: Sample) -> Expect | None:
    index = _fresh_case(rng, sample, "Requested")
    if index is None:
        return None
    case = sample.values[index]["case"]
    if len(_case_lines(sample, case)) < 2:
        return None
    del sample.values[index]
    _renumbered(sample.values, case)
    return _refuse_at(_case_lines(sample, case)[0], "request-first")


RULES_BROKEN: list[Mutation] = [
    _chair_is_party,
    _no_chair,
    _no_consent,
    _after_end,
    _request_twice,
    _consent_twice,
    _decline_after_meeting,
    _withdraw_without_consent,
    _client_too_old,
    _meeting_before_request,
    _follow_up_too_early,
    _bad_workplan,
    _attendance_unknown,
    _meeting_skipped,
    _no_request,
]


def break_rule(rng: Random, sample: Sample) -> Expect | None:
    """One rule of the contract's table broken at one line, which must be refused there."""
    return rng.choice(RULES_BROKEN)(rng, sample)


TEXT_KEYS = {"question", "reason", "place", "what", "description", "theme", "domain"}
REF_KEYS = {"ref", "chair", "who", "coordinator"}


def conflict(rng: Random, sample: Sample) -> Expect | None:
    """A line of a stored case with other content: refused at its line as a conflict."""
    stored = [
        i
        for i, v in enumerate(sample.values)
        if isinstance(v, dict) and (v.get("case"), v.get("seq")) in sample.stored
    ]
    if not stored:
        return None
    index = rng.choice(stored)
    line = sample.values[index]
    what = rng.choice(["by", "at", "data"])
    if what == "by":
        line["by"] = line["by"][: REF_MAX_LENGTH - 1] + ("x" if line["by"][-1:] != "x" else "y")
        return _refuse_at(index, "conflict", "differs in by")
    if what == "at":
        moment = datetime.fromisoformat(line["at"].replace("Z", "+00:00"))
        step = timedelta(microseconds=1)
        line["at"] = (
            moment - step if moment - step >= FIRST_INSTANT else moment + step
        ).isoformat()
        return _refuse_at(index, "conflict", "differs in at")
    data = line["data"]
    leaves = [
        p
        for p in _paths(data)
        if p
        and (
            isinstance(_get(data, p), bool)
            or (isinstance(_get(data, p), str) and (TEXT_KEYS | REF_KEYS) & set(map(str, p)))
        )
    ]
    if not leaves:
        return None
    path = rng.choice(leaves)
    old = _get(data, path)
    if isinstance(old, bool):
        new: Any = not old
    elif set(map(str, path)) & REF_KEYS:
        new = old[: REF_MAX_LENGTH - 1] + ("x" if old[-1:] != "x" else "y")
    else:
        new = old[: SHORT_TEXT_MAX_LENGTH - 1] + ("x" if old[-1:] != "x" else "y")
    _set(data, path, new)
    return _refuse_at(index, "conflict", f"data.{path[0]}")


STRUCTURED: dict[str, tuple[Mutation, int]] = {
    "drop-line": (drop_line, 3),
    "duplicate-line": (duplicate_line, 3),
    "swap-lines": (swap_lines, 4),
    "move-line": (move_line, 2),
    "foreign-line": (foreign_line, 2),
    "renumber": (renumber, 3),
    "case-id": (new_case_id, 2),
    "change-type": (change_type, 2),
    "retype": (retype, 6),
    "remove-key": (remove_key, 3),
    "add-key": (add_key, 3),
    "nest": (nest, 3),
    "many-keys": (many_keys, 1),
    "edge-instant": (edge_instant, 6),
    "shift-offset": (shift_offset, 4),
    "edge-day": (edge_day, 5),
    "lengthen": (lengthen, 4),
    "lengthen-list": (lengthen_list, 2),
    "break-rule": (break_rule, 10),
    "conflict": (conflict, 4),
}

# ---------------------------------------------------------------------------------------------
# Bytes
# ---------------------------------------------------------------------------------------------


def _shuffled(value: Any, rng: Random) -> Any:
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: _shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


def encode(rng: Random, sample: Sample) -> list[int]:
    """Write the values as lines of bytes, spelled in any way JSON allows; returns each
    value's index among the raw lines. Blank lines may come between (they are skipped)."""
    DEEP.clear()
    ascii_only = rng.random() < 0.3
    separators = rng.choice([(",", ":"), (", ", ": "), (",\t", ":\t"), (" , ", " : ")])
    shuffle = rng.random() < 0.3
    slashes = rng.random() < 0.1
    sample.end = b"\r\n" if rng.random() < 0.1 else b"\n"
    sample.last_end = rng.random() < 0.9
    where: list[int] = []
    for value in sample.values:
        if rng.random() < 0.03:
            sample.raw.append(rng.choice([b"", b"   ", b"\t"]))
        shaped = _shuffled(value, rng) if shuffle else value
        written = json.dumps(
            shaped, ensure_ascii=ascii_only, separators=separators, default=_placeholder
        )
        for deep in re.findall(r'"@deep-(\d+)@"', written):
            written = written.replace(f'"@deep-{deep}@"', DEEP[int(deep)].text)
        if slashes:
            written = written.replace("/", "\\/")  # "/" occurs only inside strings
        if rng.random() < 0.03:
            written = " " * rng.randint(1, 3) + written + " \t"
        where.append(len(sample.raw))
        sample.raw.append(written.encode("utf-8"))
    if sample.raw and rng.random() < 0.05:
        sample.raw[0] = b"\xef\xbb\xbf" + sample.raw[0]  # a byte-order mark some editors write
    return where


DEEP: dict[int, Deep] = {}


def _placeholder(value: object) -> str:
    """A deep value's place in the JSON text, filled in afterwards."""
    assert isinstance(value, Deep), value
    DEEP[id(value)] = value
    return f"@deep-{id(value)}@"


def _content(raw: bytes) -> bytes:
    """A raw line without its byte-order mark and whitespace: empty for a skipped line."""
    return raw.removeprefix(b"\xef\xbb\xbf").strip()


def _a_line(rng: Random, sample: Sample) -> int | None:
    found = [i for i, raw in enumerate(sample.raw) if _content(raw)]
    return rng.choice(found) if found else None


def flip_byte(rng: Random, sample: Sample) -> Expect | None:
    index = _a_line(rng, sample)
    if index is None:
        return None
    raw = bytearray(sample.raw[index])
    at = rng.randrange(len(raw))
    how = rng.random()
    if how < 0.4:
        raw[at] ^= 1 << rng.randrange(8)
    elif how < 0.7:
        raw[at] = rng.randrange(256)
    elif how < 0.85:
        raw.insert(at, rng.randrange(256))
    else:
        del raw[at]
    sample.raw[index : index + 1] = bytes(raw).split(b"\n")  # a new line feed makes two lines
    return UNSURE


def cut_line(rng: Random, sample: Sample) -> Expect | None:
    index = _a_line(rng, sample)
    if index is None:
        return None
    raw = sample.raw[index]
    end = raw.rindex(b"}") if b"}" in raw else len(raw)
    if end < 1:
        return None
    sample.raw[index] = raw[: rng.randrange(1, end + 1) - 1] if end > 1 else b"{"
    return _refuse_at(index) if _content(sample.raw[index]) else UNSURE


def split_line(rng: Random, sample: Sample) -> Expect | None:
    index = _a_line(rng, sample)
    if index is None:
        return None
    raw = sample.raw[index]
    at = rng.randrange(1, max(2, len(raw) - 1))
    sample.raw[index : index + 1] = [raw[:at], raw[at:]]
    return _refuse_at(index) if _content(raw[:at]) else UNSURE


def join_lines(rng: Random, sample: Sample) -> Expect | None:
    index = _a_line(rng, sample)
    if index is None or index + 1 >= len(sample.raw) or not sample.raw[index + 1].strip():
        return None
    sample.raw[index : index + 2] = [sample.raw[index] + sample.raw[index + 1]]
    return _refuse_at(index)


def bad_bytes(rng: Random, sample: Sample) -> Expect | None:
    """Bytes that are not UTF-8, or a NUL, anywhere in a line."""
    index = _a_line(rng, sample)
    if index is None:
        return None
    raw = sample.raw[index]
    bad = rng.choice(
        [
            b"\x00",
            b"\xff",
            b"\xfe",
            b"\x80",
            b"\xc3",
            b"\xc0\xaf",
            b"\xe0\x80\xaf",
            b"\xed\xa0\x80",
            b"\xed\xbf\xbf",
            b"\xf4\x90\x80\x80",
            b"\xf8\x88\x80\x80\x80",
        ]
    )
    at = rng.randrange(len(raw) + 1)
    sample.raw[index] = raw[:at] + bad + raw[at:]
    return _refuse_at(index)


def escapes(rng: Random, sample: Sample) -> Expect | None:
    """Escaped characters in a text: a lone or reversed surrogate or NUL is refused, a pair
    or any other character is kept."""
    index = _a_line(rng, sample)
    if index is None:
        return None
    raw = sample.raw[index]
    fields = [b'"question":', b'"reason":', b'"place":', b'"what":', b'"description":']
    found = [(raw.find(f), f) for f in fields if raw.find(f) >= 0]
    if not found:
        return None
    start, name = found[0]
    quote = raw.find(b'"', start + len(name))
    if quote < 0:
        return None
    bad = rng.random() < 0.6
    escape = rng.choice(
        [rb"\ud800", rb"\udfff", rb"\ude00\ud83d", rb"\ud83d", rb"\u0000", rb"\ud800\u0041"]
        if bad
        else [rb"\ud83d\ude00", rb"\u0001", rb"\u001f", rb"\u2028", rb"\ufeff", rb"\uffff", rb"\/"]
    )
    sample.raw[index] = raw[: quote + 1] + escape + raw[quote + 1 :]
    return _refuse_at(index) if bad else UNSURE


def byte_order_mark(rng: Random, sample: Sample) -> Expect | None:
    """A byte-order mark: before the first line it is ignored, anywhere else it is not."""
    index = _a_line(rng, sample)
    if index is None:
        return None
    raw = sample.raw[index].removeprefix(b"\xef\xbb\xbf")
    if index == 0 and rng.random() < 0.5:
        sample.raw[0] = b"\xef\xbb\xbf" + raw
        return ACCEPT
    sample.raw[index] = b"\xef\xbb\xbf" * (2 if index == 0 else 1) + raw
    return _refuse_at(index)


def reencode(rng: Random, sample: Sample) -> Expect | None:
    """The whole stream in UTF-16 or UTF-32, or its text in Latin-1."""
    if not any(_content(raw) for raw in sample.raw):
        return None
    encoding = rng.choice(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "latin-1"])
    if encoding == "latin-1":
        texts = [raw.decode("utf-8", "replace") for raw in sample.raw]
        high = [i for i, t in enumerate(texts) if any(ord(c) > 0x7F for c in t)]
        if not high or any(ord(c) > 0xFF for t in texts for c in t):
            return None
        sample.raw = [t.encode("latin-1") for t in texts]
        return _refuse_at(high[0])
    sample.whole = lambda data: data.decode("utf-8", "replace").encode(encoding)
    first = next(i for i, raw in enumerate(sample.raw) if _content(raw))
    return _refuse_at(first) if first == 0 else UNSURE


def line_ends(rng: Random, sample: Sample) -> Expect | None:
    """Lines ended by CR alone run together; CRLF and blank lines change nothing."""
    choice = rng.choice(["cr", "crlf", "blank"])
    if choice == "crlf":
        sample.end = b"\r\n"
        return ACCEPT
    if choice == "blank":
        at = rng.randrange(len(sample.raw) + 1)
        sample.raw.insert(at, rng.choice([b"", b" ", b"\t\t", b"\r"]))
        return ACCEPT
    lines = [i for i, raw in enumerate(sample.raw) if _content(raw)]
    if len(lines) < 2:
        return None
    sample.end = b"\r"
    return _refuse_at(0)


def pad(rng: Random, sample: Sample) -> Expect | None:
    """Whitespace around a line's JSON, up to millions of bytes: still the same line."""
    index = _a_line(rng, sample)
    if index is None:
        return None
    size = rng.choice([1, 1000, 100_000, 3_000_000])
    raw = sample.raw[index]
    mark = b"\xef\xbb\xbf" if raw.startswith(b"\xef\xbb\xbf") else b""  # stays first
    sample.raw[index] = mark + b" " * size + raw.removeprefix(mark) + b"\t" * rng.randint(0, 3)
    return ACCEPT


RAW: dict[str, tuple[Mutation, int]] = {
    "flip-byte": (flip_byte, 8),
    "cut-line": (cut_line, 3),
    "split-line": (split_line, 2),
    "join-lines": (join_lines, 2),
    "bad-bytes": (bad_bytes, 4),
    "escapes": (escapes, 4),
    "byte-order-mark": (byte_order_mark, 2),
    "reencode": (reencode, 2),
    "line-ends": (line_ends, 2),
    "pad": (pad, 1),
}

# ---------------------------------------------------------------------------------------------
# Making a sample
# ---------------------------------------------------------------------------------------------


@dataclass
class Held:
    """A stream the store accepted, and the whole cases it was a part of."""

    lines: list[Line]
    full: list[Line]


@dataclass
class History:
    """What a store accepted: the streams, every line by case and seq, and the cases a
    mutated stream touched (their later lines, as generated, may no longer fit)."""

    held: list[Held] = field(default_factory=list)
    stored: set[tuple[str, int]] = field(default_factory=set)
    tainted: set[str] = field(default_factory=set)

    def accepted(self, lines: list[Line], full: list[Line], mutated: bool) -> None:
        self.held.append(Held(_copy(lines), _copy(full)))
        self.stored.update((line["case"], line["seq"]) for line in lines)
        if mutated:
            self.tainted.update(line["case"] for line in lines)

    def continuable(self) -> list[Held]:
        return [
            h
            for h in self.held
            if h.full != h.lines and not {line["case"] for line in h.full} & self.tainted
        ]


def make_sample(seed: int, number: int, history: History) -> Sample:
    """Stream ``number`` of a run: its cases, where they come from, its mutations."""
    rng = Random(f"{seed}:{number}")
    roll = rng.random()
    fresh = interleaved(rng, [valid_case(rng) for _ in range(rng.choice([1, 1, 2, 3, 4, 6]))])
    if history.held and roll < 0.12:
        earlier = rng.choice(history.held)
        sample = Sample(number, "again", _copy(earlier.lines))
        sample.stored = set(history.stored)
        if rng.random() < 0.5:
            sample.values = interleaved(rng, [sample.values, fresh])
    elif roll < 0.2 and history.continuable():
        earlier = rng.choice(history.continuable())
        rest = [line for line in earlier.full if (line["case"], line["seq"]) not in history.stored]
        sample = Sample(number, "continued", _copy(rest if rng.random() < 0.5 else earlier.full))
        sample.stored = set(history.stored)
        sample.full = earlier.full
    elif roll < 0.3:
        cut: list[Line] = []
        for case in dict.fromkeys(line["case"] for line in fresh):
            lines = [line for line in fresh if line["case"] == case]
            cut += lines[: rng.randint(1, len(lines))]
        sample = Sample(number, "prefix", [line for line in fresh if line in cut])
        sample.full = fresh
    else:
        sample = Sample(number, "fresh", fresh)
    if not sample.full:
        sample.full = _lines_of(sample)

    expectations: list[Expect] = []
    count = rng.choice([0, 0, 1, 1, 1, 1, 1, 2, 3])
    if count and sample.stored and rng.random() < 0.4:  # a stored line changed: a conflict
        count -= 1
        expect = _apply(rng, sample, "conflict", conflict)
        if expect is not None:
            expectations.append(expect)
    structured = [name for _ in range(count) if (name := _draw(rng, STRUCTURED, RAW)) in STRUCTURED]
    for name in structured:
        expect = _apply(rng, sample, name, STRUCTURED[name][0])
        if expect is not None:
            expectations.append(expect)
    where = encode(rng, sample)
    for expect in expectations:
        if expect.index is not None:  # a later mutation may have taken the line away
            expect.index = where[expect.index] if expect.index < len(where) else None
    for _ in range(count - len(structured)):
        name = rng.choices(list(RAW), [w for _, w in RAW.values()])[0]
        expect = _apply(rng, sample, name, RAW[name][0])
        if expect is not None:
            expectations.append(expect)
    if not sample.mutations:
        sample.expect = ACCEPT
    elif len(sample.mutations) == 1 and expectations and expectations[0].outcome:
        sample.expect = expectations[0]
    return sample


def _draw(rng: Random, *tables: dict[str, tuple[Mutation, int]]) -> str:
    names = [name for table in tables for name in table]
    weights = [weight for table in tables for _, weight in table.values()]
    return rng.choices(names, weights)[0]


def _apply(rng: Random, sample: Sample, name: str, mutation: Mutation) -> Expect | None:
    """Apply one mutation. On a stream another mutation has already broken, one that finds
    no footing (a line without its keys, say) is left out."""
    if not sample.values and not sample.raw:
        return None
    if not sample.mutations:
        expect = mutation(rng, sample)
    else:
        values, raw, end, whole = _copy(sample.values), list(sample.raw), sample.end, sample.whole
        try:
            expect = mutation(rng, sample)
        except (LookupError, TypeError, ValueError, AttributeError, ArithmeticError, StopIteration):
            sample.values, sample.raw, sample.end, sample.whole = values, raw, end, whole
            return None
    if expect is not None:
        sample.mutations.append(name)
    return expect


# ---------------------------------------------------------------------------------------------
# Stores and checks
# ---------------------------------------------------------------------------------------------


@dataclass
class Violation:
    number: int
    what: str
    detail: str


# After every instant the generator writes: each case keeps the v1 rules it models.
V1_ONLY = "3000-01-02T00:00:00+00:00"


class Store:
    """An event store built as the `overleg` command builds it, and what it accepted."""

    def __init__(self, server: str | None, workdir: Path) -> None:
        """A new SQLite file in ``workdir``, or a new schema on the PostgreSQL ``server``."""
        self.workdir = workdir
        self.schema: str | None = None
        name = uuid.uuid4().hex[:12]
        if server is None:
            self.url = f"sqlite:///{workdir / f'store-{name}.db'}"
        else:
            self.schema = f"fuzz_{name}"
            self.url = f"{server}{'&' if '?' in server else '?'}schema={self.schema}"
        self.services: Services = bootstrap(
            Settings(database_url=self.url, v2_from=datetime.fromisoformat(V1_ONLY))
        )
        self.app = self.services.app
        self.history = History()
        self.blobs: list[bytes] = []  # every stream it accepted, in order
        self.digest = digest(self.services)

    def close(self) -> None:
        self.services.close()
        if self.schema is not None:
            import psycopg
            from psycopg import sql

            server = Database.from_url(self.url).conninfo()
            with psycopg.connect(server, autocommit=True) as conn:
                drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                conn.execute(drop.format(sql.Identifier(self.schema)))
        else:
            for path in self.workdir.glob(self.url.rsplit("/", 1)[1] + "*"):
                path.unlink()


def digest(services: Services) -> tuple[int, str]:
    """How many event records the store holds, and SHA-256 over all of them in order."""
    hasher = hashlib.sha256()
    count, start = 0, 1
    while True:
        page = services.app.recorder.select_notifications(start=start, limit=1000)
        for record in page:
            head = f"{record.id}|{record.originator_id}|{record.originator_version}|{record.topic}|"
            hasher.update(head.encode())
            hasher.update(record.state)
            count += 1
        if len(page) < 1000:
            return count, hasher.hexdigest()
        start = page[-1].id + 1


def rows(services: Services) -> dict[str, list[str]]:
    """Every row of every projection table (and of the set-aside events), sorted."""
    tables = [t for p in services.projector.projections.values() for t in p.tables]
    found = {}
    for table in [*tables, "projection_failure"]:
        found[table] = sorted(repr(row) for row in services.views.read(f"SELECT * FROM {table}"))
    return found


@dataclass
class Outcome:
    """What one stream did."""

    accepted: bool = False
    refused: bool = False
    problems: list[tuple[int, str, str | None]] = field(default_factory=list)
    seconds: float = 0.0
    process: bool = False


# A problem is read by a person: it quotes what is wrong, never megabytes of it.
LONGEST_PROBLEM = 1000
# No stream of this program should take an import longer (the longest are ~60 MB).
SLOWEST_IMPORT = 30.0
LINE_NAMED = re.compile(r"^line (\d+)\b")


def line_count(blob: bytes) -> int:
    return len(blob.split(b"\n")) - int(blob.endswith(b"\n"))


def import_in_process(store: Store, blob: bytes) -> Outcome:
    """Import as `overleg import FILE` does: its reader over the file, ``import_stream``."""
    outcome = Outcome()
    started = time.perf_counter()
    try:
        import_stream(store.app, read_lines(io.BytesIO(blob)))
        outcome.accepted = True
    except StreamRefused as refused:
        outcome.refused = True
        message = str(refused)
        outcome.problems = [(p.line, str(p), p.rule) for p in refused.problems]
        for _, said, _ in outcome.problems:
            if said not in message:
                outcome.problems.append((-1, f"not in the message: {said}", None))
    outcome.seconds = time.perf_counter() - started
    return outcome


def run_overleg(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE")}
    done = subprocess.run(
        [str(OVERLEG), *args],
        env={**env, "OVERLEG_DATABASE_URL": url, "OVERLEG_V2_FROM": V1_ONLY},
        capture_output=True,
        timeout=600,
        check=False,
    )
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def import_by_process(store: Store, blob: bytes, path: Path, found: list[str]) -> Outcome:
    """Import with a real `overleg import FILE` process."""
    path.write_bytes(blob)
    outcome = Outcome(process=True)
    started = time.perf_counter()
    done = run_overleg(store.url, "import", str(path), "--quiet")
    outcome.seconds = time.perf_counter() - started
    if "Traceback" in done.stderr:
        found.append(f"traceback from overleg import:\n{done.stderr[-3000:]}")
    if done.returncode == 0:
        outcome.accepted = True
    elif done.returncode == 1:
        outcome.refused = True
        for text in done.stderr.splitlines():
            match = LINE_NAMED.match(text.strip())
            if match:
                outcome.problems.append((int(match.group(1)), text.strip(), None))
        if "nothing was written" not in done.stderr:
            found.append(f"exit 1 without saying nothing was written: {done.stderr[-500:]}")
    else:
        found.append(f"overleg import exited {done.returncode}: {done.stderr[-1000:]}")
    return outcome


def check_refusal(sample: Sample, blob: bytes, outcome: Outcome, found: list[str]) -> None:
    total = line_count(blob)
    if not outcome.problems:
        found.append("a refusal that names no line")
    for number, said, _ in outcome.problems:
        if not 1 <= number <= total or not said.startswith(f"line {number}"):
            found.append(f"a problem that does not name a line of the stream ({total}): {said}")
        if len(said) > LONGEST_PROBLEM:
            found.append(f"a problem of {len(said):,} characters: {said[:200]}…")
    expect = sample.expect
    if expect is None or expect.outcome != "refused":
        return
    line = None if expect.index is None else expect.index + 1
    named = [(n, said, rule) for n, said, rule in outcome.problems if line is None or n == line]
    if not named:
        found.append(
            f"{'/'.join(sample.mutations)}: line {line} should be named, not {outcome.problems}"
        )
        return
    said = " ".join(s for _, s, _ in named)
    if expect.rule is not None and not outcome.process and f"[{expect.rule}" not in said:
        found.append(f"{'/'.join(sample.mutations)}: rule {expect.rule} should be named: {said}")
    if expect.fragment is not None and expect.fragment not in said:
        found.append(f"{'/'.join(sample.mutations)}: {expect.fragment!r} should be said: {said}")


def _years(lines: list[Line]) -> set[int]:
    years = set()
    for line in lines:
        data = line.get("data") or {}
        for value in (line.get("at"), data.get("held_on"), data.get("on")):
            if isinstance(value, str) and len(value) >= 4 and value[:4].isdigit():
                years.add(int(value[:4]))
    return {y for y in years if 1900 <= y <= 2999} or {2015}


def rng_of(sample: Sample) -> Random:
    """A generator for the checks of one stream (apart from the one that made it)."""
    return Random(f"check:{sample.number}")


def _render(table: Any) -> str:
    console = Console(file=io.StringIO(), width=240, highlight=False)
    console.print(table)
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def stored_lines(blob: bytes) -> list[Line]:
    """The lines of an accepted stream, as the standard library reads them."""
    found = []
    for number, raw in enumerate(blob.split(b"\n"), start=1):
        text = raw.removeprefix(b"\xef\xbb\xbf") if number == 1 else raw
        if text.strip():
            found.append(json.loads(text))
    return found


def _comparable(line: Line) -> Line:
    """A line as the round trip keeps it: `at` as an instant (when it can be read as one)."""
    try:
        at: Any = datetime.fromisoformat(line["at"].replace("Z", "+00:00").replace("z", "+00:00"))
    except (TypeError, ValueError, AttributeError):
        at = line.get("at")
    return {**line, "at": at}


def check_acceptance(store: Store, sample: Sample, blob: bytes, found: list[str]) -> None:
    """An accepted stream is stored line for line, imports again as a no-op, projects,
    reports and rebuilds."""
    services = store.services
    before = store.digest
    after = digest(services)
    lines = stored_lines(blob)
    new = [line for line in lines if (line["case"], line["seq"]) not in sample.stored]
    cases = sorted({line["case"] for line in lines})
    held: dict[str, int] = {}
    for case in cases:
        exported = {
            (line["case"], line["seq"]): _comparable(line)
            for line in map(json.loads, export_stream(store.app, uuid.UUID(case)))
        }
        held[case] = len(exported)
        for line in lines:
            if line["case"] == case and exported.get((case, line["seq"])) != _comparable(line):
                found.append(f"line of case {case} seq {line['seq']} not stored as given")
                break
    if sample.origin != "again" and after[0] - before[0] > len(new):
        found.append(f"{after[0] - before[0]} events stored for {len(new)} new line(s)")
    again = import_in_process(store, blob)
    if not again.accepted or digest(services) != after:
        found.append(f"importing an accepted stream again was not a no-op: {again.problems}")
    store.digest = after

    services.projector.catch_up()
    failures = services.projector.failures()
    if failures:
        found.append(f"events set aside by the projections: {failures[:3]}")
    years = sorted(_years(lines))
    shown = rng_of(sample).choice(years)
    for year in years:
        for programme in (None, *Programme):
            figures = annual_statistics(services.views, year, programme)
            registered = registered_by_region(meetings_of(services.views, year, programme))
            statistics_csv(figures, registered)
            if year == shown and programme is None:
                _render(statistics_table(figures, registered))
        for figure in ("meetings.total", "fully_registered.youth_present.by_region.Antwerpen"):
            explanation_text(explain(services.views, year, figure))
        report = bottleneck_report(services.views, year, None)
        bottleneck_csv(report)
        if year == shown:
            _render(bottleneck_table(report))
    for case in cases:
        entries = history(services.views, uuid.UUID(case))
        if len(entries) != held[case]:
            found.append(f"the history of case {case} has {len(entries)} of {held[case]} events")
        json.dumps([asdict(e) for e in entries])
        if case == cases[0]:
            _render(history_table(case, entries))
        if get_case_view(services.views, uuid.UUID(case)) is None:
            found.append(f"no case view of case {case}")
    incremental = rows(services)
    services.projector.rebuild()
    if rows(services) != incremental:
        found.append("the projections rebuilt differ from the ones built event by event")


def cli_reports(store: Store, sample: Sample, blob: bytes, found: list[str]) -> None:
    """The reports as `overleg` processes print them, for one accepted stream."""
    lines = stored_lines(blob)
    year = str(min(_years(lines)))
    commands = [
        ("stats", year, "--format", "json"),
        ("bottlenecks", year),
        ("history", lines[0]["case"]),
        ("rebuild", "--quiet"),
    ]
    for command in commands:
        done = run_overleg(store.url, *command)
        if done.returncode != 0 or "Traceback" in done.stderr:
            found.append(
                f"overleg {' '.join(command)} exited {done.returncode}: {done.stderr[-1500:]}"
            )


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


@dataclass
class Summary:
    backend: str
    streams: int = 0
    accepted: int = 0
    refused: int = 0
    tracebacks: int = 0
    digest_changes: int = 0
    other: int = 0
    processes: int = 0
    seconds: float = 0.0
    slowest: float = 0.0
    budget_reached: bool = False
    by_mutation: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def server_of(database_url: str | None) -> str | None:
    """The PostgreSQL server (its URL without a schema) a URL names; None for SQLite."""
    if database_url is None or Database.from_url(database_url).backend == "sqlite":
        return None
    parts = urlsplit(database_url)
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "schema"])
    return urlunsplit(parts._replace(query=query))


def fuzz(
    *,
    streams: int,
    seed: int,
    database_url: str | None = None,
    start: int = 0,
    seconds: float | None = None,
    processes: int = 0,
    per_store: int = 20,
    failures: Path | None = None,
    progress: Callable[[Summary], None] | None = None,
) -> Summary:
    """Run ``streams`` streams (numbers ``start`` on) and check every outcome, each in a
    store of ``database_url``'s kind (SQLite when None): a new one every ``per_store``."""
    server = server_of(database_url)
    summary = Summary("sqlite" if server is None else "postgresql")
    began = time.perf_counter()
    every = max(1, streams // processes) if processes else 0
    with tempfile.TemporaryDirectory(prefix="overleg-fuzz-") as tmp:
        workdir = Path(tmp)
        store: Store | None = None
        try:
            if processes:
                _missing_file(workdir, summary)
            for number in range(start, start + streams):
                if seconds is not None and time.perf_counter() - began > seconds:
                    summary.budget_reached = True
                    break
                if store is None or number % per_store == 0:
                    if store is not None:
                        store.close()
                    store = Store(server, workdir)
                by_process = bool(every) and (number - start) % every == every // 2
                broke = _one(store, seed, number, by_process, workdir, summary, failures)
                if broke:
                    store.close()
                    store = None
                if progress is not None:
                    progress(summary)
        finally:
            if store is not None:
                store.close()
    summary.seconds = time.perf_counter() - began
    return summary


def _missing_file(workdir: Path, summary: Summary) -> None:
    missing = workdir / "nergens.jsonl"
    done = run_overleg(f"sqlite:///{workdir / 'missing.db'}", "import", str(missing))
    summary.processes += 1
    if done.returncode != 2 or str(missing) not in done.stderr or "Traceback" in done.stderr:
        summary.violations.append(
            Violation(-1, "missing file", f"exit {done.returncode}: {done.stderr[-500:]}")
        )
        summary.other += 1


def _one(
    store: Store,
    seed: int,
    number: int,
    by_process: bool,
    workdir: Path,
    summary: Summary,
    failures: Path | None,
) -> bool:
    """One stream, imported and checked; returns whether the store can no longer be trusted."""
    summary.streams += 1
    try:
        sample = make_sample(seed, number, store.history)
        blob = sample.blob()
    except Exception:  # a fault of this program, not of the importer: reported all the same
        summary.other += 1
        summary.violations.append(Violation(number, "making the stream", traceback.format_exc()))
        return False
    found: list[str] = []
    try:
        outcome = _checked(store, sample, blob, by_process, workdir, summary, found)
    except Exception:
        found.append(f"traceback:\n{traceback.format_exc()}")
        outcome = Outcome()
    summary.accepted += int(outcome.accepted)
    summary.refused += int(outcome.refused)
    for name in sample.mutations or ["none"]:
        summary.by_mutation[f"{name} {'accepted' if outcome.accepted else 'refused'}"] += 1
    if outcome.accepted and not found:
        lines = stored_lines(blob)
        store.history.accepted(lines, sample.full, bool(sample.mutations))
        store.blobs.append(blob)
    if not found:
        return False
    for said in found:
        if said.startswith("traceback"):
            summary.tracebacks += 1
        elif said.startswith("the store changed"):
            summary.digest_changes += 1
        else:
            summary.other += 1
    detail = "\n".join(found)
    summary.violations.append(Violation(number, "/".join(sample.mutations) or "none", detail))
    if failures is not None and len(summary.violations) <= 20:
        _reproducer(failures, seed, number, sample, blob, store.blobs, detail)
    return True


def _checked(
    store: Store,
    sample: Sample,
    blob: bytes,
    by_process: bool,
    workdir: Path,
    summary: Summary,
    found: list[str],
) -> Outcome:
    """Import one stream and check what came of it; what is wrong goes to ``found``."""
    before = store.digest
    if by_process:
        outcome = import_by_process(store, blob, workdir / f"stream-{sample.number}.jsonl", found)
        summary.processes += 1
    else:
        outcome = import_in_process(store, blob)
    summary.slowest = max(summary.slowest, outcome.seconds)
    if outcome.seconds > SLOWEST_IMPORT:
        found.append(f"the import took {outcome.seconds:.0f} s")
    expected = sample.expect.outcome if sample.expect is not None else ""
    if outcome.refused:
        check_refusal(sample, blob, outcome, found)
        if digest(store.services) != before:
            found.append("the store changed although the stream was refused")
        if expected == "accepted":
            mutations = "/".join(sample.mutations) or "a valid stream"
            found.append(f"{mutations} was refused: {outcome.problems}")
    elif outcome.accepted:
        if expected == "refused":
            found.append(f"{'/'.join(sample.mutations)} was accepted; it must be refused")
        check_acceptance(store, sample, blob, found)
        if by_process:
            cli_reports(store, sample, blob, found)
            summary.processes += 4
    return outcome


def _reproducer(
    failures: Path,
    seed: int,
    number: int,
    sample: Sample,
    blob: bytes,
    earlier: list[bytes],
    detail: str,
) -> None:
    """The stream, and the streams its store had accepted before it, as files to import."""
    failures.mkdir(parents=True, exist_ok=True)
    stem = f"seed{seed}-stream{number}"
    steps = []
    for order, accepted in enumerate(earlier, start=1):
        path = failures / f"{stem}-before-{order}.jsonl"
        path.write_bytes(accepted)
        steps.append(f"overleg import {path}")
    stream = failures / f"{stem}.jsonl"
    stream.write_bytes(blob)
    steps.append(f"overleg import {stream}")
    (failures / f"{stem}.txt").write_text(
        f"seed {seed}, stream {number} ({sample.origin}; mutations: "
        f"{', '.join(sample.mutations) or 'none'})\n{detail}\n\nreproduce on an empty store:\n"
        + "\n".join(f"  {s}" for s in steps)
        + "\n",
        encoding="utf-8",
    )


def summary_table(summary: Summary) -> Table:
    table = Table(title=f"Stream fuzzing on {summary.backend}")
    table.add_column("")
    table.add_column("", justify="right")
    table.show_header = False
    for name, value in [
        ("streams", f"{summary.streams:,}"),
        ("accepted", f"{summary.accepted:,}"),
        ("refused", f"{summary.refused:,}"),
        ("tracebacks", str(summary.tracebacks)),
        ("digest changes", str(summary.digest_changes)),
        ("other violations", str(summary.other)),
        ("overleg processes", str(summary.processes)),
        ("slowest import, s", f"{summary.slowest:.2f}"),
        ("seconds", f"{summary.seconds:.0f}"),
    ]:
        table.add_row(name, value)
    return table


def mutation_table(summary: Summary) -> Table:
    table = Table(title="Mutations (a stream may carry several)")
    table.add_column("mutation")
    table.add_column("accepted", justify="right")
    table.add_column("refused", justify="right")
    names = sorted({key.rsplit(" ", 1)[0] for key in summary.by_mutation})
    for name in names:
        table.add_row(
            name,
            str(summary.by_mutation[f"{name} accepted"]),
            str(summary.by_mutation[f"{name} refused"]),
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000, help="how many streams (1000)")
    parser.add_argument("--seed", type=int, default=1, help="the run's seed (1)")
    parser.add_argument("--start", type=int, default=0, help="the first stream's number (0)")
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgresql"],
        default=None,
        help="sqlite (default), or postgresql: the server of --database-url, else of "
        "OVERLEG_DATABASE_URL when it names one, else of OVERLEG_TEST_POSTGRES_URL; "
        "a new schema per store, dropped afterwards",
    )
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server to use")
    parser.add_argument("--seconds", type=float, default=None, help="stop starting streams after")
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="streams imported by real `overleg import` processes (default: 1 in 200)",
    )
    parser.add_argument("--per-store", type=int, default=20, help="streams per fresh store (20)")
    parser.add_argument(
        "--failures",
        type=Path,
        default=Path(tempfile.gettempdir()) / "overleg-fuzz-failures",
        help="where reproducers go (a folder of the system's temporary directory)",
    )
    args = parser.parse_args()
    configured = args.database_url or os.environ.get("OVERLEG_DATABASE_URL", "")
    postgres = configured if configured.startswith("postgres") else PG
    backend = args.backend or ("postgresql" if configured.startswith("postgres") else "sqlite")
    processes = args.processes if args.processes is not None else max(1, args.streams // 200)
    console = Console(stderr=True, highlight=False)

    def progress(summary: Summary) -> None:
        said = (
            f"stream {summary.streams:,}/{args.streams:,}: {summary.accepted:,} accepted, "
            f"{summary.refused:,} refused, {len(summary.violations)} violation(s)"
        )
        if console.is_terminal:
            status.update(said)
        elif summary.streams % 1000 == 0:
            console.print(said)

    with console.status("fuzzing") as status:
        summary = fuzz(
            streams=args.streams,
            seed=args.seed,
            database_url=postgres if backend == "postgresql" else None,
            start=args.start,
            seconds=args.seconds,
            processes=processes,
            per_store=args.per_store,
            failures=args.failures,
            progress=progress,
        )
    out = Console(highlight=False)
    out.print(summary_table(summary))
    out.print(mutation_table(summary))
    if summary.budget_reached:
        out.print(f"time budget of {args.seconds:.0f} s reached after {summary.streams:,} streams")
    for violation in summary.violations[:10]:
        out.print(f"stream {violation.number} ({violation.what}):", violation.detail, markup=False)
    if not summary.ok:
        first = summary.violations[0].number
        store_start = first - first % args.per_store
        out.print(
            f"{len(summary.violations)} violation(s); reproducers in {args.failures}/. "
            f"Again: scripts/fuzz --backend {backend} --seed {args.seed} --start {store_start} "
            f"--streams {first - store_start + 1} --per-store {args.per_store} --processes 0"
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
