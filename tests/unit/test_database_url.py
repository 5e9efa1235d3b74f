"""OVERLEG_DATABASE_URL: what is understood, and what is refused with a clear message."""

from __future__ import annotations

import pytest

from overleg.adapters.eventstore import Database, DatabaseURLError


def test_sqlite_url_names_a_relative_file() -> None:
    database = Database.from_url("sqlite:///overleg.db")
    assert (database.backend, database.sqlite_path) == ("sqlite", "overleg.db")
    assert database.eventsourcing_env()["SQLITE_DBNAME"] == "overleg.db"


def test_sqlite_url_with_four_slashes_is_an_absolute_path() -> None:
    assert (
        Database.from_url("sqlite:////var/lib/overleg/x.db").sqlite_path == "/var/lib/overleg/x.db"
    )


def test_postgresql_url_gives_host_port_user_database_and_schema() -> None:
    database = Database.from_url("postgresql://chair:s%40cret@db.example:6543/overleg?schema=s1")
    assert database == Database(
        backend="postgresql",
        host="db.example",
        port=6543,
        user="chair",
        password="s@cret",
        dbname="overleg",
        schema="s1",
    )
    env = database.eventsourcing_env()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.postgres"
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"], env["POSTGRES_SCHEMA"]) == (
        "db.example",
        "6543",
        "s1",
    )


def test_postgresql_url_defaults_to_port_5432_and_user_postgres() -> None:
    database = Database.from_url("postgresql://localhost/overleg")
    assert (database.port, database.user, database.schema) == (5432, "postgres", "")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://localhost/overleg", "Unsupported database URL"),
        ("sqlite://overleg.db", "three slashes"),
        ("sqlite:///", "needs a file path"),
        ("postgresql://localhost", "names a host and a database"),
        ("postgresql://localhost:notaport/db", "Invalid port"),
    ],
)
def test_unusable_urls_are_refused_with_a_clear_message(url: str, fragment: str) -> None:
    with pytest.raises(DatabaseURLError, match=fragment):
        Database.from_url(url)


def test_a_refused_url_never_shows_its_password() -> None:
    with pytest.raises(DatabaseURLError) as refused:
        Database.from_url("postgresql://chair:topsecret@localhost")
    assert "topsecret" not in str(refused.value)
