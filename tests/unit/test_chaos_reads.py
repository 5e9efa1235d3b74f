"""The chaos suite's racing clients read a case's version as a careful client does: a 503
is waited out, anything else is taken as it is."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import chaos_suite
from chaos_suite import Attempt, Suite


class Reads:
    """A client whose reads are answered, in turn, with the given statuses."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.asked = 0

    def read_version(self, case_id: str) -> tuple[int | None, Attempt]:
        status = self.statuses[self.asked]
        self.asked += 1
        read = Attempt("s1", "", "read", "chair:x", case_id, None, None, 0.0, status=status)
        if status == 503:
            read.retry_after = "1"
        version = 7 if status == 200 else None
        read.version = version
        return version, read


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    waited: list[str | None] = []
    monkeypatch.setattr(chaos_suite, "pause", lambda a: waited.append(a.retry_after))
    return waited


def test_a_read_answered_503_is_waited_out_and_asked_again(waits: list[str | None]) -> None:
    client: Any = Reads(503, 503, 200)
    assert Suite._version_of(client, "c") == 7
    assert client.asked == 3
    assert waits == ["1", "1"]


def test_a_read_refused_otherwise_is_not_asked_again(waits: list[str | None]) -> None:
    client: Any = Reads(404, 200)
    assert Suite._version_of(client, "c") is None
    assert client.asked == 1
    assert waits == []


def test_a_store_busy_for_good_gives_no_version_after_the_tries(waits: list[str | None]) -> None:
    client: Any = Reads(*[503] * chaos_suite.READ_TRIES, 200)
    assert Suite._version_of(client, "c") is None
    assert client.asked == chaos_suite.READ_TRIES
