"""Problems in the caller's language: Dutch (nl-BE) for a client that asks for it, the same
English as ever otherwise; what a program reads is the same in both."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from api_client import REQUEST, Walk, auth, meeting_day
from fastapi.testclient import TestClient

from overleg.application import CaseNotFound, StaleCase
from overleg.i18n import Language, text_of, translate
from overleg.policies import access
from overleg.policies.access import AccessDenied, Principal, StaffRole
from overleg.settings import Settings

DUTCH = {"Accept-Language": "nl-BE"}
NOT_NEUTRAL = "The chair must be neutral: jongere-1 is a party of this case (rule set v2)"


def _dutch(english: str) -> str:
    """A domain text as the Dutch catalog says it; never the English itself."""
    said = translate(english, Language.NL)
    assert said != english, f"no Dutch for {english!r}"
    return said


def _problem(response: Any, status: int, language: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["Content-Language"] == language
    assert "Accept-Language" in response.headers["Vary"]
    found: dict[str, Any] = response.json()
    return found


def _chair_who_is_a_party(walk: Walk, **language: str) -> Any:
    return walk.send("PUT", "/chair", walk.team, {"chair": "jongere-1"}, **language)


def test_a_broken_rule_is_said_in_dutch_with_the_same_rule(walk: Walk) -> None:
    walk.request()
    english = _problem(_chair_who_is_a_party(walk), 409, "en")
    dutch = _problem(_chair_who_is_a_party(walk, **DUTCH), 409, "nl-BE")

    assert dutch["title"] == "Conflict"
    assert "voorzitter" in dutch["detail"]
    assert dutch["detail"].endswith("(regelset v2)")
    assert dutch["detail"] != english["detail"] == NOT_NEUTRAL
    for unchanged in ("type", "status", "instance", "rule", "rule_set"):
        assert dutch[unchanged] == english[unchanged]
    assert dutch["type"] == "/problems/rule/chair-neutral"
    assert dutch["rule"] == "chair-neutral"


@pytest.mark.parametrize("header", [None, "fr", "fr-BE, de;q=0.5", "en-GB", "*"])
def test_without_dutch_asked_a_problem_is_the_english_of_before(
    walk: Walk, header: str | None
) -> None:
    walk.request()
    language = {} if header is None else {"Accept-Language": header}
    problem = _problem(_chair_who_is_a_party(walk, **language), 409, "en")
    assert problem == {
        "type": "/problems/rule/chair-neutral",
        "title": "Conflict",
        "status": 409,
        "detail": NOT_NEUTRAL,
        "instance": f"/cases/{walk.case_id}/chair",
        "rule": "chair-neutral",
        "rule_set": "v2",
    }


def test_the_preferred_language_spoken_is_chosen_by_weight(walk: Walk) -> None:
    walk.request()
    refused = _chair_who_is_a_party(walk, **{"Accept-Language": "fr;q=1, nl;q=0.5"})
    assert "voorzitter" in _problem(refused, 409, "nl-BE")["detail"]
    refused = _chair_who_is_a_party(walk, **{"Accept-Language": "nl;q=0.4, en;q=0.8"})
    assert _problem(refused, 409, "en")["detail"] == NOT_NEUTRAL


def test_forbidden_not_found_stale_and_if_match_required_are_said_in_dutch(
    walk: Walk, client: TestClient
) -> None:
    walk.up_to_chair()
    case = f"/cases/{walk.case_id}"

    analyst = auth(walk.settings, "analyst", "analist-1") | DUTCH
    forbidden = _problem(client.get(case, headers=analyst), 403, "nl-BE")
    with pytest.raises(AccessDenied) as denied:
        access.may_read_cases(Principal("analist-1", StaffRole.ANALYST))
    assert forbidden["title"] == "Verboden"
    assert forbidden["detail"] == _dutch(text_of(denied.value))
    assert forbidden["type"] == "/problems/forbidden"

    nobody = uuid.uuid4()
    missing = _problem(client.get(f"/cases/{nobody}", headers=walk.team | DUTCH), 404, "nl-BE")
    assert missing["title"] == "Niet gevonden"
    assert missing["detail"] == _dutch(text_of(CaseNotFound(nobody)))
    assert missing["type"] == "/problems/not-found"

    walk.version = 2  # what another chair saw before the appointment
    meeting = {
        "held_on": meeting_day(),
        "place": "CLB, zaal 2",
        "attendance": {"youth": True, "parents": False, "trusted_person": None},
    }
    stale = _problem(walk.send("POST", "/meetings", walk.chair, meeting, **DUTCH), 412, "nl-BE")
    assert stale["title"] == "Voorwaarde niet vervuld"
    assert stale["detail"] == _dutch(text_of(StaleCase(uuid.UUID(walk.case_id), 2, 3)))
    assert (stale["type"], stale["current_version"]) == ("/problems/stale-version", 3)

    headers = walk.team | DUTCH
    unmatched = client.put(f"{case}/chair", json={"chair": "voorzitter-2"}, headers=headers)
    required = _problem(unmatched, 428, "nl-BE")
    assert required == {
        "type": "/problems/if-match-required",
        "title": "Voorwaarde vereist",
        "status": 428,
        "detail": "Een wijziging aan een dossier vraagt If-Match met de ETag van het gelezen "
        'dossier, bv. "5"',
        "instance": f"{case}/chair",
    }


def test_invalid_input_says_each_problem_in_dutch_where_and_type_unchanged(
    client: TestClient, settings: Settings
) -> None:
    body = {k: v for k, v in REQUEST.items() if k != "question"}
    body["client"] = {"ref": "x" * 201, "birth_date": "2010-05-01"}
    team = auth(settings, "team", "team-antwerpen-1", "Antwerpen")

    english = _problem(client.post("/cases", json=body, headers=team), 422, "en")
    dutch = _problem(client.post("/cases", json=body, headers=team | DUTCH), 422, "nl-BE")

    assert english["title"] == "Unprocessable Entity"
    assert english["errors"] == [
        {
            "where": "body.client.ref",
            "problem": "String should have at most 200 characters",
            "type": "string_too_long",
        },
        {"where": "body.question", "problem": "Field required", "type": "missing"},
    ]
    assert english["detail"] == (
        "body.client.ref: String should have at most 200 characters; body.question: Field required"
    )
    assert dutch["title"] == "Ongeldige invoer"
    assert dutch["errors"] == [
        {
            "where": "body.client.ref",
            "problem": "Tekst mag hoogstens 200 tekens bevatten",
            "type": "string_too_long",
        },
        {"where": "body.question", "problem": "Veld verplicht", "type": "missing"},
    ]
    assert dutch["detail"] == (
        "body.client.ref: Tekst mag hoogstens 200 tekens bevatten; body.question: Veld verplicht"
    )
    assert dutch["type"] == english["type"] == "/problems/invalid-input"


def test_a_validators_own_words_are_said_in_dutch(client: TestClient, settings: Settings) -> None:
    lco = "lokaal_clientoverleg"
    team = auth(settings, "team", "lco-genk-1", programme=lco, municipality="Genk")
    body = REQUEST | {"programme": lco, "region": "Limburg"}

    english = _problem(client.post("/cases", json=body, headers=team), 422, "en")
    dutch = _problem(client.post("/cases", json=body, headers=team | DUTCH), 422, "nl-BE")

    assert [e["problem"] for e in english["errors"]] == [
        "Value error, a request of lokaal_clientoverleg names the client's municipality: the "
        "coordinator of that municipality takes it"
    ]
    assert [(e["where"], e["type"]) for e in dutch["errors"]] == [
        ("body.municipality", "value_error")
    ]
    assert dutch["errors"][0]["problem"].startswith("Ongeldige waarde: een aanvraag van")


def test_the_services_own_refusals_are_said_in_dutch(client: TestClient) -> None:
    unsigned = _problem(client.get("/cases", headers=DUTCH), 401, "nl-BE")
    assert unsigned["title"] == "Niet geautoriseerd"
    assert unsigned["detail"] == (
        "Hiervoor is een bearer token nodig: Authorization: Bearer <token>"
    )
    assert unsigned["type"] == "/problems/unauthorized"

    no_path = _problem(client.get("/nowhere", headers=DUTCH), 404, "nl-BE")
    assert (no_path["title"], no_path["detail"]) == ("Niet gevonden", "Niet gevonden")

    not_json = client.post(
        "/intake", content=b"{not json", headers={"Content-Type": "application/json"} | DUTCH
    )
    malformed = _problem(not_json, 400, "nl-BE")
    assert malformed["title"] == "Ongeldig verzoek"
    assert malformed["detail"].startswith("De inhoud van het verzoek is geen JSON")
    assert malformed["type"] == "/problems/malformed-body"


def test_an_answer_that_is_no_problem_is_not_made_to_vary(walk: Walk) -> None:
    answer = walk.client.post("/cases", json=REQUEST, headers=walk.team | DUTCH)
    assert answer.status_code == 201
    assert "Content-Language" not in answer.headers


def test_the_openapi_description_declares_the_language_of_every_problem(
    client: TestClient,
) -> None:
    described = client.get("/openapi.json").json()
    for path, methods in described["paths"].items():
        for method, operation in methods.items():
            for status, answer in operation["responses"].items():
                if int(status) < 400:
                    continue
                declared = answer["headers"]
                assert declared["Content-Language"]["required"] is True, (method, path, status)
                assert declared["Content-Language"]["schema"]["enum"] == ["en", "nl-BE"]
                assert declared["Vary"]["required"] is True, (method, path, status)
