"""The service's configuration, read from the environment once, in the composition root."""

from __future__ import annotations

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
