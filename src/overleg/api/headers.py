"""The headers the service answers with, each declared once for the OpenAPI description."""

from __future__ import annotations

from typing import Any

ETAG = "ETag"
LOCATION = "Location"
IDEMPOTENCY_KEY = "Idempotency-Key"
IDEMPOTENCY_REPLAYED = "Idempotency-Replayed"
RETRY_AFTER = "Retry-After"
WWW_AUTHENTICATE = "WWW-Authenticate"
REQUEST_ID = "X-Request-ID"
CONTENT_LANGUAGE = "Content-Language"
VARY = "Vary"

REQUEST_ID_PATTERN = r"^[A-Za-z0-9._-]{8,64}$"

_DECLARED: dict[str, dict[str, Any]] = {
    ETAG: {
        "description": "The case's version, quoted: send it as If-Match with a change",
        "schema": {"type": "string", "pattern": r'^"[0-9]+"$', "examples": ['"5"']},
    },
    LOCATION: {
        "description": "Where what was just recorded can be read",
        "schema": {
            "type": "string",
            "format": "uri-reference",
            "examples": ["/cases/6f1c2a9e-3d5b-4c8e-9a7f-0b1d2e3f4a5b"],
        },
    },
    IDEMPOTENCY_KEY: {
        "description": "The key this command is recorded under (the one you sent, or one the "
        "service made): send it with a retry of the same request",
        "schema": {"type": "string", "examples": ["7d0c1c9e-meeting-1"]},
    },
    IDEMPOTENCY_REPLAYED: {
        "description": "The answer of an earlier request with the same key: nothing new was "
        "recorded",
        "schema": {"type": "string", "enum": ["true"]},
    },
    RETRY_AFTER: {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "string", "pattern": "^[0-9]+$", "examples": ["1"]},
    },
    WWW_AUTHENTICATE: {
        "description": "How to authenticate: a bearer token",
        "schema": {"type": "string", "examples": ['Bearer error="invalid_token"']},
    },
    REQUEST_ID: {
        "description": "The service's own id of the request, on every log line of the request "
        "and in the read log: quote it when you report a problem. A well-formed X-Request-ID "
        "you send is kept beside it (in the logs and the read log), never instead of it",
        "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
    },
    CONTENT_LANGUAGE: {
        "description": "The language the problem's words are in (its title, its detail, each "
        "problem of errors): en, or nl-BE when Accept-Language asks for Dutch",
        "schema": {"type": "string", "enum": ["en", "nl-BE"]},
    },
    VARY: {
        "description": "Accept-Language: a problem's words depend on it",
        "schema": {"type": "string", "examples": ["Accept-Language"]},
    },
}


def declare(required: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """OpenAPI header objects: ``required`` come with every such answer, ``optional`` may."""
    declared = {name: {**_DECLARED[name], "required": True} for name in required}
    declared |= {name: {**_DECLARED[name], "required": False} for name in optional}
    return declared


def success(
    status: int, description: str, required: tuple[str, ...] = (), optional: tuple[str, ...] = ()
) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI entry of an operation's own answer, with the headers it carries."""
    return {status: {"description": description, "headers": declare(required, optional)}}
