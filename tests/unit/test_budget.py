"""A command's one deadline for its waits on the store (``adapters/budget.py``)."""

from __future__ import annotations

import threading
import time

import pytest

from overleg.adapters import budget
from overleg.adapters.recorders import UNREACHABLE, within


def test_outside_a_budget_each_wait_keeps_its_own_timeout() -> None:
    now = time.monotonic()
    assert now + 4.9 < budget.deadline(5.0) <= time.monotonic() + 5.0
    assert 4.9 < budget.remaining(5.0) <= 5.0


def test_inside_a_budget_a_wait_ends_at_the_nearer_deadline() -> None:
    with budget.budget(1.0):
        assert budget.remaining(5.0) <= 1.0
        assert budget.remaining(0.2) <= 0.2  # its own timeout, when nearer
        with budget.budget(10.0):  # an inner budget never extends the outer one
            assert budget.remaining(5.0) <= 1.0
        with budget.budget(0.1):
            assert budget.remaining(5.0) <= 0.1
        assert 0.1 < budget.remaining(5.0) <= 1.0
    assert budget.remaining(5.0) > 4.9


def test_a_spent_budget_still_gives_a_quick_try() -> None:
    with budget.budget(0.0):
        assert budget.remaining(5.0) == 0.0
        assert budget.remaining(5.0, at_least=0.05) == 0.05


def test_a_budget_belongs_to_its_own_thread() -> None:
    seen: list[float] = []
    with budget.budget(0.5):
        thread = threading.Thread(target=lambda: seen.append(budget.remaining(5.0)))
        thread.start()
        thread.join()
    assert seen[0] > 4.9


def test_retries_stop_at_the_budget_and_the_first_try_is_always_made() -> None:
    tries: list[float] = []

    def unreachable() -> None:
        tries.append(time.monotonic())
        raise OSError("connection refused")

    with budget.budget(0.3), pytest.raises(OSError):
        within(30.0, unreachable, (OSError, *UNREACHABLE))
    assert tries[-1] - tries[0] < 0.3
    tries.clear()
    with budget.budget(0.0), pytest.raises(OSError):
        within(30.0, unreachable, (OSError,))
    assert len(tries) == 1
