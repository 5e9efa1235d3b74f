"""Where events are stored: the database URL, the event store's set-up, and atomic bulk writes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from eventsourcing.persistence import ApplicationRecorder, StoredEvent


class DatabaseURLError(ValueError):
    """``OVERLEG_DATABASE_URL`` cannot be understood."""


@dataclass(frozen=True)
class Database:
    """A parsed database URL."""

    backend: str  # "sqlite" or "postgresql"
    sqlite_path: str = ""
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    dbname: str = ""
    schema: str = ""

    @classmethod
    def from_url(cls, url: str) -> Database:
        """Parse ``sqlite:///PATH`` or ``postgresql://user[:pw]@host[:port]/db[?schema=S]``."""
        parts = urlsplit(url)
        if parts.scheme == "sqlite":
            if parts.netloc:
                raise DatabaseURLError(
                    f"A SQLite URL has three slashes before its path (sqlite:///PATH), not {url!r}"
                )
            path = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
            if not path:
                raise DatabaseURLError(
                    f"A SQLite URL needs a file path: sqlite:///PATH, not {url!r}"
                )
            return cls(backend="sqlite", sqlite_path=path)
        if parts.scheme in ("postgresql", "postgres"):
            dbname = unquote(parts.path.lstrip("/"))
            if not parts.hostname or not dbname:
                raise DatabaseURLError(
                    "A PostgreSQL URL names a host and a database: "
                    f"postgresql://user@host:port/dbname, not {_redacted(url)!r}"
                )
            query = parse_qs(parts.query)
            try:
                port = parts.port or 5432
            except ValueError as error:
                raise DatabaseURLError(f"Invalid port in {_redacted(url)!r}") from error
            return cls(
                backend="postgresql",
                host=parts.hostname,
                port=port,
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
                dbname=dbname,
                schema=query.get("schema", [""])[0],
            )
        raise DatabaseURLError(
            f"Unsupported database URL {_redacted(url)!r}: use sqlite:///PATH or postgresql://..."
        )

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment an eventsourcing application is configured with."""
        if self.backend == "sqlite":
            if self.sqlite_path != ":memory:":
                Path(self.sqlite_path).expanduser().parent.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": self.sqlite_path,
                "SQLITE_LOCK_TIMEOUT": "10",
            }
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_SCHEMA": self.schema,
            "POSTGRES_CONNECT_TIMEOUT": "10",
            "POSTGRES_LOCK_TIMEOUT": "10",
        }

    def ensure_schema(self) -> None:
        """Create the PostgreSQL schema named in the URL, if it is missing."""
        if self.backend != "postgresql" or not self.schema:
            return
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            )

    def conninfo(self) -> str:
        """A libpq connection string for this PostgreSQL database."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=self.dbname,
            connect_timeout=10,
        )


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def insert_atomically(
    recorder: ApplicationRecorder, batches: Iterable[Sequence[StoredEvent]]
) -> int:
    """Insert every batch in one transaction: all of them are stored, or none.

    A key that is already taken (another writer got there first) raises the store's
    integrity error and the whole transaction is rolled back.
    """
    # The recorders' own insert methods commit per call; an import must commit once.
    datastore: Any = recorder.datastore  # type: ignore[attr-defined]
    count = 0
    with datastore.transaction(commit=True) as cursor:
        for batch in batches:
            if not batch:
                continue
            if hasattr(recorder, "_insert_stored_events"):
                recorder._insert_stored_events(cursor, batch)  # PostgreSQL
            else:
                recorder._insert_events(cursor, batch)  # type: ignore[attr-defined]  # SQLite
            count += len(batch)
    return count
