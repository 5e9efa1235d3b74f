"""The statistics table stays readable on an 80-column terminal, in English and in Dutch:
nothing cut off, every line within 80 columns, the short headings explained; wide, it keeps
the report's full headings."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rich.console import Console

from overleg import i18n
from overleg.aggregates.values import Region
from overleg.projections.statistics import Statistics
from overleg.reports import statistics_table


def _figures() -> Statistics:
    empty = {
        "year": 2015,
        "programme": None,
        "meetings": {
            "total": 17,
            "first": 10,
            "follow_up": 7,
            "previous_year_total": 0,
            "planned_not_held": 0,
            "by_region": {r.value: {"count": 3, "pct": 17.6} for r in Region},
        },
    }
    return Statistics.model_validate(empty | _rest())


def _rest() -> dict[str, object]:
    outcome = {"total": 6, "pct": 35.3, "by_region": {r.value: 1 for r in Region}}
    return {
        "fully_registered": {
            "total": 17,
            "youth_present": outcome,
            "client_present": outcome,
            "parents_present": outcome,
            "workplans": outcome,
            "coordinators": outcome | {"pct_of_workplans": 100.0},
        },
        "spilfiguur": {"cases": 0, "chosen_by_client": 0},
        "bottlenecks_by_theme": {},
    }


def _printed(width: int) -> str:
    console = Console(width=width, record=True)
    console.print(statistics_table(_figures(), dict.fromkeys(Region, 3), width))
    return console.export_text()


def test_the_table_reads_whole_at_80_columns() -> None:
    text = _printed(80)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "Oost-Vlaanderen" in text and "West-Vlaanderen" in text
    assert "coord." in text and "coordinators." in text  # the short headings are explained
    assert "% of reg." in text


def test_a_wide_terminal_keeps_the_full_headings() -> None:
    text = _printed(200)
    assert "fully registered" in text and "6 (35.3 %)" in text


@pytest.fixture
def dutch() -> Iterator[None]:
    """The reports said in Dutch (nl-BE) for one test."""
    chosen = i18n.current.set(i18n.Language.NL)
    try:
        yield
    finally:
        i18n.current.reset(chosen)


@pytest.mark.usefixtures("dutch")
def test_the_dutch_table_reads_whole_at_80_columns() -> None:
    text = _printed(80)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "Oost-Vlaanderen" in text and "West-Vlaanderen" in text
    assert "regio" in text and "totaal" in text
    assert "hulpcoördinatoren" in text  # the short headings are explained
    assert "coord." not in text and "% of reg." not in text


@pytest.mark.parametrize("language", list(i18n.Language))
@pytest.mark.parametrize("width", [80, 100, 110, 130, 150, 200])
def test_no_heading_is_cut_off_at_any_width(language: i18n.Language, width: int) -> None:
    chosen = i18n.current.set(language)
    try:
        text = _printed(width)
    finally:
        i18n.current.reset(chosen)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
