"""The annual statistics of contract v2: corrections applied, retracted meetings nowhere, the
first meeting by date, plans not held, the spilfiguur, bottlenecks per listed theme, and the
figures as known at an instant; on both backends, from imported synthetic v2 streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import reference2015 as ref
from conftest import reopen
from overleg.adapters.eventstore import Database
from overleg.adapters.views import ViewStore
from overleg.aggregates.values import Programme, RuleSet
from overleg.api.app import create_app
from overleg.api.auth import dev_private_key, issue_dev_token
from overleg.application import Overleg
from overleg.policies.access import StaffRole
from overleg.policies.rules import BRUSSELS, brussels_day
from overleg.projections.bottlenecks import bottleneck_report
from overleg.projections.explain import RETRACTED, UnknownFigure, explain
from overleg.projections.runner import Projector
from overleg.projections.statistics import annual_statistics
from overleg.projections.themes import OTHER, BottleneckThemes, ThemesFileError, packaged
from overleg.reports import explanation_text
from overleg.settings import Settings
from overleg.streams import import_stream

CET, CEST = timezone(timedelta(hours=1)), timezone(timedelta(hours=2))
NAMESPACE = uuid.UUID("2b7c1f0e-9a4d-4e61-8c3b-5d2e6f7a8b90")
OVERLEG = str(Path(sys.executable).parent / "overleg")
AFTER_2026 = date(2027, 2, 1)  # a "today" on which every plan of 2026 has passed
NEW_YEAR = datetime(2027, 1, 1, tzinfo=CET)  # known at: before the late lines of 2027
Line = dict[str, Any]


class Story:
    """One case's lines, each recorded at the instant given (never earlier than the last)."""

    def __init__(self, name: str) -> None:
        self.case = str(uuid.uuid5(NAMESPACE, name))
        self.lines: list[Line] = []

    def add(self, at: str, kind: str, **data: Any) -> Story:
        self.lines.append(
            {
                "case": self.case,
                "seq": len(self.lines) + 1,
                "type": kind,
                "at": at,
                "by": "team-1",
                "data": data,
            }
        )
        return self


def request(
    programme: str, region: str, client: str, *, role: str = "parent", born: str | None = None
) -> dict[str, Any]:
    requester = (
        {"ref": client, "role": "client"} if role == "client" else {"ref": "ouder-x", "role": role}
    )
    return {
        "programme": programme,
        "region": region,
        "requested_by": requester,
        "channel": "cobe",
        "client": {"ref": client, "birth_date": born},
        "question": "Hulp afstemmen",
    }


def attendance(
    professionals: list[str],
    youth: bool | None = None,
    parents: bool | None = None,
    **v2: Any,
) -> dict[str, Any]:
    return {
        "youth": youth,
        "parents": parents,
        "trusted_person": None,
        "professionals": professionals,
        **v2,
    }


def held(number: int, day: str, who: dict[str, Any]) -> dict[str, Any]:
    return {"meeting": number, "held_on": day, "place": "Overlegruimte", "attendance": who}


def plan(number: int, on: str, not_invited: list[str] | None = None) -> dict[str, Any]:
    return {
        "meeting": number,
        "on": on,
        "place": None,
        "invited": [],
        "not_invited": not_invited or [],
    }


def workplan(number: int, who: str, coordinator: str | None) -> dict[str, Any]:
    agreement = {"who": who, "what": "Huisbezoek", "due": None, "domain": "gezin"}
    return {
        "meeting": number,
        "agreements": [agreement],
        "coordinator": coordinator,
        "crisis_plan": False,
    }


def case_a() -> Story:
    """Integrale jeugdhulp, Antwerpen: the young person's presence given as `client`, a
    postponed meeting, a cancelled and an unheld plan, a spilfiguur the client chose, two
    bottlenecks (one under an unlisted theme), and the second meeting's attendance corrected
    in the next year."""
    s = Story("case-a")
    s.add(
        "2026-01-05T09:00:00+01:00",
        "Requested",
        **request("integrale_jeugdhulp", "Antwerpen", "jongere-a"),
    )
    s.add("2026-01-05T10:00:00+01:00", "ConsentGiven", party={"ref": "jongere-a", "role": "youth"})
    s.add("2026-01-06T10:00:00+01:00", "ChairAppointed", chair="vz-a")
    s.add("2026-01-20T10:00:00+01:00", "MeetingPlanned", **plan(1, "2026-02-02"))
    s.add(
        "2026-02-02T18:00:00+01:00",
        "MeetingHeld",
        **held(1, "2026-02-02", attendance(["hv-a1"], parents=True, client=True)),
    )
    s.add("2026-02-02T19:00:00+01:00", "WorkplanAgreed", **workplan(1, "hv-a1", "hv-a1"))
    s.add("2026-02-03T09:00:00+01:00", "RegistrationCompleted", meeting=1)
    s.add(
        "2026-02-10T09:00:00+01:00",
        "CoordinatorDesignated",
        coordinator="hv-a2",
        chosen_by_client=True,
    )
    s.add("2026-02-15T09:00:00+01:00", "MeetingPlanned", **plan(2, "2026-03-02"))
    s.add("2026-02-25T09:00:00+01:00", "MeetingPlanned", **plan(2, "2026-03-16"))  # postponed
    s.add(
        "2026-03-16T18:00:00+01:00",
        "MeetingHeld",
        **held(2, "2026-03-16", attendance(["hv-a1"], youth=False, parents=True)),
    )
    s.add("2026-03-17T09:00:00+01:00", "RegistrationCompleted", meeting=2)
    s.add("2026-04-01T09:00:00+02:00", "MeetingPlanned", **plan(3, "2026-05-04"))
    s.add("2026-04-20T09:00:00+02:00", "MeetingCancelled", meeting=3, reason="Ziek")
    s.add(
        "2026-04-21T09:00:00+02:00",
        "BottleneckReported",
        theme="  Wachtlijsten ",
        description="Geen plaats",
    )
    s.add(
        "2026-04-21T10:00:00+02:00",
        "BottleneckReported",
        theme="Geen plaats in dagcentrum De Linde",
        description="Vrije tekst",
    )
    s.add("2026-11-01T09:00:00+01:00", "MeetingPlanned", **plan(4, "2026-12-20"))
    s.add(
        "2027-01-15T09:00:00+01:00",
        "AttendanceCorrected",
        meeting=2,
        attendance=attendance(["hv-a1"], youth=True, parents=True),
        reason="De jongere was er wel",
    )
    return s


def case_b() -> Story:
    """Integrale jeugdhulp, Limburg: meeting 1 retracted (so meeting 2 is the first), a held
    plan retracted, a spilfiguur not chosen by the client, and a registration and a
    workplan revision recorded in the next year."""
    s = Story("case-b")
    s.add(
        "2026-01-06T09:00:00+01:00",
        "Requested",
        **request("integrale_jeugdhulp", "Limburg", "jongere-b"),
    )
    s.add("2026-01-06T10:00:00+01:00", "ConsentGiven", party={"ref": "jongere-b", "role": "youth"})
    s.add("2026-01-07T10:00:00+01:00", "ChairAppointed", chair="vz-b")
    s.add(
        "2026-02-10T18:00:00+01:00",
        "MeetingHeld",
        **held(1, "2026-02-10", attendance(["hv-b1"], youth=True, parents=True)),
    )
    s.add("2026-02-11T09:00:00+01:00", "RegistrationCompleted", meeting=1)
    s.add("2026-02-12T09:00:00+01:00", "MeetingRetracted", meeting=1, reason="Verkeerd dossier")
    s.add(
        "2026-02-20T18:00:00+01:00",
        "MeetingHeld",
        **held(2, "2026-02-20", attendance(["hv-b1"], youth=False, parents=True)),
    )
    s.add("2026-02-20T19:00:00+01:00", "WorkplanAgreed", **workplan(2, "hv-b1", None))
    s.add(
        "2026-05-01T09:00:00+02:00",
        "CoordinatorDesignated",
        coordinator="hv-b2",
        chosen_by_client=False,
    )
    s.add("2026-05-02T09:00:00+02:00", "MeetingPlanned", **plan(3, "2026-06-01"))
    s.add(
        "2026-06-01T18:00:00+02:00",
        "MeetingHeld",
        **held(3, "2026-06-01", attendance(["hv-b1"], youth=True, parents=True)),
    )
    s.add("2026-06-03T09:00:00+02:00", "MeetingRetracted", meeting=3, reason="Verkeerde datum")
    s.add("2027-01-08T09:00:00+01:00", "RegistrationCompleted", meeting=2)
    s.add(
        "2027-01-12T09:00:00+01:00",
        "WorkplanRevised",
        **workplan(2, "hv-b1", "hv-b1"),
        reason="Hulpcoördinator vergeten",
    )
    return s


def case_c() -> Story:
    """Lokaal cliëntoverleg, Brussel: closed and reopened (its next meeting is a follow-up),
    the client's presence given as `client`, then as `youth`; a plan of December held in
    January; a spilfiguur designated only in the next year."""
    s = Story("case-c")
    s.add(
        "2026-01-07T09:00:00+01:00",
        "Requested",
        **request("lokaal_clientoverleg", "Brussel", "client-c", role="client", born="1970-05-05"),
    )
    s.add("2026-01-07T10:00:00+01:00", "ConsentGiven", party={"ref": "client-c", "role": "client"})
    s.add("2026-01-08T10:00:00+01:00", "ChairAppointed", chair="vz-c")
    s.add(
        "2026-03-01T18:00:00+01:00",
        "MeetingHeld",
        **held(1, "2026-03-01", attendance(["hv-c1"], client=True)),
    )
    s.add("2026-03-02T09:00:00+01:00", "RegistrationCompleted", meeting=1)
    s.add(
        "2026-03-05T09:00:00+01:00", "BottleneckReported", theme="Vervoer", description="Geen bus"
    )
    s.add("2026-03-10T09:00:00+01:00", "CaseClosed", reason="Afgerond")
    s.add("2026-03-20T09:00:00+01:00", "CaseReopened", reason="Nieuwe vraag")
    s.add(
        "2026-04-01T18:00:00+02:00",
        "MeetingHeld",
        **held(2, "2026-04-01", attendance(["hv-c1"], youth=True)),
    )
    s.add("2026-04-02T09:00:00+02:00", "RegistrationCompleted", meeting=2)
    s.add("2026-12-01T09:00:00+01:00", "MeetingPlanned", **plan(3, "2026-12-28"))
    s.add(
        "2027-01-05T18:00:00+01:00",
        "MeetingHeld",
        **held(3, "2027-01-05", attendance(["hv-c1"], youth=True)),
    )
    s.add(
        "2027-01-20T09:00:00+01:00",
        "CoordinatorDesignated",
        coordinator="hv-c1",
        chosen_by_client=True,
    )
    return s


def case_e() -> Story:
    """A v1 case of 2025 (requested before v2) whose second meeting is retracted in 2026."""
    s = Story("case-e")
    s.add(
        "2025-06-01T10:00:00+02:00",
        "Requested",
        **request("integrale_jeugdhulp", "West-Vlaanderen", "jongere-e"),
    )
    s.add("2025-06-01T11:00:00+02:00", "ConsentGiven", party={"ref": "jongere-e", "role": "youth"})
    s.add("2025-06-02T10:00:00+02:00", "ChairAppointed", chair="vz-e")
    for number, day in ((1, "2025-06-10"), (2, "2025-07-01")):
        s.add(
            f"{day}T18:00:00+02:00",
            "MeetingHeld",
            **held(number, day, attendance(["hv-e1"], youth=True, parents=True)),
        )
    s.add("2026-01-10T10:00:00+01:00", "MeetingRetracted", meeting=2, reason="Dubbel")
    return s


def stream() -> list[Line]:
    """Every line of the four cases, in the order they were recorded."""
    lines = [line for story in (case_a(), case_b(), case_c(), case_e()) for line in story.lines]
    return sorted(lines, key=lambda line: datetime.fromisoformat(line["at"]))


def known_at(lines: list[Line], instant: datetime) -> list[Line]:
    """The lines recorded at or before ``instant``."""
    return [line for line in lines if datetime.fromisoformat(line["at"]) <= instant]


def by_region(**counts: int) -> dict[str, int]:
    """Every region, with 0 where nothing counts."""
    return {region: counts.get(region, 0) for region in ref.REGIONS}


def themes(**counts: int) -> dict[str, int]:
    """Every theme of the packaged list and andere, with 0 where nothing counts."""
    return {name: counts.get(name, 0) for name in packaged().names}


# Every figure of 2026, with every line known and every plan of 2026 in the past.
EXPECTED_2026: dict[str, Any] = {
    "year": 2026,
    "programme": None,
    "meetings": {
        "total": 5,  # A1, A2, B2, C1, C2: B's retracted meetings count nowhere
        "first": 3,  # A1, B2 (B1 retracted), C1
        "follow_up": 2,  # A2, and C2 after the case was reopened
        "previous_year_total": 1,  # E1: E2 was retracted
        "planned_not_held": 4,  # A3 cancelled, A4 not held, B3 retracted, C3 held in 2027
        "by_region": {
            "Antwerpen": {"count": 2, "pct": 40.0},
            "Brussel": {"count": 2, "pct": 40.0},
            "Limburg": {"count": 1, "pct": 20.0},
            "Oost-Vlaanderen": {"count": 0, "pct": 0.0},
            "Vlaams-Brabant": {"count": 0, "pct": 0.0},
            "West-Vlaanderen": {"count": 0, "pct": 0.0},
        },
    },
    "fully_registered": {
        "total": 5,
        # A1 (client, counted as youth in integrale jeugdhulp), A2 (corrected), C2
        "youth_present": {"total": 3, "pct": 60.0, "by_region": by_region(Antwerpen=2, Brussel=1)},
        # A1, A2 and C1 (client), C2 (youth, where client is not given)
        "client_present": {"total": 4, "pct": 80.0, "by_region": by_region(Antwerpen=2, Brussel=2)},
        "parents_present": {
            "total": 3,
            "pct": 60.0,
            "by_region": by_region(Antwerpen=2, Limburg=1),
        },
        "workplans": {"total": 2, "pct": 40.0, "by_region": by_region(Antwerpen=1, Limburg=1)},
        "coordinators": {  # B2's coordinator came with the revision
            "total": 2,
            "pct": 40.0,
            "pct_of_workplans": 100.0,
            "by_region": by_region(Antwerpen=1, Limburg=1),
        },
    },
    "spilfiguur": {"cases": 2, "chosen_by_client": 1},  # C's came in 2027
    "bottlenecks_by_theme": themes(wachtlijsten=1, vervoer=1, andere=1),
}


def as_known_at_new_year() -> dict[str, Any]:
    """The figures of 2026 as known on 1 January 2027: without A2's correction, B2's
    registration and B2's revised workplan."""
    expected = json.loads(json.dumps(EXPECTED_2026))
    fully = expected["fully_registered"]
    fully["total"] = 4
    fully["youth_present"] = {
        "total": 2,
        "pct": 50.0,
        "by_region": by_region(Antwerpen=1, Brussel=1),
    }
    fully["client_present"] = {
        "total": 3,
        "pct": 75.0,
        "by_region": by_region(Antwerpen=1, Brussel=2),
    }
    fully["parents_present"] = {"total": 2, "pct": 50.0, "by_region": by_region(Antwerpen=2)}
    fully["workplans"] = {"total": 1, "pct": 25.0, "by_region": by_region(Antwerpen=1)}
    fully["coordinators"] = {
        "total": 1,
        "pct": 25.0,
        "pct_of_workplans": 100.0,
        "by_region": by_region(Antwerpen=1),
    }
    return expected


@pytest.fixture
def views(store: Overleg) -> Iterator[ViewStore]:
    with closing(ViewStore(store.database)) as opened:
        yield opened


@pytest.fixture
def imported(store: Overleg, views: ViewStore) -> ViewStore:
    """The four cases imported and projected."""
    report = import_stream(store, [json.dumps(line) for line in stream()])
    assert report.new_events == len(stream())
    Projector(store.event_log, views).catch_up()
    return views


def figures(views: ViewStore, year: int = 2026, **options: Any) -> dict[str, Any]:
    options.setdefault("today", AFTER_2026)
    return annual_statistics(views, year, **options).model_dump(mode="json")


# -- the figures ------------------------------------------------------------------------------


def test_the_cases_of_2026_keep_the_v2_rules_and_the_case_of_2025_the_v1_rules(
    store: Overleg, imported: ViewStore
) -> None:
    rule_sets = {
        story.case: store.get_case(uuid.UUID(story.case)).rule_set
        for story in (case_a(), case_b(), case_c(), case_e())
    }
    assert sorted(rule_sets.values()) == [RuleSet.V1, RuleSet.V2, RuleSet.V2, RuleSet.V2]


def test_every_figure_of_2026_applies_corrections_and_counts_retracted_meetings_nowhere(
    imported: ViewStore,
) -> None:
    assert figures(imported) == EXPECTED_2026


def test_a_retracted_meeting_counts_nowhere_and_the_next_one_is_first(
    imported: ViewStore,
) -> None:
    limburg = figures(imported, programme=Programme.INTEGRALE_JEUGDHULP)
    assert limburg["meetings"]["by_region"]["Limburg"]["count"] == 1  # B2 only
    first = explain(imported, 2026, "meetings.first", today=AFTER_2026)
    counted = {(m.case_id, m.meeting) for m in first.counted}
    b, e = case_b().case, case_e().case
    assert (b, 2) in counted and (b, 1) not in counted
    reasons = {(m.case_id, m.meeting): why for m, why in first.left_out}
    assert reasons[b, 1] == reasons[b, 3] == RETRACTED
    previous = explain(imported, 2026, "meetings.previous_year_total", today=AFTER_2026)
    assert [(m.case_id, m.meeting) for m in previous.counted] == [(e, 1)]
    assert [(m.case_id, m.meeting, why) for m, why in previous.left_out] == [(e, 2, RETRACTED)]


def test_plans_count_as_not_held_once_their_day_has_passed(imported: ViewStore) -> None:
    # In December 2026 A4 (20 December) has passed and C3 (28 December) has not.
    assert figures(imported, today=date(2026, 12, 21))["meetings"]["planned_not_held"] == 3
    assert figures(imported, today=date(2026, 12, 20))["meetings"]["planned_not_held"] == 2
    explained = explain(imported, 2026, "meetings.planned_not_held", today=date(2026, 12, 21))
    counted = sorted((p.case_id, p.meeting) for p in explained.counted)
    a, b = case_a().case, case_b().case
    assert counted == sorted([(a, 3), (a, 4), (b, 3)])
    # The postponed meeting counts by its last plan: held on the day it was moved to.
    assert {why for _, why in explained.left_out} == {
        "held on 2026-02-02",
        "held on 2026-03-16",
        "its day has not passed",
    }
    # A plan of the year before or after is not a plan of 2026.
    assert figures(imported, 2027, today=AFTER_2026)["meetings"]["planned_not_held"] == 0


def test_as_known_at_leaves_out_later_corrections_registrations_and_retractions(
    imported: ViewStore,
) -> None:
    assert figures(imported, as_known_at=NEW_YEAR) == as_known_at_new_year()
    # Before E's retraction was recorded, its second meeting of 2025 still counted.
    early = figures(imported, as_known_at=datetime(2026, 1, 9, 23, 59, tzinfo=CET))
    assert early["meetings"]["previous_year_total"] == 2
    assert early["meetings"]["total"] == 0
    # Every line counts at an instant after the last one: the figures as known now.
    later = datetime(2999, 12, 31, tzinfo=CET)
    for year in (2025, 2026, 2027):
        for programme in (None, *Programme):
            assert figures(imported, year, programme=programme, as_known_at=later) == figures(
                imported, year, programme=programme
            ), (year, programme)


def test_as_known_at_gives_the_figures_of_a_store_of_only_the_lines_recorded_by_then(
    imported: ViewStore, tmp_path: Path
) -> None:
    lines = stream()
    instants = sorted({datetime.fromisoformat(line["at"]) for line in lines})
    for k, instant in enumerate([*instants[::6], instants[-1]]):
        path = tmp_path / f"known-{k}.db"
        with (
            closing(Overleg(Database.from_url(f"sqlite:///{path}"))) as app,
            closing(ViewStore(app.database)) as then,
        ):
            import_stream(app, [json.dumps(line) for line in known_at(lines, instant)])
            Projector(app.event_log, then).catch_up()
            day = min(AFTER_2026, brussels_day(instant))
            for year in (2025, 2026, 2027):
                for programme in (None, *Programme):
                    assert figures(
                        imported, year, programme=programme, as_known_at=instant
                    ) == figures(then, year, programme=programme, today=day), (instant, year)


def test_as_known_at_counts_a_line_recorded_at_that_very_instant(imported: ViewStore) -> None:
    correction = datetime(2027, 1, 15, 9, tzinfo=CET)
    youth = "fully_registered.youth_present.total"
    assert explain(imported, 2026, youth, as_known_at=correction, today=AFTER_2026).value == 3
    before = correction - timedelta(microseconds=1)
    assert explain(imported, 2026, youth, as_known_at=before, today=AFTER_2026).value == 2


def test_a_revised_workplan_changes_the_workplans_and_coordinators_after_registration(
    imported: ViewStore,
) -> None:
    revision = datetime(2027, 1, 12, 9, tzinfo=CET)
    before = figures(imported, as_known_at=revision - timedelta(seconds=1))
    after = figures(imported, as_known_at=revision)
    assert before["fully_registered"]["total"] == after["fully_registered"]["total"] == 5
    assert (
        before["fully_registered"]["workplans"]["total"],
        before["fully_registered"]["coordinators"]["total"],
    ) == (2, 1)
    assert (
        after["fully_registered"]["workplans"]["total"],
        after["fully_registered"]["coordinators"]["total"],
    ) == (2, 2)


def test_a_reopened_case_continues_and_its_next_meeting_is_a_follow_up(
    imported: ViewStore,
) -> None:
    local = figures(imported, programme=Programme.LOKAAL_CLIENTOVERLEG)
    assert (local["meetings"]["first"], local["meetings"]["follow_up"]) == (1, 1)
    in_2027 = figures(imported, 2027, programme=Programme.LOKAAL_CLIENTOVERLEG)
    assert (in_2027["meetings"]["first"], in_2027["meetings"]["follow_up"]) == (0, 1)


def test_the_spilfiguur_counts_cases_with_a_designation_by_the_end_of_the_year(
    imported: ViewStore,
) -> None:
    assert figures(imported)["spilfiguur"] == {"cases": 2, "chosen_by_client": 1}
    # C's meeting of 2027 and its designation in January 2027 count in 2027.
    assert figures(imported, 2027)["spilfiguur"] == {"cases": 1, "chosen_by_client": 1}
    assert figures(imported, 2027, as_known_at=datetime(2027, 1, 19, tzinfo=CET))["spilfiguur"] == {
        "cases": 0,
        "chosen_by_client": 0,
    }
    explained = explain(imported, 2026, "spilfiguur.cases", today=AFTER_2026)
    assert sorted(c.case_id for c in explained.counted) == sorted([case_a().case, case_b().case])
    assert [(c.case_id, why) for c, why in explained.left_out] == [
        (case_c().case, "no coordinator designated by 31 December")
    ]
    chosen = explain(imported, 2026, "spilfiguur.chosen_by_client", today=AFTER_2026)
    assert [c.case_id for c in chosen.counted] == [case_a().case]
    assert [why for _, why in chosen.left_out] == ["not chosen by the client"]


def test_bottlenecks_count_under_a_listed_theme_or_as_andere(imported: ViewStore) -> None:
    counted = figures(imported)["bottlenecks_by_theme"]
    assert counted == themes(wachtlijsten=1, vervoer=1, andere=1)
    assert list(counted)[-1] == OTHER
    own = BottleneckThemes.parse(
        "# ours\nGeen plaats in dagcentrum De Linde  \nvervoer # bus, trein\n"
    )
    assert figures(imported, themes=own)["bottlenecks_by_theme"] == {
        "geen plaats in dagcentrum de linde": 1,
        "vervoer": 1,
        "andere": 1,
    }
    explained = explain(imported, 2026, "bottlenecks_by_theme.andere", today=AFTER_2026)
    assert explained.value == len(explained.counted) == 1
    text = explanation_text(explained)
    assert "theme andere" in text and "Linde" not in text and "Wachtlijsten " not in text
    assert explain(imported, 2026, "bottlenecks_by_theme.Wachtlijsten", today=AFTER_2026).value == 1
    with pytest.raises(UnknownFigure, match=r"bottlenecks_by_theme\.THEME"):
        explain(imported, 2026, "bottlenecks_by_theme.geen plaats", today=AFTER_2026)


def test_the_themes_list_reads_comments_case_and_spaces() -> None:
    listed = BottleneckThemes.parse(
        "  Wachtlijsten  # the most reported\n\n# a comment\nVervoer\nvervoer\n"
    )
    assert listed.listed == ("wachtlijsten", "vervoer")
    assert listed.names == ("wachtlijsten", "vervoer", OTHER)
    assert listed.theme_of(" WACHTLIJSTEN ") == "wachtlijsten"
    assert listed.theme_of("wachtlijsten kinderpsychiatrie") == OTHER
    assert "wachtlijsten" in packaged().listed and OTHER not in packaged().listed


def test_a_themes_file_that_cannot_be_read_is_refused_with_its_name(tmp_path: Path) -> None:
    missing = tmp_path / "themes.txt"
    with pytest.raises(ThemesFileError, match=r"themes\.txt"):
        BottleneckThemes.load(missing)
    missing.write_text("wachtlijsten\nvervoer\n", encoding="utf-8")
    assert BottleneckThemes.load(missing).listed == ("wachtlijsten", "vervoer")


def test_the_bottleneck_report_shows_only_listed_themes_and_andere(imported: ViewStore) -> None:
    report = bottleneck_report(imported, 2026)
    assert {row.theme: row.total for row in report.themes} == {
        "wachtlijsten": 1,
        "vervoer": 1,
        "andere": 1,
    }
    assert report.total == 3


def test_explain_names_the_corrected_attendance_and_the_client_figure(imported: ViewStore) -> None:
    a = case_a().case
    youth = explain(
        imported, 2026, "fully_registered.youth_present.by_region.Antwerpen", today=AFTER_2026
    )
    assert sorted(m.meeting for m in youth.counted) == [1, 2]
    known = explain(
        imported,
        2026,
        "fully_registered.youth_present.by_region.Antwerpen",
        as_known_at=NEW_YEAR,
        today=AFTER_2026,
    )
    assert [(m.case_id, m.meeting) for m in known.counted] == [(a, 1)]
    assert [(m.meeting, why) for m, why in known.left_out] == [(2, "young person absent")]
    assert "as known at 2027-01-01T00:00:00+01:00" in known.meaning
    client = explain(imported, 2026, "fully_registered.client_present", today=AFTER_2026)
    assert client.value == 4
    assert Counter(why for _, why in client.left_out) == {RETRACTED: 2, "client absent": 1}


def test_a_rebuild_gives_identical_rows(store: Overleg, views: ViewStore) -> None:
    lines = stream()
    projector = Projector(store.event_log, views, batch_size=3)
    for start in range(0, len(lines), 7):
        import_stream(store, [json.dumps(line) for line in lines[start : start + 7]])
        projector.catch_up()
    built = {
        table: sorted((tuple(row) for row in views.read(f"SELECT * FROM {table}")), key=repr)
        for projection in projector.projections.values()
        for table in projection.tables
    }
    assert figures(views) == EXPECTED_2026
    projector.rebuild()
    rebuilt = {
        table: sorted((tuple(row) for row in views.read(f"SELECT * FROM {table}")), key=repr)
        for table in built
    }
    assert rebuilt == built
    assert len(built["stats_fact"]) == sum(
        1
        for line in lines
        if line["type"]
        in {
            "MeetingHeld",
            "AttendanceCorrected",
            "WorkplanAgreed",
            "WorkplanRevised",
            "RegistrationCompleted",
            "MeetingRetracted",
            "MeetingPlanned",
            "MeetingCancelled",
        }
    )
    assert figures(views) == EXPECTED_2026


# -- the 2015 reference stream, as known at an instant of 2016 ------------------------------


def v1_keys(stats: dict[str, Any]) -> dict[str, Any]:
    """The figures contract v1 defines, whatever v2 adds next to them."""
    meetings, fully = dict(stats["meetings"]), dict(stats["fully_registered"])
    del meetings["planned_not_held"], fully["client_present"]
    return {
        "year": stats["year"],
        "programme": stats["programme"],
        "meetings": meetings,
        "fully_registered": fully,
    }


def registered_as_known_at(lines: list[Line], instant: datetime) -> dict[str, Any]:
    """The fully registered figures of integrale jeugdhulp in 2015 from the plan's ledger,
    counting only the registrations recorded by ``instant``."""
    recorded = {
        (line["case"], line["data"]["meeting"]): datetime.fromisoformat(line["at"])
        for line in lines
        if line["type"] == "RegistrationCompleted"
    }
    done = [
        h
        for h in ref.LEDGER
        if h.programme == ref.IJH
        and h.meeting.held_on.year == 2015
        and recorded.get((h.case, h.number), instant + timedelta(1)) <= instant
    ]
    found: dict[str, Any] = {"total": len(done)}
    for outcome, flag in (
        ("youth_present", "youth"),
        ("parents_present", "parents"),
        ("workplans", "workplan"),
        ("coordinators", "coordinator"),
    ):
        hits = Counter(h.region for h in done if getattr(h.meeting, flag))
        total = sum(hits.values())
        found[outcome] = {"total": total, "pct": ref.share(total, len(done))}
        found[outcome]["by_region"] = {r: hits[r] for r in ref.REGIONS}
    found["coordinators"]["pct_of_workplans"] = ref.share(
        found["coordinators"]["total"], found["workplans"]["total"]
    )
    return found


def test_the_2015_reference_as_known_in_january_2016_lacks_the_later_registrations(
    store: Overleg, views: ViewStore, database_url: str
) -> None:
    lines = ref.reference_stream()
    import_stream(store, [json.dumps(line) for line in lines])
    Projector(store.event_log, views).catch_up()
    ijh = Programme.INTEGRALE_JEUGDHULP
    now = figures(views, 2015, programme=ijh)
    assert v1_keys(now) == ref.EXPECTED_2015  # without the option: the figures as before
    instant = datetime(2016, 1, 10, tzinfo=CET)
    then = figures(views, 2015, programme=ijh, as_known_at=instant)
    wanted = registered_as_known_at(lines, instant)
    assert 0 < wanted["total"] < ref.FULLY_REGISTERED_2015, "registrations of 2015 in 2016"
    assert v1_keys(then)["fully_registered"] == wanted
    assert then["meetings"] == now["meetings"]  # every meeting of 2015 was recorded by then

    printed = _overleg(
        database_url,
        "stats",
        "2015",
        "--programme",
        ijh.value,
        "-f",
        "json",
        "--as-known-at",
        "2016-01-10T00:00:00+01:00",
    )
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout) == then
    plain = _overleg(database_url, "stats", "2015", "--programme", ijh.value, "-f", "json")
    assert v1_keys(json.loads(plain.stdout)) == ref.EXPECTED_2015


# -- the command and the API ------------------------------------------------------------------


def _overleg(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OVERLEG, *args],
        env={**os.environ, "OVERLEG_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _today() -> date:
    return datetime.now(BRUSSELS).date()


def test_the_command_prints_the_figures_as_known_at_an_instant(
    database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "v2.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in stream()) + "\n", encoding="utf-8")
    assert _overleg(database_url, "import", str(path)).returncode == 0
    known = _overleg(
        database_url, "stats", "2026", "-f", "json", "--as-known-at", "2027-01-01T00:00:00+01:00"
    )
    everything = _overleg(database_url, "stats", "2026", "-f", "json")
    assert known.returncode == everything.returncode == 0, known.stderr + everything.stderr
    then, now = json.loads(known.stdout), json.loads(everything.stdout)
    assert then["fully_registered"] == as_known_at_new_year()["fully_registered"]
    assert now["fully_registered"] == EXPECTED_2026["fully_registered"]
    assert now["spilfiguur"] == EXPECTED_2026["spilfiguur"]
    assert now["bottlenecks_by_theme"] == EXPECTED_2026["bottlenecks_by_theme"]
    with closing(reopen(database_url)) as app, closing(ViewStore(app.database)) as views:
        assert now == figures(views, today=_today())
        assert then == figures(views, as_known_at=NEW_YEAR, today=_today())

    explained = _overleg(
        database_url,
        "stats",
        "2026",
        "--explain",
        "fully_registered.youth_present",
        "--as-known-at",
        "2027-01-01T00:00:00+01:00",
    )
    assert explained.returncode == 0, explained.stderr
    assert explained.stdout.startswith("fully_registered.youth_present = 2")
    table = _overleg(database_url, "stats", "2026")
    assert "client present" in table.stdout and "wachtlijsten" in table.stdout
    assert "Linde" not in table.stdout

    for wrong in ("2027-01-01", "2027-01-01T00:00:00", "gisteren", "2027-13-01T00:00:00Z"):
        refused = _overleg(database_url, "stats", "2026", "--as-known-at", wrong)
        assert refused.returncode == 2, (wrong, refused.stdout)
        assert "--as-known-at" in refused.stderr and "Traceback" not in refused.stderr


def test_the_api_gives_the_figures_as_known_at_an_instant(
    store: Overleg, database_url: str, tmp_path: Path
) -> None:
    import_stream(store, [json.dumps(line) for line in stream()])
    settings = Settings(
        database_url=database_url,
        dev_key_file=tmp_path / "dev-key.jwk",
        projections="inline",
    )
    with TestClient(create_app(settings)) as client:
        token = issue_dev_token(
            dev_private_key(settings.dev_key_file),
            role=StaffRole.ANALYST,
            ref="analist-1",
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
        )
        analyst = {"Authorization": f"Bearer {token}"}
        now = client.get("/statistics/2026", headers=analyst)
        then = client.get(
            "/statistics/2026",
            params={"as_known_at": "2027-01-01T00:00:00+01:00"},
            headers=analyst,
        )
        assert now.status_code == then.status_code == 200, now.text + then.text
        assert then.json()["fully_registered"] == as_known_at_new_year()["fully_registered"]
        assert now.json()["fully_registered"] == EXPECTED_2026["fully_registered"]
        assert now.json()["bottlenecks_by_theme"] == EXPECTED_2026["bottlenecks_by_theme"]
        for wrong in ("2027-01-01", "2027-01-01T00:00:00", "morgen"):
            refused = client.get("/statistics/2026", params={"as_known_at": wrong}, headers=analyst)
            assert refused.status_code == 422, (wrong, refused.text)
            assert "as_known_at" in refused.text
        report = client.get("/bottlenecks/2026", headers=analyst).json()
        assert {row["theme"] for row in report["themes"]} == {"wachtlijsten", "vervoer", "andere"}
        schema = client.get("/openapi.json").json()["components"]["schemas"]
        assert {"spilfiguur", "bottlenecks_by_theme"} <= set(schema["Statistics"]["properties"])
        assert "planned_not_held" in schema["MeetingFigures"]["properties"]
        assert "client_present" in schema["RegisteredFigures"]["properties"]


def test_the_bottleneck_themes_file_setting_changes_the_themes(
    store: Overleg, database_url: str, tmp_path: Path
) -> None:
    import_stream(store, [json.dumps(line) for line in stream()])
    listed = tmp_path / "themes.txt"
    listed.write_text("# analysts\nvervoer\n", encoding="utf-8")
    env = {"OVERLEG_BOTTLENECK_THEMES_FILE": str(listed)}
    shown = subprocess.run(
        [OVERLEG, "bottlenecks", "2026", "-f", "json"],
        env={**os.environ, "OVERLEG_DATABASE_URL": database_url, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert Counter({row["theme"]: row["total"] for row in json.loads(shown.stdout)["themes"]}) == {
        "vervoer": 1,
        "andere": 2,
    }
    listed.unlink()
    missing = subprocess.run(
        [OVERLEG, "stats", "2026"],
        env={**os.environ, "OVERLEG_DATABASE_URL": database_url, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert missing.returncode == 2
    assert "OVERLEG_BOTTLENECK_THEMES_FILE" in missing.stderr and "Traceback" not in missing.stderr
