"""`overleg import` and `overleg export` as real processes, as an integrator runs them."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from overleg import __version__

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sample-stream.jsonl"
OVERLEG = str(Path(sys.executable).parent / "overleg")
LINES = SAMPLE.read_text(encoding="utf-8").splitlines()


def run(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OVERLEG, *args],
        env={**os.environ, "OVERLEG_DATABASE_URL": url},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def parsed(text: str) -> list[dict[str, object]]:
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def test_import_then_export_reproduces_the_sample(database_url: str, tmp_path: Path) -> None:
    imported = run(database_url, "import", str(SAMPLE))
    assert imported.returncode == 0, imported.stderr
    assert f"Imported {len(LINES)} new event(s) of 12 case(s)" in imported.stderr
    assert "\x1b[" not in imported.stderr  # no bar, no colours when piped
    out = run(database_url, "export", "-")
    assert out.returncode == 0
    assert parsed(out.stdout) == parsed(SAMPLE.read_text(encoding="utf-8"))
    target = tmp_path / "export.jsonl"
    assert run(database_url, "export", str(target)).returncode == 0
    assert target.read_text(encoding="utf-8") == out.stdout
    again = run(database_url, "import", "-", stdin=out.stdout)
    assert again.returncode == 0
    assert f"0 new event(s) of 12 case(s) from {len(LINES)} line(s); {len(LINES)} were" in (
        again.stderr
    )


def test_a_bad_line_exits_1_names_the_line_and_writes_nothing(database_url: str) -> None:
    bad = [*LINES]
    bad[30] = bad[30].replace('"type":"', '"type":"X', 1)
    refused = run(database_url, "import", "-", stdin="\n".join(bad) + "\n")
    assert refused.returncode == 1
    assert "line 31, case " in refused.stderr
    assert "nothing was written" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert run(database_url, "export", "-").stdout == ""


def test_a_missing_file_or_a_bad_database_url_exits_2(database_url: str) -> None:
    missing = run(database_url, "import", "no-such-file.jsonl")
    assert (missing.returncode, missing.stderr.strip()) == (2, "No such file: no-such-file.jsonl")
    bad_url = run("mysql://localhost/overleg", "import", str(SAMPLE))
    assert bad_url.returncode == 2
    assert bad_url.stderr.startswith("OVERLEG_DATABASE_URL: Unsupported database URL")
    assert "Traceback" not in missing.stderr + bad_url.stderr


def test_an_unreachable_store_exits_3_without_a_traceback() -> None:
    unreachable = run("postgresql://nobody@127.0.0.1:1/overleg", "export", "-")
    assert unreachable.returncode == 3
    assert unreachable.stderr.startswith("Cannot open the event store (postgresql)")
    assert "Traceback" not in unreachable.stderr


def test_a_progress_bar_shows_on_a_terminal(database_url: str) -> None:
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [OVERLEG, "import", str(SAMPLE)],
        env={**os.environ, "OVERLEG_DATABASE_URL": database_url, "COLUMNS": "100"},
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert process.wait(timeout=120) == 0
    shown = seen.decode(errors="replace")
    assert "validating" in shown or "writing" in shown
    assert "Imported" in shown


def test_version() -> None:
    shown = subprocess.run([OVERLEG, "version"], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == __version__
