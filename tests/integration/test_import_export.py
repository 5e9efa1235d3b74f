"""`import` and `export` of the v1 stream: all or nothing, idempotent, round trips, clear errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from overleg.application import Overleg
from overleg.streams import StreamRefused, export_stream, import_stream
from strategies import valid_streams, with_fresh_ids

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "sample-stream.jsonl"
Lines = list[dict[str, Any]]


def sample() -> Lines:
    return [json.loads(x) for x in SAMPLE.read_text(encoding="utf-8").splitlines()]


def dumps(lines: Lines) -> list[str]:
    return [json.dumps(line, ensure_ascii=False) for line in lines]


def normalised(lines: Lines) -> list[dict[str, Any]]:
    """Lines as the contract compares them: `at` as an instant, key order aside."""
    return [{**line, "at": datetime.fromisoformat(line["at"])} for line in lines]


def exported(app: Overleg) -> Lines:
    return [json.loads(x) for x in export_stream(app)]


def refused(app: Overleg, raw: list[str]) -> list[str]:
    """Import that must be refused: the problems, as printed; and nothing written."""
    before = exported(app)
    with pytest.raises(StreamRefused) as caught:
        import_stream(app, raw)
    assert exported(app) == before, "a refused stream wrote something"
    assert "nothing was written" in str(caught.value)
    return [str(p) for p in caught.value.problems]


def test_the_sample_imports_and_exports_line_for_line(store: Overleg) -> None:
    lines = sample()
    report = import_stream(store, dumps(lines))
    assert (report.new_events, report.already_stored, report.cases) == (len(lines), 0, 12)
    by_key = {(x["case"], x["seq"]): x for x in exported(store)}
    assert normalised([by_key[x["case"], x["seq"]] for x in lines]) == normalised(lines)
    assert [x["at"] for x in exported(store)] == [x["at"] for x in lines]  # offsets kept


def test_importing_the_same_stream_again_changes_nothing(store: Overleg) -> None:
    raw = dumps(sample())
    import_stream(store, raw)
    before = exported(store)
    again = import_stream(store, raw)
    assert (again.new_events, again.already_stored) == (0, len(raw))
    assert exported(store) == before


def test_a_stream_that_continues_stored_cases_appends_only_the_new_events(
    store: Overleg,
) -> None:
    lines = sample()
    first = [x for x in lines if x["seq"] <= 3]
    import_stream(store, dumps(first))
    report = import_stream(store, dumps(lines))
    assert (report.new_events, report.already_stored) == (len(lines) - len(first), len(first))
    rest = [x for x in lines if x["seq"] > 3]
    report = import_stream(store, dumps(rest))  # only the continuation, on its own
    assert report.new_events == 0
    assert len(exported(store)) == len(lines)


def test_a_line_that_differs_from_what_is_stored_is_a_conflict(store: Overleg) -> None:
    lines = sample()
    import_stream(store, dumps(lines))
    changed = [dict(x) for x in lines]
    changed[5] = {**changed[5], "by": "someone-else"}
    problems = refused(store, dumps(changed))
    assert problems == [
        f"line 6, case {changed[5]['case']}: [conflict] seq {changed[5]['seq']} is already "
        "stored with different content (differs in by)"
    ]


BadEdit = Callable[[list[str], Lines], None]


def _truncate(raw: list[str], lines: Lines) -> None:
    raw[-1] = raw[-1][: len(raw[-1]) // 2]


def _unknown_type(raw: list[str], lines: Lines) -> None:
    raw[-1] = json.dumps({**lines[-1], "type": "MeetingCancelled"})


def _unknown_data_key(raw: list[str], lines: Lines) -> None:
    raw[-1] = json.dumps({**lines[-1], "data": {**lines[-1]["data"], "colour": "red"}})


def _unknown_line_key(raw: list[str], lines: Lines) -> None:
    raw[-1] = json.dumps({**lines[-1], "note": "x"})


def _missing_key(raw: list[str], lines: Lines) -> None:
    raw[-1] = json.dumps({k: v for k, v in lines[-1].items() if k != "by"})


def _no_offset(raw: list[str], lines: Lines) -> None:
    raw[-1] = json.dumps({**lines[-1], "at": lines[-1]["at"][:19]})


def _seq_gap(raw: list[str], lines: Lines) -> None:
    raw[-1] = json.dumps({**lines[-1], "seq": lines[-1]["seq"] + 1})


def _seq_back(raw: list[str], lines: Lines) -> None:
    raw.append(raw[-1])


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (_truncate, "not valid JSON"),
        (_unknown_type, "unknown event type 'MeetingCancelled'"),
        (_unknown_data_key, "unknown key 'data.colour'"),
        (_unknown_line_key, "unknown key 'note'"),
        (_missing_key, "missing key 'by'"),
        (_no_offset, "at:"),
        (_seq_gap, "[seq-contiguous]"),
        (_seq_back, "[seq-order]"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else "",
)
def test_each_malformed_line_gets_its_own_error_and_nothing_is_written(
    store: Overleg, edit: BadEdit, says: str
) -> None:
    lines = sample()
    raw = dumps(lines)
    edit(raw, lines)
    problems = refused(store, raw)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"line {len(raw)}"), problems
    assert says in problems[0], problems
    if "JSON" not in says:
        assert lines[-1]["case"] in problems[0]


def _meeting_without_chair(lines: Lines) -> tuple[Lines, int, str]:
    """The sample with one case's chair appointment left out: its first meeting breaks."""
    chairs = [i for i, x in enumerate(lines) if x["type"] == "ChairAppointed"]
    gone = lines[chairs[0]]
    case = gone["case"]
    kept = [x for x in lines if x is not gone]
    own = [x for x in kept if x["case"] == case]
    renumbered = {id(x): n for n, x in enumerate(own, start=1)}
    kept = [{**x, "seq": renumbered[id(x)]} if x["case"] == case else x for x in kept]
    first_meeting = next(
        n for n, x in enumerate(kept, 1) if x["case"] == case and x["type"] == "MeetingHeld"
    )
    return kept, first_meeting, case


def test_a_broken_rule_names_the_line_the_case_and_the_rule(store: Overleg) -> None:
    lines, number, case = _meeting_without_chair(sample())
    problems = refused(store, dumps(lines))
    assert problems == [
        f"line {number}, case {case}: [chair-required] MeetingHeld: "
        "A meeting needs an appointed chair"
    ]


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_one_bad_line_anywhere_writes_nothing(store: Overleg, where: str) -> None:
    lines = sample()
    raw = dumps(lines)
    index = {"first": 0, "middle": len(raw) // 2, "last": len(raw) - 1}[where]
    raw[index] = json.dumps({**lines[index], "type": "Unknown"})
    problems = refused(store, raw)
    assert problems[0].startswith(f"line {index + 1}, case {lines[index]['case']}:")


def test_a_case_must_start_with_its_request(store: Overleg) -> None:
    lines = sample()
    later = [x for x in lines if x["seq"] > 1][:1]
    problems = refused(store, dumps([{**later[0], "seq": 1}]))
    assert "[request-first]" in problems[0]
    assert problems[0].startswith("line 1")


def test_a_chair_who_is_a_party_is_refused(store: Overleg) -> None:
    lines = sample()
    index = next(i for i, x in enumerate(lines) if x["type"] == "ChairAppointed")
    youth = next(
        x["data"]["client"]["ref"]
        for x in lines
        if x["case"] == lines[index]["case"] and x["type"] == "Requested"
    )
    lines[index] = {**lines[index], "data": {"chair": youth}}
    problems = refused(store, dumps(lines))
    assert problems[0].startswith(f"line {index + 1}, case {lines[index]['case']}: [chair-neutral]")


def test_several_problems_are_all_listed_once_per_case(store: Overleg) -> None:
    lines = sample()
    other = next(i for i, x in enumerate(lines) if i > 3 and x["case"] != lines[3]["case"])
    raw = dumps(lines)
    for index in (3, other):
        raw[index] = json.dumps({**lines[index], "type": "Unknown"})
    problems = refused(store, raw)
    assert [p.split(",")[0] for p in problems] == ["line 4", f"line {other + 1}"]


def test_export_of_one_case(store: Overleg) -> None:
    lines = sample()
    import_stream(store, dumps(lines))
    case = lines[0]["case"]
    from uuid import UUID

    own = [json.loads(x) for x in export_stream(store, UUID(case))]
    assert normalised(own) == normalised([x for x in lines if x["case"] == case])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=valid_streams().map(with_fresh_ids))
def test_any_valid_stream_round_trips(store: Overleg, stream: Lines) -> None:
    report = import_stream(store, dumps(stream))
    assert report.new_events == len(stream)
    cases = {x["case"] for x in stream}
    back = [x for x in exported(store) if x["case"] in cases]
    key = lambda x: (x["case"], x["seq"])  # noqa: E731
    assert normalised(sorted(back, key=key)) == normalised(sorted(stream, key=key))
    assert import_stream(store, [json.dumps(x) for x in back]).new_events == 0
