"""Contract v2 through the HTTP API: the new commands, both programmes in the callers' scope,
and the new fields from the request body to the exported stream, on both backends."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest
from api_client import REQUEST, Walk, auth, meeting_day
from fastapi.testclient import TestClient

from overleg.aggregates.values import CHECKLIST_ITEMS
from overleg.api.schemas import ChecklistIn
from overleg.settings import Settings
from overleg.streams import export_stream, import_stream

GENK = {"programme": "lokaal_clientoverleg", "municipality": "Genk"}
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


def _types(walk: Walk) -> list[str]:
    """The event types of the walk's case, as an auditor reads its history."""
    auditor = auth(walk.settings, "auditor", "auditor-1")
    history = walk.client.get(f"/cases/{walk.case_id}/history", headers=auditor)
    assert history.status_code == 200, history.text
    return [e["type"] for e in history.json()]


def _held(walk: Walk) -> None:
    """An integrale jeugdhulp case with its meeting 1 planned, held and given a workplan."""
    walk.up_to_chair()
    plan = {
        "on": meeting_day(),
        "place": "CLB, zaal 2",
        "invited": [{"ref": "hulpverlener-1", "role": "professional"}],
        "not_invited": [],
    }
    assert walk.send("POST", "/meeting-plans", walk.chair, plan).status_code == 201
    held = walk.send(
        "POST",
        "/meetings",
        walk.chair,
        {
            "meeting": 1,
            "held_on": meeting_day(),
            "place": "CLB, zaal 2",
            "attendance": {
                "youth": True,
                "parents": False,
                "trusted_person": None,
                "professionals": ["hulpverlener-1", "hulpverlener-2"],
            },
        },
    )
    assert held.status_code == 201, held.text
    workplan = {
        "agreements": [{"who": "hulpverlener-2", "what": "Huisbezoek", "domain": "gezin"}],
        "coordinator": "hulpverlener-2",
    }
    assert walk.send("PUT", "/meetings/1/workplan", walk.chair, workplan).status_code == 200


@dataclass(frozen=True)
class Endpoint:
    """One new command's endpoint: a request that records it, who may and who may not send
    it, what must be recorded first, and a request of it that breaks a rule."""

    name: str
    method: str
    path: str
    body: dict[str, Any]
    recorded: str
    allowed: str  # "chair" or "team"
    denied: tuple[str, str]  # role, ref
    refused: tuple[str, dict[str, Any], str]  # path, body, rule
    status: int = 200
    before: tuple[tuple[str, str, dict[str, Any] | None], ...] = ()


TODAY = "today"  # sent as the day of the request: known only when the test runs


def _dated(body: Any) -> Any:
    """``body`` with every ``TODAY`` in it replaced by today's date."""
    if isinstance(body, dict):
        return {key: _dated(value) for key, value in body.items()}
    if isinstance(body, list):
        return [_dated(value) for value in body]
    return meeting_day() if body == TODAY else body


NEXT_PLAN = {"on": TODAY, "place": None, "invited": [], "not_invited": []}
TEAM = ("team", "team-antwerpen-1")
ENDPOINTS = [
    Endpoint(
        "plan",
        "POST",
        "/meeting-plans",
        {**NEXT_PLAN, "goal": "Evaluatie", "not_invited": ["hulpverlener-9"]},
        "MeetingPlanned",
        "chair",
        TEAM,
        (
            "/meeting-plans",
            {
                **NEXT_PLAN,
                "invited": [{"ref": "hv-3", "role": "professional"}],
                "not_invited": ["hv-3"],
            },
            "invited-or-not",
        ),
        status=201,
    ),
    Endpoint(
        "cancel",
        "POST",
        "/meetings/2/cancel",
        {"reason": "De cliënt is ziek"},
        "MeetingCancelled",
        "chair",
        TEAM,
        ("/meetings/1/cancel", {"reason": "x"}, "meeting-planned"),
        before=(("POST", "/meeting-plans", NEXT_PLAN),),
    ),
    Endpoint(
        "preparation",
        "PUT",
        "/meetings/2/preparation",
        {"checklist": {"client_informed": True, "transport_arranged": None}},
        "PreparationRecorded",
        "chair",
        TEAM,
        ("/meetings/1/preparation", {"checklist": {}}, "meeting-planned"),
    ),
    Endpoint(
        "coordinator",
        "PUT",
        "/coordinator",
        {"coordinator": "hulpverlener-1", "chosen_by_client": True},
        "CoordinatorDesignated",
        "team",
        ("professional", "hulpverlener-1"),
        (
            "/coordinator",
            {"coordinator": "voorzitter-1", "chosen_by_client": False},
            "coordinator-not-chair",
        ),
    ),
    Endpoint(
        "correct attendance",
        "POST",
        "/meetings/1/attendance/correct",
        {
            "attendance": {
                "youth": False,
                "parents": True,
                "trusted_person": None,
                "professionals": ["hulpverlener-1"],
            },
            "reason": "De jongere was er niet",
        },
        "AttendanceCorrected",
        "chair",
        TEAM,
        (
            "/meetings/2/attendance/correct",
            {"attendance": {"youth": True, "parents": True}, "reason": "x"},
            "meeting-held",
        ),
    ),
    Endpoint(
        "revise workplan",
        "POST",
        "/meetings/1/workplan/revise",
        {
            "agreements": [{"who": "hulpverlener-2", "what": "Huisbezoek om de week"}],
            "coordinator": "hulpverlener-2",
            "reason": "Bijgesteld",
        },
        "WorkplanRevised",
        "chair",
        TEAM,
        (
            "/meetings/2/workplan/revise",
            {
                "agreements": [{"who": "hulpverlener-2", "what": "x"}],
                "coordinator": None,
                "reason": "x",
            },
            "meeting-held",
        ),
    ),
    Endpoint(
        "retract",
        "POST",
        "/meetings/1/retract",
        {"reason": "In het verkeerde dossier geregistreerd"},
        "MeetingRetracted",
        "chair",
        TEAM,
        ("/meetings/2/retract", {"reason": "x"}, "meeting-held"),
    ),
    Endpoint(
        "reopen",
        "POST",
        "/reopen",
        {"reason": "Nieuwe vraag van de jongere"},
        "CaseReopened",
        "team",
        ("professional", "hulpverlener-1"),
        ("/reopen", {"reason": "x"}, "reopen-after-close"),
        before=(("POST", "/close", {"reason": "Werkplan loopt"}),),
    ),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_each_new_command_has_its_endpoint_with_roles_versions_and_rules(
    walk: Walk, endpoint: Endpoint
) -> None:
    _held(walk)
    recorded = len(_types(walk))

    walk.version -= 1
    stale = walk.send(
        endpoint.method, endpoint.path, getattr(walk, endpoint.allowed), _dated(endpoint.body)
    )
    walk.version += 1
    assert stale.status_code == 412, stale.text
    assert stale.json()["current_version"] == walk.version

    role, ref = endpoint.denied
    denied = walk.send(
        endpoint.method, endpoint.path, auth(walk.settings, role, ref), _dated(endpoint.body)
    )
    assert denied.status_code == 403, denied.text
    assert denied.json()["type"] == "/problems/forbidden"

    path, body, rule = endpoint.refused
    broken = walk.send(endpoint.method, path, getattr(walk, endpoint.allowed), _dated(body))
    assert broken.status_code == 409, broken.text
    problem = broken.json()
    assert (problem["type"], problem["rule"], problem["rule_set"]) == (
        f"/problems/rule/{rule}",
        rule,
        "v2",
    )
    assert problem["detail"].endswith("(rule set v2)")
    assert len(_types(walk)) == recorded  # every refusal wrote nothing

    for method, before_path, before_body in endpoint.before:
        assert walk.send(method, before_path, walk.chair, _dated(before_body)).status_code < 300
    version = walk.version
    done = walk.send(
        endpoint.method, endpoint.path, getattr(walk, endpoint.allowed), _dated(endpoint.body)
    )
    assert done.status_code == endpoint.status, done.text
    assert done.json()["recorded"] == endpoint.recorded
    assert done.headers["ETag"] == f'"{version + 1}"'
    assert _types(walk)[-1] == endpoint.recorded


@dataclass
class Lco:
    """A lokaal cliëntoverleg of Genk, driven through the API by the coordinator of Genk, who
    takes the request and chairs the meetings."""

    client: TestClient
    settings: Settings
    case_id: str = ""
    version: int = 0

    def team(self, ref: str = "lco-genk-1", municipality: str = "Genk") -> dict[str, str]:
        return auth(
            self.settings,
            "team",
            ref,
            programme="lokaal_clientoverleg",
            municipality=municipality,
        )

    def send(self, method: str, path: str, who: dict[str, str], body: Any = None) -> Any:
        response = self.client.request(
            method,
            f"/cases/{self.case_id}{path}",
            json=_dated(body),
            headers={**who, "If-Match": f'"{self.version}"'},
        )
        if response.status_code < 300:
            self.version = int(response.headers["ETag"].strip('"'))
        return response

    def request(self) -> None:
        created = self.client.post("/cases", json=LCO_REQUEST, headers=self.team())
        assert created.status_code == 201, created.text
        self.case_id, self.version = created.json()["case_id"], 1

    def up_to_chair(self) -> None:
        self.request()
        consent = {"party": {"ref": "cliënt-1", "role": "client"}}
        assert self.send("POST", "/consents", self.team(), consent).status_code == 200
        chair = self.send("PUT", "/chair", self.team(), {"chair": "lco-genk-1"})
        assert chair.status_code == 200, chair.text


@pytest.fixture
def lco(client: TestClient, settings: Settings) -> Lco:
    return Lco(client, settings)


ADULT_MEETING = {
    "held_on": TODAY,
    "place": "Sociaal huis Genk",
    "attendance": {
        "youth": None,
        "parents": None,
        "trusted_person": None,
        "professionals": ["hulpverlener-7"],
        "client": True,
        "support_figure": True,
        "network": 2,
    },
}


def test_the_lco_coordinator_takes_the_request_and_chairs_it(lco: Lco) -> None:
    lco.up_to_chair()
    plan = {
        "on": meeting_day(),
        "place": "Sociaal huis Genk",
        "invited": [
            {"ref": "cliënt-1", "role": "client"},
            {"ref": "buur-1", "role": "network"},
            {"ref": "hulpverlener-7", "role": "professional"},
        ],
        "not_invited": ["hulpverlener-40"],
    }
    planned = lco.send("POST", "/meeting-plans", lco.team(), plan)
    assert planned.status_code == 201, planned.text
    assert planned.headers["Location"] == f"/cases/{lco.case_id}/meetings/1"
    prepared = {"checklist": {"client_informed": True, "client_attends": True}}
    assert lco.send("PUT", "/meetings/1/preparation", lco.team(), prepared).status_code == 200
    held = lco.send("POST", "/meetings", lco.team(), {**ADULT_MEETING, "meeting": 1})
    assert held.status_code == 201, held.text
    assert held.headers["Location"] == f"/cases/{lco.case_id}/meetings/1"
    assert lco.send("POST", "/meetings/1/registration", lco.team()).status_code == 200

    # A colleague of the same team reads the case, but only its chair chairs it.
    colleague = lco.team("lco-genk-2")
    assert lco.client.get(f"/cases/{lco.case_id}", headers=colleague).status_code == 200
    refused = lco.send("POST", "/meeting-plans", colleague, {**plan, "not_invited": []})
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "Only the chair of this case may plan a meeting; lco-genk-2 is not its chair"
    )
    auditor = auth(lco.settings, "auditor", "auditor-1")
    history = lco.client.get(f"/cases/{lco.case_id}/history", headers=auditor).json()
    assert [(e["type"], e["by"]) for e in history[-4:]] == [
        ("MeetingPlanned", "lco-genk-1"),
        ("PreparationRecorded", "lco-genk-1"),
        ("MeetingHeld", "lco-genk-1"),
        ("RegistrationCompleted", "lco-genk-1"),
    ]


def test_a_meeting_registered_without_a_number_is_the_one_planned(lco: Lco) -> None:
    lco.up_to_chair()
    assert lco.send("POST", "/meeting-plans", lco.team(), NEXT_PLAN).status_code == 201
    held = lco.send("POST", "/meetings", lco.team(), ADULT_MEETING)
    assert held.status_code == 201, held.text
    assert held.headers["Location"] == f"/cases/{lco.case_id}/meetings/1"
    again = lco.send("POST", "/meetings", lco.team(), ADULT_MEETING)
    assert again.headers["Location"] == f"/cases/{lco.case_id}/meetings/2"


def test_a_youth_care_team_member_appointed_chair_does_not_chair(walk: Walk) -> None:
    # In integrale jeugdhulp the chair is external: the team appoints, it does not chair.
    walk.request()
    consent = {"party": {"ref": "jongere-1", "role": "youth"}}
    assert walk.send("POST", "/consents", walk.team, consent).status_code == 200
    assert walk.send("PUT", "/chair", walk.team, {"chair": "team-antwerpen-1"}).status_code == 200
    refused = walk.send("POST", "/meeting-plans", walk.team, _dated(NEXT_PLAN))
    assert refused.status_code == 403
    assert refused.json()["detail"] == "Only a chair may plan a meeting"
    assert _types(walk)[-1] == "ChairAppointed"


def test_a_team_sees_and_acts_on_its_own_programme_and_area_only(
    lco: Lco, walk: Walk, client: TestClient, settings: Settings
) -> None:
    lco.up_to_chair()
    walk.up_to_chair()  # integrale jeugdhulp, Antwerpen
    hasselt = lco.team("lco-hasselt-1", "Hasselt")
    limburg_youth_care = auth(settings, "team", "team-limburg-1", "Limburg")
    antwerp_lco = auth(
        settings,
        "team",
        "lco-antwerpen-1",
        programme="lokaal_clientoverleg",
        municipality="Antwerpen",
    )
    for other in (hasselt, limburg_youth_care):
        assert client.get(f"/cases/{lco.case_id}", headers=other).status_code == 404
        refused = lco.send("POST", "/close", other, {"reason": "x"})
        assert refused.status_code == 404
        assert refused.json()["detail"] == f"No case {lco.case_id}"
    assert client.get(f"/cases/{walk.case_id}", headers=antwerp_lco).status_code == 404
    # The municipality is compared regardless of letter case.
    genk = lco.team("lco-genk-3", "genk")
    assert client.get(f"/cases/{lco.case_id}", headers=genk).status_code == 200

    def listed(who: dict[str, str], query: str = "") -> list[str]:
        page = client.get(f"/cases{query}", headers=who)
        assert page.status_code == 200, page.text
        assert page.json()["total"] == len(page.json()["items"])
        return [c["case_id"] for c in page.json()["items"]]

    assert listed(lco.team()) == [lco.case_id]
    assert listed(lco.team(), "?programme=integrale_jeugdhulp") == []
    assert listed(hasselt) == []
    assert listed(limburg_youth_care) == []
    assert listed(walk.team) == [walk.case_id]
    assert listed(antwerp_lco) == []
    assert set(listed(auth(settings, "auditor", "auditor-1"))) == {lco.case_id, walk.case_id}


def test_a_team_submits_requests_of_its_own_programme_and_area_only(
    client: TestClient, settings: Settings
) -> None:
    genk = auth(settings, "team", "lco-genk-1", **GENK)
    assert client.post("/cases", json=LCO_REQUEST, headers=genk).status_code == 201
    for request, detail in [
        ({**LCO_REQUEST, "municipality": "Hasselt"}, "goes to that municipality's team"),
        (REQUEST, "works in lokaal_clientoverleg, not integrale_jeugdhulp"),
    ]:
        refused = client.post("/cases", json=request, headers=genk)
        assert refused.status_code == 403
        assert detail in refused.json()["detail"]
    antwerp = auth(settings, "team", "team-antwerpen-1", "Antwerpen")
    refused = client.post("/cases", json={**LCO_REQUEST, "region": "Antwerpen"}, headers=antwerp)
    assert refused.status_code == 403
    assert "works in integrale_jeugdhulp, not lokaal_clientoverleg" in refused.json()["detail"]
    # A request of lokaal cliëntoverleg names the municipality whose coordinator takes it.
    nowhere = {k: v for k, v in LCO_REQUEST.items() if k != "municipality"}
    missing = client.post("/cases", json=nowhere, headers=genk)
    assert missing.status_code == 422
    assert [e["where"] for e in missing.json()["errors"]] == ["body.municipality"]
    auditor = auth(settings, "auditor", "auditor-1")
    assert client.get("/cases", headers=auditor).json()["total"] == 1


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"programme": "integrale_jeugdhulp"},
        {"programme": "lokaal_clientoverleg"},
        {"programme": "lokaal_clientoverleg", "region": "Limburg"},
    ],
    ids=["nothing", "ijh-without-region", "lco-without-municipality", "lco-region-only"],
)
def test_a_team_token_without_its_area_is_refused_not_all_seeing(
    walk: Walk, client: TestClient, settings: Settings, claims: dict[str, str]
) -> None:
    walk.request()
    region = claims.get("region")
    programme = claims.get("programme")
    who = auth(settings, "team", "team-1", region, programme=programme)
    for method, path, body in [
        ("GET", "/cases", None),
        ("GET", f"/cases/{walk.case_id}", None),
        ("POST", "/cases", REQUEST),
        ("GET", "/statistics/2026", None),
    ]:
        refused = client.request(method, path, json=body, headers=who)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["detail"].startswith(
            "A continuity team's token names the area it works in"
        )
    assert len(_types(walk)) == 1


def test_a_token_with_claims_that_name_nothing_known_is_not_valid(
    client: TestClient, settings: Settings
) -> None:
    unknown_region = auth(settings, "team", "team-1", "Atlantis")
    refused = client.get("/cases", headers=unknown_region)
    assert refused.status_code == 401
    assert "region" in refused.json()["detail"]
    unknown_programme = auth(settings, "chair", "voorzitter-1")
    assert client.get("/cases", headers=unknown_programme).status_code == 200
    blank = auth(settings, "team", "team-1", municipality=" ", programme="lokaal_clientoverleg")
    assert client.get("/cases", headers=blank).status_code == 401


def test_a_chair_or_professional_token_of_a_programme_stays_in_it(walk: Walk) -> None:
    _held(walk)
    for role, ref in [("chair", "voorzitter-1"), ("professional", "hulpverlener-1")]:
        mine = auth(walk.settings, role, ref, programme="integrale_jeugdhulp")
        other = auth(walk.settings, role, ref, programme="lokaal_clientoverleg")
        assert walk.client.get(f"/cases/{walk.case_id}", headers=mine).status_code == 200
        assert walk.client.get(f"/cases/{walk.case_id}", headers=other).status_code == 404
        assert walk.client.get("/cases", headers=other).json()["total"] == 0
    other_chair = auth(walk.settings, "chair", "voorzitter-1", programme="lokaal_clientoverleg")
    refused = walk.send("POST", "/meeting-plans", other_chair, _dated(NEXT_PLAN))
    assert refused.status_code == 404


def test_a_professional_named_only_in_an_agreement_reads_the_case(walk: Walk) -> None:
    walk.up_to_chair()
    assert walk.hold_meeting().status_code == 201
    workplan = {
        "agreements": [{"who": "hulpverlener-5", "what": "Schoolbegeleiding", "domain": None}],
        "coordinator": None,
    }
    assert walk.send("PUT", "/meetings/1/workplan", walk.chair, workplan).status_code == 200
    named = auth(walk.settings, "professional", "hulpverlener-5")
    assert walk.client.get(f"/cases/{walk.case_id}", headers=named).status_code == 200
    listed = walk.client.get("/cases", headers=named).json()["items"]
    assert [c["case_id"] for c in listed] == [walk.case_id]
    stranger = auth(walk.settings, "professional", "hulpverlener-6")
    assert walk.client.get(f"/cases/{walk.case_id}", headers=stranger).status_code == 404
    assert walk.client.get("/cases", headers=stranger).json()["total"] == 0


def test_family_and_network_named_in_an_agreement_do_not_read_as_professionals(
    walk: Walk,
) -> None:
    walk.up_to_chair()
    parent = {"party": {"ref": "ouder-1", "role": "parent"}}
    assert walk.send("POST", "/consents", walk.team, parent).status_code == 200
    plan = _dated({**NEXT_PLAN, "invited": [{"ref": "oom-1", "role": "network"}]})
    assert walk.send("POST", "/meeting-plans", walk.chair, plan).status_code == 201
    meeting = {
        "meeting": 1,
        "held_on": meeting_day(),
        "place": "Thuis",
        "attendance": {"youth": True, "parents": True, "professionals": ["hulpverlener-2"]},
    }
    assert walk.send("POST", "/meetings", walk.chair, meeting).status_code == 201
    workplan = {
        "agreements": [
            {"who": "oom-1", "what": "Haalt de jongere op na school"},
            {"who": "ouder-1", "what": "Belt de school"},
            {"who": "hulpverlener-2", "what": "Huisbezoek"},
        ],
        "coordinator": "hulpverlener-2",
    }
    assert walk.send("PUT", "/meetings/1/workplan", walk.chair, workplan).status_code == 200
    for ref in ("oom-1", "ouder-1"):
        as_professional = auth(walk.settings, "professional", ref)
        answer = walk.client.get(f"/cases/{walk.case_id}", headers=as_professional)
        assert answer.status_code == 404, ref
        assert walk.client.get("/cases", headers=as_professional).json()["total"] == 0


def _exported(client: TestClient, case_id: str) -> list[dict[str, Any]]:
    app = client.app.state.services.app  # type: ignore[attr-defined]
    return [json.loads(line) for line in export_stream(app, UUID(case_id))]


def test_v2_fields_go_from_the_api_into_the_exported_stream_and_back(lco: Lco) -> None:
    lco.up_to_chair()
    plan = {
        "on": meeting_day(),
        "place": None,
        "goal": "Afspraken over wonen",
        "invited": [{"ref": "buur-1", "role": "network"}],
        "not_invited": [],
    }
    assert lco.send("POST", "/meeting-plans", lco.team(), plan).status_code == 201
    assert (
        lco.send("POST", "/meetings", lco.team(), {**ADULT_MEETING, "meeting": 1}).status_code
        == 201
    )
    workplan = {
        "agreements": [
            {
                "who": "hulpverlener-7",
                "what": "Budgetbegeleiding opstarten",
                "due": None,
                "domain": "financiën",
                "goal": "Schulden onder controle",
            }
        ],
        "coordinator": "hulpverlener-7",
        "crisis_plan": {"steps": ["Bel de spilfiguur", "Bel de huisarts"]},
    }
    assert lco.send("PUT", "/meetings/1/workplan", lco.team(), workplan).status_code == 200
    correction = {
        "attendance": {"youth": None, "parents": None, "professionals": [], "client": False},
        "reason": "De cliënt was er niet",
    }
    corrected = lco.send("POST", "/meetings/1/attendance/correct", lco.team(), correction)
    assert corrected.status_code == 200, corrected.text
    revised = {
        "agreements": [{"who": "hulpverlener-7", "what": "Budgetbeheer", "domain": None}],
        "coordinator": None,
        "crisis_plan": True,
        "reason": "Anders afgesproken",
    }
    assert lco.send("POST", "/meetings/1/workplan/revise", lco.team(), revised).status_code == 200
    designated = {"coordinator": "hulpverlener-7", "chosen_by_client": True}
    assert lco.send("PUT", "/coordinator", lco.team(), designated).status_code == 200

    lines = _exported(lco.client, lco.case_id)
    data = {line["type"]: line["data"] for line in lines}
    assert (data["Requested"]["municipality"], data["Requested"]["goal"]) == (
        "Genk",
        "Zelfstandig blijven wonen",
    )
    assert data["Requested"]["requested_by"] == {"ref": "huisarts-1", "role": "service"}
    assert data["MeetingPlanned"] == {**plan, "meeting": 1}
    assert data["MeetingHeld"]["attendance"] == _dated(ADULT_MEETING)["attendance"]
    assert data["WorkplanAgreed"]["agreements"] == workplan["agreements"]
    assert data["WorkplanAgreed"]["crisis_plan"] == {
        "steps": ["Bel de spilfiguur", "Bel de huisarts"]
    }
    # Only what was sent is recorded: no support_figure or network in the correction.
    assert data["AttendanceCorrected"]["attendance"] == {
        "youth": None,
        "parents": None,
        "trusted_person": None,
        "professionals": [],
        "client": False,
    }
    assert data["WorkplanRevised"] == {
        "meeting": 1,
        "agreements": [
            {"who": "hulpverlener-7", "what": "Budgetbeheer", "due": None, "domain": None}
        ],
        "coordinator": None,
        "crisis_plan": True,
        "reason": "Anders afgesproken",
    }
    assert data["CoordinatorDesignated"] == designated
    # The exported lines are exactly what the store holds: importing them again adds nothing.
    app = lco.client.app.state.services.app  # type: ignore[attr-defined]
    report = import_stream(app, [json.dumps(line) for line in lines])
    assert report.new_events == 0


def test_the_public_form_takes_v2_roles_and_an_lco_request_names_its_municipality(
    client: TestClient, settings: Settings
) -> None:
    form = {
        "programme": "lokaal_clientoverleg",
        "region": "Limburg",
        "requested_by": {"ref": "cliënt-2", "role": "client"},
        "client": {"ref": "cliënt-2", "birth_date": None},
        "question": "Ik wil overzicht in mijn hulp",
        "municipality": "Genk",
        "goal": "Weten wie wat doet",
    }
    received = client.post("/intake", json=form)
    assert received.status_code == 202, received.text
    genk = auth(settings, "team", "lco-genk-1", **GENK)
    assert client.get(f"/cases/{received.json()['receipt']}", headers=genk).status_code == 200
    for role in ("legal_representative", "network"):
        requested_by = {"ref": f"{role}-1", "role": role}
        assert (
            client.post("/intake", json={**form, "requested_by": requested_by}).status_code == 202
        )
    for role in ("professional", "service", "resident"):
        requested_by = {"ref": f"{role}-1", "role": role}
        assert (
            client.post("/intake", json={**form, "requested_by": requested_by}).status_code == 422
        )
    nowhere = {k: v for k, v in form.items() if k != "municipality"}
    missing = client.post("/intake", json=nowhere)
    assert missing.status_code == 422
    assert [e["where"] for e in missing.json()["errors"]] == ["body.municipality"]


def test_v2_bodies_refuse_what_the_contract_refuses(walk: Walk) -> None:
    _held(walk)
    recorded = len(_types(walk))
    unknown_network = {
        "attendance": {"youth": True, "parents": True, "network": None},
        "reason": "x",
    }
    refused = walk.send("POST", "/meetings/1/attendance/correct", walk.chair, unknown_network)
    assert refused.status_code == 422
    assert [e["where"] for e in refused.json()["errors"]] == ["body.attendance.network"]
    service_as_party = {"party": {"ref": "dienst-1", "role": "service"}}
    assert walk.send("POST", "/consents", walk.team, service_as_party).status_code == 422
    empty_crisis_plan = {
        "agreements": [{"who": "hulpverlener-2", "what": "x"}],
        "coordinator": None,
        "crisis_plan": {"steps": []},
        "reason": "x",
    }
    answer = walk.send("POST", "/meetings/1/workplan/revise", walk.chair, empty_crisis_plan)
    assert answer.status_code == 422
    # The young person in integrale jeugdhulp is the client: youth or client, not both.
    twice = {"attendance": {"youth": True, "parents": True, "client": True}, "reason": "x"}
    broken = walk.send("POST", "/meetings/1/attendance/correct", walk.chair, twice)
    assert (broken.status_code, broken.json()["rule"]) == (409, "attendance-client")
    assert len(_types(walk)) == recorded


def test_the_checklist_of_the_api_is_the_contracts() -> None:
    assert tuple(ChecklistIn.model_fields) == CHECKLIST_ITEMS


def test_the_openapi_description_declares_the_new_commands(client: TestClient) -> None:
    described = client.get("/openapi.json").json()
    paths = described["paths"]
    for path, method, status in [
        ("/cases/{case_id}/meeting-plans", "post", "201"),
        ("/cases/{case_id}/meetings/{meeting}/cancel", "post", "200"),
        ("/cases/{case_id}/meetings/{meeting}/preparation", "put", "200"),
        ("/cases/{case_id}/coordinator", "put", "200"),
        ("/cases/{case_id}/meetings/{meeting}/attendance/correct", "post", "200"),
        ("/cases/{case_id}/meetings/{meeting}/workplan/revise", "post", "200"),
        ("/cases/{case_id}/meetings/{meeting}/retract", "post", "200"),
        ("/cases/{case_id}/reopen", "post", "200"),
    ]:
        answers = paths[path][method]["responses"]
        assert set(answers) == {
            status, "400", "401", "403", "404", "408", "409", "412", "413", "422", "428", "429",
            "500", "503",
        }, path  # fmt: skip
        assert answers[status]["headers"]["ETag"]["required"] is True, path
        conflict = answers["409"]["content"]["application/problem+json"]["examples"]["rule"]
        assert conflict["value"]["rule_set"] == "v2", path
    planned = paths["/cases/{case_id}/meeting-plans"]["post"]["responses"]["201"]
    assert planned["headers"]["Location"]["required"] is True
    problem = described["components"]["schemas"]["Problem"]["properties"]
    assert {"rule", "rule_set"} <= set(problem)
