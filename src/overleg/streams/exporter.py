"""Export of case histories as the event stream, in the order the events were recorded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO
from uuid import UUID

from overleg.application import Overleg
from overleg.streams.mapping import dumps_line, event_line


def export_stream(app: Overleg, case_id: UUID | None = None) -> Iterator[str]:
    """Every stored case event (or one case's) as a stream line, in recorded order."""
    events = app.case_events(case_id) if case_id is not None else app.event_log.all()
    for event in events:
        yield dumps_line(event_line(event))


def write_stream(
    app: Overleg,
    out: IO[str],
    case_id: UUID | None = None,
    on_line: Callable[[], None] | None = None,
) -> int:
    """Write the export to a text file; returns the number of lines."""
    count = 0
    for text in export_stream(app, case_id):
        out.write(text + "\n")
        count += 1
        if on_line is not None:
            on_line()
    return count
