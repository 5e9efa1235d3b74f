"""What overleg counts for Prometheus: requests (counted by ``api/app.py``), events, refusals
and imports; the projections' lag is read when scraped (``api/observability.py``).

Counters live in the process's default registry: the service exposes them at ``/metrics``.
None of them carries a case id, a reference or a text: only event types, rule names and
counts.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by method, route template and status",
    ["method", "handler", "status"],
)
REQUEST_SECONDS = Histogram(
    "http_request_duration_seconds",
    "Seconds from a request's arrival to its answer's end, by method and route template",
    ["method", "handler"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

EVENTS_APPENDED = Counter(
    "overleg_events_appended",
    "Events recorded by commands of this process, by event type",
    ["type"],
)
COMMANDS_REFUSED = Counter(
    "overleg_commands_refused",
    "Commands refused by a rule of the case, by rule",
    ["rule"],
)
IMPORT_LINES = Counter("overleg_import_lines", "Stream lines read by imports of this process")
IMPORT_SECONDS = Counter("overleg_import_seconds", "Seconds imports of this process took")
COMMANDS_PER_COMMIT = Histogram(
    "overleg_commands_per_commit",
    "Commands written by one commit (SQLite writes the commands that queue meanwhile together)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
