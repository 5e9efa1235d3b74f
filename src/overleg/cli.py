"""The ``overleg`` command: stream import and export, the service."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from overleg import __version__
from overleg.application import Overleg
from overleg.settings import Settings
from overleg.storage import Database, DatabaseURLError
from overleg.streams import StreamRefused, import_stream, write_stream

app = typer.Typer(
    name="overleg",
    help="Client consultations (cliëntoverleg): event store, stream import/export, service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)


def _open_app() -> Overleg:
    settings = Settings()
    try:
        database = Database.from_url(settings.database_url)
    except DatabaseURLError as error:
        typer.echo(f"OVERLEG_DATABASE_URL: {error}", err=True)
        raise typer.Exit(2) from None
    try:
        return Overleg(database)
    except Exception as error:  # the store cannot be reached or opened: say so, no trace
        typer.echo(f"Cannot open the event store ({database.backend}): {error}", err=True)
        raise typer.Exit(3) from None


class _Bar:
    """A rich progress bar on a terminal; nothing when standard error is not one."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.task: TaskID | None = None

    def phase(self, description: str, total: int | None) -> None:
        if self.progress is None:
            return
        if self.task is not None:
            self.progress.update(self.task, visible=False)
        unit = "bytes read" if description == "validating" else "events"
        self.task = self.progress.add_task(description, total=total, unit=unit)

    def advance(self, amount: int) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task, amount)


@contextmanager
def _progress(quiet: bool) -> Iterator[_Bar]:
    if quiet or not sys.stderr.isatty():
        yield _Bar(None)
        return
    with Progress(
        TextColumn("{task.description:>10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:
        yield _Bar(progress)


@app.command("import")
def import_(
    file: Annotated[
        str, typer.Argument(help="A v1 event stream (JSON Lines); - reads standard input.")
    ],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Import a v1 event stream: all of it, after checking every line, or nothing."""
    if file == "-":
        source = sys.stdin.buffer
        size = None
    else:
        path = Path(file)
        if not path.is_file():
            typer.echo(f"No such file: {file}", err=True)
            raise typer.Exit(2)
        source = path.open("rb")
        size = path.stat().st_size
    application = _open_app()
    try:
        with _progress(quiet) as bar:
            report = import_stream(application, source, progress=bar, size=size)
    except StreamRefused as refused:
        typer.echo(str(refused), err=True)
        raise typer.Exit(1) from None
    finally:
        if source is not sys.stdin.buffer:
            source.close()
        application.close()
    typer.echo(
        f"Imported {report.new_events} new event(s) of {report.cases} case(s) "
        f"from {report.lines} line(s); {report.already_stored} were already stored.",
        err=True,
    )


@app.command("export")
def export(
    file: Annotated[
        str, typer.Argument(help="Where to write the stream; - writes standard output.")
    ],
    case: Annotated[UUID | None, typer.Option(help="Only this case.")] = None,
) -> None:
    """Export the stored case events as a v1 event stream, in the order they were recorded."""
    application = _open_app()
    try:
        if file == "-":
            count = write_stream(application, sys.stdout, case)
            sys.stdout.flush()
        else:
            tmp = Path(file + ".partial")
            with tmp.open("w", encoding="utf-8") as out:
                count = write_stream(application, out, case)
            os.replace(tmp, file)
    except LookupError as missing:
        typer.echo(str(missing), err=True)
        raise typer.Exit(1) from None
    finally:
        application.close()
    typer.echo(f"Exported {count} event(s).", err=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the HTTP service."""
    import uvicorn

    from overleg.api.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_config=None)


@app.command()
def version() -> None:
    """Print overleg's version."""
    typer.echo(__version__)


def main() -> None:
    """Entry point of the console script."""
    app()
