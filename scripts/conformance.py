"""Check a real `overleg serve` against its own OpenAPI description, once per role.

Runs schemathesis (all phases: examples, coverage, fuzzing, stateful; every check) against a
fresh `overleg serve` on a temporary SQLite store for each role (team, chair, professional,
auditor, analyst, and no token at all), prints a table of failures per role, and exits 1 on
any failure or error.

    python scripts/conformance.py                     # 200 examples per operation and role
    python scripts/conformance.py --examples 20 --roles team,none

Two things a generator cannot know are told here (and nothing is filtered away):

* A schema-valid ``If-Match`` names some version; unless it is the case's current one the
  change is refused with 412 by design, so 412 counts as an answer to valid data, as 409 does.
* A missing required header is answered 428 when it is ``If-Match``: RFC 6585 made 428 for a
  request that must be conditional and is not.

The ``Idempotency-Key`` a client sends stands for one request only (the same key with another
request is refused, 422 by design). A generator reuses values freely, so in each valid
request a well-formed key is replaced by a new unique one, as a client does (``before_call``
below, loaded by schemathesis through SCHEMATHESIS_HOOKS); malformed keys, and requests
generated to be invalid, are sent as generated and must be refused.

The rate limits are raised on these servers: the fuzzer's volume would otherwise be answered
mostly 429 (declared, and tested in tests/e2e/test_limits.py).

This file is also the hooks module schemathesis loads.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import schemathesis

HERE = Path(__file__).resolve()
BIN = Path(sys.executable).parent
ROLES = ("team", "chair", "professional", "auditor", "analyst", "none")
PHASES = "examples,coverage,fuzzing,stateful"
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx"]

[checks.missing_required_header]
expected-statuses = ["400", "401", "403", "406", "415", "422", "428"]
"""
_WELL_FORMED_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    """A new unique key for each valid request that carries a well-formed one. (A request
    generated to be invalid is refused before its key counts; editing its headers would also
    make schemathesis take it for a valid one.)"""
    if case.meta is None or case.meta.generation.mode.is_negative:
        return
    for name, value in list((case.headers or {}).items()):
        if name.lower() == "idempotency-key" and _WELL_FORMED_KEY.match(str(value)):
            case.headers[name] = uuid.uuid4().hex


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"overleg serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("overleg serve did not come up within 60 s")


def _token(env: dict[str, str], role: str) -> str:
    command = [str(BIN / "overleg"), "token", "--role", role, "--ref", f"{role}-conformance"]
    if role == "team":
        command += ["--region", "Antwerpen"]  # a continuity team's token names its area
    printed = subprocess.run(
        command, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return printed.stdout.strip()


def run_role(role: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One schemathesis run as ``role`` against a fresh server and store."""
    store = work / role
    store.mkdir()
    port = _free_port()
    env = {
        **os.environ,
        "OVERLEG_DATABASE_URL": f"sqlite:///{store / 'overleg.db'}",
        "OVERLEG_DEV_KEY_FILE": str(work / "dev-key.jwk"),
        "OVERLEG_LOG_LEVEL": "error",
        "OVERLEG_INTAKE_RATE_LIMIT": "1000000/minute",
        "OVERLEG_SIGNIN_FAILURE_RATE_LIMIT": "1000000/minute",
    }
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(BIN / "overleg"), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(store / "serve.log").open("wb"),
    )
    report = store / "report.json"
    command = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(work / "schemathesis.toml"),
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--phases",
        args.phases,
        "--max-examples",
        str(args.examples),
        "--workers",
        str(args.workers),
        "--report",
        "json",
        "--report-json-path",
        str(report),
    ]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    try:
        _wait_until_up(url, server)
        if role != "none":
            command += ["--header", f"Authorization: Bearer {_token(env, role)}"]
        started = time.monotonic()
        with (store / "schemathesis.log").open("wb") as log:
            finished = subprocess.run(
                command,
                env={**env, "SCHEMATHESIS_HOOKS": str(HERE)},
                stdout=log,
                stderr=log,
                check=False,  # its report says what failed
                cwd=store,  # its own files (a crash cache) stay out of the work tree
            )
        seconds = time.monotonic() - started
    finally:
        server.terminate()
        server.wait(timeout=30)
    result: dict[str, Any] = json.loads(report.read_text()) if report.exists() else {}
    cases = result.get("test_cases", {})
    return {
        "role": role,
        "exit": finished.returncode,
        "operations": result.get("operations", {}).get("tested", 0),
        "cases": cases.get("generated", 0),
        "failures": cases.get("unique_failures", 0),
        "errors": len(result.get("errors", [])),
        "kinds": {f["code"]: f["count"] for f in result.get("failures", [])},
        "seconds": seconds,
        "seed": result.get("seed", ""),
        "log": store / "schemathesis.log",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="per operation and phase")
    parser.add_argument("--roles", default=",".join(ROLES), help="comma-separated; none: no token")
    parser.add_argument("--phases", default=PHASES)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep logs and reports here")
    args = parser.parse_args()
    roles = [r for r in args.roles.split(",") if r]
    unknown = set(roles) - set(ROLES)
    if unknown:
        parser.error(f"unknown role(s) {sorted(unknown)}; choose from {', '.join(ROLES)}")

    with tempfile.TemporaryDirectory(prefix="overleg-conformance-") as temporary:
        work = args.keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        (work / "schemathesis.toml").write_text(CONFIG)
        results = []
        for role in roles:
            print(f"== {role}: {args.examples} examples per operation, phases {args.phases}")
            outcome = run_role(role, work, args)
            results.append(outcome)
            if outcome["failures"] or outcome["errors"] or outcome["exit"]:
                print(outcome["log"].read_text(errors="replace")[-6000:])

    print()
    print("| role | operations | test cases | failures | errors | exit | seconds | kinds | seed |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        kinds = ", ".join(f"{code} x{n}" for code, n in sorted(r["kinds"].items())) or "-"
        print(
            f"| {r['role']} | {r['operations']} | {r['cases']} | {r['failures']} | "
            f"{r['errors']} | {r['exit']} | {r['seconds']:.0f} | {kinds} | {r['seed']} |"
        )
    failed = [r["role"] for r in results if r["failures"] or r["errors"] or r["exit"]]
    print(f"\n{'FAILED: ' + ', '.join(failed) if failed else 'All roles conform.'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
