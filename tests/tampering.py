"""Changing a store behind overleg's back, as someone with database access could: the tests
of tamper evidence and of commands that meet a damaged store use these."""

from __future__ import annotations

import sqlite3
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql

from overleg.adapters.eventstore import Database


def events_table(database: Database) -> str:
    """The table the events are stored in."""
    return "stored_events" if database.backend == "sqlite" else "overleg_events"


def stored_id(database: Database, case_id: UUID) -> Any:
    """A case id as the events table holds it."""
    return case_id.hex if database.backend == "sqlite" else case_id


def tamper(database: Database, statement: str, *params: Any) -> int:
    """Run one statement on the store directly ({events} and {chain} name its tables; ``?``
    the parameters); the number of rows it changed."""
    if database.backend == "sqlite":
        text = statement.format(events=events_table(database), chain="event_chain")
        with sqlite3.connect(database.sqlite_path) as conn:
            return conn.execute(text, params).rowcount
    schema = sql.Identifier(database.schema)
    query = sql.SQL(statement.replace("?", "%s")).format(
        events=sql.SQL("{}.{}").format(schema, sql.Identifier(events_table(database))),
        chain=sql.SQL("{}.event_chain").format(schema),
    )
    with psycopg.connect(database.conninfo(), autocommit=True) as conn:
        return conn.execute(query, params).rowcount


def read_state(database: Database, case_id: UUID, seq: int) -> bytes:
    """The stored bytes of one event."""
    table = events_table(database)
    key = stored_id(database, case_id)
    if database.backend == "sqlite":
        with sqlite3.connect(database.sqlite_path) as conn:
            row = conn.execute(
                f"SELECT state FROM {table} WHERE originator_id = ? AND originator_version = ?",
                (key, seq),
            ).fetchone()
        return bytes(row[0])
    query = sql.SQL(
        "SELECT state FROM {}.{} WHERE originator_id = %s AND originator_version = %s"
    ).format(sql.Identifier(database.schema), sql.Identifier(table))
    with psycopg.connect(database.conninfo()) as conn:
        row = conn.execute(query, (key, seq)).fetchone()
    assert row is not None
    return bytes(row[0])


def write_state(database: Database, case_id: UUID, seq: int, state: bytes) -> None:
    """Overwrite the stored bytes of one event."""
    changed = tamper(
        database,
        "UPDATE {events} SET state = ? WHERE originator_id = ? AND originator_version = ?",
        state,
        stored_id(database, case_id),
        seq,
    )
    assert changed == 1
