"""The annual statistics reproduce the 2015 report from a stream that encodes its situations."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

import reference2015 as ref
from conftest import bottlenecks_json, statistics_json, v1_keys, v2_additions
from overleg.adapters.views import ViewStore
from overleg.aggregates.values import Programme
from overleg.application import Overleg
from overleg.projections.explain import NOT_REGISTERED, UnknownFigure, explain
from overleg.projections.runner import Projector
from overleg.projections.themes import packaged
from overleg.streams import import_stream

IJH = Programme.INTEGRALE_JEUGDHULP
YEARS = (2014, 2015, 2016)
PROGRAMMES = (None, *Programme)
LINE_KEYS = {"case", "seq", "type", "at", "by", "data"}


@pytest.fixture(scope="module")
def stream() -> list[dict[str, Any]]:
    return ref.reference_stream()


@pytest.fixture
def views(store: Overleg) -> Iterator[ViewStore]:
    with closing(ViewStore(store.database)) as opened:
        yield opened


@pytest.fixture
def imported(store: Overleg, views: ViewStore, stream: list[dict[str, Any]]) -> ViewStore:
    """The whole stream imported in one go and projected."""
    import_stream(store, [json.dumps(line, ensure_ascii=False) for line in stream])
    Projector(store.event_log, views).catch_up()
    return views


def assert_every_figure(views: ViewStore) -> None:
    """Every figure of contract v1 as the reference counts it; the keys v2 adds as a v1
    stream gives them (no plans, no designated spilfiguur, the client is the young person,
    every bottleneck under its listed theme or andere)."""
    assert v1_keys(statistics_json(views, 2015, IJH)) == ref.EXPECTED_2015
    themes = packaged()
    for year in YEARS:
        for programme in PROGRAMMES:
            wanted = ref.figures(year, None if programme is None else programme.value)
            got = statistics_json(views, year, programme)
            assert v1_keys(got) == wanted, (year, programme)
            added = v2_additions(got)
            assert added["planned_not_held"] == 0
            assert added["spilfiguur"] == {"cases": 0, "chosen_by_client": 0}
            bottlenecks = ref.bottlenecks(year, None if programme is None else programme.value)
            by_theme = Counter[str]()
            for (theme, _), count in bottlenecks.items():
                by_theme[themes.theme_of(theme)] += count
            assert {t: n for t, n in added["bottlenecks_by_theme"].items() if n} == dict(by_theme)
            if programme is IJH:
                youth = got["fully_registered"]["youth_present"]
                assert added["client_present"] == youth


def tables(views: ViewStore, projector: Projector) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every projection table, in a stable order."""
    return {
        table: sorted((tuple(row) for row in views.read(f"SELECT * FROM {table}")), key=repr)
        for projection in projector.projections.values()
        for table in projection.tables
    }


def meetings_held_2015(lines: list[dict[str, Any]], programme: str) -> int:
    """Meetings of ``programme`` held in 2015 among ``lines`` (the case's request is earlier)."""
    programmes = {
        line["case"]: line["data"]["programme"] for line in lines if line["type"] == "Requested"
    }
    return sum(
        1
        for line in lines
        if line["type"] == "MeetingHeld"
        and line["data"]["held_on"].startswith("2015")
        and programmes[line["case"]] == programme
    )


def test_the_reference_figures_add_up_and_the_plan_counts_them() -> None:
    report = ref.REPORT
    assert sum(r["meetings"] for r in report.values()) == ref.MEETINGS_2015 == 379
    for outcome, total in ref.TOTALS.items():
        assert sum(r[outcome] for r in report.values()) == total
    for region, registered in ref.REGISTERED_2015.items():
        r = report[region]
        assert max(r["youth_present"], r["parents_present"], r["workplans"]) <= registered
        assert registered <= r["meetings"]
    assert sum(ref.REGISTERED_2015.values()) == ref.FULLY_REGISTERED_2015 == 336
    assert ref.figures(2015, ref.IJH) == ref.EXPECTED_2015
    first = ref.EXPECTED_2015["meetings"]
    assert first["first"] + first["follow_up"] == 379 and first["follow_up"] > 0


def test_the_stream_is_well_formed_and_holds_what_the_figures_must_ignore(
    stream: list[dict[str, Any]],
) -> None:
    seqs: dict[str, int] = {}
    for line in stream:
        assert set(line) == LINE_KEYS
        assert line["seq"] == seqs.get(line["case"], 0) + 1
        seqs[line["case"]] = line["seq"]
        assert line["at"][-6:] in ("+01:00", "+02:00")
    kinds = Counter(line["type"] for line in stream)
    for kind in (
        "RequestDeclined",
        "ConsentWithdrawn",
        "FollowUpScheduled",
        "BottleneckReported",
        "CaseClosed",
    ):
        assert kinds[kind] > 0, kind
    per_case = Counter((line["case"], line["type"]) for line in stream)
    assert any(n > 1 for (_, kind), n in per_case.items() if kind == "ChairAppointed")
    assert any(n > 1 for (_, kind), n in per_case.items() if kind == "ConsentGiven")
    ledger = ref.LEDGER
    assert any(h.meeting.youth is None or h.meeting.parents is None for h in ledger)
    unregistered = [h for h in ledger if not h.meeting.registered and h.programme == ref.IJH]
    assert any(h.meeting.workplan and h.meeting.held_on.year == 2015 for h in unregistered)
    assert meetings_held_2015(stream, ref.LCO) > 0
    assert any(h.number > 1 and h.meeting.held_on.year == 2015 for h in ledger)
    assert ref.figures(2016, ref.IJH)["meetings"]["total"] > 0


def test_one_import_reproduces_every_figure_of_the_report(
    imported: ViewStore, stream: list[dict[str, Any]]
) -> None:
    assert_every_figure(imported)
    everything = statistics_json(imported, 2015)
    assert everything["programme"] is None
    assert everything["meetings"]["total"] == 379 + meetings_held_2015(stream, ref.LCO)


def test_an_import_in_chunks_gives_the_same_figures_and_a_rebuild_the_same_tables(
    store: Overleg, views: ViewStore, stream: list[dict[str, Any]]
) -> None:
    projector = Projector(store.event_log, views, batch_size=37)
    step = len(stream) // 10 + 1
    for start in range(0, len(stream), step):
        chunk = [json.dumps(line).encode() for line in stream[start : start + step]]
        assert import_stream(store, chunk).new_events == len(chunk)
        projector.catch_up()
        so_far = meetings_held_2015(stream[: start + step], ref.IJH)
        assert statistics_json(views, 2015, IJH)["meetings"]["total"] == so_far
    assert_every_figure(views)
    built = tables(views, projector)
    assert sum(len(rows) for rows in built.values()) > len(stream)

    assert projector.rebuild() == len(stream)
    assert tables(views, projector) == built
    assert_every_figure(views)
    head = store.event_log.head()
    assert set(projector.positions().values()) == {head}


def test_explain_names_the_meetings_behind_antwerpens_young_people_present(
    imported: ViewStore,
) -> None:
    figure = "fully_registered.youth_present.by_region.Antwerpen"
    explanation = explain(imported, 2015, figure, IJH)
    antwerp = {
        (h.case, h.number): h
        for h in ref.LEDGER
        if (h.programme, h.region, h.meeting.held_on.year) == (ref.IJH, "Antwerpen", 2015)
    }
    counted = {(m.case_id, m.meeting) for m in explanation.counted}
    left_out = Counter(reason for _, reason in explanation.left_out)

    assert explanation.value == len(counted) == len(explanation.counted) == 58
    assert counted == {k for k, h in antwerp.items() if h.meeting.registered and h.meeting.youth}
    assert left_out == {NOT_REGISTERED: 119 - 108, "young person absent": 108 - 58}
    assert counted | {(m.case_id, m.meeting) for m, _ in explanation.left_out} == set(antwerp)
    assert len(explanation.counted) + len(explanation.left_out) == len(antwerp) == 119

    total = explain(imported, 2015, "meetings.total", IJH)
    assert (total.value, len(total.counted), total.left_out) == (379, 379, [])
    with pytest.raises(UnknownFigure):
        explain(imported, 2015, "fully_registered.absent_parents.total", IJH)


def test_the_bottleneck_report_counts_per_theme_region_and_year(imported: ViewStore) -> None:
    for year in YEARS:
        for programme in PROGRAMMES:
            report = bottlenecks_json(imported, year, programme)
            got = Counter(
                {
                    (row["theme"], region): count
                    for row in report["themes"]
                    for region, count in row["by_region"].items()
                    if count
                }
            )
            given = ref.bottlenecks(year, None if programme is None else programme.value)
            themes = packaged()  # analysts see the listed theme a report names, or andere
            wanted = Counter[tuple[str, str]]()
            for (theme, region), count in given.items():
                wanted[(themes.theme_of(theme), region)] += count
            assert got == wanted, (year, programme)
            assert report["total"] == wanted.total()
            totals = [row["total"] for row in report["themes"]]
            assert totals == sorted(totals, reverse=True)
