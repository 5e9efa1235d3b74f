"""Answers rendered once: JSON kept as the bytes sent."""

from __future__ import annotations

from fastapi import Response
from pydantic import BaseModel


def rendered(answer: BaseModel) -> bytes:
    """An answer as the JSON sent: rendered once when it is computed, and kept so, instead
    of validated and rendered again for every request that gets it from the kept ones.
    It is the JSON FastAPI sends for a route's model when the answer is of that model
    itself: its fields by alias, compact, UTF-8. The route names the model
    (``response_model``) for its documentation."""
    return answer.__pydantic_serializer__.to_json(answer, by_alias=True)


class JSONBytes(Response):
    """A JSON answer rendered before."""

    media_type = "application/json"
