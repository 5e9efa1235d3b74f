"""The ``overleg`` command: stream import and export, the service."""

from __future__ import annotations

import gc
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails
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

from overleg import __version__, i18n
from overleg.adapters.eventstore import (
    DamagedStore,
    DatabaseURLError,
    StoreUnavailable,
    missing_postgres_store,
)
from overleg.adapters.integrity import checkpoint as make_checkpoint
from overleg.adapters.integrity import link_unlinked, verify
from overleg.adapters.migrations import SchemaTooNew
from overleg.adapters.sealing import KeyProblem, MasterKeyError, MasterKeys
from overleg.aggregates.errors import CaseRuleBroken
from overleg.aggregates.values import ErasureGrounds, Programme, Region
from overleg.aggregates.vocabulary import is_ref
from overleg.api.auth import dev_private_key, issue_dev_token
from overleg.application import CaseNotFound, Outcome, Overleg
from overleg.bootstrap import Services, bootstrap, read_settings
from overleg.commands import EraseCase
from overleg.i18n import Message, _, from_environment, text_of, translate
from overleg.logs import configure as configure_logs
from overleg.policies.access import Operator, Principal, StaffRole, unscoped
from overleg.policies.retention import Due
from overleg.policies.retention import cutoff as retention_cutoff
from overleg.policies.retention import due as retention_due
from overleg.policies.retention import summary as retention_summary
from overleg.policies.rules import BRUSSELS, STATES
from overleg.projections.audit_trail import history as trail
from overleg.projections.bottlenecks import bottleneck_report
from overleg.projections.case_view import ended_before
from overleg.projections.explain import UnknownFigure, explain
from overleg.projections.releases import Release, Releases, differences, figures_text, recompute
from overleg.projections.runner import CATCH_UP_BATCH, NAMES, UnknownProjection
from overleg.projections.statistics import (
    KnownAt,
    annual_statistics,
    meetings_of,
    registered_by_region,
)
from overleg.projections.themes import ThemesFileError
from overleg.projections.worker import follow
from overleg.reports import (
    CHART_SUFFIXES,
    bottleneck_csv,
    bottleneck_table,
    explanation_text,
    failure_table,
    history_table,
    projection_table,
    statistics_chart,
    statistics_csv,
    statistics_table,
    theme_table,
)
from overleg.settings import LANGUAGES, LOG_LEVELS, Settings
from overleg.streams import StreamRefused, import_stream, write_stream
from overleg.streams.importer import read_lines
from overleg.validation import explain as explain_problem

app = typer.Typer(
    name="overleg",
    help="Client consultations (cliëntoverleg): event store, stream import/export, service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False)


def _say(text: str, *, err: bool = False) -> None:
    """Print a text a person reads, in the command's language (a ``Message`` translated,
    a plain string as it is)."""
    typer.echo(translate(text), err=err)


def _print_version(given: bool) -> None:
    if given:
        typer.echo(f"overleg {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    context: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Client consultations (cliëntoverleg): event store, stream import/export, service."""
    # Chosen before the settings are read, so that even their errors are said in the
    # language asked for.
    chosen = i18n.current.set(_language())
    context.call_on_close(lambda: i18n.current.reset(chosen))


def _language() -> i18n.Language:
    """OVERLEG_LANGUAGE when the settings take its value, else the locale's language."""
    setting = os.environ.get("OVERLEG_LANGUAGE")
    return from_environment(setting if setting in LANGUAGES else None)


def _problem(error: ErrorDetails) -> str:
    """What one validation error says is wrong: a validator's own words (without pydantic's
    "Value error, " before them), else pydantic's, translatable where overleg knows them."""
    raised = (error.get("ctx") or {}).get("error")
    if error["type"] == "value_error" and isinstance(raised, BaseException):
        return text_of(raised)
    problem = explain_problem(error)
    return problem if isinstance(problem, Message) else problem.removeprefix("Value error, ")


def _settings() -> Settings:
    """The settings, or exit 2 naming each variable that is wrong, one line each."""
    try:
        return read_settings()
    except ValidationError as invalid:
        for error in invalid.errors():
            name = "OVERLEG_" + "_".join(str(part) for part in error["loc"][:1]).upper()
            _say(
                _(
                    "{name}: {problem} (given {given})",
                    name=name,
                    problem=_problem(error),
                    given=repr(error.get("input")),
                ),
                err=True,
            )
        raise typer.Exit(2) from None


def _missing_store(settings: Settings) -> Message | None:
    """Why the configured store does not exist (a command that only reads it says so
    instead of creating an empty one), or ``None``."""
    database = settings.database()
    if database.backend == "sqlite":
        path = database.sqlite_path
        if path == ":memory:" or Path(path).expanduser().exists():
            return None  # there: open it (a folder in its place cannot be opened: exit 3)
        return _(
            "No event store at {path}: nothing was imported there (OVERLEG_DATABASE_URL)",
            path=path,
        )
    return missing_postgres_store(database)


@contextmanager
def _opened(settings: Settings | None = None, *, create: bool = False) -> Iterator[Services]:
    """The event store and its projections, closed when the command ends.

    A store that does not exist is created only when ``create`` (import, worker); any other
    command exits 2 saying so. A setting or a database URL that cannot be understood exits
    2; a store that cannot be reached or
    stops answering exits 3; a store holding an event overleg did not record as it is
    (changed, removed or added behind its back) exits 4: each with one line, never a
    traceback.
    """
    settings = settings or _settings()
    try:
        missing = None if create else _missing_store(settings)
        if missing is not None:
            _say(missing, err=True)
            raise typer.Exit(2)
        services = bootstrap(settings)
    except typer.Exit:
        raise
    except DatabaseURLError as error:
        _say(_("{what}: {why}", what="OVERLEG_DATABASE_URL", why=text_of(error)), err=True)
        raise typer.Exit(2) from None
    except ThemesFileError as error:
        _say(
            _("{what}: {why}", what="OVERLEG_BOTTLENECK_THEMES_FILE", why=text_of(error)),
            err=True,
        )
        raise typer.Exit(2) from None
    except MasterKeyError as error:
        _say(_("Master keys (OVERLEG_MASTER_KEYS / _FILE): {why}", why=text_of(error)), err=True)
        raise typer.Exit(2) from None
    except SchemaTooNew as error:
        _say(text_of(error), err=True)
        raise typer.Exit(2) from None
    except Exception as error:  # the store cannot be reached or opened: say so, no trace
        _say(_("Cannot open the event store: {why}", why=text_of(error)), err=True)
        raise typer.Exit(3) from None
    try:
        yield services
    except StoreUnavailable as error:
        _say(_("The event store stopped answering: {why}", why=error.detail), err=True)
        raise typer.Exit(3) from None
    except DamagedStore as damaged:
        _say(text_of(damaged), err=True)
        raise typer.Exit(4) from None
    finally:
        services.close()


# The phases long work reports (``overleg.progress``), as the progress bar names them.
PHASES: dict[str, Message] = {
    "validating": _("validating"),
    "writing": _("writing"),
    "projecting": _("projecting"),
}


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
        unit = _("bytes read") if description == "validating" else _("events")
        self.task = self.progress.add_task(
            translate(PHASES.get(description, description)), total=total, unit=translate(unit)
        )

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
            _say(_("No such file: {file}", file=file), err=True)
            raise typer.Exit(2)
        source = path.open("rb")
        size = path.stat().st_size
    try:
        with _opened(create=True) as services, _progress(quiet) as bar:
            report = import_stream(services.app, read_lines(source), progress=bar, size=size)
    except StreamRefused as refused:
        _say(text_of(refused), err=True)
        raise typer.Exit(1) from None
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    _say(
        _(
            "Imported {new} new event(s) of {cases} case(s) from {lines} line(s); "
            "{already} were already stored.",
            new=report.new_events,
            cases=report.cases,
            lines=report.lines,
            already=report.already_stored,
        ),
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
    target = None if file == "-" else Path(file)
    if target is not None:
        _refuse_unwritable(target, _("Cannot write the export to {path}", path=str(target)))
    try:
        with _opened() as services:
            if target is None:
                count = write_stream(services.app, sys.stdout, case)
                sys.stdout.flush()
            else:
                count = _export_to(services.app, target, case)
    except LookupError as missing:
        _say(text_of(missing), err=True)
        raise typer.Exit(1) from None
    except BrokenPipeError:
        # The reader stopped early (`overleg export - | head`): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(128 + signal.SIGPIPE) from None
    _say(_("Exported {count} event(s).", count=count), err=True)


def _export_to(application: Overleg, target: Path, case: UUID | None) -> int:
    """Write the export next to ``target`` and move it into place only when complete."""
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8") as out:
            count = write_stream(application, out, case)
        os.replace(partial, target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        cannot = _("Cannot write the export to {path}", path=str(target))
        _say(_("{what}: {why}", what=cannot, why=error.strerror or str(error)), err=True)
        raise typer.Exit(2) from None
    except BaseException:  # a damaged store, an interrupt: no half export stays behind
        partial.unlink(missing_ok=True)
        raise
    return count


@contextmanager
def _projected(catch_up: bool = True) -> Iterator[Services]:
    """The event store with its projections, brought up to date first (exact figures)."""
    with _opened() as services:
        if catch_up:
            with _progress(quiet=False) as bar:
                services.projector.catch_up(progress=bar)
        failures = services.projector.failures()
        if failures:
            unreadable = sum(1 for f in failures if f.event_type == "unreadable")
            _say(
                _(
                    "Warning: {count} event(s) are left out of the projections ({unreadable} "
                    "of them unreadable in the store): these figures and views do not count "
                    "them. `overleg projections --failures` lists them; `overleg verify` "
                    "tells whether the store was changed.",
                    count=len(failures),
                    unreadable=unreadable,
                ),
                err=True,
            )
        yield services


def _out() -> Console:
    # Piped output is not cut to 80 columns: tables keep their rows on one line.
    return Console(width=None if sys.stdout.isatty() else 240, highlight=False)


class Shape(StrEnum):
    """How a report is printed."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


class TrailShape(StrEnum):
    """How a history is printed."""

    TABLE = "table"
    JSON = "json"


ProgrammeOption = Annotated[
    Programme | None,
    typer.Option(help="integrale_jeugdhulp or lokaal_clientoverleg; all when left out."),
]
ShapeOption = Annotated[Shape, typer.Option("--format", "-f", help="table, json or csv.")]


def _refuse_unwritable(path: Path, cannot: Message) -> None:
    """Exit 2 before any work when ``path`` cannot be a file to write (``cannot``: what
    could not be done, naming the path)."""
    if path.is_dir() or not path.parent.is_dir():
        why = (
            _("it is a directory") if path.is_dir() else _("it is in a folder that does not exist")
        )
        _say(_("{what}: {why}", what=cannot, why=why), err=True)
        raise typer.Exit(2)


_KNOWN_AT = TypeAdapter[datetime](KnownAt)


def _instant(option: str, value: str | None) -> datetime | None:
    """An ISO 8601 instant with its UTC offset, or exit 2 saying what is wrong."""
    if value is None:
        return None
    try:
        return _KNOWN_AT.validate_python(value)
    except ValidationError as invalid:
        _say(
            _(
                "{option}: {value} is not an instant: {why}",
                option=option,
                value=repr(value),
                why=_problem(invalid.errors()[0]),
            ),
            err=True,
        )
        raise typer.Exit(2) from None


@app.command()
def stats(
    year: Annotated[int, typer.Argument(help="Calendar year of the meetings.", min=1900, max=2999)],
    programme: ProgrammeOption = None,
    shape: ShapeOption = Shape.TABLE,
    chart: Annotated[
        Path | None,
        typer.Option(help="Also draw meetings and rates per region to FILE.png or FILE.svg."),
    ] = None,
    explain_figure: Annotated[
        str | None,
        typer.Option(
            "--explain",
            metavar="FIGURE",
            help="List the meetings behind one figure, e.g. "
            "fully_registered.youth_present.by_region.Antwerpen.",
        ),
    ] = None,
    as_known_at: Annotated[
        str | None,
        typer.Option(
            "--as-known-at",
            metavar="INSTANT",
            help="Count only what was recorded at or before this instant (ISO 8601 with its "
            "UTC offset, e.g. 2016-03-01T00:00:00+01:00): the figures as they could have "
            "been published then.",
        ),
    ] = None,
    seal: Annotated[
        bool,
        typer.Option(
            "--seal",
            help="Store these figures as a sealed release (with the log position and a "
            "digest, as known now unless --as-known-at) and print its number and digest; "
            "`overleg verify --releases` recomputes them.",
        ),
    ] = False,
) -> None:
    """Annual statistics per region, counted over the year's (fully registered) meetings."""
    known = _instant("--as-known-at", as_known_at)
    if seal:
        if chart is not None or explain_figure is not None:
            _say(_("--seal: seals the figures alone, without --chart or --explain"), err=True)
            raise typer.Exit(2)
        _seal(year, programme, known)
        return
    if chart is not None:
        if chart.suffix.lower() not in CHART_SUFFIXES:
            _say(
                _("--chart: the file must end in .png or .svg, not {name}", name=repr(chart.name)),
                err=True,
            )
            raise typer.Exit(2)
        _refuse_unwritable(chart, _("--chart: cannot write {path}", path=str(chart)))
    with _projected() as services:
        views = services.views
        today = services.app.clock().astimezone(BRUSSELS).date()
        if explain_figure is not None:
            try:
                explanation = explain(
                    views,
                    year,
                    explain_figure,
                    programme,
                    as_known_at=known,
                    themes=services.themes,
                    today=today,
                )
            except UnknownFigure as unknown:
                _say(text_of(unknown), err=True)
                raise typer.Exit(2) from None
            _say(explanation_text(explanation))
            return
        figures = annual_statistics(
            views, year, programme, as_known_at=known, themes=services.themes, today=today
        )
        registered = registered_by_region(meetings_of(views, year, programme, as_known_at=known))
    if shape is Shape.JSON:
        typer.echo(json.dumps(figures.model_dump(mode="json"), ensure_ascii=False, indent=2))
    elif shape is Shape.CSV:
        typer.echo(statistics_csv(figures, registered), nl=False)
    else:
        out = _out()
        out.print(statistics_table(figures, registered, out.width))
        _out().print(theme_table(figures))
    if chart is not None:
        try:
            statistics_chart(figures, registered, chart)
        except OSError as error:
            cannot = _("--chart: cannot write {path}", path=str(chart))
            _say(_("{what}: {why}", what=cannot, why=error.strerror or str(error)), err=True)
            raise typer.Exit(2) from None
        _say(_("Chart written to {path}", path=str(chart)), err=True)


SEAL_ATTEMPTS = 3


def _seal(year: int, programme: Programme | None, known: datetime | None) -> None:
    """Seal the figures as ``stats --format json`` prints them, at a log position no event
    was recorded after while they were counted (tried again when one was)."""
    with _projected() as services:
        log = services.app.event_log
        for _attempt in range(SEAL_ATTEMPTS):
            sealed_at = services.app.clock()
            position = log.head()
            services.projector.catch_up()
            figures = annual_statistics(
                services.views,
                year,
                programme,
                as_known_at=known or sealed_at,
                themes=services.themes,
                today=sealed_at.astimezone(BRUSSELS).date(),
            )
            if log.head() == position:
                break
        else:
            _say(_("--seal: events kept arriving while counting; nothing sealed"), err=True)
            raise typer.Exit(1)
        release = Releases(services.views).seal(figures, known or sealed_at, position, sealed_at)
    _say(
        _(
            "release {number} {described} digest {digest}",
            number=release.number,
            described=_described(release),
            digest=release.digest,
        )
    )


def _described(release: Release) -> Message:
    return _(
        "year {year} programme {programme} as-known-at {as_known_at} position {position}",
        year=release.year,
        programme=release.programme or _("all"),
        as_known_at=release.as_known_at,
        position=release.position,
    )


@app.command()
def bottlenecks(
    year: Annotated[int, typer.Argument(help="Calendar year of the reports.", min=1900, max=2999)],
    programme: ProgrammeOption = None,
    shape: ShapeOption = Shape.TABLE,
) -> None:
    """Reported bottlenecks (policy information) per theme of the analysts' list and region."""
    with _projected() as services:
        report = bottleneck_report(services.views, year, programme, themes=services.themes)
    if shape is Shape.JSON:
        typer.echo(json.dumps(report.model_dump(mode="json"), ensure_ascii=False, indent=2))
    elif shape is Shape.CSV:
        typer.echo(bottleneck_csv(report), nl=False)
    else:
        _out().print(bottleneck_table(report))


@app.command()
def history(
    case: Annotated[UUID, typer.Argument(help="The case id.")],
    shape: Annotated[
        TrailShape, typer.Option("--format", "-f", help="table or json.")
    ] = TrailShape.TABLE,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The history as it stood at this instant (ISO 8601 with its UTC offset): "
            "only the events recorded at or before it.",
        ),
    ] = None,
) -> None:
    """A case's audit trail: every event in order, when, by whom and what happened."""
    until = _instant("--as-of", as_of)
    with _projected() as services:
        entries = trail(services.views, case)
    if until is not None:
        entries = [e for e in entries if datetime.fromisoformat(e.at) <= until]
    if not entries:
        if until is None:
            _say(_("No case {case}", case=str(case)), err=True)
        else:
            _say(
                _("No case {case} recorded at or before {as_of}", case=str(case), as_of=as_of),
                err=True,
            )
        raise typer.Exit(1)
    if shape is TrailShape.JSON:
        typer.echo(json.dumps([asdict(e) for e in entries], ensure_ascii=False, indent=2))
    else:
        _out().print(history_table(str(case), entries))


@app.command()
def rebuild(
    name: Annotated[
        str | None,
        typer.Argument(help=f"One projection ({', '.join(NAMES)}); all when left out."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Drop projections and build them again from every stored event."""
    if name is not None and name not in NAMES:
        _say(text_of(UnknownProjection(name)), err=True)
        raise typer.Exit(2)
    with _projected(catch_up=False) as services, _progress(quiet) as bar:
        started = time.perf_counter()
        applied = services.projector.rebuild(None if name is None else [name], progress=bar)
    _say(
        _(
            "Rebuilt {names} from {count} event(s) in {seconds} s.",
            names=name or ", ".join(NAMES),
            count=applied,
            seconds=f"{time.perf_counter() - started:.1f}",
        ),
        err=True,
    )


@app.command("projections")
def projections_status(
    failures: Annotated[
        bool, typer.Option("--failures", help="List every event a projection set aside.")
    ] = False,
) -> None:
    """How far each projection is, and the events any could not apply (exit 1 if any)."""
    with _opened() as services:
        projector = services.projector
        head = services.app.event_log.head()
        positions = projector.positions()
        failed = projector.failures()
    _out().print(projection_table(positions, head, failed))
    if failures and failed:
        _out().print(failure_table(failed))
    if failed:
        _say(
            _("{count} event(s) could not be applied and were set aside", count=len(failed))
            if failures
            else _(
                "{count} event(s) could not be applied and were set aside; --failures lists them",
                count=len(failed),
            ),
            err=True,
        )
        raise typer.Exit(1)


@app.command()
def worker(
    poll: Annotated[
        float, typer.Option(help="Seconds between looks when no notification arrives.", min=0.01)
    ] = 1.0,
    batch: Annotated[
        int, typer.Option(help="Events applied per transaction.", min=1, max=100_000)
    ] = CATCH_UP_BATCH,
) -> None:
    """Keep the projections up to date: catch up, then follow new events until stopped."""
    settings = _settings()
    configure_logs(settings.log_level)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_signal: stop.set())
    with _opened(settings, create=True) as services:
        services.projector.batch_size = batch
        follow(services.projector, stop, poll)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
) -> None:
    """Run the HTTP service (it creates the store on first use)."""
    import uvicorn

    from overleg.api.app import create_app

    settings = _settings()
    with _opened(settings, create=True):
        pass  # the store opens and its tables are migrated, or this says why in one line
    app = create_app(settings)
    # What is loaded by now lives as long as the process: the collector need not look at
    # it again, so a full collection no longer pauses every request for tens of ms.
    gc.freeze()
    try:
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
    except OSError as error:  # the port is taken, or not ours to listen on
        _say(
            _(
                "Cannot listen on {host}:{port}: {why}",
                host=host,
                port=port,
                why=error.strerror or str(error),
            ),
            err=True,
        )
        raise typer.Exit(2) from None


@app.command("verify")
def verify_store(
    case: Annotated[
        UUID | None, typer.Argument(help="Only this case's chain (checkpoints cover all).")
    ] = None,
    releases: Annotated[
        bool,
        typer.Option(
            "--releases",
            help="Instead: recompute every sealed release from the log up to its position "
            "and check its digest; exit 1 naming every figure that no longer matches.",
        ),
    ] = False,
) -> None:
    """Prove the stored histories untouched: recompute every case's chain of links and the
    latest checkpoint; exit 1 naming the first break of each case (docs/integrity.md)."""
    if releases:
        if case is not None:
            _say(_("--releases: checks every sealed release; give no case"), err=True)
            raise typer.Exit(2)
        _verify_releases()
        return
    with _opened() as services:
        found = verify(services.app.recorder, case)
    for broken in found.breaks:
        _say(_("BROKEN {kind}: {what}", kind=broken.what, what=broken.message))
    summary = _(
        "{events:,} event(s) of {cases:,} case(s) checked", events=found.events, cases=found.cases
    )
    if found.checkpoint is not None:
        summary = _(
            "{summary}; checkpoint {number} of {made_at}",
            summary=summary,
            number=found.checkpoint.number,
            made_at=found.checkpoint.made_at,
        )
    if found.ok:
        _say(_("OK: {summary}; every link and root matches.", summary=summary))
        return
    _say(_("{count} break(s): {summary}.", count=len(found.breaks), summary=summary), err=True)
    raise typer.Exit(1)


def _verify_releases() -> None:
    """Recompute every sealed release and compare it, figure by figure, with what was sealed."""
    broken = 0
    with _opened() as services:
        sealed = Releases(services.views).all()
        for release in sealed:
            problems = _release_problems(release, services)
            for problem in problems:
                _say(_("BROKEN release {number} {problem}", number=release.number, problem=problem))
            if problems:
                broken += 1
            else:
                _say(
                    _(
                        "OK release {number} {described}",
                        number=release.number,
                        described=_described(release),
                    )
                )
    summary = _(
        "{count} sealed release(s) recomputed from the log up to their positions",
        count=len(sealed),
    )
    if not broken:
        _say(_("OK: {summary}; every figure and digest matches.", summary=summary))
        return
    _say(
        _("{count} release(s) no longer match: {summary}.", count=broken, summary=summary), err=True
    )
    raise typer.Exit(1)


def _release_problems(release: Release, services: Services) -> list[Message]:
    problems: list[Message] = []
    if not release.recorded_digest_holds():
        problems.append(_("digest: the stored digest does not match the stored figures"))
    try:
        stored = json.loads(release.figures)
    except ValueError:
        return [*problems, _("figures: the stored figures are not JSON")]
    try:
        now = json.loads(figures_text(recompute(services.app.event_log, release, services.themes)))
    except ValueError:
        return [*problems, _("figures: its programme or instant cannot be read")]
    problems.extend(
        _("figure {difference}", difference=found) for found in differences(stored, now)
    )
    return problems


@app.command("checkpoint")
def checkpoint_store(
    link_older_events: Annotated[
        bool,
        typer.Option(
            "--link-older-events",
            help="First link the cases recorded before the store kept links, from their "
            "events as they are now (only for a store known to be untouched).",
        ),
    ] = False,
) -> None:
    """Record a checkpoint (the Merkle root over every case's last link) and print its root:
    keep the printed line where the database's administrators cannot change it."""
    with _opened() as services:
        recorder = services.app.recorder
        if link_older_events:
            linked = link_unlinked(recorder)
            _say(
                _("Linked {count:,} event(s) of cases recorded without links.", count=linked),
                err=True,
            )
        made = make_checkpoint(recorder, services.app.clock())
    _say(
        _(
            "checkpoint {number} {made_at} position {position} cases {cases} root {root}",
            number=made.number,
            made_at=made.made_at,
            position=made.position,
            cases=made.cases,
            root=made.root.hex(),
        )
    )


@app.command()
def token(
    role: Annotated[str, typer.Option(help="team, chair, professional, auditor or analyst.")],
    ref: Annotated[str, typer.Option(help="Your reference (a pseudonym or directory id).")],
    region: Annotated[
        str | None, typer.Option(help="For the continuity team: the region it works in.")
    ] = None,
    programme: Annotated[
        Programme | None,
        typer.Option(
            help="The programme the holder works in (a team without one: integrale_jeugdhulp)."
        ),
    ] = None,
    municipality: Annotated[
        str | None,
        typer.Option(help="For a lokaal cliëntoverleg team: the municipality it serves."),
    ] = None,
    hours: Annotated[
        float, typer.Option(help="How long the token is valid.", min=0.01, max=24 * 366)
    ] = 8.0,
) -> None:
    """Print a development token that `overleg serve` accepts (without OVERLEG_JWKS_FILE)."""
    try:
        staff_role = StaffRole(role)
    except ValueError:
        choices = ", ".join(r.value for r in StaffRole)
        _say(
            _("--role: no role {role}; choose one of {choices}", role=repr(role), choices=choices),
            err=True,
        )
        raise typer.Exit(2) from None
    if not is_ref(ref):
        _say(
            _(
                "--ref: {ref} is not a reference (letters, digits and . _ : @ / + -)",
                ref=repr(ref),
            ),
            err=True,
        )
        raise typer.Exit(2)
    if region is not None and region not in {r.value for r in Region}:
        _say(_("--region: no region {region}", region=repr(region)), err=True)
        raise typer.Exit(2)
    if municipality is not None and not municipality.strip():
        _say(_("--municipality: give the municipality's name"), err=True)
        raise typer.Exit(2)
    scope = unscoped(Principal(ref, staff_role, region, programme, municipality))
    if scope is not None:
        _say(_("A token the service would refuse: {why}", why=scope), err=True)
        raise typer.Exit(2)
    settings = _settings()
    typer.echo(
        issue_dev_token(
            dev_private_key(settings.dev_key_file),
            role=staff_role,
            ref=ref,
            region=region,
            programme=programme,
            municipality=municipality,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            lifetime=int(hours * 3600),
        )
    )


@app.command()
def erase(
    case: Annotated[UUID, typer.Argument(help="The case whose personal data is erased.")],
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            help="Why, in words that name nobody (a file number, the request's date); it is "
            "kept in the case's history in clear.",
        ),
    ],
    by: Annotated[
        str, typer.Option("--by", help="Who erases (your reference), kept with the erasure.")
    ] = "operator",
) -> None:
    """Erase a case's personal data (GDPR art. 17): destroy its data key, so no reference,
    name or free text of it can be read again; its facts and every figure stay. Exit 1 when
    the case does not exist or cannot be erased."""
    _valid_reason(reason)
    with _opened() as services:
        outcome = _erased(services, case, reason, ErasureGrounds.REQUEST, by)
        if outcome is None:
            raise typer.Exit(1)
        _after_erasure(services)
    _say(
        _(
            "Erased the personal data of case {case} (recorded at seq {seq}); "
            "`overleg history` shows it.",
            case=str(case),
            seq=outcome.version,
        )
    )


def _valid_reason(reason: str) -> None:
    if not reason.strip() or len(reason) > 2000 or "\x00" in reason:
        _say(_("--reason: say why in 1 to 2,000 characters"), err=True)
        raise typer.Exit(2)


def _erased(
    services: Services, case: UUID, reason: str, grounds: ErasureGrounds, by: str
) -> Outcome | None:
    """Erase one case; on a refusal, say why on standard error and return ``None``."""
    try:
        return services.app.handle(EraseCase(case, reason, grounds), Operator(by))
    except CaseNotFound:
        _say(_("No case {case}", case=str(case)), err=True)
    except CaseRuleBroken as broken:
        _say(
            _(
                "Case {case}: {message} [{rule}]",
                case=str(case),
                message=broken.message,
                rule=broken.rule,
            ),
            err=True,
        )
    return None


def _after_erasure(services: Services) -> None:
    """Bring the projections that keep personal data up to date when this process keeps
    them (the worker does otherwise), so no view shows what was erased."""
    if services.inline_projections:
        services.projector.catch_up()


@app.command()
def retention(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list the cases that are due; erase nothing.")
    ] = False,
    by: Annotated[
        str, typer.Option("--by", help="Who runs it, kept with each erasure.")
    ] = "retention",
) -> None:
    """Erase the personal data of every case that ended (declined or closed) more than
    OVERLEG_RETENTION_DAYS days ago, and list them; exit 2 when no period is set."""
    settings = _settings()
    days = settings.retention_days
    if days is None:
        _say(_("OVERLEG_RETENTION_DAYS is not set: no retention period applies"), err=True)
        raise typer.Exit(2)
    with _projected() as services:
        before = retention_cutoff(services.app.clock(), days)
        found: list[Due] = []
        for case_id in ended_before(services.views, before):
            case = services.app.get_case(UUID(case_id))
            due = retention_due(case, before)
            if due is None:
                continue
            if not dry_run and _erased(
                services, case.id, f"retention: {days} days after the case ended",
                ErasureGrounds.RETENTION, by,
            ) is None:  # fmt: skip
                continue
            found.append(due)
            _say(_due(due, dry_run))
        if found and not dry_run:
            _after_erasure(services)
    _say(retention_summary(found, days, dry_run))


def _due(due: Due, dry_run: bool) -> Message:
    """One case of a retention run: due (a dry run) or erased, how and when it ended."""
    ended = STATES.get(due.ended, due.ended)
    if dry_run:
        return _(
            "due {case_id} {ended} {ended_at}",
            case_id=due.case_id,
            ended=ended,
            ended_at=due.ended_at.isoformat(),
        )
    return _(
        "erased {case_id} {ended} {ended_at}",
        case_id=due.case_id,
        ended=ended,
        ended_at=due.ended_at.isoformat(),
    )


keys_app = typer.Typer(help="The master keys that wrap the cases' data keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("new")
def keys_new(
    key_id: Annotated[str, typer.Argument(help="A name for the key (e.g. 2026-11).")],
) -> None:
    """Print a new master key as the configuration takes it (ID:BASE64): put it first in
    OVERLEG_MASTER_KEYS_FILE, keep the old ones after it, then `overleg keys rotate`."""
    if not key_id or ":" in key_id or "," in key_id or "#" in key_id or key_id != key_id.strip():
        _say(_("A key's name has no ':', ',', '#' or surrounding spaces"), err=True)
        raise typer.Exit(2)
    typer.echo(MasterKeys.generate(key_id))


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Wrap every case's data key with the current (first) master key; the events are not
    touched. Afterwards the older master keys can be removed from the configuration."""
    with _opened() as services:
        try:
            done = services.app.keys.rotate(services.app.keyring.masters)
        except KeyProblem as problem:
            _say(_("Rotation stopped: {why}", why=text_of(problem)), err=True)
            raise typer.Exit(1) from None
        current = services.app.keyring.masters.current.id
    _say(
        _(
            "{rewrapped:,} data key(s) wrapped again with master key {master}; "
            "{current:,} already were; {erased:,} erased case(s) have none.",
            rewrapped=done.rewrapped,
            master=repr(current),
            current=done.current,
            erased=done.erased,
        )
    )


@app.command()
def version() -> None:
    """Print overleg's version."""
    typer.echo(__version__)


def main() -> None:
    """Entry point of the console script."""
    # Log lines go to standard error, never into a command's output (an export to standard
    # output, a JSON report). A command says what went wrong in its own words; its log
    # lines show only when OVERLEG_LOG_LEVEL asks for them (`serve` and `worker` set their
    # level from the settings).
    level = os.environ.get("OVERLEG_LOG_LEVEL", "critical")
    configure_logs(level if level in LOG_LEVELS else "critical")  # a wrong one: _settings says
    app()
