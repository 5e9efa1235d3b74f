"""What handlers are given: the services of the running app, the caller, the expected version."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from overleg.api.auth import InvalidToken
from overleg.api.problems import ProblemError
from overleg.bootstrap import Services
from overleg.policies.access import Principal


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


_bearer = HTTPBearer(auto_error=False, description="A bearer token (JWT) of your organisation")


def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    svc: Annotated[Services, Depends(services)],
) -> Principal:
    """The verified caller; 401 without a valid bearer token."""
    if credentials is None:
        raise ProblemError(
            401,
            "unauthorized",
            "This needs a bearer token: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        who = svc.verifier.verify(credentials.credentials)
    except InvalidToken as invalid:
        raise ProblemError(
            401,
            "unauthorized",
            f"The bearer token is not valid: {invalid}",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from None
    request.state.principal = who
    return who


def expected_version(
    if_match: Annotated[
        str,
        Header(
            description='The case version the change is based on: the ETag, e.g. "5". '
            "Without it: 428",
            pattern=r'^"[0-9]{1,18}"$',
            examples=['"5"'],
        ),
    ],
) -> int:
    """The version named by ``If-Match``: required for every change to an existing case.

    A missing or malformed header fails the pattern and is answered 428 (``problems``)."""
    return int(if_match.strip('"'))


Caller = Annotated[Principal, Depends(principal)]
Svc = Annotated[Services, Depends(services)]
Version = Annotated[int, Depends(expected_version)]
