"""The HTTP API as caseworkers use it: a whole case, and every refusal, on both backends."""

from __future__ import annotations

import importlib
import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from api_client import REQUEST, Walk, auth, meeting_day, settings_for, today
from eventsourcing.persistence import IntegrityError
from fastapi.encoders import jsonable_encoder
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from overleg.adapters import budget
from overleg.adapters.recorders import UNREACHABLE, OutcomeUnknown, within
from overleg.adapters.views import ViewStore
from overleg.api.schemas import CaseList, HistoryEntry
from overleg.projections.bottlenecks import bottleneck_report
from overleg.projections.case_answer import CaseOut
from overleg.projections.runner import Projector
from overleg.projections.statistics import annual_statistics
from overleg.settings import Settings
from overleg.streams import import_stream

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from make_sample_stream import stream


def _events(walk: Walk) -> int:
    history = walk.client.get(f"/cases/{walk.case_id}/history", headers=walk.team)
    assert history.status_code == 200, history.text
    return len(history.json())


def test_a_case_goes_from_request_to_follow_up(walk: Walk) -> None:
    walk.up_to_chair()
    assert walk.hold_meeting().status_code == 201
    workplan = {
        "agreements": [
            {"who": "hulpverlener-2", "what": "Huisbezoek", "due": None, "domain": "gezin"},
            {"who": "jongere-1", "what": "Naar school", "due": None, "domain": "onderwijs"},
        ],
        "coordinator": "hulpverlener-2",
        "crisis_plan": True,
    }
    assert walk.send("PUT", "/meetings/1/workplan", walk.chair, workplan).status_code == 200
    assert walk.send("POST", "/meetings/1/registration", walk.chair).status_code == 200
    follow_up = {"on": meeting_day()}
    assert walk.send("POST", "/follow-up", walk.chair, follow_up).status_code == 200
    assert walk.send("POST", "/bottlenecks", walk.chair, BOTTLENECK).status_code == 201

    shown = walk.client.get(f"/cases/{walk.case_id}", headers=walk.chair)
    assert shown.status_code == 200
    assert shown.headers["ETag"] == f'"{walk.version}"' == '"8"'
    case = shown.json()
    assert case["status"] == "follow_up_scheduled"
    assert case["coordinator"] == "hulpverlener-2"
    assert [a["what"] for a in case["open_agreements"]] == ["Huisbezoek", "Naar school"]
    assert case["consents"][0]["ref"] == "jongere-1"
    assert [
        e["type"]
        for e in walk.client.get(f"/cases/{walk.case_id}/history", headers=walk.chair).json()
    ] == [
        "Requested",
        "ConsentGiven",
        "ChairAppointed",
        "MeetingHeld",
        "WorkplanAgreed",
        "RegistrationCompleted",
        "FollowUpScheduled",
        "BottleneckReported",
    ]

    analyst = auth(walk.settings, "analyst", "analist-1")
    year = int(meeting_day()[:4])
    figures = walk.client.get(f"/statistics/{year}", headers=analyst).json()
    assert figures["meetings"]["total"] == 1
    assert figures["fully_registered"]["coordinators"]["by_region"]["Antwerpen"] == 1
    assert walk.client.get(f"/bottlenecks/{today().year}", headers=analyst).json()["total"] == 1

    closed = walk.send("POST", "/close", walk.chair, {"reason": "Werkplan loopt"})
    assert closed.status_code == 200
    assert (
        walk.client.get(f"/cases/{walk.case_id}", headers=walk.chair).json()["status"] == "closed"
    )


BOTTLENECK = {"theme": "wachtlijst", "description": "Geen plaats in dagbegeleiding"}


def test_the_figures_answer_at_once_and_follow_every_new_event(walk: Walk) -> None:
    analyst = auth(walk.settings, "analyst", "analist-1")
    year = int(meeting_day()[:4])

    def figures() -> tuple[int, int]:
        statistics = walk.client.get(f"/statistics/{year}", headers=analyst).json()
        reported = walk.client.get(f"/bottlenecks/{today().year}", headers=analyst).json()
        return statistics["meetings"]["total"], reported["total"]

    walk.up_to_chair()
    assert figures() == figures() == (0, 0)  # asked again unchanged: the same answer
    assert walk.hold_meeting().status_code == 201
    assert figures() == (1, 0)
    assert walk.send("POST", "/bottlenecks", walk.chair, BOTTLENECK).status_code == 201
    assert figures() == (1, 1)


def test_kept_answers_are_the_json_of_their_model(walk: Walk) -> None:
    """The figures and the case list are rendered once and kept as bytes: the same JSON the
    framework renders from their models, and said to be JSON."""
    walk.up_to_chair()
    assert walk.hold_meeting().status_code == 201
    assert walk.send("POST", "/bottlenecks", walk.chair, BOTTLENECK).status_code == 201
    services = walk.client.app.state.services  # type: ignore[attr-defined]
    views = services.fresh_views()
    year = int(meeting_day()[:4])
    analyst = auth(walk.settings, "analyst", "analist-1")
    auditor = auth(walk.settings, "auditor", "auditor-1")
    expected: dict[str, Any] = {
        f"/statistics/{year}": annual_statistics(views, year, themes=services.themes),
        f"/bottlenecks/{today().year}": bottleneck_report(
            views, today().year, themes=services.themes
        ),
    }
    for path, model in expected.items():
        for _ in range(2):  # computed, then kept
            answer = walk.client.get(path, headers=analyst)
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "application/json"
            assert answer.json() == jsonable_encoder(model)
    for _ in range(2):
        listed = walk.client.get("/cases", headers=auditor)
        assert listed.headers["content-type"] == "application/json"
        page = CaseList.model_validate_json(listed.content)
        assert [c.case_id for c in page.items] == [str(walk.case_id)]
        assert listed.json() == jsonable_encoder(page)
    # A case and its history, kept by version: the same JSON, the case's ETag with it.
    answers = [walk.client.get(f"/cases/{walk.case_id}", headers=walk.chair) for _ in range(2)]
    assert answers[0].content == answers[1].content
    for answer in answers:
        assert answer.headers["content-type"] == "application/json"
        case = CaseOut.model_validate_json(answer.content)
        assert answer.headers["ETag"] == f'"{case.version}"'
        assert answer.json() == jsonable_encoder(case)
    path = f"/cases/{walk.case_id}/history"
    histories = [walk.client.get(path, headers=walk.chair) for _ in range(2)]
    assert histories[0].content == histories[1].content
    entries = TypeAdapter(list[HistoryEntry]).validate_json(histories[0].content)
    assert [e.seq for e in entries] == list(range(1, case.version + 1))
    assert histories[0].json() == jsonable_encoder(entries)


def test_the_case_list_answers_again_at_once_and_follows_every_new_event(walk: Walk) -> None:
    auditor = auth(walk.settings, "auditor", "auditor-1")

    def listed() -> list[tuple[str, str, int]]:
        answer = walk.client.get("/cases", headers=auditor)
        assert answer.status_code == 200, answer.text
        return [(c["case_id"], c["status"], c["meetings_held"]) for c in answer.json()["items"]]

    walk.up_to_chair()
    before = listed()
    assert listed() == before  # asked again unchanged: the same answer
    assert walk.hold_meeting().status_code == 201
    after = listed()
    assert [held for *_, held in after] == [1]
    assert after != before
    reads = walk.client.get(f"/cases/{walk.case_id}/reads", headers=auditor).json()
    assert sum(r["what"] == "case list" for r in reads) == 3  # each answer recorded, kept or not


def test_a_broken_rule_is_a_409_naming_it_and_writes_nothing(walk: Walk) -> None:
    walk.request()
    walk.send("PUT", "/chair", walk.team, {"chair": "voorzitter-1"})
    refused = walk.hold_meeting()  # nobody consented
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["rule"] == "consent-required"
    # A case requested today keeps the v2 rules: the client, a legal representative or,
    # for a minor in integrale jeugdhulp, a parent must consent.
    assert problem["rule_set"] == "v2"
    assert "consent of the client, a legal representative or a parent" in problem["detail"]
    assert _events(walk) == 2


def test_a_chair_who_is_a_party_is_refused(walk: Walk) -> None:
    walk.request()
    refused = walk.send("PUT", "/chair", walk.team, {"chair": "jongere-1"})
    assert refused.status_code == 409
    assert refused.json()["rule"] == "chair-neutral"


def test_a_stale_if_match_gets_412_and_nothing_is_written(walk: Walk) -> None:
    walk.up_to_chair()
    walk.version = 2  # what another chair saw before the appointment
    stale = walk.hold_meeting()
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 3
    assert stale.headers["ETag"] == '"3"'
    assert _events(walk) == 3


def test_a_change_without_if_match_gets_428(walk: Walk, client: TestClient) -> None:
    walk.request()
    missing = client.put(
        f"/cases/{walk.case_id}/chair", json={"chair": "voorzitter-1"}, headers=walk.team
    )
    assert missing.status_code == 428
    assert "If-Match" in missing.json()["detail"]
    assert _events(walk) == 1


def test_a_replayed_idempotency_key_returns_the_first_response_once(walk: Walk) -> None:
    walk.up_to_chair()
    key = {"Idempotency-Key": "meeting-1-try"}
    body = {"theme": "wachtlijst", "description": "Te lange wachttijd"}
    first = walk.send("POST", "/bottlenecks", walk.chair, body, **key)
    walk.version -= 1  # the retry is the same request as the first one
    again = walk.send("POST", "/bottlenecks", walk.chair, body, **key)
    assert (again.status_code, again.json()) == (first.status_code, first.json())
    assert again.headers["Idempotency-Replayed"] == "true"
    assert again.headers["ETag"] == first.headers["ETag"]
    assert _events(walk) == 4

    walk.version -= 1
    other = walk.send("POST", "/bottlenecks", walk.chair, {**body, "theme": "vervoer"}, **key)
    assert other.status_code == 422
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    assert _events(walk) == 4


def test_the_wrong_role_gets_403_and_writes_nothing(walk: Walk) -> None:
    walk.up_to_chair()
    by_team = walk.send(
        "POST",
        "/meetings",
        walk.team,
        {
            "held_on": meeting_day(),
            "place": "CLB",
            "attendance": {
                "youth": True,
                "parents": True,
                "trusted_person": None,
                "professionals": [],
            },
        },
    )
    assert by_team.status_code == 403
    assert "Only a chair may register a meeting" in by_team.json()["detail"]
    auditor = auth(walk.settings, "auditor", "auditor-1")
    assert walk.send("POST", "/close", auditor, {"reason": "x"}).status_code == 403
    assert _events(walk) == 3


def test_nobody_reads_a_case_they_have_no_part_in(walk: Walk, client: TestClient) -> None:
    walk.up_to_chair()
    assert walk.hold_meeting().status_code == 201
    path = f"/cases/{walk.case_id}"
    for role, ref, region in [
        ("chair", "voorzitter-2", None),
        ("professional", "hulpverlener-9", None),
        ("team", "team-limburg-1", "Limburg"),
        ("analyst", "analist-1", None),
    ]:
        refused = client.get(path, headers=auth(walk.settings, role, ref, region))
        # A case one may not see answers as one that does not exist; an analyst's role
        # reads no case at all, which says nothing about this one.
        expected = 403 if role == "analyst" else 404
        assert refused.status_code == expected, (role, refused.text)
    for role, ref in [("professional", "hulpverlener-2"), ("auditor", "auditor-1")]:
        assert client.get(path, headers=auth(walk.settings, role, ref)).status_code == 200
    chairs_list = client.get("/cases", headers=auth(walk.settings, "chair", "voorzitter-2"))
    assert chairs_list.json()["total"] == 0
    professionals_list = client.get(
        "/cases", headers=auth(walk.settings, "professional", "hulpverlener-2")
    )
    assert [c["case_id"] for c in professionals_list.json()["items"]] == [walk.case_id]
    assert client.get("/cases", headers=auth(walk.settings, "analyst", "a")).status_code == 403


def test_every_read_of_case_data_is_recorded_for_auditors(walk: Walk, client: TestClient) -> None:
    walk.up_to_chair()
    client.get(f"/cases/{walk.case_id}", headers=walk.chair)
    client.get(f"/cases/{walk.case_id}/history", headers=walk.team)
    client.get("/cases", headers=walk.chair)
    auditor = auth(walk.settings, "auditor", "auditor-1")
    reads = client.get(f"/cases/{walk.case_id}/reads", headers=auditor)
    assert reads.status_code == 200
    assert [(r["reader"], r["what"]) for r in reads.json()] == [
        ("voorzitter-1", "case"),
        ("team-antwerpen-1", "history"),
        ("voorzitter-1", "case list"),
    ]
    assert client.get(f"/cases/{walk.case_id}/reads", headers=walk.chair).status_code == 403


def test_requests_without_a_valid_token_get_401(client: TestClient, settings: Settings) -> None:
    assert client.get("/cases").status_code == 401
    bad = client.get("/cases", headers={"Authorization": "Bearer not.a.token"})
    assert bad.status_code == 401
    assert bad.headers["WWW-Authenticate"].startswith("Bearer")
    other_key = settings.model_copy(update={"dev_key_file": settings.dev_key_file.with_name("x")})
    forged = client.get("/cases", headers=auth(other_key, "auditor", "auditor-1"))
    assert forged.status_code == 401
    for open_path in ("/health", "/openapi.json", "/docs"):
        assert client.get(open_path).status_code == 200


def test_the_bearer_token_is_read_as_the_authorization_scheme_says(
    client: TestClient, settings: Settings
) -> None:
    token = auth(settings, "auditor", "auditor-1")["Authorization"].removeprefix("Bearer ")
    for accepted in (f"Bearer {token}", f"bearer {token}", f"BEARER  {token} "):
        assert client.get("/cases", headers={"Authorization": accepted}).status_code == 200
    for refused in ("Bearer", "Bearer ", f"Basic {token}", token, f"Token {token}", ""):
        answer = client.get("/cases", headers={"Authorization": refused})
        assert answer.status_code == 401, refused
        assert answer.headers["WWW-Authenticate"] == "Bearer"


def test_every_operation_that_asks_for_the_caller_declares_the_bearer_token(
    client: TestClient,
) -> None:
    description = client.get("/openapi.json").json()
    assert description["components"]["securitySchemes"] == {
        "HTTPBearer": {
            "type": "http",
            "description": "A bearer token (JWT) of your organisation",
            "scheme": "bearer",
        }
    }
    declared = {
        (path, method)
        for path, operations in description["paths"].items()
        for method, operation in operations.items()
        if operation.get("security") == [{"HTTPBearer": []}]
    }
    open_to_all = {
        (path, method)
        for path, operations in description["paths"].items()
        for method, operation in operations.items()
        if "security" not in operation
    }
    assert {("/cases/{case_id}", "get"), ("/cases", "post"), ("/statistics/{year}", "get")} <= (
        declared
    )
    assert open_to_all == {
        ("/intake", "post"),
        ("/health", "get"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
    }
    for path, method in declared:  # and each of them refuses a request without one
        concrete = path.replace("{case_id}", "6f1c2a9e-3d5b-4c8e-9a7f-0b1d2e3f4a5b")
        concrete = concrete.replace("{year}", "2015").replace("{meeting}", "1")
        assert client.request(method.upper(), concrete).status_code == 401, (method, path)


def test_malformed_input_gets_422_naming_the_field(walk: Walk, client: TestClient) -> None:
    walk.up_to_chair()
    bad = walk.send("POST", "/meetings", walk.chair, {"held_on": "gisteren", "place": "x"})
    assert bad.status_code == 422
    where = {e["where"] for e in bad.json()["errors"]}
    assert {"body.held_on", "body.attendance"} <= where
    unknown = client.post("/cases", json={**REQUEST, "colour": "red"}, headers=walk.team)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["where"] == "body.colour"
    missing = client.get("/cases/6f1c2a9e-3d5b-4c8e-9a7f-0b1d2e3f4a5b", headers=walk.team)
    assert missing.status_code == 404
    assert _events(walk) == 3


def test_the_public_form_takes_a_request_without_an_account(
    client: TestClient, settings: Settings
) -> None:
    form = {
        "programme": "lokaal_clientoverleg",
        "region": "Limburg",
        "requested_by": {"ref": "ouder-4", "role": "parent"},
        "client": {"ref": "cliënt-4", "birth_date": None},
        "question": "Wij willen samen rond de tafel.",
        "municipality": "Genk",
    }
    received = client.post("/intake", json=form)
    assert received.status_code == 202
    receipt = received.json()["receipt"]
    assert client.get(f"/cases/{receipt}").status_code == 401
    # Contract v2: a lokaal cliëntoverleg is the work of the coordinator of the client's
    # municipality, not of the continuity team of integrale jeugdhulp in the region.
    team = auth(
        settings, "team", "lco-genk-1", programme="lokaal_clientoverleg", municipality="Genk"
    )
    case = client.get(f"/cases/{receipt}", headers=team).json()
    assert (case["channel"], case["status"]) == ("aanvraagformulier", "requested")
    youth_care_team = auth(settings, "team", "team-limburg-1", "Limburg")
    assert client.get(f"/cases/{receipt}", headers=youth_care_team).status_code == 404
    professional = {**form, "requested_by": {"ref": "hv-1", "role": "professional"}}
    assert client.post("/intake", json=professional).status_code == 422


def test_logs_are_json_with_a_request_id_and_nothing_personal(
    walk: Walk, capsys: pytest.CaptureFixture[str]
) -> None:
    walk.up_to_chair()
    assert walk.hold_meeting().status_code == 201
    walk.client.get(f"/cases/{walk.case_id}", headers=walk.chair)
    walk.send("PUT", "/chair", walk.team, {"chair": "jongere-1"})  # refused: a party
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    requests = [x for x in lines if x["event"] == "request"]
    assert len(requests) >= 6
    assert all(len(x["request_id"]) == 16 for x in requests)
    assert {x["route"] for x in requests} >= {"/cases", "/cases/{case_id}/meetings"}
    logged = json.dumps(lines, ensure_ascii=False)
    for personal in ("jongere-1", "hulpverlener-1", "CLB, zaal 2", REQUEST["question"]):
        assert personal not in logged


def test_reads_ignore_idempotency_keys_and_check_access_every_time(
    walk: Walk, client: TestClient
) -> None:
    walk.up_to_chair()
    key = {"Idempotency-Key": "read-1"}
    assert client.get(f"/cases/{walk.case_id}", headers={**walk.chair, **key}).status_code == 200
    walk.send("PUT", "/chair", walk.team, {"chair": "voorzitter-2"})
    again = client.get(f"/cases/{walk.case_id}", headers={**walk.chair, **key})
    assert again.status_code == 404
    assert "Idempotency-Replayed" not in again.headers


def test_a_command_without_a_key_gets_one_and_a_retry_with_it_records_nothing(
    walk: Walk,
) -> None:
    walk.up_to_chair()
    body = {"theme": "wachtlijst", "description": "x"}
    first = walk.send("POST", "/bottlenecks", walk.chair, body)
    assert first.status_code == 201
    key = first.headers["Idempotency-Key"]
    walk.version -= 1  # the same request again, as a client whose answer was lost sends it
    again = walk.send("POST", "/bottlenecks", walk.chair, body, **{"Idempotency-Key": key})
    assert (again.status_code, again.json()) == (201, first.json())
    assert again.headers["Idempotency-Replayed"] == "true"
    assert _events(walk) == 4


class LostAnswers:
    """The store commits, then the answer of the commit is lost (a connection cut at the
    commit): the service sees ``error`` although the events are stored. After ``times``
    such answers, writes go through again; with ``down``, the store stays away instead."""

    def __init__(self, real: Any, error: Exception, times: int = 1, down: bool = False) -> None:
        self.real, self.error, self.times, self.down = real, error, times, down
        self.lost = 0

    def __call__(self, stored_events: Any, **kwargs: Any) -> Any:
        if self.lost >= self.times:
            return self.real(stored_events, **kwargs)
        if self.lost == 0 or not self.down:
            self.real(stored_events, **kwargs)
        self.lost += 1
        raise self.error


def _lose_answers(
    monkeypatch: pytest.MonkeyPatch, client: TestClient, lost: LostAnswers
) -> LostAnswers:
    recorder = client.app.state.services.app.recorder  # type: ignore[attr-defined]
    monkeypatch.setattr(recorder, "insert_events", lost)
    return lost


@pytest.mark.parametrize(
    "error",
    [OutcomeUnknown("server closed the connection unexpectedly"), IntegrityError("duplicate")],
    ids=["commit-answer-lost", "retried-into-its-own-key"],
)
def test_a_stored_write_whose_answer_was_lost_is_answered_as_stored(
    walk: Walk, client: TestClient, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    walk.up_to_chair()
    recorder = client.app.state.services.app.recorder  # type: ignore[attr-defined]
    lost = _lose_answers(monkeypatch, client, LostAnswers(recorder.insert_events, error))
    body = {"theme": "wachtlijst", "description": "x"}
    answer = walk.send("POST", "/bottlenecks", walk.chair, body)
    assert lost.lost == 1
    assert answer.status_code == 201, answer.text
    assert answer.json()["version"] == 4
    assert _events(walk) == 4  # stored once, and said so

    lost.lost, lost.times = 0, 1
    created = client.post("/cases", json=REQUEST, headers=walk.team)  # no If-Match to lean on
    assert lost.lost == 1
    assert created.status_code == 201, created.text
    again = client.post(
        "/cases",
        json=REQUEST,
        headers={**walk.team, "Idempotency-Key": created.headers["Idempotency-Key"]},
    )
    assert again.json() == created.json()
    assert again.headers["Idempotency-Replayed"] == "true"
    listed = client.get("/cases", headers=walk.team).json()
    assert listed["total"] == 2  # the walk's case and this one: no twin


def test_a_write_whose_outcome_stays_unknown_says_so_and_a_retry_settles_it(
    walk: Walk, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    walk.up_to_chair()
    services = client.app.state.services  # type: ignore[attr-defined]
    monkeypatch.setattr(services.app, "timeout", 0.3)
    gone = OutcomeUnknown("the store went away at the commit")
    _lose_answers(
        monkeypatch, client, LostAnswers(services.app.recorder.insert_events, gone, 10**6, True)
    )
    body = {"theme": "wachtlijst", "description": "x"}
    unknown = walk.send("POST", "/bottlenecks", walk.chair, body)
    assert unknown.status_code == 503
    assert unknown.json()["type"] == "/problems/outcome-unknown"
    assert unknown.headers["Retry-After"] == "1"
    _settled_by_its_retry(walk, monkeypatch, unknown, body)


def _thread_handoffs(monkeypatch: pytest.MonkeyPatch, router: str = "figures") -> list[object]:
    """Every piece of work the handlers of ``router`` hand to a worker thread, from now on."""
    module = importlib.import_module(f"overleg.api.routers.{router}")
    hops: list[object] = []
    real_hop = module.run_in_threadpool

    async def counted(work: Any, *args: Any) -> Any:
        hops.append(work)
        return await real_hop(work, *args)

    monkeypatch.setattr(module, "run_in_threadpool", counted)
    return hops


def _from_events_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on the projections answer no case and no history: each is replayed from its
    events, as while a worker is behind or the projections set the case aside."""
    from overleg.api.routers import cases

    async def none_on_loop(*_: object, **__: object) -> tuple[None, bool]:
        return None, False

    monkeypatch.setattr(cases, "_viewed_answer", lambda *_, **__: None)
    monkeypatch.setattr(cases, "_trail_answer", lambda *_, **__: None)
    monkeypatch.setattr(cases, "_viewed_on_loop", none_on_loop)
    monkeypatch.setattr(cases, "_trail_on_loop", none_on_loop)


@contextmanager
def _served_with_a_projector(
    settings: Settings, cases: int
) -> Iterator[tuple[TestClient, Any, Projector]]:
    """The service on ``settings``, its store holding ``cases`` cases of the 2015 stream,
    and a projector of its own on that store, as ``overleg worker`` runs one (caught up
    only when the test says)."""
    from overleg.api.app import create_app

    with TestClient(create_app(settings)) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        import_stream(services.app, [json.dumps(e) for e in stream(cases, 1, 2015)])
        worker = Projector(services.app.event_log, ViewStore(services.app.database))
        try:
            yield client, services, worker
        finally:
            worker.views.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_kept_figures_are_given_from_the_event_loop_where_a_worker_keeps_them(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where a worker keeps the projections and announces its moves, a kept figure whose
    projection has not moved is given at once: no worker thread, no query. After a move it
    is looked up (and computed) again, on a worker thread."""
    settings = settings_for(database_url, tmp_path, projections="worker")
    hops = _thread_handoffs(monkeypatch)
    analyst = auth(settings, "analyst", "analist-1")
    with _served_with_a_projector(settings, 3) as (client, services, worker):
        worker.catch_up()
        _until_known(services, "statistics", services.app.event_log.head())
        first = client.get("/statistics/2015", headers=analyst)
        assert first.status_code == 200 and len(hops) == 1  # computed on a thread
        for _ in range(3):
            again = client.get("/statistics/2015", headers=analyst)
            assert again.content == first.content
        assert len(hops) == 1  # kept, and its position known: from the event loop
        import_stream(services.app, [json.dumps(e) for e in stream(2, 1, 2016)])
        worker.catch_up()  # the projection moves: announced
        deadline = time.monotonic() + 10
        while services.known_version_of("statistics") is not None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert client.get("/statistics/2015", headers=analyst).status_code == 200
        assert len(hops) == 2  # looked up again, on a thread


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_kept_figures_are_given_from_the_event_loop_where_the_service_keeps_them(
    walk: Walk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite the service keeps the projections: while no other connection has written
    since its last catch-up, a kept figure is given at once; a command's events send the
    next request the usual way (caught up on a worker thread, then computed)."""
    hops = _thread_handoffs(monkeypatch)
    walk.up_to_chair()
    analyst = auth(walk.settings, "analyst", "analist-1")
    path = f"/statistics/{int(meeting_day()[:4])}"
    first = walk.client.get(path, headers=analyst)
    assert first.status_code == 200 and len(hops) == 1
    for _ in range(3):
        assert walk.client.get(path, headers=analyst).content == first.content
    assert len(hops) == 1  # kept, nothing recorded since: from the event loop
    assert walk.hold_meeting().status_code == 201
    moved = walk.client.get(path, headers=analyst)
    assert moved.status_code == 200 and len(hops) == 2  # caught up and computed on a thread
    assert moved.content != first.content  # the meeting is counted


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_kept_case_list_is_given_from_the_event_loop_and_recorded_all_the_same(
    walk: Walk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page of the case list kept while the case view has not moved is given without a
    worker thread; its read is recorded before it is answered all the same. After a
    command the page shows it (read on a thread after a catch-up, or on the event loop
    once the view is known to hold it)."""
    hops = _thread_handoffs(monkeypatch, "cases")
    walk.up_to_chair()
    auditor = auth(walk.settings, "auditor", "auditor-1")
    first = walk.client.get("/cases", headers=auditor)
    assert first.status_code == 200 and len(hops) <= 1  # read, then kept
    read_on_threads = len(hops)
    for _ in range(3):
        assert walk.client.get("/cases", headers=auditor).content == first.content
    assert len(hops) == read_on_threads  # kept, nothing recorded since: from the event loop
    reads = walk.client.get(f"/cases/{walk.case_id}/reads", headers=auditor).json()
    assert sum(r["what"] == "case list" for r in reads) == 4  # each answer recorded
    assert walk.hold_meeting().status_code == 201
    moved = walk.client.get("/cases", headers=auditor)
    assert moved.status_code == 200
    assert moved.json()["items"][0]["meetings_held"] == 1


def _until_known(services: Any, name: str, head: int) -> None:
    """Wait (at most 10 s) until the service knows, without waiting, that projection
    ``name`` holds the log up to ``head`` (where a worker keeps it: its position read
    once, as a read on a thread reads it, and no announcement pending since)."""
    deadline = time.monotonic() + 10
    while services.version_of(name) != head or services.known_version_of(name) != head:
        assert time.monotonic() < deadline, f"{name} not known to hold {head}"
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("database_url", "projections"),
    [("sqlite", "inline"), ("postgresql", "worker")],
    indirect=["database_url"],
)
def test_pages_not_kept_are_read_on_the_event_loop_while_the_view_is_known_current(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, projections: str
) -> None:
    """A page of the case list not kept (another filter, another page) is read from the
    case view without a worker thread where the view's version is known at once (SQLite:
    it holds the log's head; PostgreSQL: as the worker announced it), and recorded all
    the same; each page checked against its cases' events (``tests/conftest.py``)."""
    settings = settings_for(database_url, tmp_path, projections=projections)
    hops = _thread_handoffs(monkeypatch, "cases")
    auditor = auth(settings, "auditor", "auditor-1")
    with _served_with_a_projector(settings, 12) as (client, services, worker):
        worker.catch_up() if projections == "worker" else services.fresh_views()
        _until_known(services, "case_view", services.app.event_log.head())
        pages = [
            client.get(path, headers=auditor)
            for path in (
                "/cases?limit=5",
                "/cases?limit=5&offset=5",
                "/cases?limit=5&offset=10",
                "/cases?status=closed",
                "/cases?offset=1000",
            )
        ]
        assert [p.status_code for p in pages] == [200] * 5 and hops == []
        listed = [c["case_id"] for p in pages[:3] for c in p.json()["items"]]
        assert len(listed) == len(set(listed)) == 12 == pages[0].json()["total"]
        assert pages[4].json() == {"items": [], "total": 12, "offset": 1000, "limit": 50}
        reads = client.get(f"/cases/{listed[0]}/reads", headers=auditor).json()
        assert sum(r["what"] == "case list" for r in reads) >= 1


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_list_before_the_worker_built_the_case_view_of_this_version_is_not_ready(
    database_url: str, tmp_path: Path
) -> None:
    """PostgreSQL, between an upgrade of the service and that of its worker: the case view
    is of an earlier version (here: without the answers it keeps since version 6). A list
    is answered 503 not-ready, with when to try again, and nothing is recorded as read;
    once the view is built, the list answers."""
    settings = settings_for(database_url, tmp_path, projections="worker")
    auditor = auth(settings, "auditor", "auditor-1")
    with _served_with_a_projector(settings, 3) as (client, services, worker):
        worker.catch_up()
        with services.views.transaction() as tx:
            tx.execute("ALTER TABLE case_view DROP COLUMN answer")
        refused = client.get("/cases", headers=auditor)
        assert refused.status_code == 503, refused.text
        assert refused.json()["type"] == "/problems/not-ready"
        assert refused.headers["Retry-After"] == "5"
        case_id = sorted(services.app.stored_cases())[0]
        reads = client.get(f"/cases/{case_id}/reads", headers=auditor).json()
        assert [r for r in reads if r["what"] == "case list"] == []
        worker.rebuild(["case_view"])
        listed = client.get("/cases", headers=auditor)
        assert listed.status_code == 200 and listed.json()["total"] == 3


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("earlier", "projection"),
    [
        ("ALTER TABLE stats_meeting DROP COLUMN retracted", "statistics"),
        ("DROP TABLE stats_bottleneck", "statistics"),
        ("ALTER TABLE bottleneck DROP COLUMN theme", "bottlenecks"),
        ("DROP TABLE bottleneck", "bottlenecks"),
    ],
)
def test_figures_before_the_worker_built_their_projection_of_this_version_are_not_ready(
    database_url: str, tmp_path: Path, earlier: str, projection: str
) -> None:
    """PostgreSQL, between an upgrade of the service and that of its worker: a projection
    the figures are read from is of an earlier version (a column or table this version
    reads is not there). The figures read from it are answered 503 not-ready, with when to
    try again, in the caller's language; the others answer. Once the worker has built it,
    they answer as before the upgrade."""
    settings = settings_for(database_url, tmp_path, projections="worker")
    analyst = auth(settings, "analyst", "analist-1")
    paths = {"statistics": "/statistics/2015", "bottlenecks": "/bottlenecks/2015"}
    with _served_with_a_projector(settings, 3) as (client, services, worker):
        worker.catch_up()
        before = {name: client.get(path, headers=analyst) for name, path in paths.items()}
        assert [a.status_code for a in before.values()] == [200, 200]
        with services.views.transaction() as tx:
            tx.execute(earlier)
        services.figures.clear()  # answers kept from before the change are not asked
        for name, path in paths.items():
            answer = client.get(path, headers={**analyst, "Accept-Language": "nl-BE"})
            if name != projection:
                assert answer.content == before[name].content
                continue
            assert answer.status_code == 503, answer.text
            assert answer.json()["type"] == "/problems/not-ready"
            assert answer.json()["detail"].startswith("Niet klaar")
            assert answer.headers["Retry-After"] == "5"
        worker.rebuild([projection])
        after = {name: client.get(path, headers=analyst) for name, path in paths.items()}
        assert {n: a.content for n, a in after.items()} == {n: a.content for n, a in before.items()}


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_lists_and_figures_of_projections_far_behind_the_log_are_not_ready(
    database_url: str, tmp_path: Path
) -> None:
    """PostgreSQL, a worker keeping the projections: while a projection is more events
    behind the log than ``OVERLEG_READY_MAX_LAG`` (a worker rebuilding it after an upgrade,
    or not started yet), the list and the figures read from it are answered 503
    not-ready, with the projection's lag and when to try again, not as if it held every
    event; nothing is recorded as read. Once it has caught up they answer in full."""
    settings = settings_for(database_url, tmp_path, projections="worker", ready_max_lag=5)
    auditor = auth(settings, "auditor", "auditor-1")
    analyst = auth(settings, "analyst", "analist-1")
    paths = {"case_view": "/cases", "statistics": "/statistics/2015"}
    paths["bottlenecks"] = "/bottlenecks/2015"
    with _served_with_a_projector(settings, 3) as (client, services, worker):
        head = services.app.event_log.head()
        assert head > 5
        for name, path in paths.items():
            refused = client.get(path, headers=auditor if name == "case_view" else analyst)
            assert refused.status_code == 503, refused.text
            problem = refused.json()
            assert problem["type"] == "/problems/not-ready"
            assert problem["lag"] == {name: head} and refused.headers["Retry-After"] == "5"
        case_id = sorted(services.app.stored_cases())[0]
        reads = client.get(f"/cases/{case_id}/reads", headers=auditor).json()
        assert [r for r in reads if r["what"] == "case list"] == []
        worker.catch_up()
        _until_known(services, "case_view", head)
        listed = client.get("/cases", headers=auditor)
        assert listed.status_code == 200 and listed.json()["total"] == 3
        figures = client.get("/statistics/2015", headers=analyst)
        assert figures.status_code == 200 and figures.json()["meetings"]["total"] == 3


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_where_the_service_keeps_the_projections_a_list_is_never_refused_as_behind(
    database_url: str, tmp_path: Path
) -> None:
    """SQLite, the service keeping the projections: they are caught up before each read, so
    no bound on their lag refuses one, however low."""
    settings = settings_for(database_url, tmp_path, ready_max_lag=0)
    with _served_with_a_projector(settings, 3) as (client, _services, _worker):
        listed = client.get("/cases", headers=auth(settings, "auditor", "auditor-1"))
        assert listed.status_code == 200 and listed.json()["total"] == 3
        figures = client.get("/statistics/2015", headers=auth(settings, "analyst", "analist-1"))
        assert figures.status_code == 200 and figures.json()["meetings"]["total"] == 3


def test_a_kept_case_and_history_are_given_from_the_event_loop_never_older_than_a_command(
    walk: Walk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A case (and its history) read before, that nothing was written to since, is given
    without a worker thread, its read recorded all the same; after a command it is read
    again on a thread, and never answered at its old version."""
    hops = _thread_handoffs(monkeypatch, "cases")
    _from_events_only(monkeypatch)  # the case replayed is kept
    walk.up_to_chair()
    path = f"/cases/{walk.case_id}"
    auditor = auth(walk.settings, "auditor", "auditor-1")
    reader = auth(walk.settings, "professional", "hulpverlener-1")  # the requester
    firsts = [walk.client.get(p, headers=reader) for p in (path, f"{path}/history")]
    assert [a.status_code for a in firsts] == [200, 200] and len(hops) == 2
    deadline = time.monotonic() + 10
    while True:  # PostgreSQL: until the announcement of the last command has arrived
        again = [walk.client.get(p, headers=reader) for p in (path, f"{path}/history")]
        assert [a.content for a in again] == [a.content for a in firsts]
        assert again[0].headers["ETag"] == firsts[0].headers["ETag"]
        if len(hops) == 2:
            break  # both from the event loop
        assert time.monotonic() < deadline
        del hops[2:]
        time.sleep(0.01)
    reads = walk.client.get(f"{path}/reads", headers=auditor).json()
    assert sum(r["what"] == "case" for r in reads) == sum(r["what"] == "history" for r in reads)
    assert sum(r["what"] == "case" for r in reads) >= 2  # each answer recorded
    assert walk.hold_meeting().status_code == 201
    version = walk.client.get(path, headers=reader).headers["ETag"]  # at once
    assert version != firsts[0].headers["ETag"] and len(hops) == 3  # read on a thread
    assert walk.client.get(path, headers=reader).json()["meetings_held"] == 1


def test_a_command_waits_for_the_store_within_one_timeout_in_all(
    walk: Walk, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store is away, comes back for the commit, whose answer is lost, and is away
    again: the waits before and after the commit share the command's one timeout, so
    the answer (outcome unknown) comes within it, not after a timeout per wait."""
    walk.up_to_chair()
    services = client.app.state.services  # type: ignore[attr-defined]
    timeout = 1.0
    monkeypatch.setattr(services.app, "timeout", timeout)
    recorder = services.app.recorder
    real = recorder.insert_events
    began = time.monotonic()
    back = 0.6  # the store is back this long after the command began (next try: 0.75 s)
    calls: list[float] = []

    def away(until: float) -> None:
        if time.monotonic() < until:
            raise psycopg.OperationalError("connection refused")

    def insert(stored_events: Any, **kwargs: Any) -> Any:
        calls.append(time.monotonic())
        if len(calls) == 1:  # the store's own retries, until it is back for the commit
            within(timeout, lambda: away(began + back), UNREACHABLE)
            real(stored_events, **kwargs)
            raise OutcomeUnknown("the answer of the commit was lost")
        return within(timeout, lambda: away(float("inf")), UNREACHABLE)

    monkeypatch.setattr(recorder, "insert_events", insert)
    body = {"theme": "wachtlijst", "description": "x"}
    began = time.monotonic()
    answer = walk.send("POST", "/bottlenecks", walk.chair, body)
    took = time.monotonic() - began
    assert answer.status_code == 503, answer.text
    assert answer.json()["type"] == "/problems/outcome-unknown"
    assert len(calls) >= 2  # it looked again after the lost answer
    # A timeout per wait would take 0.75 s + the timeout (1.75 s) at least.
    assert took < timeout + 0.5, took
    _settled_by_its_retry(walk, monkeypatch, answer, body)


def _settled_by_its_retry(
    walk: Walk, monkeypatch: pytest.MonkeyPatch, unknown: Any, body: dict[str, str]
) -> None:
    """The store is back: the same request with the key of its outcome-unknown answer
    finds the command stored, once."""
    key = unknown.headers["Idempotency-Key"]
    monkeypatch.undo()
    settled = walk.send("POST", "/bottlenecks", walk.chair, body, **{"Idempotency-Key": key})
    assert settled.status_code == 201, settled.text
    assert settled.headers["Idempotency-Replayed"] == "true"
    assert _events(walk) == 4


def test_a_read_waits_for_the_store_within_one_timeout_in_all(
    walk: Walk, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request's waits for the store end at one deadline, set when the request was read,
    also in the thread that handles it: a wait may take the timeout at most, less what the
    request has waited already."""
    walk.request()
    services = client.app.state.services  # type: ignore[attr-defined]
    monkeypatch.setattr(services.app, "timeout", 1.0)
    recorder = services.app.recorder
    real = recorder.select_case
    left: list[float] = []

    def select_case(*args: Any, **kwargs: Any) -> Any:
        left.append(budget.remaining(60.0))
        return real(*args, **kwargs)

    monkeypatch.setattr(recorder, "select_case", select_case)
    services.app.replays.forget(walk.case_id)
    answer = client.get(f"/cases/{walk.case_id}/history", headers=walk.team)
    assert answer.status_code == 200, answer.text
    assert left and all(0 < seconds <= 1.0 for seconds in left), left
    assert budget.remaining(60.0) > 59  # this thread, outside any request: its own timeout


def test_store_trouble_is_a_503_and_the_unexpected_a_500_with_a_request_id(
    walk: Walk, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    walk.request()
    services = client.app.state.services  # type: ignore[attr-defined]
    _from_events_only(monkeypatch)  # the case's events answer
    professional = auth(walk.settings, "professional", "hulpverlener-1")  # the requester

    def busy(*_: object, **__: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    # The driver's error, where the event store meets it: the service says 503, not 500.
    monkeypatch.setattr(services.app.recorder, "select_case", busy)
    answer = client.get(f"/cases/{walk.case_id}", headers=professional)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("jongere-1 has a secret")

    monkeypatch.setattr(services.app, "replay", broken)
    answer = client.get(f"/cases/{walk.case_id}", headers=professional)
    assert answer.status_code == 500
    assert answer.json()["request_id"] == answer.headers["X-Request-ID"]
    assert "secret" not in answer.text


def test_requests_stay_within_the_callers_scope(walk: Walk, client: TestClient) -> None:
    limburg = {**REQUEST, "region": "Limburg"}
    assert client.post("/cases", json=limburg, headers=walk.team).status_code == 403
    professional = auth(walk.settings, "professional", "hulpverlener-1")
    assert client.post("/cases", json=REQUEST, headers=professional).status_code == 201
    for_someone_else = {**REQUEST, "requested_by": {"ref": "ouder-3", "role": "parent"}}
    assert client.post("/cases", json=for_someone_else, headers=professional).status_code == 403
    as_the_form = {**REQUEST, "channel": "aanvraagformulier"}
    assert client.post("/cases", json=as_the_form, headers=walk.team).status_code == 403
    assert client.get("/cases?chair=%00", headers=walk.team).status_code == 422
    no_subject = auth(walk.settings, "team", "")
    refused = client.get("/cases", headers=no_subject)
    assert refused.status_code == 401
    assert "subject" in refused.json()["detail"]


def test_the_public_form_keeps_keys_per_request(client: TestClient) -> None:
    form = {
        "programme": "integrale_jeugdhulp",
        "region": "Brussel",
        "requested_by": {"ref": "ouder-9", "role": "parent"},
        "client": {"ref": "jongere-9", "birth_date": None},
        "question": "Help",
    }
    key = {"Idempotency-Key": "form-1", "Authorization": "Bearer expired.token.x"}
    first = client.post("/intake", json=form, headers=key)
    again = client.post("/intake", json=form, headers=key)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    other = client.post("/intake", json={**form, "question": "Anders"}, headers=key)
    assert other.status_code == 202
    assert other.json()["receipt"] != first.json()["receipt"]


def test_a_body_that_is_not_json_gets_400_and_writes_nothing(
    walk: Walk, client: TestClient
) -> None:
    walk.up_to_chair()
    json_type = {"Content-Type": "application/json"}
    for body in (b'{"theme": "wachtlijst", "description": ', b"\xff\xfe{}"):
        refused = walk.client.post(
            f"/cases/{walk.case_id}/bottlenecks",
            content=body,
            headers={**walk.chair, **json_type, "If-Match": f'"{walk.version}"'},
        )
        assert refused.status_code == 400, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "/problems/malformed-body"
    assert client.post("/intake", content=b"\x80", headers=json_type).status_code == 400
    assert _events(walk) == 3


def test_an_unsupported_method_gets_405_naming_every_method_of_the_path(
    walk: Walk, client: TestClient
) -> None:
    walk.request()
    for method, path, allowed in [
        ("OPTIONS", "/cases", "GET, POST"),
        ("DELETE", "/cases", "GET, POST"),
        ("PATCH", f"/cases/{walk.case_id}", "GET"),
        ("POST", f"/cases/{walk.case_id}/chair", "PUT"),
        ("GET", "/intake", "POST"),
    ]:
        refused = client.request(method, path, headers=walk.team)
        assert refused.status_code == 405, (method, path)
        assert refused.headers["Allow"] == allowed, (method, path)
        assert refused.json()["type"] == "/problems/method-not-allowed"


def test_the_openapi_description_declares_each_problem_with_an_example_and_its_headers(
    client: TestClient,
) -> None:
    described = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in described["components"]["schemas"]
    operations = {
        f"{method.upper()} {path}": operation
        for path, methods in described["paths"].items()
        for method, operation in methods.items()
    }
    for name, operation in operations.items():
        for status, answer in operation["responses"].items():
            assert answer["headers"]["X-Request-ID"]["required"] is True, (name, status)
            if int(status) < 400:
                continue
            assert list(answer["content"]) == ["application/problem+json"], (name, status)
            examples = answer["content"]["application/problem+json"]["examples"]
            assert examples, (name, status)
            for example in examples.values():
                assert example["value"]["status"] == int(status), (name, status)
                assert example["value"]["type"].startswith("/problems/"), (name, status)
        assert {"408", "413", "500"} <= set(operation["responses"]), name
        for parameter in operation.get("parameters", []):
            assert {"type": "null"} not in parameter["schema"].get("anyOf", []), (name, parameter)

    change = operations["PUT /cases/{case_id}/chair"]["responses"]
    assert set(change) == {
        "200", "400", "401", "403", "404", "408", "409", "412", "413", "422", "428", "429",
        "500", "503",
    }  # fmt: skip
    assert change["200"]["headers"]["ETag"]["required"] is True
    assert change["412"]["headers"]["ETag"]["required"] is True
    assert change["429"]["headers"]["Retry-After"]["required"] is True
    assert change["503"]["headers"]["Retry-After"]["required"] is True
    assert change["503"]["headers"]["Idempotency-Key"]["required"] is False
    kinds = set(change["422"]["content"]["application/problem+json"]["examples"])
    assert kinds == {"invalid-input", "idempotency-key-reused"}
    created = operations["POST /cases"]["responses"]["201"]["headers"]
    assert {"Location", "ETag", "Idempotency-Key"} <= {
        n for n, h in created.items() if h["required"]
    }
    assert created["Idempotency-Replayed"]["required"] is False
    intake = operations["POST /intake"]["responses"]
    assert intake["429"]["headers"]["Retry-After"]["required"] is True
    assert "401" not in intake and "401" in operations["GET /cases"]["responses"]
    assert (
        "400"
        not in operations["POST /cases/{case_id}/meetings/{meeting}/registration"]["responses"]
    )  # it takes no body
