"""Import and export of case histories as the event stream (JSON Lines, one event a line).

The contract is ``event-stream-v1.md`` of the shared specification: ``contract`` holds its
line models, ``mapping`` turns lines into commands and events into lines, ``importer`` and
``exporter`` do the work.
"""

from overleg.streams.contract import LINE_TYPES, StreamLine, parse_line
from overleg.streams.exporter import export_stream, write_stream
from overleg.streams.importer import ImportReport, LineProblem, StreamRefused, import_stream
from overleg.streams.mapping import command_of, dumps_line, event_data, event_line

__all__ = [
    "LINE_TYPES",
    "ImportReport",
    "LineProblem",
    "StreamLine",
    "StreamRefused",
    "command_of",
    "dumps_line",
    "event_data",
    "event_line",
    "export_stream",
    "import_stream",
    "parse_line",
    "write_stream",
]
