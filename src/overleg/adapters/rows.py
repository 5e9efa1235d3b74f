"""Rows and case ids as every table of the store gives them back."""

from __future__ import annotations

from typing import Any
from uuid import UUID


def case_key(originator_id: object) -> str:
    """A case id in the one form links and keys are kept under (whatever form a store keeps)."""
    return str(originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id)))


def row_values(row: Any) -> tuple[Any, ...]:
    """The columns of a row that is a mapping (PostgreSQL) or a sequence (SQLite)."""
    return tuple(row.values()) if isinstance(row, dict) else tuple(row)
