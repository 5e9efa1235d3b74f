"""`overleg stats`, `bottlenecks`, `history` and `rebuild` as an analyst or auditor runs them."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sample-stream.jsonl"
OVERLEG = str(Path(sys.executable).parent / "overleg")
FIRST_CASE = json.loads(SAMPLE.read_text(encoding="utf-8").splitlines()[0])["case"]


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OVERLEG, *args],
        env={**os.environ, "OVERLEG_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def sample_store(database_url: str) -> str:
    imported = run(database_url, "import", str(SAMPLE))
    assert imported.returncode == 0, imported.stderr
    return database_url


def _sample_meetings(year: int) -> list[dict[str, object]]:
    lines = [json.loads(x) for x in SAMPLE.read_text(encoding="utf-8").splitlines()]
    return [
        x
        for x in lines
        if x["type"] == "MeetingHeld" and str(x["data"]["held_on"]).startswith(str(year))
    ]


def test_stats_json_table_and_csv_agree_with_the_sample(sample_store: str) -> None:
    as_json = run(sample_store, "stats", "2015", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    figures = json.loads(as_json.stdout)
    assert figures["meetings"]["total"] == len(_sample_meetings(2015))
    assert figures["programme"] is None

    as_csv = run(sample_store, "stats", "2015", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["region"] for r in rows][-1] == "total"
    assert int(rows[-1]["meetings"]) == figures["meetings"]["total"]
    assert int(rows[-1]["youth_present"]) == figures["fully_registered"]["youth_present"]["total"]

    table = run(sample_store, "stats", "2015")
    assert "West-Vlaanderen" in table.stdout
    assert f"{figures['meetings']['total']} meetings" in table.stdout
    assert "\x1b[" not in table.stdout


def test_stats_explain_lists_the_meetings_behind_a_figure(sample_store: str) -> None:
    figures = json.loads(run(sample_store, "stats", "2015", "-f", "json").stdout)
    explained = run(sample_store, "stats", "2015", "--explain", "meetings.total")
    assert explained.returncode == 0, explained.stderr
    counted = [line for line in explained.stdout.splitlines() if line.startswith("  case ")]
    assert len(counted) == figures["meetings"]["total"]
    assert explained.stdout.startswith(f"meetings.total = {figures['meetings']['total']}")


def test_stats_refuses_an_unknown_figure_programme_or_chart_type(sample_store: str) -> None:
    unknown = run(sample_store, "stats", "2015", "--explain", "meetings.bogus")
    assert unknown.returncode == 2
    assert "No figure 'meetings.bogus'" in unknown.stderr
    programme = run(sample_store, "stats", "2015", "--programme", "jeugdzorg")
    assert programme.returncode == 2
    assert "integrale_jeugdhulp" in programme.stderr
    chart = run(sample_store, "stats", "2015", "--chart", "figures.pdf")
    assert chart.returncode == 2
    assert "Traceback" not in unknown.stderr + programme.stderr + chart.stderr


def test_stats_chart_is_written_as_png_and_svg(sample_store: str, tmp_path: Path) -> None:
    png, svg = tmp_path / "stats.png", tmp_path / "stats.svg"
    assert run(sample_store, "stats", "2015", "-f", "json", "--chart", str(png)).returncode == 0
    assert run(sample_store, "stats", "2015", "-f", "json", "--chart", str(svg)).returncode == 0
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "<svg" in svg.read_text(encoding="utf-8")


def test_history_prints_every_event_of_a_case_in_order(sample_store: str) -> None:
    lines = [json.loads(x) for x in SAMPLE.read_text(encoding="utf-8").splitlines()]
    own = [x for x in lines if x["case"] == FIRST_CASE]
    shown = run(sample_store, "history", FIRST_CASE, "--format", "json")
    assert shown.returncode == 0, shown.stderr
    entries = json.loads(shown.stdout)
    assert [(e["seq"], e["type"], e["by"]) for e in entries] == [
        (x["seq"], x["type"], x["by"]) for x in own
    ]
    assert entries[0]["summary"].startswith("Consultation requested")
    table = run(sample_store, "history", FIRST_CASE)
    assert "Consultation requested" in table.stdout
    missing = run(sample_store, "history", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode == 1
    assert "No case" in missing.stderr


def test_bottlenecks_and_rebuild(sample_store: str) -> None:
    before = run(sample_store, "bottlenecks", "2015", "-f", "json")
    assert before.returncode == 0, before.stderr
    rebuilt = run(sample_store, "rebuild", "bottlenecks")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "Rebuilt bottlenecks" in rebuilt.stderr
    assert run(sample_store, "bottlenecks", "2015", "-f", "json").stdout == before.stdout
    unknown = run(sample_store, "rebuild", "nonsense")
    assert unknown.returncode == 2
    assert "case_view" in unknown.stderr


def test_odd_years_and_chart_paths_exit_2_without_a_traceback(
    sample_store: str, tmp_path: Path
) -> None:
    huge = run(sample_store, "stats", "99999999999999999999")
    nowhere = run(sample_store, "stats", "2015", "--chart", str(tmp_path / "no" / "x.png"))
    assert (huge.returncode, nowhere.returncode) == (2, 2)
    assert "folder that does not exist" in nowhere.stderr
    assert "Traceback" not in huge.stderr + nowhere.stderr
