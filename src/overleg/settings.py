"""The service's configuration, read from the environment once, in the composition root."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All of overleg's settings; every variable starts with ``OVERLEG_``."""

    model_config = SettingsConfigDict(env_prefix="OVERLEG_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///overleg.db",
        description=(
            "Where the events are stored: sqlite:///PATH (a file, created on first use) "
            "or postgresql://user[:password]@host[:port]/dbname[?schema=NAME]"
        ),
    )
    log_level: str = Field(default="info", description="debug, info, warning or error")
    jwks_file: Path | None = Field(
        default=None,
        description=(
            "JSON Web Key Set that verifies bearer tokens (your identity provider's public "
            "keys). Unset: tokens of `overleg token`, signed with the local development key"
        ),
    )
    jwt_issuer: str = Field(default="overleg-dev", description="The issuer (iss) tokens must name")
    jwt_audience: str = Field(default="overleg", description="The audience (aud) tokens must name")
    dev_key_file: Path = Field(
        default=Path(".overleg/dev-signing-key.jwk"),
        description="The local development signing key, created on first use; never commit it",
    )
    projections: Literal["auto", "inline", "worker"] = Field(
        default="auto",
        description=(
            "Who keeps the projections current: inline (a thread of the service), worker "
            "(a separate `overleg worker` process), or auto: inline on SQLite, worker on "
            "PostgreSQL"
        ),
    )

    def projections_inline(self, backend: str) -> bool:
        """Whether the service itself keeps the projections current."""
        if self.projections == "auto":
            return backend == "sqlite"
        return self.projections == "inline"
