"""Tokens verified lately are not checked again, but never past their expiry, never for
longer than ``TOKEN_KEPT_SECONDS``, and never more than ``TOKENS_KEPT`` of them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from overleg.api import auth
from overleg.api.auth import (
    InvalidToken,
    TokenVerifier,
    dev_private_key,
    issue_dev_token,
    public_jwks,
)
from overleg.policies.access import StaffRole

AUDIENCE = "overleg"


@pytest.fixture
def signing(tmp_path: Path) -> dict[str, Any]:
    return dev_private_key(tmp_path / "key.jwk")


@pytest.fixture
def verifier(signing: dict[str, Any]) -> TokenVerifier:
    return TokenVerifier(public_jwks(signing), auth.DEV_ISSUER, AUDIENCE)


def token(signing: dict[str, Any], ref: str = "chair-1", lifetime: int = 3600) -> str:
    return issue_dev_token(
        signing, role=StaffRole.CHAIR, ref=ref, audience=AUDIENCE, lifetime=lifetime
    )


class Counting:
    """Counts the signature checks a verifier makes."""

    def __init__(self, verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        checked = verifier._verify

        def counted(raw: str) -> Any:
            self.calls += 1
            return checked(raw)

        monkeypatch.setattr(verifier, "_verify", counted)


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    now = time.time() + seconds
    monkeypatch.setattr(auth.time, "time", lambda: now)


def test_a_token_verified_once_is_not_checked_again(
    verifier: TokenVerifier, signing: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = Counting(verifier, monkeypatch)
    raw = token(signing)
    first = verifier.verify(raw)
    assert verifier.verify(raw) == first
    assert verifier.known(raw) == first
    assert counting.calls == 1


def test_a_kept_token_is_refused_once_it_expires(
    verifier: TokenVerifier, signing: dict[str, Any]
) -> None:
    raw = token(signing, lifetime=2)  # expires within 1 to 2 s
    verifier.verify(raw)
    time.sleep(2.1)
    assert verifier.known(raw) is None
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(raw)


def test_a_kept_token_is_checked_again_after_a_minute(
    verifier: TokenVerifier, signing: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = Counting(verifier, monkeypatch)
    raw = token(signing)
    verifier.verify(raw)
    later(monkeypatch, auth.TOKEN_KEPT_SECONDS + 1)
    verifier.verify(raw)
    assert counting.calls == 2


def test_a_refused_token_is_never_kept(
    verifier: TokenVerifier, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = Counting(verifier, monkeypatch)
    stranger = token(dev_private_key(tmp_path / "other.jwk"))
    for _ in range(2):
        with pytest.raises(InvalidToken):
            verifier.verify(stranger)
    assert counting.calls == 2
    assert verifier.known(stranger) is None


def test_at_most_tokens_kept_are_kept(
    verifier: TokenVerifier, signing: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "TOKENS_KEPT", 2)
    raws = [token(signing, ref=f"chair-{n}") for n in range(3)]
    for raw in raws:
        verifier.verify(raw)
    assert verifier.known(raws[0]) is None  # the oldest went first
    assert [verifier.known(raw) is not None for raw in raws[1:]] == [True, True]
