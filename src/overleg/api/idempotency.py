"""``Idempotency-Key`` on commands: a retried request returns the first response, once recorded.

Semantics of the IETF Idempotency-Key draft: the key is the client's, per caller; the same
key with the same request returns the stored response (with ``Idempotency-Replayed: true``)
and records nothing; the same key with a different request is refused (422); a key whose
first request is still running is refused (409). Only successful responses are kept:
a refused command recorded nothing, so running it again is safe.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from overleg.adapters.records import StoredResponse
from overleg.api.auth import InvalidToken
from overleg.api.problems import problem_response
from overleg.logs import get_logger

log = get_logger("overleg.api")
MAX_KEY_LENGTH = 255
KEPT_HEADERS = ("etag", "location", "content-type")


def _owner(request: Request, fingerprint: str) -> str:
    if request.url.path.startswith("/intake"):
        # The public form has no account: a key is the sender's only for this very request.
        return f"public:{fingerprint}"
    services = request.app.state.services
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return "public"
    try:
        who = services.verifier.verify(token)
    except InvalidToken:
        return ""
    return f"{who.role.value}:{who.ref}"


class IdempotentRoute(APIRoute):
    """A command route that honours ``Idempotency-Key``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        run = super().get_route_handler()

        async def handler(request: Request) -> Response:
            key = request.headers.get("idempotency-key")
            if key is None or request.method in ("GET", "HEAD"):  # keys are for commands
                return await run(request)
            key = key.strip().strip('"')
            if not 0 < len(key) <= MAX_KEY_LENGTH:
                return problem_response(
                    request,
                    400,
                    "invalid-idempotency-key",
                    f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
                )
            body = await request.body()
            fingerprint = hashlib.sha256(
                b"\0".join(
                    [
                        request.method.encode(),
                        request.url.path.encode(),
                        request.url.query.encode(),
                        request.headers.get("if-match", "").encode(),
                        body,
                    ]
                )
            ).hexdigest()
            owner = _owner(request, fingerprint)
            if not owner:
                return await run(request)  # the handler answers 401
            keys = request.app.state.services.keys
            claim = await run_in_threadpool(keys.claim, owner, key, fingerprint)
            if not claim.same_request:
                return problem_response(
                    request,
                    422,
                    "idempotency-key-reused",
                    "This Idempotency-Key was used for a different request; use a new key",
                )
            if claim.response is not None:
                stored = claim.response
                return Response(
                    stored.body.encode(),
                    status_code=stored.status,
                    headers={**stored.headers, "Idempotency-Replayed": "true"},
                )
            if not claim.fresh:
                return problem_response(
                    request,
                    409,
                    "idempotency-key-in-progress",
                    "A request with this Idempotency-Key is still being processed; retry later",
                    headers={"Retry-After": "1"},
                )
            try:
                response = await run(request)
            except BaseException:
                await run_in_threadpool(keys.release, owner, key)
                raise
            try:
                if 200 <= response.status_code < 300:
                    kept = {k: v for k, v in response.headers.items() if k in KEPT_HEADERS}
                    stored = StoredResponse(
                        response.status_code, bytes(response.body).decode(), kept
                    )
                    await run_in_threadpool(keys.finish, owner, key, stored)
                else:
                    await run_in_threadpool(keys.release, owner, key)
            except Exception as error:  # the command is done: answer it, whatever the key
                log.warning("idempotency_key_not_kept", error_type=type(error).__name__)
            return response

        return handler
