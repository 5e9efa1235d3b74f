"""Request bodies are read whole, within a size limit and a time limit, before the app runs.

A body that says it is larger than ``OVERLEG_MAX_BODY_BYTES`` is refused (413) before a byte
of it is read; one that grows past the limit while it arrives (chunked, or a Content-Length
that understates it) is refused as soon as it does. A body that has not arrived within
``OVERLEG_BODY_TIMEOUT`` seconds is refused (408): a client whose Content-Length promises
more than it sends does not hold its connection, and a worker, until it gives up. Both
answers close the connection, since the rest of the body may still be on its way.

So the app, and everything in it that reads the body (the idempotency fingerprint, the JSON
parser), sees a complete body of bounded size, and a flood of large or slow requests costs
at most the limit per connection in memory.
"""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from overleg.api.problems import CONTENT_TOO_LARGE, REQUEST_TIMEOUT, Kind
from overleg.i18n import _
from overleg.logs import get_logger

log = get_logger("overleg.api")
_CLOSE = {"Connection": "close"}


class BodyTooLarge(Exception):
    """The body grew past the limit while it arrived."""


class BodyLimits:
    """ASGI middleware: every HTTP request's body, read whole within the limits."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float) -> None:
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _framing(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, send, CONTENT_TOO_LARGE, self._too_large())
            return
        if not declared and not chunked:  # no body (RFC 9112, 6.3): nothing to wait for
            await self.app(scope, receive, send)
            return
        try:
            with anyio.fail_after(self.timeout):
                body = await self._read(receive)
        except BodyTooLarge:
            await self._refuse(scope, send, CONTENT_TOO_LARGE, self._too_large())
            return
        except TimeoutError:
            detail = _(
                "The request body did not arrive within {seconds} seconds",
                seconds=f"{self.timeout:g}",
            )
            await self._refuse(scope, send, REQUEST_TIMEOUT, detail)
            return
        if body is None:
            return  # the client went away: nobody to answer
        await self.app(scope, _replaying(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                raise BodyTooLarge
            if not message.get("more_body", False):
                return bytes(body)

    def _too_large(self) -> str:
        return _("The request body is larger than {limit} bytes", limit=self.max_bytes)

    async def _refuse(self, scope: Scope, send: Send, kind: Kind, detail: str) -> None:
        request = Request(scope)
        log.warning("request_body_refused", status=kind.status, path=request.url.path)
        await kind.answer(request, detail, _CLOSE)(scope, _nothing, send)


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """The body's declared length, if any, and whether it comes in chunks: a request with
    neither has no body."""
    declared: int | None = None
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                declared = int(value)
            except ValueError:
                chunked = True  # the server refuses it; here the bytes read are counted
        elif name == b"transfer-encoding":
            chunked = True
    return declared, chunked


def _replaying(body: bytes, receive: Receive) -> Receive:
    """The body as one message, then whatever the connection says next (a disconnect)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _nothing() -> Message:  # a refusal reads nothing more of the request
    return {"type": "http.disconnect"}
