"""Importing and exporting the v1 event stream against a real store, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from conftest import reopen
from overleg.adapters.eventstore import Database
from overleg.application import Overleg
from overleg.streams import LineProblem, StreamRefused, export_stream, import_stream, importer
from strategies import valid_streams

Line = dict[str, Any]
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "sample-stream.jsonl"
CASE = "3f2c9a4e-8b1d-4c6a-9e7f-0a1b2c3d4e5f"
OTHER = "9d8c7b6a-5f4e-4d3c-8b2a-190807060504"


# -- helpers ----------------------------------------------------------------------------------


def sample() -> list[Line]:
    return [json.loads(text) for text in SAMPLE.read_text(encoding="utf-8").splitlines()]


def encoded(lines: list[Line]) -> list[str]:
    return [json.dumps(line, ensure_ascii=False) for line in lines]


def exported(app: Overleg) -> list[Line]:
    return [json.loads(text) for text in export_stream(app)]


def comparable(lines: list[Line]) -> dict[tuple[str, int], Line]:
    """Lines by case and seq, with `at` as an instant: what a round trip must keep."""
    return {
        (line["case"], line["seq"]): {**line, "at": datetime.fromisoformat(line["at"])}
        for line in lines
    }


def assert_reproduces(app: Overleg, lines: list[Line]) -> None:
    """The export holds exactly these lines, each case in seq order."""
    out = exported(app)
    assert comparable(out) == comparable(lines)
    assert len(out) == len(lines)
    for case in {line["case"] for line in lines}:
        seqs = [line["seq"] for line in out if line["case"] == case]
        assert seqs == list(range(1, len(seqs) + 1))


def refused(app: Overleg, raw: list[str]) -> list[LineProblem]:
    """Import a stream that must be refused; check that nothing of it was written."""
    before = exported(app)
    with pytest.raises(StreamRefused) as caught:
        import_stream(app, raw)
    assert exported(app) == before, "a refused stream changed the store"
    assert caught.value.problems, "a refusal without a problem"
    return caught.value.problems


def assert_names(problem: LineProblem, number: int, case: str | None, *fragments: str) -> None:
    text = str(problem)
    assert problem.line == number, text
    assert f"line {number}" in text
    if case is not None:
        assert case in text
    for fragment in fragments:
        assert fragment in text


@contextmanager
def fresh_store(database_url: str) -> Iterator[Overleg]:
    """An empty store next to the fixture's one: a new SQLite file or PostgreSQL schema."""
    database = Database.from_url(database_url)
    name = uuid.uuid4().hex[:12]
    if database.backend == "sqlite":
        path = Path(database.sqlite_path).with_name(f"example-{name}.db")
        database = replace(database, sqlite_path=str(path))
    else:
        database = replace(database, schema=f"overleg_example_{name}")
    app = Overleg(database)
    try:
        yield app
    finally:
        app.close()
        if database.backend == "postgresql":
            with psycopg.connect(database.conninfo(), autocommit=True) as conn:
                drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE")
                conn.execute(drop.format(sql.Identifier(database.schema)))


# -- one small case to break in many ways ---------------------------------------------------


def event(case: str, seq: int, kind: str, data: dict[str, Any], day: int = 0) -> Line:
    at = datetime(2015, 3, 2, 10, tzinfo=timezone(timedelta(hours=1))) + timedelta(days=day)
    return {
        "case": case,
        "seq": seq,
        "type": kind,
        "at": at.isoformat(),
        "by": "team-a",
        "data": data,
    }


def requested(case: str) -> Line:
    return event(
        case,
        1,
        "Requested",
        {
            "programme": "integrale_jeugdhulp",
            "region": "Limburg",
            "requested_by": {"ref": "hv-aanvrager", "role": "professional"},
            "channel": "cobe",
            "client": {"ref": "jongere-a", "birth_date": "2004-05-06"},
            "question": "Eén plan voor school en thuis",
        },
    )


def meeting(number: int = 1, held_on: str = "2015-03-20", **attendance: Any) -> dict[str, Any]:
    present = {"youth": True, "parents": False, "trusted_person": None}
    present.update(attendance)
    return {
        "meeting": number,
        "held_on": held_on,
        "place": "CAW Genk",
        "attendance": {**present, "professionals": ["hv-school", "hv-thuis"]},
    }


def workplan(coordinator: str | None = "hv-thuis", number: int = 1) -> dict[str, Any]:
    agreement = {"who": "hv-school", "what": "overleg met CLB", "due": None, "domain": "onderwijs"}
    return {
        "meeting": number,
        "agreements": [agreement],
        "coordinator": coordinator,
        "crisis_plan": False,
    }


def base_case(case: str = CASE) -> list[Line]:
    """A valid lifecycle; line N of the stream is seq N."""
    steps: list[tuple[str, dict[str, Any]]] = [
        ("ConsentGiven", {"party": {"ref": "jongere-a", "role": "youth"}}),
        ("ConsentGiven", {"party": {"ref": "ouder-a", "role": "parent"}}),
        ("ChairAppointed", {"chair": "voorzitter-a"}),
        ("MeetingHeld", meeting()),
        ("WorkplanAgreed", workplan()),
        ("RegistrationCompleted", {"meeting": 1}),
        ("FollowUpScheduled", {"on": "2015-06-01"}),
        ("BottleneckReported", {"theme": "wachtlijst", "description": "Geen plaats"}),
        ("CaseClosed", {"reason": "Werkplan loopt"}),
    ]
    return [requested(case)] + [
        event(case, seq, kind, data, day=seq) for seq, (kind, data) in enumerate(steps, start=2)
    ]


def with_data(number: int, data: dict[str, Any]) -> Callable[[list[Line]], list[Line]]:
    """Line ``number`` with other data."""

    def change(lines: list[Line]) -> list[Line]:
        lines[number - 1] = {**lines[number - 1], "data": data}
        return lines

    return change


def with_key(number: int, key: str, value: Any) -> Callable[[list[Line]], list[Line]]:
    def change(lines: list[Line]) -> list[Line]:
        lines[number - 1] = {**lines[number - 1], key: value}
        return lines

    return change


def without_line(number: int) -> Callable[[list[Line]], list[Line]]:
    """The case without line ``number``; the later seqs close the gap."""

    def change(lines: list[Line]) -> list[Line]:
        del lines[number - 1]
        return [{**line, "seq": seq} for seq, line in enumerate(lines, start=1)]

    return change


def inserted(number: int, kind: str, data: dict[str, Any]) -> Callable[[list[Line]], list[Line]]:
    """A new line ``number`` of the case; the later seqs make room."""

    def change(lines: list[Line]) -> list[Line]:
        lines.insert(number - 1, event(CASE, number, kind, data, day=number))
        return [{**line, "seq": seq} for seq, line in enumerate(lines, start=1)]

    return change


def without_key(number: int, path: str) -> Callable[[list[Line]], list[Line]]:
    """Line ``number`` without ``path`` (``by``, or ``data.party``)."""
    *outer, key = path.split(".")

    def change(lines: list[Line]) -> list[Line]:
        line = json.loads(json.dumps(lines[number - 1]))
        holder = line["data"] if outer else line
        del holder[key]
        lines[number - 1] = line
        return lines

    return change


# -- the sample stream ------------------------------------------------------------------------


def test_the_sample_stream_imports_and_exports_every_line(store: Overleg) -> None:
    lines = sample()
    report = import_stream(store, encoded(lines))
    assert (report.lines, report.cases, report.new_events, report.already_stored) == (
        len(lines),
        12,
        len(lines),
        0,
    )
    assert_reproduces(store, lines)


def test_importing_a_stream_again_adds_nothing(store: Overleg, database_url: str) -> None:
    raw = encoded(sample())
    import_stream(store, raw)
    before = exported(store)
    other = reopen(database_url)  # as a second run of the command would
    try:
        report = import_stream(other, raw)
    finally:
        other.close()
    assert (report.new_events, report.already_stored) == (0, len(raw))
    assert exported(store) == before


def test_the_export_imports_again_as_a_no_op(store: Overleg) -> None:
    import_stream(store, encoded(sample()))
    out = list(export_stream(store))
    report = import_stream(store, out)
    assert (report.new_events, report.already_stored) == (0, len(out))


def test_the_same_instant_in_another_offset_is_no_conflict(store: Overleg) -> None:
    lines = sample()
    import_stream(store, encoded(lines))
    in_utc = [
        {**line, "at": datetime.fromisoformat(line["at"]).astimezone(UTC).isoformat()}
        for line in lines
    ]
    report = import_stream(store, encoded(in_utc))
    assert report.new_events == 0


def test_a_stream_that_extends_stored_cases_appends_only_the_new_events(store: Overleg) -> None:
    lines = sample()
    early = [line for line in lines if line["seq"] <= 4]
    late = [line for line in lines if line["seq"] > 4]
    assert import_stream(store, encoded(early)).new_events == len(early)
    report = import_stream(store, encoded(lines))
    assert (report.new_events, report.already_stored) == (len(late), len(early))
    assert_reproduces(store, lines)


def test_a_stream_of_only_the_later_seqs_continues_stored_cases(store: Overleg) -> None:
    lines = sample()
    early = [line for line in lines if line["seq"] <= 2]
    import_stream(store, encoded(early))
    report = import_stream(store, encoded([line for line in lines if line["seq"] > 2]))
    assert (report.new_events, report.already_stored) == (len(lines) - len(early), 0)
    assert_reproduces(store, lines)


@pytest.mark.parametrize(
    ("change", "number", "differs"),
    [
        (with_data(5, {**meeting(), "place": "elders"}), 5, "data.place"),
        (with_key(3, "by", "iemand-anders"), 3, "by"),
        (with_key(2, "at", "2015-03-04T09:00:00+01:00"), 2, "at"),
        (with_key(10, "type", "RequestDeclined"), 10, "type"),
    ],
    ids=["data", "by", "at", "type"],
)
def test_a_stored_line_with_other_content_is_a_conflict(
    store: Overleg, change: Callable[[list[Line]], list[Line]], number: int, differs: str
) -> None:
    import_stream(store, encoded(base_case()))
    problems = refused(store, encoded(change(base_case())))
    assert len(problems) == 1, problems
    assert_names(problems[0], number, CASE, "[conflict]", differs)
    assert problems[0].rule == "conflict"


CASE_ID_FORMS: dict[str, Callable[[str], str]] = {
    "upper-case": str.upper,
    "without-hyphens": lambda case: case.replace("-", ""),
    "in-braces": lambda case: f"{{{case}}}",
    "as-urn": lambda case: f"urn:uuid:{case}",
}


def test_a_case_id_is_exported_as_it_was_written_or_refused(store: Overleg) -> None:
    """The round trip keeps every value (only the offset of `at` may change): a spelling of
    a case id that the export would rewrite must be refused at import."""
    rewritten = []
    for name, spelled in CASE_ID_FORMS.items():
        written = spelled(str(uuid.uuid5(uuid.NAMESPACE_URL, name)))
        try:
            import_stream(store, encoded([{**requested(CASE), "case": written}]))
        except StreamRefused:
            continue
        if written not in {line["case"] for line in exported(store)}:
            rewritten.append(written)
    assert rewritten == [], "imported, but exported under another id"


# -- bad streams: one clear error each, and nothing written --------------------------------

Breaker = Callable[[list[Line]], list[Line]]

RULES_BROKEN: list[tuple[str, Breaker, int, str]] = [
    ("meeting-without-chair", without_line(4), 4, "chair-required"),
    ("chair-is-a-party", with_data(4, {"chair": "ouder-a"}), 4, "chair-neutral"),
    ("chair-is-the-requester", with_data(4, {"chair": "hv-aanvrager"}), 4, "chair-neutral"),
    (
        "new-chair-was-present-as-professional",
        inserted(6, "ChairAppointed", {"chair": "hv-school"}),
        6,
        "chair-neutral",
    ),
    ("meeting-without-consent", lambda ls: without_line(2)(without_line(2)(ls)), 3, "consent-req"),
    ("meeting-before-request", with_data(5, meeting(held_on="2015-03-01")), 5, "meeting-after"),
    ("meeting-out-of-sequence", with_data(5, meeting(number=2)), 5, "meeting-sequence"),
    ("coordinator-absent", with_data(6, workplan("hv-elders")), 6, "coordinator-present"),
    ("coordinator-is-chair", with_data(6, workplan("voorzitter-a")), 6, "coordinator-not-chair"),
    (
        "workplan-without-agreements",
        with_data(6, {**workplan(), "agreements": []}),
        6,
        "workplan-agreements",
    ),
    ("workplan-of-no-meeting", with_data(6, workplan(number=2)), 6, "meeting-held"),
    ("attendance-unknown", with_data(5, meeting(parents=None)), 7, "attendance-known"),
    (
        "registration-twice",
        inserted(8, "RegistrationCompleted", {"meeting": 1}),
        8,
        "registration-once",
    ),
    ("follow-up-too-early", with_data(8, {"on": "2015-03-19"}), 8, "follow-up-date"),
    ("consent-twice", with_data(3, {"party": {"ref": "jongere-a", "role": "youth"}}), 3, "once"),
    (
        "withdraw-without-consent",
        inserted(
            2, "ConsentWithdrawn", {"party": {"ref": "ouder-a", "role": "parent"}, "reason": None}
        ),
        2,
        "consent-standing",
    ),
    ("decline-after-meeting", inserted(6, "RequestDeclined", {"reason": "te laat"}), 6, "decline"),
    (
        "after-closing",
        inserted(11, "BottleneckReported", {"theme": "x", "description": "y"}),
        11,
        "case-ended",
    ),
    ("request-twice", inserted(3, "Requested", requested(CASE)["data"]), 3, "request-first"),
    (
        "client-too-old",
        with_data(
            1, {**requested(CASE)["data"], "client": {"ref": "j", "birth_date": "1989-03-01"}}
        ),
        1,
        "client-age",
    ),
]


@pytest.mark.parametrize(
    ("breaker", "number", "rule"),
    [case[1:] for case in RULES_BROKEN],
    ids=[case[0] for case in RULES_BROKEN],
)
def test_a_broken_rule_is_refused_naming_the_line_the_case_and_the_rule(
    store: Overleg, breaker: Breaker, number: int, rule: str
) -> None:
    problems = refused(store, encoded(breaker(base_case())))
    assert len(problems) == 1, problems
    assert_names(problems[0], number, CASE, rule)
    assert problems[0].rule is not None
    assert rule in problems[0].rule


MALFORMED: list[tuple[str, Breaker, str]] = [
    (
        "unknown-type",
        with_key(3, "type", "MeetingMoved"),
        "unknown event type 'MeetingMoved'",
    ),
    (
        "unknown-key-in-data",
        with_data(3, {"party": {"ref": "ouder-a", "role": "parent"}, "colour": "blue"}),
        "unknown key 'data.colour'",
    ),
    ("unknown-top-level-key", with_key(3, "note", "x"), "unknown key 'note'"),
    ("missing-key", without_key(3, "by"), "missing key 'by'"),
    ("missing-data-key", without_key(3, "data.party"), "missing key 'data.party'"),
    ("at-without-offset", with_key(3, "at", "2015-03-05T10:00:00"), "at: "),
    ("at-not-a-time", with_key(3, "at", "gisteren"), "at: "),
    ("seq-not-a-number", with_key(3, "seq", "drie"), "seq: "),
    ("case-not-a-uuid", with_key(3, "case", "dossier-3"), "case: "),
    ("empty-ref", with_data(3, {"party": {"ref": "", "role": "parent"}}), "data.party.ref"),
    (
        "unknown-role",
        with_data(3, {"party": {"ref": "ouder-a", "role": "buur"}}),
        "data.party.role",
    ),
    (
        "a-name-where-a-reference-belongs",
        with_data(3, {"party": {"ref": "Lotte Peeters (12 jaar)", "role": "parent"}}),
        "data.party.ref: Value error, a reference is a pseudonym or directory id",
    ),
    ("a-name-as-recorder", with_key(3, "by", "Jan Janssens"), "by: Value error, a reference"),
    (
        "text-too-long",
        lambda ls: with_data(3, {"reason": "x" * 10_001})(with_key(3, "type", "CaseClosed")(ls)),
        "data.reason: String should have at most 10000 characters",
    ),
    (
        "instant-beyond-every-calendar",
        with_key(3, "at", "9999-12-31T23:59:59-14:00"),
        "at: Value error, an instant lies between",
    ),
    (
        "date-out-of-range",
        lambda ls: with_data(3, {"on": "0001-01-01"})(with_key(3, "type", "FollowUpScheduled")(ls)),
        "data.on: Value error, a date lies between",
    ),
]


@pytest.mark.parametrize(
    ("breaker", "fragment"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_a_malformed_line_is_refused_naming_the_line(
    store: Overleg, breaker: Breaker, fragment: str
) -> None:
    lines = breaker(base_case())
    problems = refused(store, encoded(lines))
    assert_names(problems[0], 3, lines[2].get("case"), fragment)
    # The case's later lines are not blamed for it, as long as the line names its case.
    assert len(problems) == 1 or lines[2].get("case") != CASE, problems


def test_a_name_as_the_clients_reference_is_refused_naming_the_line(store: Overleg) -> None:
    """A name must not enter the store through an import; the API refuses it too."""
    lines = base_case()
    lines[0] = {
        **lines[0],
        "data": {
            **lines[0]["data"],
            "client": {"ref": "Lotte Peeters (12 jaar)", "birth_date": "2004-05-06"},
        },
    }
    problems = refused(store, encoded(lines))
    assert_names(problems[0], 1, CASE, "data.client.ref", "never free text such as a name")


def test_a_line_cut_in_half_is_refused_as_invalid_json(store: Overleg) -> None:
    raw = encoded(base_case())
    raw[-1] = raw[-1][: len(raw[-1]) // 2]
    problems = refused(store, raw)
    assert len(problems) == 1, problems
    assert_names(problems[0], len(raw), None, "not valid JSON")


@pytest.mark.parametrize(
    ("breaker", "number", "rule", "fragment"),
    [
        (with_key(4, "seq", 5), 4, "seq-contiguous", "gap"),
        (with_key(4, "seq", 3), 4, "seq-order", "seq 3 comes after seq 3"),
        (with_key(4, "seq", 2), 4, "seq-order", "seq 2 comes after seq 3"),
        (lambda ls: [ls[0], ls[2], ls[1], *ls[3:]], 2, "seq-contiguous", "gap"),
    ],
    ids=["gap", "repeat", "back", "swapped"],
)
def test_seqs_out_of_order_are_refused(
    store: Overleg, breaker: Breaker, number: int, rule: str, fragment: str
) -> None:
    problems = refused(store, encoded(breaker(base_case())))
    assert_names(problems[0], number, CASE, f"[{rule}]", fragment)


def test_a_case_that_does_not_start_with_its_request_is_refused(store: Overleg) -> None:
    orphan = event(OTHER, 1, "ConsentGiven", {"party": {"ref": "ouder-b", "role": "parent"}})
    lines = [*base_case()[:2], orphan, *base_case()[2:]]
    problems = refused(store, encoded(lines))
    assert len(problems) == 1, problems
    assert_names(problems[0], 3, OTHER, "[request-first]")


def half_line_of_a_new_case() -> str:
    text = json.dumps(requested(OTHER))
    return text[: len(text) // 2]


def meeting_of_a_new_case() -> str:
    return json.dumps(event(OTHER, 1, "MeetingHeld", meeting()))


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize(
    ("bad_line", "case", "fragment"),
    [
        (half_line_of_a_new_case, None, "not valid JSON"),
        (meeting_of_a_new_case, OTHER, "[request-first]"),
    ],
    ids=["cut-in-half", "no-request"],
)
def test_one_bad_line_anywhere_in_a_big_stream_writes_nothing(
    store: Overleg, where: str, bad_line: Callable[[], str], case: str | None, fragment: str
) -> None:
    raw = encoded(sample())
    number = {"first": 1, "middle": len(raw) // 2, "last": len(raw) + 1}[where]
    raw.insert(number - 1, bad_line())
    problems = refused(store, raw)
    assert len(problems) == 1, problems
    assert_names(problems[0], number, case, fragment)


def test_a_bad_stream_on_top_of_stored_cases_leaves_them_as_they_were(store: Overleg) -> None:
    import_stream(store, encoded(sample()))
    raw = encoded(sample()) + encoded(base_case())
    raw[-3] = raw[-3].replace('"FollowUpScheduled"', '"FollowUp"')
    problems = refused(store, raw)
    assert_names(problems[0], len(raw) - 2, CASE, "unknown event type 'FollowUp'")


# -- any valid stream -----------------------------------------------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=valid_streams())
def test_any_valid_stream_round_trips_and_imports_once(
    database_url: str, stream: list[Line]
) -> None:
    blob = "".join(text + "\n" for text in encoded(stream)).encode("utf-8")
    with fresh_store(database_url) as app:
        report = import_stream(app, io.BytesIO(blob))
        assert (report.new_events, report.already_stored) == (len(stream), 0)
        assert_reproduces(app, stream)
        before = exported(app)
        again = import_stream(app, io.BytesIO(blob))
        assert (again.new_events, again.already_stored) == (0, len(stream))
        assert exported(app) == before


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stream=valid_streams(), cut=st.floats(0, 1))
def test_any_valid_stream_imported_in_two_parts_is_stored_as_in_one(
    database_url: str, stream: list[Line], cut: float
) -> None:
    first = stream[: round(len(stream) * cut)]
    # One case kept live at a time: every other waits packed between its lines.
    with fresh_store(database_url) as app, pytest.MonkeyPatch.context() as patch:
        patch.setattr(importer, "LIVE_CASES", 1)
        import_stream(app, encoded(first))
        report = import_stream(app, encoded(stream))
        assert (report.new_events, report.already_stored) == (len(stream) - len(first), len(first))
        assert_reproduces(app, stream)


def test_a_case_packed_between_its_lines_keeps_its_rules(
    store: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "LIVE_CASES", 1)
    packed = 0
    compress = importer.zlib.compress

    def counted(data: bytes, level: int = -1) -> bytes:
        nonlocal packed
        packed += 1
        return compress(data, level)

    monkeypatch.setattr(importer.zlib, "compress", counted)
    broken = with_data(5, meeting(number=2))(base_case())  # meeting 2 before meeting 1
    others = sample()
    mixed = [line for pair in zip(broken, others, strict=False) for line in pair]
    mixed += others[len(broken) :]
    problems = refused(store, encoded(mixed))
    assert packed > 0  # the case was packed and unpacked between its lines
    assert len(problems) == 1, problems
    assert_names(problems[0], 9, CASE, "meeting-sequence")  # its 5th line, the stream's 9th


class _AtTheWrite:
    """A progress that calls ``seen`` when the import starts writing."""

    def __init__(self, seen: Callable[[], None]) -> None:
        self.seen = seen

    def phase(self, description: str, total: int | None) -> None:
        if description == "writing":
            self.seen()

    def advance(self, amount: int) -> None:
        return None


def test_an_import_keeps_a_bounded_number_of_cases_and_no_new_key_in_memory(
    store: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However many cases a stream holds, an import keeps ``LIVE_CASES`` of them in memory,
    and their new data keys wait sealed on disk, not in the keyring, until the commit."""
    monkeypatch.setattr(importer, "LIVE_CASES", 2)
    live: list[int] = []
    keep = importer._Tracks._keep

    def counted(self: importer._Tracks, case_id: uuid.UUID, track: Any) -> None:
        keep(self, case_id, track)
        live.append(len(self._live))

    monkeypatch.setattr(importer._Tracks, "_keep", counted)
    keyring = store.keyring
    seen: dict[str, int] = {}

    def at_the_write() -> None:
        seen["in the keyring's memory"] = len(keyring._fresh)
        seen["waiting on disk"] = len(keyring._fresh_keys())

    lines = sample()
    report = import_stream(store, encoded(lines), progress=_AtTheWrite(at_the_write))
    assert report.cases == 12
    assert max(live) == 2
    assert seen == {"in the keyring's memory": 0, "waiting on disk": 12}
    assert_reproduces(store, lines)  # every case's events open with the key written
    assert keyring._fresh_keys() is keyring._fresh  # the import's own went with it


def test_a_refused_import_leaves_no_new_key_behind(store: Overleg) -> None:
    """The keys made for a stream that is refused are dropped with it; the keyring makes
    keys in its own memory again."""
    lines = encoded(sample())
    lines[-1] = "{"
    refused(store, lines)
    keyring = store.keyring
    assert keyring._fresh_keys() is keyring._fresh
    assert len(keyring._fresh) == 0
    report = import_stream(store, encoded(sample()))
    assert report.new_events == len(sample())
    assert_reproduces(store, sample())


def test_several_problems_are_listed_once_per_case(store: Overleg) -> None:
    lines = sample()
    other = next(i for i, x in enumerate(lines) if i > 3 and x["case"] != lines[3]["case"])
    raw = encoded(lines)
    for index in (3, other):
        raw[index] = json.dumps({**lines[index], "type": "Unknown"})
    with pytest.raises(StreamRefused) as refused:
        import_stream(store, raw)
    assert [p.line for p in refused.value.problems] == [4, other + 1]
    assert exported(store) == []
