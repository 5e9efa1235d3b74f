"""The service's own tables are made and changed by numbered migrations, each applied once; a
store from before them is brought up to date; a store changed by a newer overleg (its tables
or a projection) stops this one with a clear message instead of being misread."""

from __future__ import annotations

from contextlib import closing

import pytest
from test_cli import SAMPLE, overleg

from overleg.adapters.eventstore import Database
from overleg.adapters.migrations import LATEST, MIGRATIONS, SchemaTooNew, applied, columns, migrate
from overleg.adapters.records import ReadLog
from overleg.adapters.views import ViewStore
from overleg.application import Overleg
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
            assert "caller_request_id" in columns(tx, "case_read")


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
        ReadLog(views)  # any use of the store migrates it
        assert [v for v, _, _ in applied(views)] == [1, 2]
        rows = views.read("SELECT reader, caller_request_id FROM case_read")
        assert [tuple(r) for r in rows] == [("auditor-1", None)]  # kept, with the new column


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
