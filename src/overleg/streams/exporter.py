"""Export of case histories as the event stream, in the order the events were recorded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import IO
from uuid import UUID

from pydantic import ValidationError

from overleg.adapters.eventstore import DamagedStore
from overleg.application import Overleg
from overleg.i18n import _
from overleg.streams.contract import parse_line
from overleg.streams.mapping import dumps_line, event_line, in_contract


def export_stream(app: Overleg, case_id: UUID | None = None) -> Iterator[str]:
    """Every stored case event (or one case's) as a stream line, in recorded order.

    Raises ``DamagedStore`` at the first event that is not as overleg recorded it (unreadable,
    outside the contract, or a case's seq out of order): an export never writes a stream the
    contract would refuse."""
    events = app.case_events(case_id) if case_id is not None else app.event_log.all(strict=True)
    last: dict[UUID, int] = {}
    for event in events:
        case, seq = event.originator_id, event.originator_version
        expected = last.get(case, 0) + 1
        if seq != expected:
            raise DamagedStore(case, expected, _("seq {seq} is missing", seq=expected))
        last[case] = seq
        if not in_contract(event):
            continue
        line = dumps_line(event_line(event))
        try:
            parse_line(line)
        except ValidationError:
            raise DamagedStore(case, seq, _("it is not a line the contract allows")) from None
        yield line


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
