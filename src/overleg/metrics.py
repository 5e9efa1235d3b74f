"""What overleg counts for Prometheus, beside the requests (``api/observability.py``).

Counters live in the process's default registry: the service exposes them at ``/metrics``.
None of them carries a case id, a reference or a text: only event types, rule names and
counts.
"""

from __future__ import annotations

from prometheus_client import Counter

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
