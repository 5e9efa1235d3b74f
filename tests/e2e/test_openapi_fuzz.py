"""Generated requests for every operation of /openapi.json, as every role: each answer is one
the description declares, with its headers and schema, and valid and invalid data are told apart.

The short form of `scripts/conformance` (all phases, 200 examples per operation, against a
real server), with its configuration and its Idempotency-Key hook: a few valid and invalid
examples per operation and role, in-process.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import schemathesis
from api_client import auth, settings_for
from hypothesis import HealthCheck, given, note, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode
from schemathesis.python import asgi

from overleg.api.app import create_app

EXAMPLES_PER_OPERATION = int(os.environ.get("OVERLEG_FUZZ_EXAMPLES", "3"))
PLACEHOLDER = {"Authorization": "Bearer token-of-the-role"}
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "conformance.py"


def _conformance() -> ModuleType:
    """scripts/conformance.py: its checks' configuration, and its hook (registered on load)."""
    spec = importlib.util.spec_from_file_location("conformance", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONFORMANCE = _conformance()


def test_every_operation_answers_as_described_to_every_role(
    database_url: str, tmp_path: Path
) -> None:
    config = settings_for(database_url, tmp_path)
    app = create_app(config)
    schema = schemathesis.openapi.from_asgi(
        "/openapi.json", app, config=SchemathesisConfig.from_str(CONFORMANCE.CONFIG)
    )
    tokens = {
        role: None
        if role == "none"
        # A continuity team's token names its area.
        else auth(config, role, f"{role}-fuzz", "Antwerpen" if role == "team" else None)[
            "Authorization"
        ]
        for role in CONFORMANCE.ROLES
    }
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 19
    try:
        with asgi.get_client(app) as client:  # one running app for all the requests
            for operation in operations:
                for mode in _modes(operation):
                    # Each case is generated once and sent as every role: generated with a
                    # token to be replaced, so that no case is meant to lack one.
                    generated = operation.as_strategy(generation_mode=mode, headers=PLACEHOLDER)

                    @given(case=generated)
                    @settings(
                        max_examples=EXAMPLES_PER_OPERATION,
                        deadline=None,
                        database=None,
                        suppress_health_check=list(HealthCheck),
                    )
                    def call(case: Any) -> None:
                        for role, token in tokens.items():
                            note(f"as {role}")
                            if token is None:
                                case.headers.pop("Authorization", None)
                            else:
                                case.headers["Authorization"] = token
                            case.call_and_validate(session=client)

                    call()
    finally:
        asgi.shutdown_lifespans()


def _modes(operation: Any) -> list[GenerationMode]:
    """Valid data for every operation; invalid data where there is something to get wrong."""
    if operation.body or any(True for _ in operation.iter_parameters()):
        return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    return [GenerationMode.POSITIVE]
