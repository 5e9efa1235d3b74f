"""v1 streams keep their meaning under contract v2, on SQLite and PostgreSQL: every case keeps
the v1 rule set, the export gives back every line, a second import adds nothing, and the
figures are those v1 defines. Moved before the requests, the v2 effective instant decides."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from psycopg import sql

import reference2015
import report2015
from conftest import statistics_json, v1_keys
from overleg.adapters.eventstore import Database
from overleg.adapters.views import ViewStore
from overleg.aggregates.case import Case
from overleg.aggregates.values import Programme, RuleSet
from overleg.application import Overleg
from overleg.bootstrap import bootstrap
from overleg.policies.rulesets import DEFAULT_V2_FROM
from overleg.projections.runner import Projector
from overleg.streams import StreamRefused, export_stream, import_stream
from strategies_v2 import REGIONS, v1_streams

Line = dict[str, Any]
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "sample-stream.jsonl"
PROGRAMMES: tuple[Programme | None, ...] = (None, *Programme)
EXAMPLES = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- stores and streams ---------------------------------------------------------------------


@contextmanager
def fresh_store(database_url: str, v2_from: datetime = DEFAULT_V2_FROM) -> Iterator[Overleg]:
    """An empty store next to the fixture's one (a new SQLite file or PostgreSQL schema),
    with the v2 effective instant at ``v2_from``."""
    database = Database.from_url(database_url)
    name = uuid.uuid4().hex[:12]
    if database.backend == "sqlite":
        path = Path(database.sqlite_path).with_name(f"v1-{name}.db")
        database = replace(database, sqlite_path=str(path))
    else:
        database = replace(database, schema=f"overleg_v1_{name}")
    app = Overleg(database, v2_from=v2_from)
    try:
        yield app
    finally:
        app.close()
        if database.backend == "postgresql":
            with psycopg.connect(database.conninfo(), autocommit=True) as conn:
                drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                conn.execute(drop.format(sql.Identifier(database.schema)))


def encoded(lines: list[Line]) -> list[str]:
    return [json.dumps(line, ensure_ascii=False) for line in lines]


def exported(app: Overleg) -> list[Line]:
    return [json.loads(text) for text in export_stream(app)]


def requests(lines: list[Line]) -> dict[str, datetime]:
    """When each case of a stream was requested."""
    return {
        line["case"]: datetime.fromisoformat(line["at"])
        for line in lines
        if line["type"] == "Requested"
    }


@cache
def reference_streams() -> dict[str, list[Line]]:
    sample = [json.loads(text) for text in SAMPLE.read_text(encoding="utf-8").splitlines()]
    return {
        "sample": sample,
        "report-2015": report2015.report_2015().lines,
        "reference-2015": reference2015.reference_stream(),
    }


# -- what "unchanged" means -------------------------------------------------------------------


def assert_every_case_on_v1(app: Overleg, lines: list[Line]) -> None:
    for case_id in requests(lines):
        case, events = app.replay(UUID(case_id))
        assert case is not None
        assert case.rule_set is RuleSet.V1, case_id
        first = events[0]
        assert isinstance(first, Case.Requested)
        assert first.rule_set == "v1"


def comparable(lines: list[Line]) -> dict[tuple[str, int], Line]:
    """Lines by case and seq, with `at` as an instant: what a round trip must keep."""
    return {
        (line["case"], line["seq"]): {**line, "at": datetime.fromisoformat(line["at"])}
        for line in lines
    }


def assert_exported_unchanged(app: Overleg, lines: list[Line]) -> None:
    """The export holds exactly these lines (same keys and values, `at` the same instant),
    each case's in seq order."""
    out = exported(app)
    assert len(out) == len(lines)
    assert comparable(out) == comparable(lines)
    for case_id in requests(lines):
        seqs = [line["seq"] for line in out if line["case"] == case_id]
        assert seqs == list(range(1, len(seqs) + 1))


def assert_import_again_adds_nothing(app: Overleg, lines: list[Line]) -> None:
    before = exported(app)
    for again in (encoded(lines), list(export_stream(app))):
        report = import_stream(app, again)
        assert (report.new_events, report.already_stored) == (0, len(lines))
    assert exported(app) == before


# -- the figures as event-stream-v1.md defines them, folded here from the lines ---------------


def half_up(part: int, whole: int) -> float:
    """A percentage rounded half up to one decimal, in whole numbers only."""
    if whole == 0:
        return 0.0
    tenths, rest = divmod(part * 1000, whole)
    return (tenths + (2 * rest >= whole)) / 10


def fold_meetings(lines: list[Line]) -> list[dict[str, Any]]:
    """Every held meeting with what the v1 figures count of it."""
    where: dict[str, tuple[str, str]] = {}
    meetings: dict[tuple[str, int], dict[str, Any]] = {}
    for line in lines:
        case, kind, data = line["case"], line["type"], line["data"]
        if kind == "Requested":
            where[case] = (data["programme"], data["region"])
        elif kind == "MeetingHeld":
            programme, region = where[case]
            meetings[case, data["meeting"]] = {
                "programme": programme,
                "region": region,
                "year": date_year(data["held_on"]),
                "number": data["meeting"],
                "youth": data["attendance"]["youth"] is True,
                "parents": data["attendance"]["parents"] is True,
                "workplan": False,
                "coordinator": False,
                "registered": False,
            }
        elif kind == "WorkplanAgreed":
            meeting = meetings[case, data["meeting"]]
            meeting["workplan"] = True
            meeting["coordinator"] = data["coordinator"] is not None
        elif kind == "RegistrationCompleted":
            meetings[case, data["meeting"]]["registered"] = True
    return list(meetings.values())


def date_year(day: str) -> int:
    return int(day.split("-", 1)[0])


def fold_figures(
    meetings: list[dict[str, Any]], year: int, programme: Programme | None
) -> dict[str, Any]:
    def held_in(y: int) -> list[dict[str, Any]]:
        return [
            m
            for m in meetings
            if m["year"] == y and (programme is None or m["programme"] == programme.value)
        ]

    def per_region(ms: list[dict[str, Any]]) -> dict[str, int]:
        return {region: sum(m["region"] == region for m in ms) for region in REGIONS}

    held = held_in(year)
    registered = [m for m in held if m["registered"]]

    def outcome(flag: str) -> dict[str, Any]:
        hits = [m for m in registered if m[flag]]
        return {
            "total": len(hits),
            "pct": half_up(len(hits), len(registered)),
            "by_region": per_region(hits),
        }

    workplans = outcome("workplan")
    coordinators = outcome("coordinator")
    coordinators["pct_of_workplans"] = half_up(coordinators["total"], workplans["total"])
    return {
        "year": year,
        "programme": None if programme is None else programme.value,
        "meetings": {
            "total": len(held),
            "first": sum(m["number"] == 1 for m in held),
            "follow_up": sum(m["number"] > 1 for m in held),
            "previous_year_total": len(held_in(year - 1)),
            "by_region": {
                region: {"count": count, "pct": half_up(count, len(held))}
                for region, count in per_region(held).items()
            },
        },
        "fully_registered": {
            "total": len(registered),
            "youth_present": outcome("youth"),
            "parents_present": outcome("parents"),
            "workplans": workplans,
            "coordinators": coordinators,
        },
    }


def assert_v1_figures(app: Overleg, lines: list[Line]) -> None:
    """After a catch-up, the figures of every year with meetings (and the year after) equal
    the fold, for all programmes and each."""
    meetings = fold_meetings(lines)
    years = {m["year"] for m in meetings}
    with closing(ViewStore(app.database)) as views:
        Projector(app.event_log, views).catch_up()
        for year in sorted(years | {y + 1 for y in years}):
            for programme in PROGRAMMES:
                got = v1_keys(statistics_json(views, year, programme))
                assert got == fold_figures(meetings, year, programme), (year, programme)


# -- generated v1 streams ------------------------------------------------------------------


@EXAMPLES
@given(stream=v1_streams())
def test_any_v1_stream_keeps_its_meaning(database_url: str, stream: list[Line]) -> None:
    # Each stream holds a case that only v1 allows (``strategies_v2.QUIRKS``).
    assert max(requests(stream).values()) < DEFAULT_V2_FROM
    with fresh_store(database_url) as app:
        report = import_stream(app, encoded(stream))
        assert (report.new_events, report.already_stored) == (len(stream), 0)
        assert_every_case_on_v1(app, stream)
        assert_exported_unchanged(app, stream)
        assert_import_again_adds_nothing(app, stream)
        assert_v1_figures(app, stream)


@EXAMPLES
@given(stream=v1_streams(quirky=True))
def test_the_effective_instant_decides_which_rules_judge_a_stream(
    database_url: str, stream: list[Line]
) -> None:
    requested = requests(stream).values()
    # Moved to the first request: every case of the stream is a v2 case, and each stream
    # holds a case that v2 refuses (a line going back in time, a meeting recorded before it
    # was held, a parent's word alone for an adult, ...).
    with fresh_store(database_url, v2_from=min(requested)) as app:
        with pytest.raises(StreamRefused) as refused:
            import_stream(app, encoded(stream))
        problems = refused.value.problems
        assert problems
        assert {p.rule_set for p in problems} == {"v2"}, [str(p) for p in problems]
        assert all(p.rule for p in problems)
        assert all("rule set v2" in str(p) for p in problems)
        assert exported(app) == []
    # Just after the last request: the same stream is v1 throughout, and imports.
    with fresh_store(database_url, v2_from=max(requested) + timedelta(microseconds=1)) as app:
        assert import_stream(app, encoded(stream)).new_events == len(stream)
        assert_every_case_on_v1(app, stream)


# -- the streams the tests and the sample use today --------------------------------------------


@pytest.mark.parametrize("name", ["report-2015", "reference-2015"])
def test_the_fold_gives_the_published_2015_figures(name: str) -> None:
    """The fold above is the contract's reading: it finds the report's figures in the streams
    that encode it (event-stream-v1.md, "Reference figures")."""
    meetings = fold_meetings(reference_streams()[name])
    figures = fold_figures(meetings, 2015, Programme.INTEGRALE_JEUGDHULP)
    registered = figures["fully_registered"]
    assert (figures["meetings"]["total"], figures["meetings"]["previous_year_total"]) == (379, 252)
    assert figures["meetings"]["by_region"]["Antwerpen"] == {"count": 119, "pct": 31.4}
    assert registered["total"] == 336
    outcomes = ("youth_present", "parents_present", "workplans", "coordinators")
    assert [(registered[k]["total"], registered[k]["pct"]) for k in outcomes] == [
        (108, 32.1),
        (239, 71.1),
        (210, 62.5),
        (203, 60.4),
    ]
    assert registered["coordinators"]["pct_of_workplans"] == 96.7
    assert registered["workplans"]["by_region"]["West-Vlaanderen"] == 72


@pytest.mark.parametrize("name", ["sample", "report-2015", "reference-2015"])
def test_the_reference_streams_keep_their_meaning(store: Overleg, name: str) -> None:
    lines = reference_streams()[name]
    assert max(requests(lines).values()) < DEFAULT_V2_FROM
    assert import_stream(store, encoded(lines)).new_events == len(lines)
    assert_every_case_on_v1(store, lines)
    assert_exported_unchanged(store, lines)
    assert_v1_figures(store, lines)


# -- the setting, as the service and the commands read it ---------------------------------------


def _line(seq: int, kind: str, data: dict[str, Any]) -> Line:
    return {
        "case": "5a0c3e1d-7b2f-4d6e-9a8c-2015d0c0ffee",
        "seq": seq,
        "type": kind,
        "at": f"2015-03-{seq + 1:02d}T10:00:00+01:00",
        "by": "team-1",
        "data": data,
    }


# A 2015 case the v1 rules allow: the young person withdrew, a parent still consents, and
# the meeting is held (v2: "everyone must agree").
WITHDRAWN_YET_MET = [
    _line(
        1,
        "Requested",
        {
            "programme": "integrale_jeugdhulp",
            "region": "Antwerpen",
            "requested_by": {"ref": "ouder-1", "role": "parent"},
            "channel": "telefoon",
            "client": {"ref": "jongere-1", "birth_date": "2001-04-05"},
            "question": "Hoe verder na de opname?",
        },
    ),
    _line(2, "ConsentGiven", {"party": {"ref": "jongere-1", "role": "youth"}}),
    _line(3, "ConsentGiven", {"party": {"ref": "ouder-1", "role": "parent"}}),
    _line(4, "ConsentWithdrawn", {"party": {"ref": "jongere-1", "role": "youth"}, "reason": None}),
    _line(5, "ChairAppointed", {"chair": "voorzitter-1"}),
    _line(
        6,
        "MeetingHeld",
        {
            "meeting": 1,
            "held_on": "2015-03-06",
            "place": "CAW",
            "attendance": {
                "youth": False,
                "parents": True,
                "trusted_person": None,
                "professionals": ["hulpverlener-1"],
            },
        },
    ),
]


def test_overleg_v2_from_moves_the_effective_instant(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OVERLEG_DATABASE_URL", database_url)
    monkeypatch.setenv("OVERLEG_V2_FROM", "2015-01-01T00:00:00+01:00")
    services = bootstrap()
    try:
        with pytest.raises(StreamRefused) as refused:
            import_stream(services.app, encoded(WITHDRAWN_YET_MET))
        (problem,) = refused.value.problems
        assert (problem.line, problem.rule, problem.rule_set) == (6, "consent-required", "v2")
        assert "[consent-required, rule set v2]" in str(problem)
        assert exported(services.app) == []
    finally:
        services.close()

    monkeypatch.delenv("OVERLEG_V2_FROM")
    services = bootstrap()
    try:
        report = import_stream(services.app, encoded(WITHDRAWN_YET_MET))
        assert report.new_events == len(WITHDRAWN_YET_MET)
        assert_every_case_on_v1(services.app, WITHDRAWN_YET_MET)
        assert_exported_unchanged(services.app, WITHDRAWN_YET_MET)
    finally:
        services.close()
