"""Sealed statistical releases as an analyst and an auditor run them: `stats --seal` stores the
figures with the log position and a digest; `verify --releases` recomputes each from the log up
to its position, so later events leave it alone and a changed event or release is named."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from uuid import UUID

from test_cli import SAMPLE, overleg

from overleg.adapters.eventstore import Database
from overleg.adapters.views import ViewStore
from overleg.projections.releases import Release, Releases
from tampering import read_state, write_state

CASE = UUID("583b2f70-4089-5292-929d-cd658177d26f")  # its meeting 1 (seq 5): youth present
LATER_CASE = "0b6c1f4e-3f57-4c2a-9a43-5d1c2e7f9a10"


def _imported(url: str) -> Database:
    done = overleg(url, "import", str(SAMPLE))
    assert done.returncode == 0, done.stderr
    return Database.from_url(url)


def _sealed(url: str, *args: str) -> str:
    done = overleg(url, "stats", "2015", *args, "--seal")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1, done.stdout  # one line
    return done.stdout


def _releases(database: Database) -> list[Release]:
    store = ViewStore(database)
    try:
        return Releases(store).all()
    finally:
        store.close()


def _figures(url: str, *args: str) -> dict[str, Any]:
    done = overleg(url, "stats", "2015", "--format", "json", *args)
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def _canonical_digest(release: Release) -> str:
    whole = {
        "figures": json.loads(release.figures),
        "year": release.year,
        "programme": release.programme,
        "as_known_at": release.as_known_at,
        "position": release.position,
    }
    text = json.dumps(whole, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _later_case(url: str) -> None:
    """A case recorded after the seal, with a fully registered meeting held in 2015."""
    lines = [
        ("Requested", "2015-12-01T10:00:00+01:00", "team-limburg-1", {
            "programme": "integrale_jeugdhulp", "region": "Limburg",
            "requested_by": {"ref": "hulpverlener-99-1", "role": "professional"},
            "channel": "cobe", "client": {"ref": "jongere-99", "birth_date": None},
            "question": "Overzicht in de hulpverlening: wie doet wat?",
        }),
        ("ConsentGiven", "2015-12-02T10:00:00+01:00", "team-limburg-1",
         {"party": {"ref": "jongere-99", "role": "youth"}}),
        ("ChairAppointed", "2015-12-03T10:00:00+01:00", "team-limburg-1",
         {"chair": "voorzitter-limburg-9"}),
        ("MeetingHeld", "2015-12-20T14:00:00+01:00", "voorzitter-limburg-9", {
            "meeting": 1, "held_on": "2015-12-20", "place": "school",
            "attendance": {"youth": True, "parents": False, "trusted_person": False,
                           "professionals": ["hulpverlener-99-1"]},
        }),
        ("RegistrationCompleted", "2015-12-22T10:00:00+01:00", "voorzitter-limburg-9",
         {"meeting": 1}),
    ]  # fmt: skip
    stream = "".join(
        json.dumps({"case": LATER_CASE, "seq": seq, "type": kind, "at": at, "by": by, "data": data})
        + "\n"
        for seq, (kind, at, by, data) in enumerate(lines, start=1)
    )
    done = overleg(url, "import", "-", feed=stream.encode())
    assert done.returncode == 0, done.stderr
    assert "Imported 5 new event(s) of 1 case(s)" in done.stderr


def test_a_sealed_release_holds_the_printed_figures_and_verifies(database_url: str) -> None:
    database = _imported(database_url)
    printed = _figures(database_url)
    line = _sealed(database_url)
    (release,) = _releases(database)
    assert line.split()[:2] == ["release", "1"]
    assert line.split()[-1] == release.digest == _canonical_digest(release)
    assert f"position {release.position} " in line
    assert release.position == 97
    assert release.as_known_at == release.sealed_at  # as known at the moment of sealing
    assert json.loads(release.figures) == printed
    assert release.figures == json.dumps(printed, ensure_ascii=False, indent=2)

    known = "2015-06-01T00:00:00+02:00"
    second = _sealed(database_url, "--programme", "integrale_jeugdhulp", "--as-known-at", known)
    assert second.startswith("release 2 year 2015 programme integrale_jeugdhulp")
    stored = _releases(database)[1]
    assert stored.as_known_at == known
    as_then = _figures(database_url, "--programme", "integrale_jeugdhulp", "--as-known-at", known)
    assert json.loads(stored.figures) == as_then

    checked = overleg(database_url, "verify", "--releases")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "OK release 1 year 2015 programme all" in checked.stdout
    assert "OK release 2 year 2015 programme integrale_jeugdhulp" in checked.stdout
    assert "OK: 2 sealed release(s) recomputed" in checked.stdout
    chain = overleg(database_url, "verify")  # the chain check is unchanged beside it
    assert chain.returncode == 0 and chain.stdout.startswith("OK: 97 event(s)")


def test_later_events_leave_a_sealed_release_alone(database_url: str) -> None:
    _imported(database_url)
    before = _figures(database_url)
    _sealed(database_url)
    _later_case(database_url)

    after = _figures(database_url)
    assert after["meetings"]["total"] == before["meetings"]["total"] + 1
    checked = overleg(database_url, "verify", "--releases")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "OK release 1" in checked.stdout

    # A release sealed now rests on the new position and counts the later case.
    _sealed(database_url)
    second = _releases(Database.from_url(database_url))[1]
    assert second.position == 102
    assert json.loads(second.figures)["meetings"]["total"] == after["meetings"]["total"]
    assert overleg(database_url, "verify", "--releases").returncode == 0


def test_an_edited_event_is_named_by_the_figure_it_changes(database_url: str) -> None:
    database = _imported(database_url)
    before = _figures(database_url)
    _sealed(database_url)
    state = json.loads(read_state(database, CASE, 5))
    assert state["youth"] is True
    state["youth"] = False
    write_state(database, CASE, 5, json.dumps(state).encode())

    checked = overleg(database_url, "verify", "--releases")
    assert checked.returncode == 1
    youth = before["fully_registered"]["youth_present"]["total"]
    assert (
        f"BROKEN release 1 figure fully_registered.youth_present.total: "
        f"sealed {youth}, now {youth - 1}" in checked.stdout
    )
    assert "meetings.total" not in checked.stdout  # only what changed is named
    assert "digest" not in checked.stdout  # the release itself is as sealed
    assert "1 release(s) no longer match" in checked.stderr


def test_a_changed_release_is_caught_by_its_digest(database_url: str) -> None:
    database = _imported(database_url)
    _sealed(database_url)
    (release,) = _releases(database)
    figures = json.loads(release.figures)
    total = figures["meetings"]["total"]
    figures["meetings"]["total"] = total + 1
    store = ViewStore(database)
    try:
        with store.transaction() as tx:
            tx.execute(
                "UPDATE stats_release SET figures = ? WHERE number = 1",
                (json.dumps(figures, ensure_ascii=False, indent=2),),
            )
    finally:
        store.close()

    checked = overleg(database_url, "verify", "--releases")
    assert checked.returncode == 1
    assert "BROKEN release 1 digest: the stored digest does not match" in checked.stdout
    assert f"BROKEN release 1 figure meetings.total: sealed {total + 1}, now {total}" in (
        checked.stdout
    )


def test_seal_and_releases_refuse_what_they_do_not_combine_with(database_url: str) -> None:
    _imported(database_url)
    both = overleg(database_url, "verify", str(CASE), "--releases")
    assert both.returncode == 2 and "give no case" in both.stderr
    explained = overleg(database_url, "stats", "2015", "--seal", "--explain", "meetings.total")
    assert explained.returncode == 2 and "--seal" in explained.stderr
    assert _releases(Database.from_url(database_url)) == []  # nothing sealed
    empty = overleg(database_url, "verify", "--releases")
    assert empty.returncode == 0 and "OK: 0 sealed release(s)" in empty.stdout
