"""`compose.yaml` is valid by the Compose Specification's own JSON schema (the copy that
`check-jsonschema` ships, so no network is needed), and runs what the README says."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
from ruamel.yaml import YAML

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"


def _schema() -> dict[str, Any]:
    found: dict[str, Any] = json.loads(
        (files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text()
    )
    return found


def _compose(text: str) -> Any:
    return YAML(typ="safe").load(text)


def _errors(document: Any) -> list[str]:
    schema = _schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_is_valid_by_the_compose_specification() -> None:
    assert _errors(_compose(COMPOSE.read_text())) == []


def test_the_check_finds_a_typo() -> None:
    broken = _compose(COMPOSE.read_text())
    broken["services"]["overleg"]["portz"] = broken["services"]["overleg"].pop("ports")
    assert any("portz" in error for error in _errors(broken))


def test_the_service_and_worker_get_their_master_keys_as_a_secret() -> None:
    compose = _compose(COMPOSE.read_text())
    for name in ("overleg", "worker"):
        service = compose["services"][name]
        assert "master_keys" in service["secrets"]
        assert service["environment"]["OVERLEG_MASTER_KEYS_FILE"] == "/run/secrets/master_keys"
    assert "file" in compose["secrets"]["master_keys"]
