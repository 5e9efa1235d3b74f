"""The examples of the README's tour and the curl walk-throughs of docs/api.md run as they
are written, and print what they show.

Each ```sh block is run by bash, in order, in a folder of its own, with the development
folder of the test (the walk-throughs against an `overleg serve` of their own; the ids a run
gives stand in for those the docs show, and today for the day the docs were written). A
``# …`` comment right under a command (no blank line between) is what that command prints;
a comment after a blank line explains and is not compared. In a shown output ``…`` stands
for what changes from run to run (ids, times); white space is not compared, so the docs may
wrap a long line or an answer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from api_client import serving

ROOT = Path(__file__).resolve().parents[2]
MARK = "@@@ step done @@@"


@dataclass
class Step:
    command: list[str] = field(default_factory=list)
    shown: list[str] = field(default_factory=list)


def blocks(text: str, start: str, end: str) -> list[str]:
    """The ```sh blocks between two headings."""
    part = text[text.index(start) : text.index(end)]
    return re.findall(r"```sh\n(.*?)```", part, re.DOTALL)


def steps(block: str) -> list[Step]:
    found: list[Step] = []
    current = Step()
    for line in block.splitlines():
        if not line.strip():
            if current.command:
                found.append(current)
            current = Step()
        elif line.startswith("#"):
            if current.command:
                current.shown.append(line[2:] if line.startswith("# ") else line[1:])
        else:
            continues = line.startswith((" ", "\t")) or (
                bool(current.command) and current.command[-1].rstrip().endswith("\\")
            )
            if current.shown or (current.command and not continues):
                found.append(current)  # a new command: what is shown belongs to the last one
                current = Step()
            current.command.append(line)
    if current.command:
        found.append(current)
    return found


def flat(text: str) -> str:
    """Text without its white space: a long line or an answer the docs wrap, or a table's
    column padding, compares the same."""
    return "".join(text.split())


UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def pattern(shown: list[str], *, in_order: bool = False, more: bool = False) -> re.Pattern[str]:
    """What a step shows, as a pattern of what it prints; each whole id it shows matches
    any id (a group, so the caller learns which id the run gave instead). ``in_order``: the
    shown lines (each with the indented lines that continue it) appear in this order with
    other lines between them allowed (an answer's headers: the docs show those that matter);
    ``more``: what is printed may go on after what is shown (``curl -i``: the body).
    """
    lines: list[str] = []
    for line in shown:
        if lines and line.startswith(" "):
            lines[-1] += " " + line
        else:
            lines.append(line)
    parts = [
        re.sub(re.escape("@ID@"), f"({UUID})", re.escape(flat(re.sub(UUID, "@ID@", line)))).replace(
            "…", ".*?"
        )
        for line in lines
    ]
    tail = ".*" if more else ""
    return re.compile((".*?" if in_order else "").join(parts) + tail, re.DOTALL)


def run(all_steps: list[Step], cwd: Path, env: dict[str, str]) -> list[str]:
    """Every step in one bash session; each step's output (standard output and error)."""
    script = "\n".join("\n".join(step.command) + f"\necho '{MARK}'" for step in all_steps)
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    combined = done.stdout  # standard error is merged into it by the script (exec 2>&1)
    return [part.strip("\n") for part in combined.split(MARK + "\n")]


def test_the_readme_tour_prints_what_it_shows(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text()
    tour = [s for b in blocks(text, "## A short tour", "## Where to read on") for s in steps(b)]
    tour = [s for s in tour if not any("setup-env" in line for line in s.command)]
    assert len(tour) >= 10 and sum(1 for s in tour if s.shown) >= 6
    (tmp_path / "samples").symlink_to(ROOT / "samples")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OVERLEG_")},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "XDG_DATA_HOME": str(tmp_path / "home"),
        "COLUMNS": "200",
    }
    tour[0].command.insert(0, "exec 2>&1")
    outputs = run(tour, tmp_path, env)
    assert len(outputs) >= len(tour), outputs[-1]
    for step, printed in zip(tour, outputs, strict=False):
        if not step.shown:
            continue
        lines = flat(printed)
        assert pattern(step.shown).fullmatch(lines), (
            "\n".join(step.command) + "\nshows:\n" + "\n".join(step.shown) + "\nprints:\n" + lines
        )


class Shell:
    """One bash session: a step's commands in, what they print on standard output out."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        # Only what is printed on standard output is shown (progress and counts of the
        # commands go to standard error).
        self.process = subprocess.Popen(
            ["bash"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def run(self, commands: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{commands}\necho; echo '{MARK}'\n")
        self.process.stdin.flush()
        printed = []
        for line in self.process.stdout:
            if line.rstrip("\n") == MARK:
                return "".join(printed)
            printed.append(line)
        raise AssertionError("the shell ended: " + "".join(printed))

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def test_the_api_walk_throughs_print_what_they_show(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from overleg.policies.rules import brussels_day

    text = (ROOT / "docs" / "api.md").read_text()
    walk = [
        s
        for b in blocks(text, "## A case from request to follow-up, with curl", "## Projections")
        for s in steps(b)
        if not any("scripts/serve" in line for line in s.command)
    ]
    assert sum(1 for s in walk if s.shown) >= 20
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OVERLEG_")},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "XDG_DATA_HOME": str(tmp_path / "home"),
    }
    today = brussels_day(datetime.now(UTC)).isoformat()
    ids: dict[str, str] = {}  # an id the docs show -> the id this run gave
    with serving(env, cwd=tmp_path) as url:

        def here(line: str) -> str:
            for shown_id, real in ids.items():  # whole, or shortened as "c2b98428-…"
                line = line.replace(shown_id, real).replace(shown_id[:9] + "…", real[:9] + "…")
            return line.replace("2026-11-26", today).replace("http://127.0.0.1:8000", url)

        shell = Shell(tmp_path, env)
        try:
            # As on a terminal: curl shows no progress meter (it does when its output is piped).
            shell.run('curl() { command curl -sS "$@"; }')
            for step in walk:
                printed = flat(shell.run(here("\n".join(step.command))))
                if not step.shown:
                    continue
                shown = [here(line) for line in step.shown]
                headers = any(" -i " in line for line in step.command)
                found = pattern(shown, in_order=True, more=headers).fullmatch(printed)
                assert found, (
                    "\n".join(step.command)
                    + "\nshows:\n"
                    + "\n".join(shown)
                    + "\nprints:\n"
                    + printed
                )
                learned = zip(re.findall(UUID, " ".join(shown)), found.groups(), strict=True)
                for shown_id, real in learned:
                    ids.setdefault(shown_id, real)
        finally:
            shell.close()
