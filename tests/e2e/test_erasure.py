"""Crypto-shredding as a family and an auditor meet it: personal parts are sealed at rest; an
erasure destroys the case's key, after which no view, history, export, answer, log line,
idempotency record or file of the database holds the case's personal data, while the
figures, the hash chain and sealed releases stay exactly as they were."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from conftest import statistics_json
from overleg.adapters.eventstore import DamagedStore, Database
from overleg.adapters.integrity import verify
from overleg.adapters.sealing import MasterKeys
from overleg.adapters.views import ViewStore
from overleg.aggregates.errors import CaseErased
from overleg.aggregates.personal import ERASED_TEXT
from overleg.aggregates.values import Programme
from overleg.application import Overleg
from overleg.commands import CloseCase, EraseCase
from overleg.policies.access import Operator, Principal, StaffRole
from overleg.projections.audit_trail import history
from overleg.projections.case_view import get_case_view
from overleg.projections.runner import Projector
from overleg.streams import StreamRefused, import_stream
from overleg.streams.exporter import export_stream

TEAM = Principal("team-limburg-1", StaffRole.TEAM, region="Limburg")
OPERATOR = Operator("functionaris-gegevensbescherming")


def _keys(name: str = "k1") -> MasterKeys:
    return MasterKeys.parse(MasterKeys.generate(name), "test")


def _case_lines(case: str, marker: str) -> list[dict[str, Any]]:
    """A whole case whose every personal value carries ``marker``."""
    steps: list[tuple[str, dict[str, Any]]] = [
        (
            "Requested",
            {
                "programme": "integrale_jeugdhulp",
                "region": "Limburg",
                "requested_by": {"ref": f"ouder-{marker}", "role": "parent"},
                "channel": "telefoon",
                "client": {"ref": f"jongere-{marker}", "birth_date": "2005-04-03"},
                "question": f"Vraag van {marker}",
            },
        ),
        ("ConsentGiven", {"party": {"ref": f"jongere-{marker}", "role": "youth"}}),
        ("ChairAppointed", {"chair": f"vz-{marker}"}),
        (
            "MeetingHeld",
            {
                "meeting": 1,
                "held_on": "2015-03-10",
                "place": f"Huis van {marker}",
                "attendance": {
                    "youth": True,
                    "parents": True,
                    "trusted_person": None,
                    "professionals": [f"hv-{marker}", f"hv2-{marker}"],
                },
            },
        ),
        (
            "WorkplanAgreed",
            {
                "meeting": 1,
                "agreements": [
                    {
                        "who": f"hv-{marker}",
                        "what": f"Begeleiding {marker}",
                        "due": "2015-06-01",
                        "domain": "onderwijs",
                    }
                ],
                "coordinator": f"hv-{marker}",
                "crisis_plan": {"steps": [f"Bel {marker}"]},
            },
        ),
        ("RegistrationCompleted", {"meeting": 1}),
        ("BottleneckReported", {"theme": "wachtlijst", "description": f"Wachtlijst {marker}"}),
        ("CaseClosed", {"reason": f"Afgerond met {marker}"}),
    ]
    return [
        {
            "case": case,
            "seq": seq,
            "type": kind,
            "at": datetime(2015, 3, seq, 10, tzinfo=UTC).isoformat(),
            "by": "team-limburg-1",
            "data": data,
        }
        for seq, (kind, data) in enumerate(steps, start=1)
    ]


def _marker() -> str:
    return f"zq{uuid.uuid4().hex[:12]}"


def _stored_bytes(database: Database, tmp_path: Path) -> bytes:
    """Everything the database holds: every file of the SQLite store, or a full dump of the
    PostgreSQL schema (as a backup would take it)."""
    if database.backend == "sqlite":
        path = Path(database.sqlite_path)
        return b"".join(
            p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name)
        )
    out = tmp_path / "dump.sql"
    subprocess.run(
        [
            "pg_dump",
            "--no-owner",
            f"--schema={database.schema}",
            f"--file={out}",
            database.conninfo(),
        ],
        check=True,
        timeout=120,
    )
    return out.read_bytes()


def _holds(stored: bytes, key: bytes) -> bool:
    """Whether the bytes hold the key, as a file stores it or as a dump writes it (hex)."""
    return key in stored or key.hex().encode() in stored


@pytest.fixture
def opened(database_url: str) -> Iterator[tuple[Overleg, ViewStore]]:
    app = Overleg(Database.from_url(database_url), masters=_keys())
    with closing(app), closing(ViewStore(app.database)) as views:
        yield app, views


def test_personal_parts_are_sealed_in_the_events(opened: tuple[Overleg, ViewStore]) -> None:
    app, _ = opened
    marker, case = _marker(), str(uuid.uuid4())
    import_stream(app, [json.dumps(line) for line in _case_lines(case, marker)])
    stored = app.recorder.select_events(UUID(case))
    assert len(stored) == 8
    assert not any(marker.encode() in bytes(s.state) for s in stored)
    # The facts the figures count stay readable beside the sealed part.
    assert b'"youth":true' in bytes(stored[3].state).replace(b" ", b"")
    # Through overleg, the case reads whole.
    assert any(marker in line for line in export_stream(app, UUID(case)))


def test_an_erasure_keeps_figures_chain_and_history_and_leaves_no_plaintext(
    opened: tuple[Overleg, ViewStore], tmp_path: Path
) -> None:
    app, views = opened
    erased, kept = str(uuid.uuid4()), str(uuid.uuid4())
    gone, stays = _marker(), _marker()
    lines = _case_lines(erased, gone) + _case_lines(kept, stays)
    import_stream(app, [json.dumps(line) for line in lines])
    projector = Projector(app.event_log, views)
    projector.catch_up()
    figures = {year: statistics_json(views, year) for year in (2015, 2016)}
    # The search finds what is there: the views hold both cases' references in clear.
    before = _stored_bytes(app.database, tmp_path)
    assert gone.encode() in before and stays.encode() in before
    (key_row,) = app.keys.select_keys([erased]).values()
    assert key_row.wrapped is not None and _holds(before, key_row.wrapped)

    outcome = app.handle(EraseCase(UUID(erased), "AVG-verzoek 2026-014"), OPERATOR)
    assert outcome.event_types == ("PersonalDataErased",)
    projector.catch_up()

    assert {year: statistics_json(views, year) for year in (2015, 2016)} == figures
    assert verify(app.recorder).ok
    after = _stored_bytes(app.database, tmp_path)
    assert gone.encode() not in after, "the erased case's personal data is still stored"
    assert not _holds(after, key_row.wrapped), "the destroyed key is still stored"
    assert stays.encode() in after  # the other case is untouched
    assert app.keys.select_keys([erased])[erased].wrapped is None

    # Every reader sees the erased form: pseudonyms that still fit together, and [erased].
    view = get_case_view(views, UUID(erased))
    assert view is not None and view.erased_at is not None
    assert view.chair == "erased:3" and view.coordinator == "erased:4"
    assert [a.who for a in view.workplans] == ["erased:4"]  # the same person, as before
    assert {c.ref for c in view.consents} == {"erased:2"}  # the client, as requested
    trail = history(views, UUID(erased))
    assert trail[-1].type == "PersonalDataErased" and "AVG-verzoek 2026-014" in trail[-1].summary
    assert not any(gone in entry.summary for entry in trail)
    case = app.get_case(UUID(erased))
    assert case.client_ref == "erased:2" and case.client_birth_date is None
    exported = list(export_stream(app, UUID(erased)))
    assert len(exported) == 8  # the erasure is not a line of the contract
    assert not any(gone in line for line in exported)
    assert ERASED_TEXT in exported[0] and '"birth_date":null' in exported[0]

    # Nothing more is recorded on it, and a stream cannot bring its data back.
    with pytest.raises(CaseErased):
        app.handle(CloseCase(UUID(erased), "x"), TEAM)
    with pytest.raises(StreamRefused) as refused:
        import_stream(app, [json.dumps(line) for line in _case_lines(erased, gone)])
    assert [p.rule for p in refused.value.problems] == ["case-erased"]


def test_the_idempotency_records_of_an_erased_case_are_dropped(
    opened: tuple[Overleg, ViewStore],
) -> None:
    app, views = opened
    case, marker = str(uuid.uuid4()), _marker()
    import_stream(app, [json.dumps(line) for line in _case_lines(case, marker)[:2]])
    app.handle(CloseCase(UUID(case), f"Reden {marker}"), TEAM)
    counted = app.keys._reading  # the store's own connection
    with counted() as cursor:
        cursor.execute(app.keys._format("SELECT count(*) FROM {log} WHERE case_id = ?"), (case,))
        assert _one(cursor.fetchone()) == 1
    app.handle(EraseCase(UUID(case), "verzoek"), OPERATOR)
    with counted() as cursor:
        cursor.execute(app.keys._format("SELECT count(*) FROM {log} WHERE case_id = ?"), (case,))
        assert _one(cursor.fetchone()) == 1  # only the erasure's own
    Projector(app.event_log, views).catch_up()
    assert not any(marker in e.summary for e in history(views, UUID(case)))


def _one(row: Any) -> int:
    return int(next(iter(row.values())) if isinstance(row, dict) else row[0])


def test_master_keys_rotate_without_touching_an_event(database_url: str) -> None:
    old, new = _keys("2025"), _keys("2026")
    cases = [str(uuid.uuid4()) for _ in range(3)]
    marker = _marker()
    database = Database.from_url(database_url)
    with closing(Overleg(database, masters=old)) as app:
        lines = [line for c in cases for line in _case_lines(c, marker)]
        import_stream(app, [json.dumps(line) for line in lines])
        app.handle(EraseCase(UUID(cases[0]), "verzoek"), OPERATOR)
        states = [bytes(s.state) for c in cases for s in app.recorder.select_events(UUID(c))]
    both = MasterKeys([new.current, old.current])
    with closing(Overleg(database, masters=both)) as app:
        done = app.keys.rotate(app.keyring.masters, batch=1)
        assert (done.rewrapped, done.current, done.erased) == (2, 0, 1)
        assert app.keys.rotate(app.keyring.masters).rewrapped == 0
    with closing(Overleg(database, masters=new)) as app:  # the old key retired
        assert [bytes(s.state) for c in cases for s in app.recorder.select_events(UUID(c))] == (
            states
        )
        assert app.get_case(UUID(cases[1])).client_ref == f"jongere-{marker}"
        assert app.get_case(UUID(cases[0])).client_ref == "erased:2"
        assert verify(app.recorder).ok
    with (
        closing(Overleg(database, masters=old)) as app,  # a retired key opens nothing now
        pytest.raises(DamagedStore, match="master key '2026'"),
    ):
        app.get_case(UUID(cases[1]))


def test_half_of_the_2015_reference_erased_changes_no_figure_and_no_sealed_release(
    database_url: str, tmp_path: Path
) -> None:
    import random

    from test_cli import overleg

    import reference2015 as ref

    url = database_url
    stream = ref.reference_stream()
    source = tmp_path / "2015.jsonl"
    source.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in stream))
    assert overleg(url, "import", str(source)).returncode == 0
    assert overleg(url, "stats", "2015", "--seal").returncode == 0
    before = {
        (year, programme): json.loads(
            overleg(url, "stats", str(year), "--format", "json", *programme).stdout
        )
        for year in (2014, 2015, 2016)
        for programme in ((), ("--programme", Programme.INTEGRALE_JEUGDHULP.value))
    }
    cases = sorted({line["case"] for line in stream})
    half = random.Random(20151).sample(cases, len(cases) // 2)
    with closing(Overleg(Database.from_url(url))) as app:
        for case in half:
            app.handle(EraseCase(UUID(case), "retention test"), OPERATOR)
    after = {
        (year, programme): json.loads(
            overleg(url, "stats", str(year), "--format", "json", *programme).stdout
        )
        for year in (2014, 2015, 2016)
        for programme in ((), ("--programme", Programme.INTEGRALE_JEUGDHULP.value))
    }
    assert after == before
    releases = overleg(url, "verify", "--releases")
    assert releases.returncode == 0, releases.stdout + releases.stderr
    chain = overleg(url, "verify")
    assert chain.returncode == 0, chain.stdout + chain.stderr
    exported = overleg(url, "export", str(tmp_path / "out.jsonl"))
    assert exported.returncode == 0, exported.stderr
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == len(stream)
