"""The API's documentation as a caseworker's browser shows it, without internet: a headless
Chromium renders /docs and /redoc from a real `overleg serve`, with the operations and the
Authorize button, while the pages' Content-Security-Policy forbids loading anything from
elsewhere. CI installs Chromium (`.ci/run`); without it, this test fails in CI and is skipped
elsewhere."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from overleg.api.docs import page_policy

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = bool(os.environ.get("OVERLEG_REQUIRE_BROWSER") or os.environ.get("CI"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "OVERLEG_DATABASE_URL": f"sqlite:///{tmp_path / 'docs.db'}"}
    command = [str(Path(sys.executable).parent / "overleg"), "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"{url}/health/live", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


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
