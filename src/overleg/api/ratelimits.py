"""Rate limits per client address: the public request form, and requests without a valid token.

Counted with the ``limits`` library in a moving window: at most N in any span of the limit's
length, so there is no burst of twice the limit at the turn of a fixed window. The counts
live in the memory of the process (``memory://``): with several processes, each keeps its
own. The library can keep them in a shared store instead (``redis://``, ``memcached://``,
…; see docs/api.md), which ``RateLimits.from_settings(..., storage=URI)`` takes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter, RateLimiter

from overleg.api.problems import INTAKE_LIMITED, SIGN_IN_LIMITED, Kind, ProblemError
from overleg.i18n import _
from overleg.settings import Settings

IN_MEMORY = "memory://"

# The units a limit is counted in, as the ``limits`` library names them.
_UNITS = {
    "second": _("second"),
    "minute": _("minute"),
    "hour": _("hour"),
    "day": _("day"),
    "month": _("month"),
    "year": _("year"),
}


def in_words(item: RateLimitItem) -> str:
    """A limit in words users read (``30 per 1 minute``), as the library writes it."""
    unit = item.GRANULARITY.name
    words = _(
        "{amount} per {multiples} {unit}",
        amount=item.amount,
        multiples=item.multiples,
        unit=_UNITS.get(unit, unit),
    )
    return words if words == str(item) else str(item)


@dataclass(frozen=True)
class RateLimit:
    """One limit (e.g. 30/minute) on one kind of request, counted per client address."""

    name: str
    item: RateLimitItem
    limiter: RateLimiter
    refusal: Kind
    what: str  # what is counted, in words users read

    def hit(self, address: str) -> ProblemError | None:
        """Count one request of ``address``; the 429 to answer when it is one too many."""
        if self.limiter.hit(self.item, self.name, address):
            return None
        reset_at, _remaining = self.limiter.get_window_stats(self.item, self.name, address)
        wait = max(1, math.ceil(reset_at - time.time()))
        detail = _(
            "Too many {what} from your address (at most {limit}); try again in {wait} s",
            what=self.what,
            limit=in_words(self.item),
            wait=wait,
        )
        return self.refusal.error(detail, {"Retry-After": str(wait)})


@dataclass(frozen=True)
class RateLimits:
    """The limits of one running service."""

    intake: RateLimit
    sign_in_failures: RateLimit

    @classmethod
    def from_settings(cls, settings: Settings, storage: str = IN_MEMORY) -> RateLimits:
        """The limits the settings name; a limit that cannot be read stops the start."""
        limiter = MovingWindowRateLimiter(storage_from_string(storage))
        return cls(
            intake=RateLimit(
                "intake",
                _parse("OVERLEG_INTAKE_RATE_LIMIT", settings.intake_rate_limit),
                limiter,
                INTAKE_LIMITED,
                _("request forms"),
            ),
            sign_in_failures=RateLimit(
                "sign-in-failure",
                _parse("OVERLEG_SIGNIN_FAILURE_RATE_LIMIT", settings.signin_failure_rate_limit),
                limiter,
                SIGN_IN_LIMITED,
                _("requests without a valid bearer token"),
            ),
        )


def _parse(variable: str, value: str) -> RateLimitItem:
    try:
        return parse(value)
    except ValueError:
        raise ValueError(
            _(
                "{variable}={value} is not a rate limit such as 30/minute or 500/day",
                variable=variable,
                value=repr(value),
            )
        ) from None


def client_address(request: Request) -> str:
    """The address limits are counted for (behind a trusted proxy: the forwarded one)."""
    return request.client.host if request.client else "unknown"


def limits_of(request: Request) -> RateLimits:
    """The running app's rate limits."""
    found: RateLimits = request.app.state.rate_limits
    return found


async def rate_limits(request: Request) -> RateLimits:
    return limits_of(request)


Limits = Annotated[RateLimits, Depends(rate_limits)]


async def intake_allowance(request: Request, limits: Limits) -> None:
    """Count a request form of the caller's address; 429 past the limit."""
    refused = limits.intake.hit(client_address(request))
    if refused is not None:
        raise refused
