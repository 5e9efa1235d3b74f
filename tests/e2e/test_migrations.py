"""The service's own tables are made and changed by numbered migrations, each applied once; a
store from before them is brought up to date; a store changed by a newer overleg (its tables
or a projection) stops this one with a clear message instead of being misread."""

from __future__ import annotations

import uuid
from contextlib import closing

import pytest
from test_cli import SAMPLE, overleg

from overleg.adapters.eventstore import Database
from overleg.adapters.migrations import (
    LATEST,
    MIGRATIONS,
    SchemaTooNew,
    applied,
    case_key,
    columns,
    migrate,
)
from overleg.adapters.records import CaseRead, ReadLog
from overleg.adapters.views import Tx, ViewStore
from overleg.application import Overleg
from overleg.policies.access import Principal, StaffRole
from overleg.projections.runner import Projector


def test_a_new_store_gets_every_migration_once(database_url: str) -> None:
    with closing(ViewStore(Database.from_url(database_url))) as views:
        assert migrate(views) == LATEST
        assert migrate(views) == LATEST  # nothing applied twice
    with closing(ViewStore(Database.from_url(database_url))) as views:  # another process
        assert migrate(views) == LATEST
        assert [(v, d) for v, d, _ in applied(views)] == [
            (m.version, m.description) for m in MIGRATIONS
        ]
        with views.transaction() as tx:
            assert {"caller_request_id", "read_set"} <= columns(tx, "read_request")
            assert columns(tx, "read_set_case") == {"read_set", "case_id"}
            assert "read_case" not in _tables(tx)


def test_a_store_from_before_the_migrations_is_brought_up_to_date(database_url: str) -> None:
    with closing(ViewStore(Database.from_url(database_url))) as views:
        with views.transaction() as tx:  # the read log as the first versions made it
            tx.execute(
                "CREATE TABLE case_read (case_id TEXT NOT NULL, reader TEXT NOT NULL,"
                " role TEXT NOT NULL, what TEXT NOT NULL, at TEXT NOT NULL,"
                " request_id TEXT NOT NULL)"
            )
            tx.execute(
                "INSERT INTO case_read VALUES ('c', 'auditor-1', 'auditor', 'case', 'now', 'r1')"
            )
        log = ReadLog(views)  # any use of the store migrates it
        assert [v for v, _, _ in applied(views)] == [1, 2, 3, 4]
        # kept, with the column added since
        assert log.of("c") == [CaseRead("auditor-1", "auditor", "case", "now", "r1", None)]


def test_the_reads_recorded_a_row_per_case_are_kept_a_row_per_request(database_url: str) -> None:
    """Migration 3: each request read is one row, each case it read a short row beside it;
    every read recorded before is found as it was."""
    cases = [str(uuid.UUID(int=n)) for n in range(1, 4)]
    before = [  # a page of three cases, one case, the same case again with a caller's id
        *[
            (c, "team-a", "team", "case list", "2026-01-02T10:00:00+00:00", "p1", None)
            for c in cases
        ],
        (cases[0], "auditor-1", "auditor", "history", "2026-01-01T09:00:00+00:00", "h1", None),
        (cases[0], "auditor-1", "auditor", "case", "2026-01-03T08:00:00+00:00", "c1", "mine-7"),
    ]
    with closing(ViewStore(Database.from_url(database_url))) as views:
        assert migrate(views, MIGRATIONS[:2]) == 2
        with views.transaction() as tx:
            tx.executemany("INSERT INTO case_read VALUES (?, ?, ?, ?, ?, ?, ?)", before)
    with closing(ViewStore(Database.from_url(database_url))) as views:
        assert migrate(views, MIGRATIONS[:3]) == 3
        assert len(views.read("SELECT id FROM read_request")) == 3  # the page is one request
        assert len(views.read("SELECT request FROM read_case")) == 5
        with views.transaction() as tx:
            assert "case_read" not in _tables(tx)
    with closing(ViewStore(Database.from_url(database_url))) as views:
        log = ReadLog(views)
        assert migrate(views) == LATEST
        assert [(r.what, r.request_id, r.caller_request_id) for r in log.of(cases[0])] == [
            ("history", "h1", None),
            ("case list", "p1", None),
            ("case", "c1", "mine-7"),
        ]
        for case in cases[1:]:
            assert [(r.reader, r.what, r.at) for r in log.of(case)] == [
                ("team-a", "case list", "2026-01-02T10:00:00+00:00")
            ]
        log.record(Principal(ref="auditor-2", role=StaffRole.AUDITOR), cases, "case list", "p2")
        assert [r.request_id for r in log.of(cases[2])] == ["p1", "p2"]  # numbered after them


def test_the_cases_read_together_are_kept_once_per_set(database_url: str) -> None:
    """Migration 4: a request names the set of cases it read, each set written once with
    its cases, whatever the order they came in; the reads recorded a row per case before
    are found as they were, and a page read again adds one row, not one per case."""
    cases = [str(uuid.UUID(int=n)) for n in range(1, 4)]
    team = Principal(ref="team-a", role=StaffRole.TEAM)
    with closing(ViewStore(Database.from_url(database_url))) as views:
        assert migrate(views, MIGRATIONS[:3]) == 3
        with views.transaction() as tx:  # as migration 3 recorded them
            tx.executemany(
                "INSERT INTO read_request (reader, role, what, at, request_id)"
                " VALUES ('team-a', 'team', ?, ?, ?)",
                [
                    ("case list", "2026-01-02T10:00:00+00:00", "p1"),
                    ("case", "2026-01-03T10:00:00+00:00", "c1"),
                    ("case list", "2026-01-04T10:00:00+00:00", "p2"),
                ],
            )
            ids = dict(tx.fetchall("SELECT request_id, id FROM read_request"))
            tx.executemany(
                "INSERT INTO read_case (case_id, request) VALUES (?, ?)",
                [(case_key(c), ids["p1"]) for c in cases]
                + [(case_key(cases[1]), ids["c1"])]
                + [(case_key(c), ids["p2"]) for c in reversed(cases)],
            )
    with closing(ViewStore(Database.from_url(database_url))) as views:
        log = ReadLog(views)
        assert migrate(views) == LATEST
        assert [r.request_id for r in log.of(cases[1])] == ["p1", "c1", "p2"]
        assert [r.request_id for r in log.of(cases[0])] == ["p1", "p2"]
        assert _count(views, "read_set") == 2  # the page (read twice) and the one case
        assert _count(views, "read_set_case") == 4
        with views.transaction() as tx:
            assert "read_case" not in _tables(tx)
        log.record(team, list(reversed(cases)), "case list", "p3")  # the same page again
        log.record(team, [cases[2], cases[2]], "case", "c2")  # a new set: one case
        assert _count(views, "read_set") == 3
        assert _count(views, "read_set_case") == 5
        assert [r.request_id for r in log.of(cases[2])] == ["p1", "p2", "p3", "c2"]
    with closing(ViewStore(Database.from_url(database_url))) as views:  # another process
        log = ReadLog(views)
        log.record(team, cases, "case list", "p4")  # a set it does not know yet, but stored
        assert _count(views, "read_set") == 3
        assert [r.request_id for r in log.of(cases[0])] == ["p1", "p2", "p3", "p4"]


def _count(views: ViewStore, table: str) -> int:
    return int(views.read(f"SELECT count(*) FROM {table}")[0][0])


def _tables(tx: Tx) -> set[str]:
    if tx.dialect == "sqlite":
        return {r[0] for r in tx.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
    rows = tx.fetchall(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    )
    return {r[0] for r in rows}


def test_a_store_a_newer_overleg_changed_stops_this_one(database_url: str) -> None:
    assert overleg(database_url, "import", str(SAMPLE)).returncode == 0
    with closing(ViewStore(Database.from_url(database_url))) as views:
        with views.transaction() as tx:
            tx.execute(
                "INSERT INTO overleg_schema (version, description, applied_at)"
                " VALUES (?, 'from the future', 'later')",
                (LATEST + 1,),
            )
        with pytest.raises(SchemaTooNew, match=f"at version {LATEST + 1}"):
            migrate(views)
    refused = overleg(database_url, "stats", "2015")
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"The store's tables are at version {LATEST + 1};")
    served = overleg(database_url, "serve", "--port", "1")
    assert served.returncode == 2 and "newer overleg" in served.stderr


def test_a_projection_a_newer_overleg_built_is_not_rebuilt_backwards(database_url: str) -> None:
    with closing(Overleg(Database.from_url(database_url))) as app:
        views = ViewStore(app.database)
        try:
            Projector(app.event_log, views)
            with views.transaction() as tx:
                tx.execute("UPDATE projection_position SET version = 99 WHERE name = 'case_view'")
            with pytest.raises(SchemaTooNew, match="The projection case_view is at version 99"):
                Projector(app.event_log, views)
        finally:
            views.close()
