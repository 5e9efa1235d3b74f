"""The scenarios of contract v2, each recorded twice on both backends: by importing a synthetic
stream and through the HTTP API. Each asserts the state it leaves (the case view the API shows
and the projection keeps), its history, and the figures it leads to: the same either way."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from api_client import REQUEST, auth, settings_for
from fastapi.testclient import TestClient

from overleg.adapters.eventstore import Database
from overleg.aggregates.values import Programme, Region
from overleg.api.app import create_app
from overleg.application import Overleg
from overleg.bootstrap import Services
from overleg.policies.rules import BRUSSELS, brussels_day
from overleg.projections.audit_trail import TrailEntry, history
from overleg.projections.case_view import CaseView, FlaggedMeeting, get_case_view, view_of
from overleg.projections.statistics import annual_statistics
from overleg.projections.themes import packaged
from overleg.settings import Settings
from overleg.streams import StreamRefused, export_stream, import_stream

NAMESPACE = uuid.UUID("8d3f6a2e-4b1c-4e7a-9f05-2c6b8e1d7a43")
# A synthetic stream's first line: a day of 2026, so its cases keep rule set v2. Its lines
# follow each other ten minutes apart, all on that day unless a story waits.
START = datetime(2026, 3, 2, 8, 0, tzinfo=BRUSSELS)
STEP = timedelta(minutes=10)
Line = dict[str, Any]


# -- who records -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """A signed-in caller of the API, and the `by` of the same line in a stream."""

    role: str
    ref: str
    region: str | None = None
    programme: str | None = None
    municipality: str | None = None


TEAM = Actor("team", "team-antwerpen-1", "Antwerpen")
TEAM_LIMBURG = Actor("team", "team-limburg-1", "Limburg")
GENK = Actor("team", "lco-genk-1", programme="lokaal_clientoverleg", municipality="Genk")
HASSELT = Actor("team", "lco-hasselt-1", programme="lokaal_clientoverleg", municipality="Hasselt")
CHAIR = Actor("chair", "voorzitter-1")
NEW_CHAIR = Actor("chair", "voorzitter-2")
AUDITOR = Actor("auditor", "auditor-1")
ANALYST = Actor("analyst", "analist-1")


# -- what is recorded ------------------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    """A day of the story: ``after`` days from its first day, or (``None``) the day the line
    is recorded, as a meeting is recorded the day it was held."""

    after: int | None = None


HELD = Day()


def party(ref: str, role: str) -> dict[str, Any]:
    return {"party": {"ref": ref, "role": role}}


def attendance(*professionals: str, **presence: Any) -> dict[str, Any]:
    """An attendance: youth and parents (null unless given), no trusted person, and the v2
    keys only when given."""
    return {
        "youth": presence.pop("youth", None),
        "parents": presence.pop("parents", None),
        "trusted_person": None,
        "professionals": list(professionals),
        **presence,
    }


def meeting(number: int, who: dict[str, Any], place: str = "CLB, zaal 2") -> dict[str, Any]:
    return {"meeting": number, "held_on": HELD, "place": place, "attendance": who}


def plan(
    number: int, on: Day, *invited: tuple[str, str], not_invited: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "meeting": number,
        "on": on,
        "place": None,
        "invited": [{"ref": ref, "role": role} for ref, role in invited],
        "not_invited": list(not_invited),
    }


def workplan(
    number: int, coordinator: str | None, *agreements: tuple[str, str], crisis_plan: Any = False
) -> dict[str, Any]:
    return {
        "meeting": number,
        "agreements": [
            {"who": who, "what": what, "due": None, "domain": None} for who, what in agreements
        ],
        "coordinator": coordinator,
        "crisis_plan": crisis_plan,
    }


def request(client: str, born: str | None, **changes: Any) -> dict[str, Any]:
    """A request of integrale jeugdhulp in Antwerpen (the API's sample), for this client."""
    return {**REQUEST, "client": {"ref": client, "birth_date": born}, **changes}


LCO_REQUEST: dict[str, Any] = {
    "programme": "lokaal_clientoverleg",
    "region": "Limburg",
    "requested_by": {"ref": "huisarts-1", "role": "service"},
    "channel": "telefoon",
    "client": {"ref": "cliënt-1", "birth_date": "1970-02-01"},
    "question": "Schulden, huisvesting en thuiszorg lopen door elkaar",
    "municipality": "Genk",
    "goal": "Zelfstandig blijven wonen",
}


def endpoint(kind: str, data: dict[str, Any]) -> tuple[str, str, dict[str, Any] | None]:
    """The API call that records what a stream line of ``kind`` records: method, path under
    the case, body."""
    number = data.get("meeting")
    rest = {key: value for key, value in data.items() if key != "meeting"}
    calls: dict[str, tuple[str, str, dict[str, Any] | None]] = {
        "ConsentGiven": ("POST", "/consents", data),
        "ConsentWithdrawn": ("POST", "/consents/withdraw", data),
        "ChairAppointed": ("PUT", "/chair", data),
        "MeetingPlanned": ("POST", "/meeting-plans", data),
        "MeetingCancelled": ("POST", f"/meetings/{number}/cancel", rest),
        "PreparationRecorded": ("PUT", f"/meetings/{number}/preparation", rest),
        "MeetingHeld": ("POST", "/meetings", data),
        "WorkplanAgreed": ("PUT", f"/meetings/{number}/workplan", rest),
        "WorkplanRevised": ("POST", f"/meetings/{number}/workplan/revise", rest),
        "RegistrationCompleted": ("POST", f"/meetings/{number}/registration", None),
        "FollowUpScheduled": ("POST", "/follow-up", data),
        "CoordinatorDesignated": ("PUT", "/coordinator", data),
        "AttendanceCorrected": ("POST", f"/meetings/{number}/attendance/correct", rest),
        "MeetingRetracted": ("POST", f"/meetings/{number}/retract", rest),
        "CaseClosed": ("POST", "/close", data),
        "CaseReopened": ("POST", "/reopen", data),
        "BottleneckReported": ("POST", "/bottlenecks", data),
    }
    return calls[kind]


# -- the service both ways are read through -----------------------------------------------------


@dataclass
class Service:
    """The HTTP API on the test's store: every scenario is read through it and its
    projections, however it was recorded."""

    client: TestClient
    settings: Settings
    tokens: dict[Actor, dict[str, str]] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        found: Services = self.client.app.state.services  # type: ignore[attr-defined]
        return found

    @property
    def app(self) -> Overleg:
        return self.services.app

    def who(self, actor: Actor) -> dict[str, str]:
        if actor not in self.tokens:
            self.tokens[actor] = auth(
                self.settings,
                actor.role,
                actor.ref,
                actor.region,
                programme=actor.programme,
                municipality=actor.municipality,
            )
        return self.tokens[actor]

    def views(self) -> Any:
        """The projections after a catch-up, none of whose events was set aside."""
        views = self.services.fresh_views()
        assert self.services.projector.failures() == []
        return views

    def figures(self, year: int, programme: str | None = None) -> dict[str, Any]:
        """The annual statistics after a catch-up, with every plan of ``year`` in the past."""
        return self._figures(year, programme, date(year + 1, 2, 1))

    def _figures(self, year: int, programme: str | None, today: date) -> dict[str, Any]:
        stats = annual_statistics(
            self.views(),
            year,
            None if programme is None else Programme(programme),
            themes=self.services.themes,
            today=today,
        )
        return stats.model_dump(mode="json")

    def served_figures(self, year: int, programme: str | None = None) -> dict[str, Any]:
        """``GET /statistics/{year}``: the same figures, as of the service's today."""
        params = {} if programme is None else {"programme": programme}
        served = self.client.get(f"/statistics/{year}", params=params, headers=self.who(ANALYST))
        assert served.status_code == 200, served.text
        today = brussels_day(self.app.clock())
        assert served.json() == self._figures(year, programme, today)
        return dict(served.json())

    def known_at(self, year: int, instant: datetime) -> dict[str, Any]:
        """``GET /statistics/{year}?as_known_at=``: the figures from what was recorded by
        ``instant``, as the projection counts them."""
        served = self.client.get(
            f"/statistics/{year}",
            params={"as_known_at": instant.isoformat()},
            headers=self.who(ANALYST),
        )
        assert served.status_code == 200, served.text
        counted = annual_statistics(
            self.views(),
            year,
            as_known_at=instant,
            themes=self.services.themes,
            today=brussels_day(self.app.clock()),
        )
        assert served.json() == counted.model_dump(mode="json")
        return dict(served.json())


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return settings_for(database_url, tmp_path)


@pytest.fixture
def svc(settings: Settings) -> Iterator[Service]:
    with TestClient(create_app(settings)) as client:
        yield Service(client, settings)


# -- one case, recorded by import or through the API ----------------------------------------


class Recording:
    """One case of a scenario. ``record`` writes a line of the contract (type and data);
    ``refused`` asserts that one is refused naming its rule and rule set v2, with nothing
    written. Both ways read the case back through the same service."""

    mode = ""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.case_id = ""
        self.first_day = date.min

    @property
    def year(self) -> int:
        return self.first_day.year

    def record(self, actor: Actor, kind: str, **data: Any) -> None:
        raise NotImplementedError

    def refused(self, actor: Actor, kind: str, rule: str, says: str, **data: Any) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        """Write what was recorded but not yet written (an import writes a stream)."""

    def wait_until(self, at: datetime) -> None:
        raise NotImplementedError

    def recorded_on(self) -> date:
        raise NotImplementedError

    def instant(self) -> datetime:
        """An instant after every line recorded so far and before the next one."""
        raise NotImplementedError

    def day(self, after: int) -> str:
        """The date of the story's day ``after`` (as ``Day(after)`` records it)."""
        raise NotImplementedError

    def _dated(self, value: Any) -> Any:
        if isinstance(value, Day):
            return self.recorded_on().isoformat() if value.after is None else self.day(value.after)
        if isinstance(value, dict):
            return {key: self._dated(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._dated(item) for item in value]
        return value

    # -- reading it back -------------------------------------------------------------------

    def stored(self) -> int:
        """How many events the store holds of this case."""
        return len(self.svc.app.case_events(UUID(self.case_id)))

    def view(self, actor: Actor = AUDITOR) -> dict[str, Any]:
        """The case as ``GET /cases/{id}`` shows it."""
        self.flush()
        shown = self.svc.client.get(f"/cases/{self.case_id}", headers=self.svc.who(actor))
        assert shown.status_code == 200, shown.text
        assert shown.headers["ETag"] == f'"{self.stored()}"'
        return dict(shown.json())

    def projected(self) -> CaseView:
        """The case view the projection keeps (the fold of the case's events)."""
        self.flush()
        kept = get_case_view(self.svc.views(), UUID(self.case_id))
        assert kept is not None
        assert kept == view_of(self.svc.app.case_events(UUID(self.case_id)))
        return kept

    def history(self) -> list[dict[str, Any]]:
        """``GET /cases/{id}/history`` as an auditor reads it."""
        self.flush()
        trail = self.svc.client.get(f"/cases/{self.case_id}/history", headers=self.svc.who(AUDITOR))
        assert trail.status_code == 200, trail.text
        return list(trail.json())

    def trail(self) -> list[TrailEntry]:
        """The audit trail the projection keeps (what ``overleg history`` prints)."""
        self.flush()
        return history(self.svc.views(), UUID(self.case_id))

    def exported(self) -> list[str]:
        self.flush()
        return list(export_stream(self.svc.app, UUID(self.case_id)))

    def denied(
        self, actor: Actor, method: str, path: str, body: dict[str, Any] | None, detail: str
    ) -> None:
        """``actor``, who has no part in the case (any more), may not do this through the
        API; nothing is written."""
        self.flush()
        before = self.stored()
        answer = self.svc.client.request(
            method,
            f"/cases/{self.case_id}{path}",
            json=self._dated(body),
            headers={**self.svc.who(actor), "If-Match": f'"{before}"'},
        )
        self.shut_out(answer, detail)
        assert self.stored() == before

    def unseen(self, actor: Actor, detail: str) -> None:
        """``actor`` has no part in the case (any more) and does not read it."""
        answer = self.svc.client.get(f"/cases/{self.case_id}", headers=self.svc.who(actor))
        self.shut_out(answer, detail)

    def shut_out(self, answer: Any, detail: str) -> None:
        """The answer to a caller with no part in the case: 403 saying why, or 404 as if the
        case did not exist (the answer the API is moving to, so that a refusal tells nobody
        a case exists). Either way the caller learns nothing of the case."""
        if answer.status_code == 404:
            assert answer.json()["detail"] == f"No case {self.case_id}"
        else:
            assert answer.status_code == 403, answer.text
            assert answer.json()["detail"] == detail


class Imported(Recording):
    """A case recorded as a synthetic v2 stream, imported into the store."""

    mode = "import"

    def __init__(self, svc: Service, name: str, start: datetime | None = None) -> None:
        super().__init__(svc)
        self.case_id = str(uuid.uuid5(NAMESPACE, name))
        self.at = START if start is None else start
        self.first_day = brussels_day(self.at)
        self.lines: list[Line] = []
        self.pending: list[Line] = []

    def _line(self, actor: Actor, kind: str, data: dict[str, Any]) -> Line:
        return {
            "case": self.case_id,
            "seq": len(self.lines) + 1,
            "type": kind,
            "at": self.at.isoformat(),
            "by": actor.ref,
            "data": self._dated(data),
        }

    def record(self, actor: Actor, kind: str, **data: Any) -> None:
        line = self._line(actor, kind, data)
        self.lines.append(line)
        self.pending.append(line)
        self.at += STEP

    def flush(self) -> None:
        if self.pending:
            report = import_stream(self.svc.app, [json.dumps(line) for line in self.pending])
            assert report.new_events == len(self.pending)
            self.pending = []

    def refused(self, actor: Actor, kind: str, rule: str, says: str, **data: Any) -> None:
        self.flush()
        before = self.stored()
        with pytest.raises(StreamRefused) as refusal:
            import_stream(self.svc.app, [json.dumps(self._line(actor, kind, data))])
        (problem,) = refusal.value.problems
        assert (problem.line, problem.case, problem.rule, problem.rule_set) == (
            1,
            self.case_id,
            rule,
            "v2",
        )
        assert says in problem.problem
        assert f"[{rule}, rule set v2]" in str(problem)
        assert self.stored() == before

    def wait_until(self, at: datetime) -> None:
        assert at >= self.at
        self.at = at

    def recorded_on(self) -> date:
        return brussels_day(self.at)

    def instant(self) -> datetime:
        self.flush()
        return self.at - timedelta(seconds=1)

    def day(self, after: int) -> str:
        return (self.first_day + timedelta(days=after)).isoformat()


class Clock:
    """The service's clock set to a chosen instant, a second further at every reading."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        now = self.at
        self.at += timedelta(seconds=1)
        return now


class ThroughApi(Recording):
    """A case recorded through the HTTP API, at the service's time: now (so every meeting is
    held today, and plans are on today or later), or a chosen clock's."""

    mode = "api"

    def __init__(self, svc: Service, name: str, start: datetime | None = None) -> None:
        super().__init__(svc)
        self.clock: Clock | None = None
        if start is not None:
            self.clock = Clock(start)
            svc.app.clock = self.clock
        self.first_day = self.recorded_on()
        self.version = 0

    def recorded_on(self) -> date:
        now = datetime.now(UTC) if self.clock is None else self.clock.at
        return brussels_day(now)

    def instant(self) -> datetime:
        assert self.clock is None
        return datetime.now(UTC)  # the last command's time has passed, the next one's not

    def day(self, after: int) -> str:
        # Not past the year's end, so that a scenario's plans count in its year.
        return min(self.first_day + timedelta(days=after), date(self.year, 12, 31)).isoformat()

    def wait_until(self, at: datetime) -> None:
        assert self.clock is not None, "only a story on a chosen clock can wait"
        assert at >= self.clock.at
        self.clock.at = at

    def send(self, actor: Actor, kind: str, data: dict[str, Any]) -> Any:
        body = self._dated(data)
        if kind == "Requested":
            return self.svc.client.post("/cases", json=body, headers=self.svc.who(actor))
        method, path, payload = endpoint(kind, body)
        answer = self.svc.client.request(
            method,
            f"/cases/{self.case_id}{path}",
            json=payload,
            headers={**self.svc.who(actor), "If-Match": f'"{self.version}"'},
        )
        if answer.status_code < 300:
            self.version = int(answer.headers["ETag"].strip('"'))
        return answer

    def record(self, actor: Actor, kind: str, **data: Any) -> None:
        answer = self.send(actor, kind, data)
        assert answer.status_code in (200, 201), answer.text
        assert answer.json()["recorded"] == kind
        if kind == "Requested":
            self.case_id, self.version = answer.json()["case_id"], 1
        elif kind in ("MeetingPlanned", "MeetingHeld"):
            number = data["meeting"]
            assert answer.headers["Location"] == f"/cases/{self.case_id}/meetings/{number}"

    def refused(self, actor: Actor, kind: str, rule: str, says: str, **data: Any) -> None:
        before = self.stored()
        answer = self.send(actor, kind, data)
        assert answer.status_code == 409, answer.text
        problem = answer.json()
        assert (problem["type"], problem["rule"], problem["rule_set"]) == (
            f"/problems/rule/{rule}",
            rule,
            "v2",
        )
        assert says in problem["detail"]
        assert problem["detail"].endswith("(rule set v2)")
        assert self.stored() == before == self.version


Open = Callable[..., Recording]


@pytest.fixture(params=["import", "api"])
def open_case(request: pytest.FixtureRequest, svc: Service) -> Open:
    """Opens a case with its request, recorded the way the test is parametrised."""

    def opened(
        name: str, body: dict[str, Any], team: Actor = TEAM, start: datetime | None = None
    ) -> Recording:
        way = Imported if request.param == "import" else ThroughApi
        case = way(svc, name, start)
        case.record(team, "Requested", **body)
        return case

    return opened


def with_chair(case: Recording, client: str = "jongere-1", team: Actor = TEAM) -> Recording:
    """The young person consents and the team appoints voorzitter-1."""
    case.record(team, "ConsentGiven", **party(client, "youth"))
    case.record(team, "ChairAppointed", chair=CHAIR.ref)
    return case


# -- the figures expected ----------------------------------------------------------------------

REGIONS = [region.value for region in Region]


def share(part: int, whole: int) -> float:
    """A percentage rounded half up to one decimal (0.0 of nothing), as the contract says."""
    if whole == 0:
        return 0.0
    exact = Decimal(part) * 100 / Decimal(whole)
    return float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def expected(
    year: int,
    region: str = "Antwerpen",
    *,
    programme: str | None = None,
    total: int = 0,
    first: int = 0,
    planned_not_held: int = 0,
    registered: int = 0,
    youth: int = 0,
    client: int = 0,
    parents: int = 0,
    workplans: int = 0,
    coordinators: int = 0,
    spilfiguur: tuple[int, int] = (0, 0),
    bottlenecks: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Every figure of the contract for meetings in one region, 0 where nothing counts."""

    def regions(count: int) -> dict[str, int]:
        return {name: count if name == region else 0 for name in REGIONS}

    def outcome(count: int) -> dict[str, Any]:
        return {"total": count, "pct": share(count, registered), "by_region": regions(count)}

    return {
        "year": year,
        "programme": programme,
        "meetings": {
            "total": total,
            "first": first,
            "follow_up": total - first,
            "previous_year_total": 0,
            "planned_not_held": planned_not_held,
            "by_region": {
                name: {"count": count, "pct": share(count, total)}
                for name, count in regions(total).items()
            },
        },
        "fully_registered": {
            "total": registered,
            "youth_present": outcome(youth),
            "client_present": outcome(client),
            "parents_present": outcome(parents),
            "workplans": outcome(workplans),
            "coordinators": {
                **outcome(coordinators),
                "pct_of_workplans": share(coordinators, workplans),
            },
        },
        "spilfiguur": {"cases": spilfiguur[0], "chosen_by_client": spilfiguur[1]},
        "bottlenecks_by_theme": dict.fromkeys(packaged().names, 0) | (bottlenecks or {}),
    }


def figures(case: Recording, year: int | None = None) -> dict[str, Any]:
    """The figures of the case's year (or ``year``), checked against what the API serves."""
    case.flush()
    year = case.year if year is None else year
    served = case.svc.served_figures(year)
    found = case.svc.figures(year)
    # Only plans whose day has passed count in the current year: all others agree.
    assert {**served, "meetings": {**served["meetings"], "planned_not_held": 0}} == {
        **found,
        "meetings": {**found["meetings"], "planned_not_held": 0},
    }
    return found


def same_lines(exported: list[str], lines: list[Line]) -> None:
    """An export gives back these lines: the same keys and values, `at` the same instant."""

    def plain(line: Line) -> Line:
        return {**line, "at": datetime.fromisoformat(line["at"]).astimezone(UTC)}

    assert [plain(json.loads(text)) for text in exported] == [plain(line) for line in lines]


def round_trip(case: Recording, tmp_path: Path) -> list[Line]:
    """The case's export: imported into another store, it exports the same lines again, and
    imported into its own store it adds nothing."""
    exported = case.exported()
    other = Overleg(Database.from_url(f"sqlite:///{tmp_path / 'other.db'}"))
    try:
        assert import_stream(other, exported).new_events == len(exported)
        same_lines(
            list(export_stream(other, UUID(case.case_id))), [json.loads(t) for t in exported]
        )
    finally:
        other.close()
    assert import_stream(case.svc.app, exported).new_events == 0
    if isinstance(case, Imported):
        same_lines(exported, case.lines)
    return [json.loads(text) for text in exported]


# -- 1. consent withdrawn by the young person while a parent still consents -------------------


def test_consent_withdrawn_by_the_young_person_refuses_the_next_meeting_though_a_parent_consents(
    open_case: Open,
) -> None:
    case = with_chair(open_case("consent", request("jongere-1", "2010-05-01")))
    case.record(TEAM, "ConsentGiven", **party("ouder-1", "parent"))
    case.record(CHAIR, "MeetingHeld", **meeting(1, attendance("hv-2", youth=True, parents=True)))
    case.record(CHAIR, "RegistrationCompleted", meeting=1)
    case.record(TEAM, "ConsentWithdrawn", **party("jongere-1", "youth"), reason="Wil niet meer")

    # v2: everyone must agree; the parent's standing consent does not outweigh the withdrawal.
    case.refused(
        CHAIR,
        "MeetingHeld",
        "consent-required",
        "A meeting needs everyone's agreement: jongere-1 withdrew their consent",
        **meeting(2, attendance("hv-2", youth=False, parents=True)),
    )

    shown = case.view()
    assert [(c["ref"], c["role"]) for c in shown["consents"]] == [("ouder-1", "parent")]
    assert (shown["meetings_held"], shown["status"]) == (1, "registration_completed")
    assert [(e["type"], e["summary"]) for e in case.history()[-1:]] == [
        ("ConsentWithdrawn", "Consent withdrawn by jongere-1 (youth)")
    ]
    assert figures(case) == expected(
        case.year, total=1, first=1, registered=1, youth=1, client=1, parents=1
    )


# -- 2. a meeting planned, postponed, cancelled ------------------------------------------------


def test_a_meeting_planned_postponed_and_cancelled_counts_as_planned_not_held(
    open_case: Open,
) -> None:
    case = with_chair(open_case("postponed", request("jongere-1", "2010-05-01")))
    case.record(CHAIR, "MeetingPlanned", **plan(1, Day(0), ("hv-2", "professional")))
    case.record(CHAIR, "MeetingHeld", **meeting(1, attendance("hv-2", youth=True, parents=False)))
    case.record(CHAIR, "RegistrationCompleted", meeting=1)
    case.record(CHAIR, "FollowUpScheduled", on=Day(10))
    case.record(CHAIR, "MeetingPlanned", **plan(2, Day(3), ("hv-2", "professional")))
    checklist = {"client_informed": True, "agenda_known": True, "transport_arranged": False}
    case.record(CHAIR, "PreparationRecorded", meeting=2, checklist=checklist)
    case.record(CHAIR, "MeetingPlanned", **plan(2, Day(10), ("hv-2", "professional")))

    postponed = case.view()
    assert (postponed["status"], postponed["next_follow_up_on"]) == (
        "follow_up_scheduled",
        case.day(10),
    )
    planned = case.projected()
    assert (planned.next_meeting, planned.next_meeting_on) == (2, case.day(10))
    (_, prepared) = planned.meetings
    assert (prepared.state, prepared.prepared, prepared.checklist_done) == ("planned", True, 2)

    case.record(CHAIR, "MeetingCancelled", meeting=2, reason="De jongere is ziek")
    case.refused(
        CHAIR,
        "MeetingCancelled",
        "meeting-planned",
        "Meeting 2 is already cancelled",
        meeting=2,
        reason="Nog eens",
    )

    cancelled = case.view()
    assert cancelled["next_follow_up_on"] is None  # the scheduled follow-up went with it
    assert cancelled["follow_up_overdue"] is False
    assert cancelled["status"] == "registration_completed"
    kept = case.projected()
    assert (kept.next_meeting, kept.next_follow_up_on) == (None, None)
    assert [(s.meeting, s.state, s.planned_on) for s in kept.meetings] == [
        (1, "held", case.day(0)),
        (2, "cancelled", case.day(10)),
    ]
    assert [(e["type"], e["summary"]) for e in case.history()[-5:]] == [
        ("FollowUpScheduled", f"Follow-up meeting scheduled on {case.day(10)}"),
        ("MeetingPlanned", f"Meeting 2 planned on {case.day(3)}, 1 invited"),
        ("PreparationRecorded", "Preparation of meeting 2 recorded: 2 of 3 item(s) done"),
        ("MeetingPlanned", f"Meeting 2 planned on {case.day(10)}, 1 invited"),
        ("MeetingCancelled", "Meeting 2 cancelled"),
    ]
    # The last plan of number 2 counts once; the held plan of number 1 not at all.
    assert figures(case) == expected(
        case.year,
        total=1,
        first=1,
        planned_not_held=1,
        registered=1,
        youth=1,
        client=1,
        parents=0,
    )
    # In the current year a plan counts once its day has passed: the imported plans of
    # March 2026 have, the plans made through the API today have not.
    served = case.svc.served_figures(case.year)["meetings"]["planned_not_held"]
    assert served == (1 if case.mode == "import" else 0)


# -- 3. a chair replaced -------------------------------------------------------------------------


def test_a_replaced_chair_is_refused_and_the_new_chair_acts(open_case: Open) -> None:
    case = with_chair(open_case("chair", request("jongere-1", "2010-05-01")))
    case.record(CHAIR, "MeetingHeld", **meeting(1, attendance("hv-2", youth=True, parents=True)))
    case.refused(
        TEAM,
        "ChairAppointed",
        "chair-neutral",
        "hv-2 is a professional of this case",
        chair="hv-2",
    )
    case.record(TEAM, "ChairAppointed", chair=NEW_CHAIR.ref)

    second = meeting(2, attendance("hv-2", youth=True, parents=True))
    case.denied(CHAIR, "POST", "/meetings", second, "voorzitter-1 is not the chair of this case")
    case.record(NEW_CHAIR, "MeetingHeld", **second)
    case.denied(
        CHAIR,
        "POST",
        "/meetings/2/registration",
        None,
        "voorzitter-1 is not the chair of this case",
    )
    case.record(NEW_CHAIR, "RegistrationCompleted", meeting=2)

    case.unseen(CHAIR, "voorzitter-1 (chair) has no part in this case")
    shown = case.view(NEW_CHAIR)
    assert (shown["chair"], shown["meetings_held"], shown["status"]) == (
        "voorzitter-2",
        2,
        "registration_completed",
    )
    assert [(e["type"], e["by"]) for e in case.history()[3:]] == [
        ("MeetingHeld", "voorzitter-1"),
        ("ChairAppointed", "team-antwerpen-1"),
        ("MeetingHeld", "voorzitter-2"),
        ("RegistrationCompleted", "voorzitter-2"),
    ]
    assert case.history()[4]["summary"] == "Chair appointed: voorzitter-2"
    assert figures(case) == expected(
        case.year, total=2, first=1, registered=1, youth=1, client=1, parents=1
    )


# -- 4. a case closed and reopened -----------------------------------------------------------


def test_a_reopened_case_continues_with_a_follow_up_meeting(open_case: Open) -> None:
    case = with_chair(open_case("reopened", request("jongere-1", "2010-05-01")))
    case.record(CHAIR, "MeetingHeld", **meeting(1, attendance("hv-2", youth=True, parents=True)))
    case.record(CHAIR, "RegistrationCompleted", meeting=1)
    case.record(TEAM, "CaseClosed", reason="Werkplan afgerond")
    second = meeting(2, attendance("hv-2", youth=True, parents=True))
    case.refused(CHAIR, "MeetingHeld", "case-ended", "The case is closed", **second)
    assert (case.view()["status"], case.view()["ended"]) == ("closed", "closed")

    case.record(TEAM, "CaseReopened", reason="Nieuwe vraag van de jongere")
    reopened = case.view()
    assert (reopened["status"], reopened["ended"]) == ("registration_completed", None)

    case.record(CHAIR, "MeetingHeld", **second)
    case.record(CHAIR, "RegistrationCompleted", meeting=2)
    assert case.view()["meetings_held"] == 2
    assert [(e["type"], e["summary"]) for e in case.history()[-4:]] == [
        ("CaseClosed", "Case closed"),
        ("CaseReopened", "Case reopened"),
        (
            "MeetingHeld",
            f"Meeting 2 (follow-up meeting) held on {case.day(0)}: young person present, "
            "parents present, trusted person not registered, 1 professional(s)",
        ),
        ("RegistrationCompleted", "Registration of meeting 2 completed"),
    ]
    assert figures(case) == expected(
        case.year, total=2, first=1, registered=2, youth=2, client=2, parents=2
    )


# -- 5. a workplan revised after registration ----------------------------------------------------


def test_a_workplan_revised_after_registration_changes_the_coordinator_figures(
    open_case: Open,
) -> None:
    case = with_chair(open_case("revised", request("jongere-1", "2010-05-01")))
    case.record(CHAIR, "MeetingHeld", **meeting(1, attendance("hv-2", youth=True, parents=True)))
    case.record(CHAIR, "WorkplanAgreed", **workplan(1, None, ("hv-2", "Huisbezoek")))
    case.record(CHAIR, "RegistrationCompleted", meeting=1)
    before = expected(
        case.year, total=1, first=1, registered=1, youth=1, client=1, parents=1, workplans=1
    )
    assert figures(case) == before
    assert case.view()["coordinator"] is None

    revised = workplan(1, "hv-2", ("hv-2", "Huisbezoek om de week"), ("ouder-1", "Belt de school"))
    case.refused(CHAIR, "WorkplanAgreed", "workplan-once", "revise it to change it", **revised)
    unrevised = case.instant()
    case.record(CHAIR, "WorkplanRevised", **revised, reason="Hulpcoördinator vergeten")

    shown = case.view()
    assert shown["coordinator"] == "hv-2"
    assert [(a["meeting"], a["who"], a["what"]) for a in shown["open_agreements"]] == [
        (1, "hv-2", "Huisbezoek om de week"),
        (1, "ouder-1", "Belt de school"),
    ]
    assert case.history()[-1]["summary"] == (
        "Workplan of meeting 1 revised: 2 agreement(s), coordinator hv-2"
    )
    after = expected(
        case.year,
        total=1,
        first=1,
        registered=1,
        youth=1,
        client=1,
        parents=1,
        workplans=1,
        coordinators=1,
    )
    assert figures(case) == after
    # As known before the revision, the figures are those published then.
    assert (
        case.svc.known_at(case.year, unrevised)["fully_registered"] == (before["fully_registered"])
    )


# -- 6. attendance corrected ---------------------------------------------------------------------


def test_corrected_attendance_changes_the_presence_figures(open_case: Open) -> None:
    case = with_chair(open_case("corrected", request("jongere-1", "2010-05-01")))
    case.record(CHAIR, "MeetingHeld", **meeting(1, attendance("hv-2", youth=False, parents=True)))
    case.record(CHAIR, "RegistrationCompleted", meeting=1)
    assert figures(case) == expected(case.year, total=1, first=1, registered=1, parents=1)

    # A registered meeting of a minor keeps the parents' presence known.
    case.refused(
        CHAIR,
        "AttendanceCorrected",
        "attendance-known",
        "needs the attendance of the parents to be known",
        meeting=1,
        attendance=attendance("hv-2", youth=True),
        reason="De jongere was er wel",
    )
    uncorrected = case.instant()
    case.record(
        CHAIR,
        "AttendanceCorrected",
        meeting=1,
        attendance=attendance("hv-2", youth=True, parents=False),
        reason="De jongere was er wel, de ouders niet",
    )

    assert case.history()[-1]["summary"] == (
        "Attendance of meeting 1 corrected: young person present, parents absent, "
        "trusted person not registered, 1 professional(s)"
    )
    assert figures(case) == expected(
        case.year, total=1, first=1, registered=1, youth=1, client=1, parents=0
    )
    known = case.svc.known_at(case.year, uncorrected)["fully_registered"]
    assert (
        known == expected(case.year, total=1, first=1, registered=1, parents=1)["fully_registered"]
    )


# -- 7. a meeting recorded in the wrong case, retracted -------------------------------------------


def test_a_meeting_retracted_from_the_wrong_case_counts_nowhere_and_its_number_stays_used(
    open_case: Open,
) -> None:
    right = with_chair(open_case("right", request("jongere-1", "2010-05-01")))
    wrong_request = request(
        "jongere-2",
        "2011-09-09",
        region="Limburg",
        requested_by={"ref": "hv-5", "role": "professional"},
    )
    wrong = with_chair(open_case("wrong", wrong_request, TEAM_LIMBURG), "jongere-2", TEAM_LIMBURG)
    held = meeting(1, attendance("hv-2", youth=True, parents=True))
    wrong.record(CHAIR, "MeetingHeld", **held)
    wrong.record(CHAIR, "WorkplanAgreed", **workplan(1, "hv-2", ("hv-2", "Huisbezoek")))
    wrong.record(CHAIR, "RegistrationCompleted", meeting=1)
    wrong.record(CHAIR, "MeetingRetracted", meeting=1, reason="In het verkeerde dossier")
    right.record(CHAIR, "MeetingHeld", **held)
    right.record(CHAIR, "RegistrationCompleted", meeting=1)

    wrong.refused(
        CHAIR, "MeetingHeld", "meeting-sequence", "The next meeting is number 2, not 1", **held
    )
    wrong.refused(
        CHAIR,
        "AttendanceCorrected",
        "meeting-held",
        "Meeting 1 was retracted: it counts nowhere",
        meeting=1,
        attendance=attendance("hv-2", youth=False, parents=True),
        reason="x",
    )

    shown = wrong.view()
    assert (shown["meetings_held"], shown["last_meeting_on"], shown["status"]) == (
        0,
        None,
        "chair_appointed",
    )
    assert (shown["coordinator"], shown["open_agreements"]) == (None, [])
    assert [s.state for s in wrong.projected().meetings] == ["retracted"]
    assert wrong.history()[-1]["summary"] == "Meeting 1 retracted (recorded in error)"
    # Named only at the retracted meeting, hv-2 has no part in that case any more.
    named = Actor("professional", "hv-2")
    wrong.unseen(named, "hv-2 (professional) has no part in this case")
    assert right.view(named)["meetings_held"] == 1
    # Only the right case's meeting counts: in Antwerpen, without the wrong one's workplan.
    assert figures(right) == expected(
        right.year, total=1, first=1, registered=1, youth=1, client=1, parents=1
    )


# -- 8. a client turning 18 and 26 during the case ------------------------------------------------

BORN = "2008-06-15"  # 17 when the case starts in March 2026, 18 in June 2026, 26 in June 2034
START_8 = datetime(2026, 3, 2, 10, 0, tzinfo=BRUSSELS)
AFTER_18 = datetime(2026, 7, 1, 10, 0, tzinfo=BRUSSELS)
AFTER_26 = datetime(2034, 7, 3, 10, 0, tzinfo=BRUSSELS)


def test_a_client_turning_18_needs_their_own_consent_and_turning_26_does_not_end_the_case(
    open_case: Open,
) -> None:
    # Through the API this story runs on the service's clock set to its days: now, a
    # meeting is held today and a request is made today, so nobody turns 18 in between.
    body = request("jongere-8", BORN, requested_by={"ref": "ouder-8", "role": "parent"})
    case = open_case("ages", body, start=START_8)
    case.record(TEAM, "ConsentGiven", **party("ouder-8", "parent"))
    case.record(TEAM, "ChairAppointed", chair=CHAIR.ref)
    # A minor in integrale jeugdhulp: a parent's consent suffices.
    case.record(CHAIR, "MeetingHeld", **meeting(1, attendance("hv-2", youth=False, parents=True)))
    case.record(CHAIR, "RegistrationCompleted", meeting=1)

    case.wait_until(AFTER_18)
    adult = meeting(2, attendance("hv-2", youth=True))
    case.refused(
        CHAIR,
        "MeetingHeld",
        "consent-required",
        "A meeting needs the standing consent of the client or a legal representative",
        **adult,
    )
    case.record(TEAM, "ConsentGiven", **party("jongere-8", "youth"))
    case.record(CHAIR, "MeetingHeld", **adult)
    # An adult's registration needs their own presence known, not the parents'.
    case.record(CHAIR, "RegistrationCompleted", meeting=2)
    case.record(CHAIR, "BottleneckReported", theme="Hulp na 18 jaar", description="Geen plaats")

    case.wait_until(AFTER_26)
    # A parent's withdrawal no longer stops an adult's meeting, and 26 ends nothing.
    case.record(TEAM, "ConsentWithdrawn", **party("ouder-8", "parent"), reason="Verhuisd")
    case.record(CHAIR, "MeetingHeld", **meeting(3, attendance("hv-2", youth=True)))
    case.record(CHAIR, "RegistrationCompleted", meeting=3)

    shown = case.view()
    assert (shown["status"], shown["ended"], shown["meetings_held"]) == (
        "registration_completed",
        None,
        3,
    )
    assert shown["last_meeting_on"] == "2034-07-03"
    assert [(c["ref"], c["role"]) for c in shown["consents"]] == [("jongere-8", "youth")]
    assert figures(case, 2026) == expected(
        2026,
        total=2,
        first=1,
        registered=2,
        youth=1,
        client=1,
        parents=1,
        bottlenecks={"hulp na 18 jaar": 1},
    )
    assert figures(case, 2034) == expected(
        2034, total=1, first=0, registered=1, youth=1, client=1, parents=0
    )
    report = case.svc.client.get("/bottlenecks/2026", headers=case.svc.who(ANALYST)).json()
    assert {row["theme"]: row["total"] for row in report["themes"] if row["total"]} == {
        "hulp na 18 jaar": 1
    }


# -- 9. a crisis meeting -------------------------------------------------------------------------

CRISIS_STEPS = {"steps": ["Bel de spilfiguur", "Bel de crisisdienst", "Breng de jongere naar oma"]}


def test_a_crisis_plan_given_as_steps_round_trips_to_the_export(
    open_case: Open, tmp_path: Path
) -> None:
    case = with_chair(open_case("crisis", request("jongere-1", "2010-05-01")))
    case.record(CHAIR, "MeetingHeld", **meeting(1, attendance("hv-2", youth=True, parents=True)))
    agreed = workplan(1, "hv-2", ("hv-2", "Crisisopvang regelen"), crisis_plan=CRISIS_STEPS)
    case.record(CHAIR, "WorkplanAgreed", **agreed)
    case.record(CHAIR, "RegistrationCompleted", meeting=1)

    lines = round_trip(case, tmp_path)
    (exported,) = [line["data"] for line in lines if line["type"] == "WorkplanAgreed"]
    assert exported == agreed
    assert case.history()[-2]["summary"] == (
        "Workplan of meeting 1 agreed: 1 agreement(s), coordinator hv-2, with crisis plan"
    )
    assert figures(case) == expected(
        case.year,
        total=1,
        first=1,
        registered=1,
        youth=1,
        client=1,
        parents=1,
        workplans=1,
        coordinators=1,
    )


# -- 10. a spilfiguur designated before the first meeting, chosen by the client, replaced -------


def test_a_spilfiguur_chosen_by_the_client_before_the_first_meeting_and_later_replaced(
    open_case: Open,
) -> None:
    case = with_chair(open_case("spilfiguur", request("jongere-1", "2010-05-01")))
    case.record(TEAM, "CoordinatorDesignated", coordinator="hv-3", chosen_by_client=True)
    assert case.view()["coordinator"] == "hv-3"
    spilfiguur = Actor("professional", "hv-3")
    assert case.view(spilfiguur)["meetings_held"] == 0  # the designation gives them a part

    case.record(CHAIR, "MeetingHeld", **meeting(1, attendance("hv-2", youth=True, parents=True)))
    # Designated, hv-3 is a professional of the case: a workplan may name them, absent.
    case.record(CHAIR, "WorkplanAgreed", **workplan(1, "hv-3", ("hv-3", "Eerste aanspreekpunt")))
    case.record(CHAIR, "RegistrationCompleted", meeting=1)
    chosen = expected(
        case.year,
        total=1,
        first=1,
        registered=1,
        youth=1,
        client=1,
        parents=1,
        workplans=1,
        coordinators=1,
        spilfiguur=(1, 1),
    )
    assert figures(case) == chosen

    case.record(TEAM, "CoordinatorDesignated", coordinator="hv-4", chosen_by_client=False)
    replaced = case.view()
    assert replaced["coordinator"] == "hv-4"
    kept = case.projected()
    assert (kept.designated_coordinator, kept.coordinator_chosen_by_client) == ("hv-4", False)
    assert [e["summary"] for e in case.history() if e["type"] == "CoordinatorDesignated"] == [
        "Coordinator (spilfiguur) designated: hv-3, chosen by the client",
        "Coordinator (spilfiguur) designated: hv-4",
    ]
    # The case has one spilfiguur at the year's end: the last one, not chosen by the client.
    assert figures(case) == {**chosen, "spilfiguur": {"cases": 1, "chosen_by_client": 0}}


# -- 11. an adult client of a lokaal cliëntoverleg consents alone and attends ---------------------


def test_an_adult_lco_client_who_consents_alone_and_attends_counts_as_client_present(
    open_case: Open,
) -> None:
    case = open_case("lco", LCO_REQUEST, GENK)
    case.record(GENK, "ChairAppointed", chair=GENK.ref)
    invited = (("cliënt-1", "client"), ("hv-7", "professional"))
    case.record(GENK, "MeetingPlanned", **plan(1, Day(0), *invited))
    attended = meeting(1, attendance("hv-7", client=True), "Sociaal huis Genk")
    case.refused(
        GENK,
        "MeetingHeld",
        "consent-required",
        "the standing consent of the client or a legal representative",
        **attended,
    )
    case.record(GENK, "ConsentGiven", **party("cliënt-1", "client"))
    case.record(GENK, "MeetingHeld", **attended)
    case.record(GENK, "RegistrationCompleted", meeting=1)

    # The team of another municipality neither reads nor acts on the case.
    case.unseen(HASSELT, "lco-hasselt-1 (team) has no part in this case")
    case.denied(
        HASSELT,
        "POST",
        "/close",
        {"reason": "x"},
        "lco-hasselt-1 (team) works on cases of another programme or area",
    )
    shown = case.view(GENK)
    assert (shown["programme"], shown["region"], shown["chair"]) == (
        "lokaal_clientoverleg",
        "Limburg",
        "lco-genk-1",
    )
    assert [(c["ref"], c["role"]) for c in shown["consents"]] == [("cliënt-1", "client")]
    assert (shown["meetings_held"], shown["status"]) == (1, "registration_completed")

    counted = expected(case.year, "Limburg", total=1, first=1, registered=1, client=1)
    assert figures(case) == counted
    lco = "lokaal_clientoverleg"
    assert case.svc.figures(case.year, lco) == {**counted, "programme": lco}
    assert (
        case.svc.served_figures(case.year, lco)["fully_registered"]["client_present"]
        == (counted["fully_registered"]["client_present"])
    )
    ijh = "integrale_jeugdhulp"
    assert case.svc.figures(case.year, ijh) == expected(case.year, programme=ijh)


# -- 12. a support figure and two network members attending ---------------------------------------


def test_a_support_figure_and_two_network_members_attending_round_trip(
    open_case: Open, tmp_path: Path
) -> None:
    case = with_chair(open_case("network", request("jongere-1", "2010-05-01")))
    invited = (
        ("steunfiguur-1", "support_figure"),
        ("buur-1", "network"),
        ("buur-2", "network"),
        ("hv-2", "professional"),
    )
    planned = plan(1, Day(0), *invited)
    case.record(CHAIR, "MeetingPlanned", **planned)
    present = attendance("hv-2", youth=True, parents=True, support_figure=True, network=2)
    case.record(CHAIR, "MeetingHeld", **meeting(1, present))
    case.record(CHAIR, "RegistrationCompleted", meeting=1)

    lines = round_trip(case, tmp_path)
    data = {line["type"]: line["data"] for line in lines}
    assert data["MeetingHeld"]["attendance"] == {
        "youth": True,
        "parents": True,
        "trusted_person": None,
        "professionals": ["hv-2"],
        "support_figure": True,
        "network": 2,
    }
    assert data["MeetingPlanned"]["invited"] == planned["invited"]
    assert case.history()[3]["summary"] == f"Meeting 1 planned on {case.day(0)}, 4 invited"
    # Family and network are not professionals of the case.
    participants = case.projected().participants
    assert "hv-2" in participants
    assert participants.isdisjoint({"steunfiguur-1", "buur-1", "buur-2"})
    for ref in ("buur-1", "steunfiguur-1"):
        case.unseen(Actor("professional", ref), f"{ref} (professional) has no part in this case")
    assert figures(case) == expected(
        case.year, total=1, first=1, registered=1, youth=1, client=1, parents=1
    )


# -- 13. a professional the client did not want invited, listed as present ---------------------


def unwanted_present(open_case: Open) -> Recording:
    """A meeting planned without hv-9, at the client's wish, and held with hv-9 present."""
    case = with_chair(open_case("unwanted", request("jongere-1", "2010-05-01")))
    planned = plan(1, Day(0), ("hv-2", "professional"), not_invited=("hv-9",))
    case.record(CHAIR, "MeetingPlanned", **planned)
    case.record(
        CHAIR, "MeetingHeld", **meeting(1, attendance("hv-2", "hv-9", youth=True, parents=True))
    )
    case.record(CHAIR, "RegistrationCompleted", meeting=1)
    return case


def test_a_professional_present_against_the_clients_wish_is_accepted_and_flagged(
    open_case: Open,
) -> None:
    case = unwanted_present(open_case)
    assert case.view()["meetings_held"] == 1  # accepted: the record says what happened
    assert case.projected().flagged_meetings == [FlaggedMeeting(1, ["hv-9"])]
    trail = {entry.type: entry.summary for entry in case.trail()}
    assert trail["MeetingPlanned"].endswith("not to be invited at the client's wish: hv-9")
    assert trail["MeetingHeld"].endswith(
        "; FLAGGED: present though the client did not want them invited: hv-9"
    )
    assert figures(case) == expected(
        case.year, total=1, first=1, registered=1, youth=1, client=1, parents=1
    )


def test_the_case_view_of_the_api_flags_a_professional_present_against_the_clients_wish(
    open_case: Open,
) -> None:
    shown = unwanted_present(open_case).view()
    flags = {key: value for key, value in shown.items() if "flag" in key}
    assert flags, f"GET /cases/{{id}} says nothing of the flagged meeting: {sorted(shown)}"
    assert "hv-9" in json.dumps(flags)


def test_the_history_of_the_api_flags_that_meeting_as_the_audit_trail_does(
    open_case: Open,
) -> None:
    case = unwanted_present(open_case)
    assert [e["summary"] for e in case.history()] == [entry.summary for entry in case.trail()]


# -- a retracted first meeting, recorded again ---------------------------------------------------


def test_a_meeting_recorded_again_after_a_retraction_is_the_first_meeting_in_the_history_too(
    open_case: Open,
) -> None:
    case = with_chair(open_case("again", request("jongere-1", "2010-05-01")))
    present = attendance("hv-2", youth=True, parents=True)
    case.record(CHAIR, "MeetingHeld", **meeting(1, present, "Verkeerde plaats"))
    case.record(CHAIR, "MeetingRetracted", meeting=1, reason="Verkeerde plaats geregistreerd")
    case.record(CHAIR, "MeetingHeld", **meeting(2, present))
    case.record(CHAIR, "RegistrationCompleted", meeting=2)

    # The case's first meeting is its earliest held meeting not retracted: number 2.
    assert figures(case) == expected(
        case.year, total=1, first=1, registered=1, youth=1, client=1, parents=1
    )
    summary = next(e["summary"] for e in case.history()[::-1] if e["type"] == "MeetingHeld")
    assert summary.startswith("Meeting 2 (first meeting) held on")


# -- the client's side of an attendance in the history ------------------------------------------


def test_the_history_of_a_meeting_says_whether_the_client_their_support_and_network_attended(
    open_case: Open,
) -> None:
    case = open_case("lco-history", LCO_REQUEST, GENK)
    case.record(GENK, "ConsentGiven", **party("cliënt-1", "client"))
    case.record(GENK, "ChairAppointed", chair=GENK.ref)
    present = attendance("hv-7", client=True, support_figure=True, network=2)
    case.record(GENK, "MeetingHeld", **meeting(1, present, "Sociaal huis Genk"))

    summary = case.history()[-1]["summary"]
    assert summary == case.trail()[-1].summary
    # The adult client of a lokaal cliëntoverleg attended, with a support figure and two
    # people of their network: the line says so, not only "young person not registered".
    assert "client present" in summary
    assert "support figure present" in summary
    assert "network" in summary
