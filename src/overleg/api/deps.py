"""What handlers are given: the services of the running app, the caller, the expected version."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool

from overleg.adapters import budget
from overleg.api.auth import InvalidToken
from overleg.api.problems import (
    IF_MATCH_REQUIRED,
    SIGN_IN_LIMITED,
    STALE_VERSION,
    UNAUTHORIZED,
    ProblemError,
)
from overleg.api.ratelimits import RateLimits, client_address, limits_of
from overleg.bootstrap import Services
from overleg.i18n import _, text_of
from overleg.policies import access
from overleg.policies.access import Principal


async def services(request: Request) -> Services:
    return _services(request)


def _services(request: Request) -> Services:
    found: Services = request.app.state.services
    # From here on the request's waits for the store share one deadline: its answer, or
    # its 503, comes within the store timeout however often the store fails it.
    budget.begin(found.app.timeout)
    return found


# What the caller and the expected version can be refused with, for the OpenAPI description.
SIGN_IN_PROBLEMS = (UNAUTHORIZED, SIGN_IN_LIMITED)
VERSION_PROBLEMS = (IF_MATCH_REQUIRED, STALE_VERSION)

# How the OpenAPI description names the bearer token (``openapi.py`` declares it on every
# operation that asks for the caller).
BEARER_SCHEME = "HTTPBearer"
BEARER_DESCRIPTION = "A bearer token (JWT) of your organisation"


async def principal(request: Request) -> Principal:
    """The verified caller; 401 without a valid bearer token, and 429 instead once the
    caller's address sent more such requests than ``OVERLEG_SIGNIN_FAILURE_RATE_LIMIT``;
    403 for a valid token that does not name the scope its holder works in (a continuity
    team without its area).

    A valid token is never held up: tokens are signed, so the limit is not there against
    guessing one but against floods of bad ones, and colleagues behind the same address
    keep working while somebody's script sends an expired token.

    One dependency, reading the header itself as the framework's ``HTTPBearer`` does
    (``Authorization: Bearer <token>``, the scheme in any letter case): each dependency
    the framework solves costs every request its share, and this one is on all but a few."""
    svc = _services(request)
    limits = limits_of(request)
    authorization = request.headers.get("Authorization")
    scheme, token = get_authorization_scheme_param(authorization)
    if not (authorization and token) or scheme.lower() != "bearer":
        raise _refused(
            request,
            limits,
            _("This needs a bearer token: Authorization: Bearer <token>"),
            "Bearer",
        )
    try:
        known = svc.verifier.known(token)
        if known is not None:  # verified lately
            who = known
        elif svc.verifier.client is None:  # keys in hand: checked at once
            who = svc.verifier.verify(token)
        else:  # keys fetched from the issuer's address, now and then: not on the event loop
            who = await run_in_threadpool(svc.verifier.verify, token)
    except InvalidToken as invalid:
        raise _refused(
            request,
            limits,
            _("The bearer token is not valid: {reason}", reason=text_of(invalid)),
            'Bearer error="invalid_token"',
        ) from None
    request.state.principal = who
    access.may_sign_in(who)
    return who


def _refused(request: Request, limits: RateLimits, detail: str, challenge: str) -> ProblemError:
    too_many = limits.sign_in_failures.hit(client_address(request))
    if too_many is not None:
        return too_many
    return UNAUTHORIZED.error(detail, {"WWW-Authenticate": challenge})


async def expected_version(
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
