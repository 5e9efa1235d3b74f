"""The service's configuration, read from the environment once, in the composition root."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from overleg.adapters.eventstore import Database, DatabaseURLError
from overleg.i18n import _
from overleg.paths import DEV_HOME

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
LanguageTag = Literal["en", "nl", "nl-BE", "nl_BE"]
LANGUAGES: tuple[str, ...] = get_args(LanguageTag)


class Settings(BaseSettings):
    """All of overleg's settings; every variable starts with ``OVERLEG_``."""

    model_config = SettingsConfigDict(env_prefix="OVERLEG_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{DEV_HOME / 'overleg.db'}",
        description=(
            "Where the events are stored: sqlite:///PATH (a file, created on first use) "
            "or postgresql://user[:password]@host[:port]/dbname[?schema=NAME]"
        ),
    )
    database_password_file: Path | None = Field(
        default=None,
        description=(
            "A file holding the database password (a mounted secret), for a "
            "OVERLEG_DATABASE_URL written without one"
        ),
    )
    log_level: LogLevel = Field(
        default="info", description="debug, info, warning, error or critical"
    )
    language: LanguageTag | None = Field(
        default=None,
        description=(
            "The language the `overleg` command speaks: en, or nl (also nl-BE, nl_BE) for "
            "Dutch as spoken in Flanders. Unset: the locale's (LANGUAGE, LC_ALL, LC_MESSAGES, "
            "LANG), else English. Machine output (JSON, CSV, the event stream) is the same in "
            "every language"
        ),
    )
    jwks_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description=(
            "The identity provider's JWKS URL (https://…/certs): its keys are fetched, cached "
            "for five minutes, and fetched again for a key the cache does not know (rotation)"
        ),
    )
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
        default=DEV_HOME / "dev-signing-key.jwk",
        description="The local development signing key, created on first use; never commit it",
    )
    master_keys: SecretStr | None = Field(
        default=None,
        description=(
            "The master keys that wrap the cases' data keys, written ID:BASE64 (32 bytes), "
            "separated by commas; the first wraps new keys. Prefer OVERLEG_MASTER_KEYS_FILE"
        ),
    )
    master_keys_file: Path | None = Field(
        default=None,
        description=(
            "A file with the master keys, one ID:BASE64 a line, the current one first (a "
            "mounted secret). Neither set: a local development key (dev-master-keys beside "
            "the development signing key), created on first use; never use it in production"
        ),
    )
    retention_days: int | None = Field(
        default=None,
        ge=1,
        le=36_500,
        description=(
            "Days after a case ends (closed or declined) after which `overleg retention` "
            "erases its personal data; unset: no retention period"
        ),
    )
    ready_max_lag: int = Field(
        default=10_000,
        ge=0,
        description=(
            "How many events a projection may be behind the store while /health/ready still "
            "says ready, and the case list and the figures read from it are still answered"
        ),
    )
    projections: Literal["auto", "inline", "worker"] = Field(
        default="auto",
        description=(
            "Who keeps the projections current: inline (a thread of the service), worker "
            "(a separate `overleg worker` process), or auto: inline on SQLite, worker on "
            "PostgreSQL"
        ),
    )

    store_timeout: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description=(
            "Seconds a request may wait for the event store (to connect, for a lock, while it "
            "is down) before it answers 503 with Retry-After"
        ),
    )
    body_timeout: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Seconds a client may take to send a request body before it gets 408",
    )
    max_body_bytes: int = Field(
        default=1_000_000,
        ge=1_000,
        le=100_000_000,
        description="The largest request body accepted; a larger one gets 413 unread",
    )

    intake_rate_limit: str = Field(
        default="30/minute",
        description=(
            "How many public request forms one client address may send (e.g. 30/minute, "
            "500/day); more get 429 with Retry-After"
        ),
    )
    signin_failure_rate_limit: str = Field(
        default="20/minute",
        description=(
            "How many requests with a missing or invalid bearer token one client address "
            "may send; more get 429 with Retry-After"
        ),
    )

    v2_from: datetime = Field(
        default=datetime.fromisoformat("2026-01-01T00:00:00+01:00"),
        description=(
            "The instant contract v2's rules take effect (ISO 8601 with UTC offset): a case "
            "requested from then on keeps the v2 rule set, an earlier one the v1 rule set"
        ),
    )
    bottleneck_themes_file: Path | None = Field(
        default=None,
        description=(
            "The analysts' list of bottleneck themes, one a line; unset: the list that comes "
            "with overleg (any other theme is counted as 'andere')"
        ),
    )

    @field_validator("v2_from")
    @classmethod
    def _with_offset(cls, value: datetime) -> datetime:
        if value.utcoffset() is None:
            raise ValueError(
                _("give the instant with its UTC offset, e.g. 2026-01-01T00:00:00+01:00")
            )
        return value

    @model_validator(mode="after")
    def _one_key_set(self) -> Settings:
        if self.jwks_url is not None and self.jwks_file is not None:
            raise ValueError(
                _("give the key set by OVERLEG_JWKS_URL or OVERLEG_JWKS_FILE, not both")
            )
        return self

    def database(self) -> Database:
        """The database of ``database_url``, with the password of ``database_password_file``
        when one is given (``DatabaseURLError`` when either cannot be used)."""
        database = Database.from_url(self.database_url)
        if self.database_password_file is None:
            return database
        try:
            password = self.database_password_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise DatabaseURLError(
                _(
                    "OVERLEG_DATABASE_PASSWORD_FILE {file}: cannot be read ({why})",
                    file=str(self.database_password_file),
                    why=error.strerror,
                )
            ) from None
        return replace(database, password=password)

    def projections_inline(self, backend: str) -> bool:
        """Whether the service itself keeps the projections current."""
        if self.projections == "auto":
            return backend == "sqlite"
        return self.projections == "inline"
