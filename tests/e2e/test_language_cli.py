"""The `overleg` command in the user's language: Dutch (nl-BE) when OVERLEG_LANGUAGE or the
locale asks for it, English otherwise; refusals, errors and report headings translated,
machine output (JSON, CSV, the event stream) the same byte for byte in every language."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from test_cli import COMMAND, SAMPLE
from typer.testing import CliRunner

from overleg import i18n
from overleg.cli import app

UNKNOWN_CASE = "00000000-0000-0000-0000-000000000000"
DUTCH = {"OVERLEG_LANGUAGE": "nl"}
# What chooses the language; each test gives its own and inherits none.
CHOOSERS = ("OVERLEG_LANGUAGE", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG")


def overleg(
    url: str, *args: str, env: dict[str, str], feed: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the command with its output piped, the language chosen by ``env`` alone."""
    inherited = {
        k: v
        for k, v in os.environ.items()
        if k not in CHOOSERS and k not in ("FORCE_COLOR", "CLICOLOR_FORCE")
    }
    done = subprocess.run(
        [str(COMMAND), *args],
        input=feed,
        env={**inherited, **env, "OVERLEG_DATABASE_URL": url},
        capture_output=True,
        timeout=120,
        check=False,
    )
    result = subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture(scope="module")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store holding the sample stream."""
    url = f"sqlite:///{tmp_path_factory.mktemp('language') / 'overleg.db'}"
    imported = overleg(url, "import", str(SAMPLE), env={"OVERLEG_LANGUAGE": "en"})
    assert imported.returncode == 0, imported.stderr
    return url


def test_the_statistics_table_has_dutch_headings(sample_store: str) -> None:
    table = overleg(sample_store, "stats", "2015", env=DUTCH)
    assert table.returncode == 0, table.stderr
    assert "Cliëntoverleg 2015, alle programma's" in table.stdout
    for heading in ("regio", "overleggen", "volledig geregistreerd", "werkplannen", "totaal"):
        assert heading in table.stdout, heading
    assert "fully registered" not in table.stdout and "region" not in table.stdout
    assert "West-Vlaanderen" in table.stdout  # names are data: the same in every language
    assert "47,1" in table.stdout and "(35,3 %)" in table.stdout  # a decimal comma in Dutch


def test_a_missing_store_is_said_in_dutch_and_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "overleg.db"
    result = overleg(f"sqlite:///{missing}", "stats", "2015", env=DUTCH)
    assert result.returncode == 2
    assert result.stderr == (
        f"Geen gebeurtenissenopslag in {missing}: daar werd niets geïmporteerd "
        "(OVERLEG_DATABASE_URL)\n"
    )
    assert not (tmp_path / "typo").exists()


def test_the_history_of_an_unknown_case_is_said_in_dutch(sample_store: str) -> None:
    result = overleg(sample_store, "history", UNKNOWN_CASE, env=DUTCH)
    assert result.returncode == 1
    assert result.stderr == f"Geen dossier {UNKNOWN_CASE}\n"


def _consenting_twice() -> bytes:
    """The sample's first case, requested and consented to twice by the same party."""
    lines = [json.loads(x) for x in SAMPLE.read_text(encoding="utf-8").splitlines()]
    case = lines[0]["case"]
    requested, consent = [x for x in lines if x["case"] == case][:2]
    assert consent["type"] == "ConsentGiven"
    again = {**consent, "seq": 3, "at": consent["at"].replace("2015-01-29", "2015-01-30")}
    return "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in (requested, consent, again))


def test_a_line_that_breaks_a_rule_is_refused_in_dutch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'overleg.db'}"
    stream = _consenting_twice().encode("utf-8")
    refused = overleg(url, "import", "-", feed=stream, env=DUTCH)
    assert refused.returncode == 1, refused.stderr
    assert "gaf al toestemming" in refused.stderr  # the rule's own words, in Dutch
    assert "already consented" not in refused.stderr
    english = overleg(url, "import", "-", feed=stream, env={"OVERLEG_LANGUAGE": "en"})
    assert english.returncode == 1
    assert "has already consented" in english.stderr


def test_a_dutch_locale_chooses_dutch_without_the_setting(sample_store: str) -> None:
    result = overleg(sample_store, "history", UNKNOWN_CASE, env={"LANG": "nl_BE.UTF-8"})
    assert result.returncode == 1
    assert result.stderr == f"Geen dossier {UNKNOWN_CASE}\n"
    chosen = overleg(
        sample_store, "history", UNKNOWN_CASE, env={"LANG": "nl_BE.UTF-8", "OVERLEG_LANGUAGE": "en"}
    )
    assert chosen.stderr == f"No case {UNKNOWN_CASE}\n"  # the setting goes before the locale


def test_a_language_overleg_does_not_speak_is_refused_in_one_line(sample_store: str) -> None:
    result = overleg(sample_store, "stats", "2015", env={"OVERLEG_LANGUAGE": "fr"})
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("OVERLEG_LANGUAGE: ") and line.endswith("(given 'fr')")
    # Said in the locale's language when that is one overleg speaks.
    dutch = overleg(
        sample_store, "stats", "2015", env={"OVERLEG_LANGUAGE": "fr", "LANG": "nl_BE.UTF-8"}
    )
    assert dutch.returncode == 2
    [line] = dutch.stderr.splitlines()
    assert line.startswith("OVERLEG_LANGUAGE: ") and line.endswith("(opgegeven: 'fr')")


def test_without_a_choice_it_speaks_english(sample_store: str, tmp_path: Path) -> None:
    table = overleg(sample_store, "stats", "2015", env={})
    assert table.returncode == 0, table.stderr
    assert "fully registered" in table.stdout and "region" in table.stdout
    assert "Client consultations (cliëntoverleg) 2015, all programmes" in table.stdout
    assert "47.1" in table.stdout and "(35.3 %)" in table.stdout
    unknown = overleg(sample_store, "history", UNKNOWN_CASE, env={})
    assert unknown.stderr == f"No case {UNKNOWN_CASE}\n"
    missing = tmp_path / "typo.db"
    nowhere = overleg(f"sqlite:///{missing}", "export", "-", env={})
    assert nowhere.returncode == 2
    assert nowhere.stderr == (
        f"No event store at {missing}: nothing was imported there (OVERLEG_DATABASE_URL)\n"
    )
    english = overleg(sample_store, "stats", "2015", env={"OVERLEG_LANGUAGE": "en"})
    assert english.stdout == table.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("stats", "2015", "--format", "json"),
        ("stats", "2015", "--format", "csv"),
        ("bottlenecks", "2015", "--format", "json"),
        ("history", "fd24fa93-c0df-5aaf-bf82-67f9045c8555", "--format", "json"),
        ("export", "-"),
    ],
    ids=["stats-json", "stats-csv", "bottlenecks-json", "history-json", "export"],
)
def test_machine_output_is_the_same_in_every_language(
    sample_store: str, args: tuple[str, ...]
) -> None:
    english = overleg(sample_store, *args, env={"OVERLEG_LANGUAGE": "en"})
    dutch = overleg(sample_store, *args, env=DUTCH)
    assert english.returncode == dutch.returncode == 0, english.stderr + dutch.stderr
    assert english.stdout
    assert dutch.stdout.encode("utf-8") == english.stdout.encode("utf-8")


def test_a_command_leaves_the_language_as_it_found_it(sample_store: str) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["history", UNKNOWN_CASE],
        env={"OVERLEG_LANGUAGE": "nl", "OVERLEG_DATABASE_URL": sample_store},
    )
    assert result.exit_code == 1
    assert f"Geen dossier {UNKNOWN_CASE}" in result.output
    assert i18n.current.get() is i18n.Language.EN
