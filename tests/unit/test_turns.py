"""The writers of one process take turns at a SQLite file: one at a time per file (however
its path is spelt), a writer may take its turn again, and a wait has its limit."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from eventsourcing.persistence import OperationalError

from overleg.adapters import turns


@contextmanager
def held_by_another_thread(path: str) -> Iterator[None]:
    """The turn of ``path`` taken by another thread for as long as the block runs."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with turns.writing(path, 5):
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(5)
    try:
        yield
    finally:
        release.set()
        holder.join()


def test_one_writer_at_a_time_per_file_however_its_path_is_spelt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a").mkdir()
    spelt = ["store.db", str(tmp_path / "store.db"), str(tmp_path / "a" / ".." / "store.db")]
    with held_by_another_thread(spelt[0]):
        for path in spelt[1:]:
            with (
                pytest.raises(OperationalError, match="other writers"),
                turns.writing(path, 0.05),
            ):
                pass
        with turns.writing(str(tmp_path / "other.db"), 0.05):
            pass  # another file's writers do not wait
    with turns.writing(spelt[2], 0.05):
        pass  # free again


def test_a_writer_may_take_its_turn_again(tmp_path: Path) -> None:
    path = os.fspath(tmp_path / "store.db")
    with turns.writing(path, 0.05), turns.writing(path, 0.05):
        pass


def test_a_database_in_memory_takes_no_turn() -> None:
    with held_by_another_thread(":memory:"), turns.writing(":memory:", 0.05):
        pass  # each connection to ":memory:" is a database of its own
