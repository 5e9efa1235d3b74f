"""The 2015 report reproduced exactly: incrementally, after a rebuild, and figure by figure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import bottlenecks_json, statistics_json, v1_keys
from overleg.adapters.views import ViewStore
from overleg.aggregates.values import Programme
from overleg.application import Overleg
from overleg.projections.explain import NOT_REGISTERED, UnknownFigure, explain
from overleg.projections.runner import Projector
from overleg.projections.themes import packaged
from overleg.streams import import_stream
from report2015 import IJH, REGIONS, Report, counted, report_2015

# The published figures (event-stream-v1.md, "Reference figures"), typed out from the table.
REFERENCE = {
    "total": 379,
    "previous_year_total": 252,
    "by_region": {
        "Antwerpen": (119, 31.4, 58, 82, 68, 68),
        "Brussel": (4, 1.1, 1, 3, 3, 3),
        "Limburg": (37, 9.8, 9, 14, 11, 11),
        "Oost-Vlaanderen": (87, 23.0, 12, 51, 33, 33),
        "Vlaams-Brabant": (54, 14.2, 11, 27, 23, 23),
        "West-Vlaanderen": (78, 20.6, 17, 62, 72, 65),
    },
    "fully_registered": 336,
    "totals": {
        "youth_present": (108, 32.1),
        "parents_present": (239, 71.1),
        "workplans": (210, 62.5),
        "coordinators": (203, 60.4),
    },
    "pct_of_workplans": 96.7,
}
OUTCOMES = ["youth_present", "parents_present", "workplans", "coordinators"]


@pytest.fixture(scope="module")
def report() -> Report:
    return report_2015()


@pytest.fixture
def views(store: Overleg) -> Iterator[ViewStore]:
    opened = ViewStore(store.database)
    try:
        yield opened
    finally:
        opened.close()


def dumps(lines: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(line, ensure_ascii=False) for line in lines]


def assert_reference(stats: dict[str, Any]) -> None:
    meetings, fully = stats["meetings"], stats["fully_registered"]
    assert (stats["year"], stats["programme"]) == (2015, IJH)
    assert meetings["total"] == REFERENCE["total"]
    assert meetings["first"] + meetings["follow_up"] == REFERENCE["total"]
    assert meetings["previous_year_total"] == REFERENCE["previous_year_total"]
    assert fully["total"] == REFERENCE["fully_registered"]
    for region, (count, share, *outcomes) in REFERENCE["by_region"].items():
        assert meetings["by_region"][region] == {"count": count, "pct": share}
        for name, value in zip(OUTCOMES, outcomes, strict=True):
            assert fully[name]["by_region"][region] == value, (name, region)
    for name, (total, share) in REFERENCE["totals"].items():
        assert (fully[name]["total"], fully[name]["pct"]) == (total, share)
    assert fully["coordinators"]["pct_of_workplans"] == REFERENCE["pct_of_workplans"]
    assert set(meetings["by_region"]) == set(REGIONS)


def assert_all_figures(views: ViewStore, report: Report) -> None:
    assert_reference(statistics_json(views, 2015, Programme.INTEGRALE_JEUGDHULP))
    for year in (2014, 2015, 2016):
        for programme in (None, *Programme):
            got = statistics_json(views, year, programme)
            wanted = counted(report, year, None if programme is None else programme.value)
            assert v1_keys(got) == wanted
            assert got["meetings"]["planned_not_held"] == 0
            assert got["spilfiguur"] == {"cases": 0, "chosen_by_client": 0}


def dump(views: ViewStore, projector: Projector) -> dict[str, list[tuple[Any, ...]]]:
    tables = [t for p in projector.projections.values() for t in p.tables]
    return {t: sorted(map(tuple, views.read(f"SELECT * FROM {t}")), key=repr) for t in tables}


def test_the_2015_report_is_reproduced_exactly(
    store: Overleg, views: ViewStore, report: Report
) -> None:
    import_stream(store, dumps(report.lines))
    Projector(store.event_log, views).catch_up()
    assert_all_figures(views, report)


def test_incrementally_and_after_a_rebuild_the_figures_and_tables_are_the_same(
    store: Overleg, views: ViewStore, report: Report
) -> None:
    projector = Projector(store.event_log, views, batch_size=37)
    lines = report.lines
    step = len(lines) // 10 + 1
    for start in range(0, len(lines), step):
        import_stream(store, dumps(lines[start : start + step]))
        projector.catch_up()
    assert_all_figures(views, report)
    incremental = dump(views, projector)
    assert projector.rebuild() == len(lines)
    assert dump(views, projector) == incremental
    assert_all_figures(views, report)


def test_a_figure_lists_the_meetings_it_counts_and_those_it_leaves_out(
    store: Overleg, views: ViewStore, report: Report
) -> None:
    import_stream(store, dumps(report.lines))
    Projector(store.event_log, views).catch_up()
    youth = explain(
        views,
        2015,
        "fully_registered.youth_present.by_region.Antwerpen",
        Programme.INTEGRALE_JEUGDHULP,
    )
    assert youth.value == len(youth.counted) == 58
    assert len(youth.counted) + len(youth.left_out) == 119
    reasons = Counter(why for _, why in youth.left_out)
    assert reasons == {NOT_REGISTERED: 119 - 110, "young person absent": 110 - 58}
    assert all(m.region == "Antwerpen" and m.registered and m.youth for m in youth.counted)

    total = explain(views, 2015, "meetings.total", Programme.INTEGRALE_JEUGDHULP)
    assert (total.value, len(total.counted), total.left_out) == (379, 379, [])
    previous = explain(views, 2015, "meetings.previous_year_total", Programme.INTEGRALE_JEUGDHULP)
    assert len(previous.counted) == 252
    assert all(m.held_on.startswith("2014") for m in previous.counted)
    registered = explain(views, 2015, "fully_registered.total", Programme.INTEGRALE_JEUGDHULP)
    assert (len(registered.counted), len(registered.left_out)) == (336, 43)
    with pytest.raises(UnknownFigure, match=r"No figure 'meetings\.bogus'"):
        explain(views, 2015, "meetings.bogus")
    with pytest.raises(UnknownFigure):
        explain(views, 2015, "fully_registered.workplans.by_region.Gent")
    for name in ("year", "programme", "meetings.by_region", ""):
        with pytest.raises(UnknownFigure):
            explain(views, 2015, name)
    assert explain(views, 2015, "meetings", Programme.INTEGRALE_JEUGDHULP).value == 379


def test_bottlenecks_per_theme_region_and_year(
    store: Overleg, views: ViewStore, report: Report
) -> None:
    import_stream(store, dumps(report.lines))
    Projector(store.event_log, views).catch_up()
    for year in (2014, 2015, 2016):
        themes = packaged()  # analysts see the listed theme a report names, or andere
        want = Counter(
            (themes.theme_of(theme), region)
            for _, region, theme, y in report.bottlenecks
            if y == year
        )
        got = bottlenecks_json(views, year)
        assert {
            (row["theme"], region): count
            for row in got["themes"]
            for region, count in row["by_region"].items()
            if count
        } == dict(want)
        assert got["total"] == sum(want.values())


def test_the_command_prints_the_reference_json(
    database_url: str, report: Report, tmp_path: Path
) -> None:
    stream = tmp_path / "report-2015.jsonl"
    stream.write_text("\n".join(dumps(report.lines)) + "\n", encoding="utf-8")
    overleg = str(Path(sys.executable).parent / "overleg")
    env = {**os.environ, "OVERLEG_DATABASE_URL": database_url}
    subprocess.run([overleg, "import", str(stream)], env=env, check=True, capture_output=True)
    printed = subprocess.run(
        [overleg, "stats", "2015", "--programme", IJH, "--format", "json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert_reference(json.loads(printed.stdout))
    table = subprocess.run(
        [overleg, "stats", "2015", "--programme", IJH],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "108 (32.1 %)" in table and "203 (60.4 %)" in table
