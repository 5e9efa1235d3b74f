"""The `overleg` console script as a user runs it: real processes, pipes, files, exit statuses."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import reopen
from overleg import __version__
from overleg.streams import export_stream

SOME_CASE = "fd24fa93-c0df-5aaf-bf82-67f9045c8555"
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "sample-stream.jsonl"
COMMAND = Path(sys.executable).parent / "overleg"


def overleg(
    url: str, *args: str, feed: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command with its output piped (not a terminal), as a script would; ``env``:
    settings added to the environment."""
    given = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE")}
    done = subprocess.run(
        [str(COMMAND), *args],
        input=feed,
        env={**given, **(env or {}), "OVERLEG_DATABASE_URL": url},
        capture_output=True,
        timeout=120,
        check=False,
    )
    result = subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode("utf-8"),
        done.stderr.decode("utf-8"),
    )
    assert "\x1b[" not in result.stderr, "ANSI escapes on a piped standard error"
    assert "Traceback" not in result.stderr, result.stderr
    return result


def lines_of(text: str) -> list[dict[str, Any]]:
    """Stream lines as the contract compares them: `at` as an instant, its offset aside."""
    parsed = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [{**line, "at": datetime.fromisoformat(line["at"])} for line in parsed]


def stored(url: str) -> list[str]:
    app = reopen(url)
    try:
        return list(export_stream(app))
    finally:
        app.close()


def test_import_a_file_then_export_to_stdout_and_to_a_file(
    database_url: str, tmp_path: Path
) -> None:
    expected = lines_of(SAMPLE.read_text(encoding="utf-8"))
    imported = overleg(database_url, "import", str(SAMPLE))
    assert imported.returncode == 0, imported.stderr
    assert f"Imported {len(expected)} new event(s) of 12 case(s)" in imported.stderr

    out = overleg(database_url, "export", "-")
    assert out.returncode == 0, out.stderr
    assert lines_of(out.stdout) == expected
    assert f"Exported {len(expected)} event(s)" in out.stderr

    target = tmp_path / "export.jsonl"
    written = overleg(database_url, "export", str(target))
    assert written.returncode == 0, written.stderr
    assert lines_of(target.read_text(encoding="utf-8")) == expected
    assert not target.with_name("export.jsonl.partial").exists()

    case = expected[-1]["case"]
    one = overleg(database_url, "export", "-", "--case", case)
    assert one.returncode == 0, one.stderr
    assert lines_of(one.stdout) == [line for line in expected if line["case"] == case]


def test_import_from_stdin_and_again_is_a_no_op(database_url: str) -> None:
    sample = SAMPLE.read_bytes()
    count = len(sample.splitlines())
    first = overleg(database_url, "import", "-", "--quiet", feed=sample)
    assert first.returncode == 0, first.stderr
    assert f"Imported {count} new event(s)" in first.stderr
    again = overleg(database_url, "import", "-", feed=sample)
    assert again.returncode == 0, again.stderr
    assert f"Imported 0 new event(s) of 12 case(s) from {count} line(s); {count} were" in (
        again.stderr
    )
    assert len(stored(database_url)) == count


def test_a_bad_stream_exits_1_names_the_line_and_writes_nothing(database_url: str) -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[40])
    bad["data"]["note"] = "onbekend veld"
    lines[40] = json.dumps(bad, ensure_ascii=False)
    refused = overleg(database_url, "import", "-", feed="\n".join(lines).encode("utf-8"))
    assert refused.returncode == 1
    assert f"line 41, case {bad['case']}" in refused.stderr
    assert "unknown key 'data.note'" in refused.stderr
    assert "nothing was written" in refused.stderr
    assert stored(database_url) == []


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "nergens.jsonl"
    result = overleg(f"sqlite:///{tmp_path / 'store.db'}", "import", str(missing))
    assert result.returncode == 2
    assert str(missing) in result.stderr


@pytest.mark.parametrize("where", ["in-a-missing-directory", "onto-a-directory"])
def test_an_export_to_a_path_that_cannot_be_written_exits_2_and_leaves_nothing(
    tmp_path: Path, where: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    target = work / "out"
    if where == "onto-a-directory":
        target.mkdir()
    else:
        target = target / "export.jsonl"
    before = sorted(work.rglob("*"))
    result = overleg(f"sqlite:///{tmp_path / 'store.db'}", "export", str(target))
    assert result.returncode == 2, result.stderr
    assert str(target) in result.stderr
    assert sorted(work.rglob("*")) == before, "a half-written export was left behind"


def test_an_unusable_database_url_exits_2_naming_the_setting() -> None:
    result = overleg("mysql://x", "export", "-")
    assert result.returncode == 2
    assert "OVERLEG_DATABASE_URL" in result.stderr
    assert result.stdout == ""


def test_a_store_that_cannot_be_opened_exits_3(tmp_path: Path) -> None:
    result = overleg(f"sqlite:///{tmp_path}", "export", "-")  # a directory, not a file
    assert result.returncode == 3
    assert "Cannot open the event store" in result.stderr


def test_a_command_that_reads_never_creates_a_store_it_does_not_find(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "overleg.db"
    for command in (["stats", "2015"], ["export", "-"], ["verify"], ["history", str(SOME_CASE)]):
        result = overleg(f"sqlite:///{missing}", *command)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.startswith(f"No event store at {missing}"), result.stderr
    assert not (tmp_path / "typo").exists()
    created = overleg(f"sqlite:///{missing}", "import", str(SAMPLE))
    assert created.returncode == 0 and missing.is_file()  # an import makes it


def test_every_wrong_setting_is_named_in_one_line_and_exits_2(tmp_path: Path) -> None:
    result = overleg(
        f"sqlite:///{tmp_path / 'store.db'}",
        "stats",
        "2015",
        env={"OVERLEG_PROJECTIONS": "bogus", "OVERLEG_LOG_LEVEL": "verbose"},
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "OVERLEG_LOG_LEVEL: Input should be 'debug', 'info', 'warning', 'error' or 'critical' "
        "(given 'verbose')",
        "OVERLEG_PROJECTIONS: Input should be 'auto', 'inline' or 'worker' (given 'bogus')",
    ]
    port = overleg(f"sqlite:///{tmp_path / 'store.db'}", "serve", "--port", "99999")
    assert port.returncode == 2 and "--port" in port.stderr


def test_the_version_from_the_option_and_as_a_module(tmp_path: Path) -> None:
    result = overleg(f"sqlite:///{tmp_path / 'store.db'}", "--version")
    assert result.returncode == 0 and result.stdout == f"overleg {__version__}\n"
    module = subprocess.run(
        [sys.executable, "-m", "overleg", "--version"], capture_output=True, text=True, check=False
    )
    assert module.returncode == 0 and module.stdout == result.stdout


def test_version_prints_the_version(tmp_path: Path) -> None:
    result = overleg(f"sqlite:///{tmp_path / 'store.db'}", "version")
    assert result.returncode == 0
    assert result.stdout.strip() == __version__


def test_a_progress_bar_shows_on_a_terminal(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [str(COMMAND), "import", str(SAMPLE)],
        env={**os.environ, "OVERLEG_DATABASE_URL": f"sqlite:///{tmp_path / 'tty.db'}"},
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
