"""The chaos suite's short form: every scenario of ``scripts/chaos``, reduced, on a
PostgreSQL cluster of its own, with the same checks of every answer against the store."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import POSTGRES_REQUIRED

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import chaos_suite
from chaos_suite import SHORT, Outcome, Report


@pytest.fixture(scope="module")
def report() -> Iterator[Report]:
    """One short run of every scenario (about a minute): its own cluster, services, worker."""
    try:
        chaos_suite.postgres_bin()
    except SystemExit as missing:
        if POSTGRES_REQUIRED:
            pytest.fail(str(missing))
        pytest.skip(str(missing))
    ran = chaos_suite.run(SHORT)
    print(ran.table())
    yield ran


def outcome(report: Report, number: str) -> Outcome:
    (found,) = [o for o in report.outcomes if o.name.startswith(number)]
    return found


def failures(found: Outcome) -> list[str]:
    return [f"{found.name}: {failure}" for failure in found.check.failures]


def test_racing_writers_store_every_acknowledged_write_once_and_no_refusal(
    report: Report,
) -> None:
    found = outcome(report, "1 ")
    assert failures(found) == []
    assert any(f.name.startswith("racing") and f.ok for f in found.figures)


def test_answers_lost_and_retried_with_their_key_store_nothing_twice(report: Report) -> None:
    assert failures(outcome(report, "2 ")) == []


def test_database_faults_answer_503_with_retry_after_and_lose_no_acknowledged_write(
    report: Report,
) -> None:
    assert failures(outcome(report, "3 ")) == []


def test_worker_killed_while_applying_leaves_projections_equal_to_a_clean_rebuild(
    report: Report,
) -> None:
    assert failures(outcome(report, "4 ")) == []


def test_services_and_workers_started_at_once_on_an_empty_database_all_come_up(
    report: Report,
) -> None:
    assert failures(outcome(report, "5 ")) == []


def test_every_figure_meets_its_requirement(report: Report) -> None:
    assert [f for o in report.outcomes for f in o.figures if not f.ok] == []
    assert len(report.outcomes) == len(chaos_suite.SCENARIOS)
