"""Generated requests for every operation of /openapi.json: no 5xx, no answer that breaks it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import schemathesis
from api_client import auth, settings_for
from hypothesis import HealthCheck, given, settings
from schemathesis.config import PositiveDataAcceptanceConfig

from overleg.api.app import create_app

EXAMPLES_PER_OPERATION = int(os.environ.get("OVERLEG_FUZZ_EXAMPLES", "10"))


def test_no_operation_answers_5xx_or_breaks_its_schema(database_url: str, tmp_path: Path) -> None:
    config = settings_for(database_url, tmp_path)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(config))
    # A valid request can still be refused by the case itself: a stale If-Match (412).
    schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=["2xx", "3xx", "401", "403", "404", "409", "412", "429"]
    )
    headers = auth(config, "team", "team-fuzz")  # may submit requests and read any case
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def call(case: Any) -> None:
            # A client sends each new request with a key of its own (a reused key answers
            # 422 by design: the same key stands for one request only).
            if case.headers and "Idempotency-Key" in case.headers:
                case.headers["Idempotency-Key"] = uuid.uuid4().hex
            case.call_and_validate(headers=headers)

        call()
