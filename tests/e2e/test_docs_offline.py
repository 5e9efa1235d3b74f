"""The API's documentation as a caseworker's browser shows it, without internet: a headless
Chromium renders /docs and /redoc from a real `overleg serve`, with the operations and the
Authorize button, while the pages' Content-Security-Policy forbids loading anything from
elsewhere. CI installs Chromium (`.ci/run`); without it, this test fails in CI and is skipped
elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_client import serving
from fastapi.testclient import TestClient

from overleg.api.docs import API_POLICY, page_policy

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = bool(os.environ.get("OVERLEG_REQUIRE_BROWSER") or os.environ.get("CI"))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    env = {**os.environ, "OVERLEG_DATABASE_URL": f"sqlite:///{tmp_path / 'docs.db'}"}
    with serving(env) as url:
        yield url


def _rendered(url: str) -> str:
    if BROWSER is None:
        message = "Chromium is not installed (apt-get install chromium)"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_swagger_ui_renders_operations_and_authorize_offline(served: str) -> None:
    with urllib.request.urlopen(f"{served}/docs") as answer:
        html = answer.read().decode()
        policy = answer.headers["Content-Security-Policy"]
    assert "https://" not in html and "cdn" not in html  # every asset is the service's own
    assert policy == page_policy(html) and "default-src 'none'" in policy
    dom = _rendered(f"{served}/docs")
    assert "Authorize" in dom
    assert "Where a case stands now" in dom and "Erase a case's personal data" in dom


def test_redoc_renders_operations_offline(served: str) -> None:
    with urllib.request.urlopen(f"{served}/redoc") as answer:
        html = answer.read().decode()
    assert "https://" not in html
    dom = _rendered(f"{served}/redoc")
    assert "Where a case stands now" in dom


def test_every_other_answer_forbids_loading_anything(served: str) -> None:
    with urllib.request.urlopen(f"{served}/health/live") as answer:
        assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/cases", "/no-such-page"):  # problem answers too (401, 404)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{served}{path}")
        assert refused.value.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert refused.value.headers["X-Content-Type-Options"] == "nosniff"


def test_the_pages_keep_their_own_policy_and_every_answer_else_gets_the_apis(
    client: TestClient,
) -> None:
    page = client.get("/docs")
    assert page.headers["Content-Security-Policy"] == page_policy(page.text) != API_POLICY
    for answer in (client.get("/health/live"), client.get("/cases"), client.get("/nowhere")):
        assert answer.headers["Content-Security-Policy"] == API_POLICY
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Request-ID"]
