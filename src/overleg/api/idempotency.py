"""``Idempotency-Key`` on commands: a retry returns the first answer, and records nothing.

Semantics of the IETF Idempotency-Key draft: the key is the client's, per caller; the same
key with the same request answers what the first request recorded (with
``Idempotency-Replayed: true``); the same key with a different request is refused (422).
The key is stored with the command's events, in their transaction: a key is never kept for
a command that was not recorded, and never lost for one that was. A command sent without a
key gets one from the service, returned in the ``Idempotency-Key`` header, so that a client
whose connection broke can ask again safely.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Annotated

from fastapi import Depends, Header, Request

from overleg.api.deps import Caller
from overleg.application import CommandKey

MAX_KEY_LENGTH = 255

KeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=r"^[\x21-\x7e]+$",
        description="Any unique text of yours for this command (a UUID, say). Sending the "
        "same request again with it answers the first answer and records nothing.",
    ),
]


async def _fingerprint(request: Request) -> str:
    body = await request.body()
    return hashlib.sha256(
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


def _key(owner: str, given: str | None, fingerprint: str) -> CommandKey:
    key = None if given is None else given.strip('"')  # a structured-field string is quoted
    if not key:
        return CommandKey(owner, uuid.uuid4().hex, fingerprint, given=False)
    return CommandKey(owner, key, fingerprint, given=True)


async def staff_key(request: Request, who: Caller, key: KeyHeader = None) -> CommandKey:
    """The key of a signed-in caller's command (theirs, or one made now)."""
    return _key(f"{who.role.value}:{who.ref}", key, await _fingerprint(request))


async def public_key(request: Request, key: KeyHeader = None) -> CommandKey:
    """The key of a public form's request. The form has no account: a key stands for this
    very request only, so nobody learns through a key what somebody else sent."""
    fingerprint = await _fingerprint(request)
    return _key(f"public:{fingerprint}", key, fingerprint)


StaffKey = Annotated[CommandKey, Depends(staff_key)]
PublicKey = Annotated[CommandKey, Depends(public_key)]
