"""How statistics, bottlenecks and histories are shown: report tables, CSV and charts.

Tables, charts and explanations speak the current language (``overleg.i18n.current``); CSV
headers, region and theme names and every figure are the same in every language.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import assert_never

from babel.numbers import format_decimal
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from overleg.aggregates.values import Region
from overleg.i18n import Message, _, current, translate
from overleg.projections.audit_trail import TrailEntry
from overleg.projections.bottlenecks import BottleneckReport
from overleg.projections.explain import Explanation, Item
from overleg.projections.runner import Failure
from overleg.projections.statistics import (
    OUTCOMES,
    BottleneckRow,
    CoordinatorRow,
    MeetingRow,
    PlanRow,
    Statistics,
    pct,
)

OUTCOME_LABELS: dict[str, Message] = {
    "youth_present": _("youth present"),
    "client_present": _("client present"),
    "parents_present": _("parents present"),
    "workplans": _("workplans"),
    "coordinators": _("coordinators"),
}
CHART_SUFFIXES = (".png", ".svg")


def _programme(programme: str | None) -> str:
    return programme if programme else _("all programmes")


def _title(stats: Statistics) -> str:
    return translate(
        _(
            "Client consultations (cliëntoverleg) {year}, {programme}",
            year=stats.year,
            programme=_programme(stats.programme.value if stats.programme else None),
        )
    )


# Short headings for a narrow terminal (80 columns), explained in the caption.
COMPACT: dict[str, Message] = {
    "meetings": _("meet."),
    "fully registered": _("reg."),
    "youth present": _("youth"),
    "client present": _("client"),
    "parents present": _("parents"),
    "workplans": _("plans"),
    "coordinators": _("coord."),
}
MEASURED = 1000  # columns a table is measured in: wider than any it needs


def statistics_table(
    stats: Statistics, registered: dict[Region, int], width: int | None = None
) -> Table:
    """The statistics as the annual report shows them: regions as rows, a total row. On a
    terminal of ``width`` columns too narrow for the full headings (which are longer in
    Dutch than in English) the headings are short (the caption says what they stand for)
    and the total row's percentages get a row of their own."""
    full = _statistics_table(stats, registered, compact=False)
    if width is None or _fits(full, width):
        return full
    return _statistics_table(stats, registered, compact=True)


def _rate(percentage: float) -> str:
    """A percentage with one decimal, written as the current language writes it (35.3 or
    35,3)."""
    return format_decimal(percentage, format="0.0", locale=current.get().locale)


def _fits(table: Table, width: int) -> bool:
    """Whether ``table`` shows every cell whole in ``width`` columns."""
    console = Console(width=max(width, MEASURED))
    return Measurement.get(console, console.options, table).maximum <= width


def _statistics_table(stats: Statistics, registered: dict[Region, int], compact: bool) -> Table:
    meetings, fully = stats.meetings, stats.fully_registered
    headers = [_("meetings"), "%", _("fully registered"), *OUTCOME_LABELS.values()]
    caption = _(
        "{total} meetings: {first} first, {follow_up} follow-up; {previous_total} in "
        "{previous_year}; {planned_not_held} planned and not held. Attendance and outcomes "
        "count the {fully} fully registered meetings; percentages of the total row are of "
        "those. A designated coordinator (spilfiguur) in {cases} case(s), {chosen} chosen by "
        "the client.",
        total=meetings.total,
        first=meetings.first,
        follow_up=meetings.follow_up,
        previous_total=meetings.previous_year_total,
        previous_year=stats.year - 1,
        planned_not_held=meetings.planned_not_held,
        fully=fully.total,
        cases=stats.spilfiguur.cases,
        chosen=stats.spilfiguur.chosen_by_client,
    )
    if compact:
        caption = _(
            "{caption} Headings: meet. meetings, reg. fully registered, youth/client/parents "
            "present, plans workplans, coord. coordinators.",
            caption=caption,
        )
    table = Table(
        title=_title(stats),
        caption=translate(caption),
        box=box.SIMPLE_HEAD,
        # Narrow: one space of padding where the box already leaves one between columns.
        padding=(0, 0, 0, 1) if compact else (0, 1),
    )
    table.add_column(translate(_("region")), no_wrap=True)
    for header in headers:
        shown = COMPACT.get(header, header) if compact else header
        table.add_column(translate(shown), justify="right", no_wrap=compact)
    for region in Region:
        table.add_row(
            region.value,
            str(meetings.by_region[region].count),
            _rate(meetings.by_region[region].pct),
            str(registered[region]),
            *(str(stats.outcome(name).by_region[region]) for name in OUTCOMES),
        )
    table.add_section()
    outcomes = [stats.outcome(name) for name in OUTCOMES]
    table.add_row(
        translate(_("total")),
        str(meetings.total),
        "",
        str(fully.total),
        *(str(o.total) if compact else f"{o.total} ({_rate(o.pct)} %)" for o in outcomes),
        style="bold",
    )
    if compact:
        table.add_row(translate(_("% of reg.")), "", "", "", *(_rate(o.pct) for o in outcomes))
    return table


def statistics_csv(stats: Statistics, registered: dict[Region, int]) -> str:
    """The statistics table as CSV: one row per region and a total row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    meetings, fully = stats.meetings, stats.fully_registered
    writer.writerow(
        ["year", "programme", "region", "meetings", "meetings_pct", "fully_registered"]
        + [column for name in OUTCOMES for column in (name, f"{name}_pct")]
    )
    programme = stats.programme.value if stats.programme else ""
    for region in Region:
        base = registered[region]
        writer.writerow(
            [stats.year, programme, region.value, meetings.by_region[region].count]
            + [f"{meetings.by_region[region].pct:.1f}", base]
            + [
                value
                for name in OUTCOMES
                for value in (
                    stats.outcome(name).by_region[region],
                    f"{pct(stats.outcome(name).by_region[region], base):.1f}",
                )
            ]
        )
    writer.writerow(
        [stats.year, programme, "total", meetings.total, "100.0", fully.total]
        + [
            v
            for name in OUTCOMES
            for v in (stats.outcome(name).total, f"{stats.outcome(name).pct:.1f}")
        ]
    )
    return out.getvalue()


def statistics_chart(stats: Statistics, registered: dict[Region, int], path: Path) -> None:
    """Meetings per region, and attendance and outcome rates per region, as PNG or SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meetings, fully = stats.meetings, stats.fully_registered
    regions = [r.value for r in Region]
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5), layout="constrained")
    counts = [meetings.by_region[r].count for r in Region]
    bars = left.bar(regions, counts, color="#3b6ea5")
    left.bar_label(bars)
    left.set_title(translate(_("Meetings per region ({total} in all)", total=meetings.total)))
    left.set_ylabel(translate(_("meetings")))
    left.tick_params(axis="x", labelrotation=30)
    width = 0.8 / len(OUTCOMES)
    for k, name in enumerate(OUTCOMES):
        rates = [pct(stats.outcome(name).by_region[r], registered[r]) for r in Region]
        positions = [i + (k - (len(OUTCOMES) - 1) / 2) * width for i in range(len(regions))]
        grouped = right.bar(positions, rates, width, label=translate(OUTCOME_LABELS[name]))
        # Each bar says its value: a rate is read, not estimated from the axis.
        right.bar_label(grouped, fmt="%.0f", fontsize="x-small", padding=1)
    right.set_xticks(range(len(regions)), regions, rotation=30)
    right.set_ylim(0, 100)
    right.set_ylabel(translate(_("% of the region's fully registered meetings")))
    right.set_title(
        translate(
            _("Attendance and outcomes ({total} fully registered meetings)", total=fully.total)
        )
    )
    right.legend(loc="upper left", fontsize="small")
    fig.suptitle(_title(stats))
    fig.savefig(path)
    plt.close(fig)


def theme_table(stats: Statistics) -> Table:
    """Bottlenecks reported in the year per theme of the analysts' list."""
    table = Table(
        title=translate(_("Bottlenecks reported in {year} per theme", year=stats.year)),
        caption=translate(_reported(sum(stats.bottlenecks_by_theme.values()))),
        box=box.SIMPLE_HEAD,
    )
    table.add_column(translate(_("theme")))
    table.add_column(translate(_("reported")), justify="right")
    for theme, count in stats.bottlenecks_by_theme.items():
        table.add_row(theme, str(count))
    return table


def bottleneck_table(report: BottleneckReport) -> Table:
    """Bottlenecks per theme (rows) and region (columns)."""
    programme = _programme(report.programme.value if report.programme else None)
    table = Table(
        title=translate(
            _("Reported bottlenecks {year}, {programme}", year=report.year, programme=programme)
        ),
        caption=translate(_reported(report.total)),
        box=box.SIMPLE_HEAD,
    )
    table.add_column(translate(_("theme")))
    for region in Region:
        table.add_column(region.value, justify="right")
    table.add_column(translate(_("total")), justify="right")
    for row in report.themes:
        table.add_row(row.theme, *(str(row.by_region[r]) for r in Region), str(row.total))
    return table


def _reported(count: int) -> Message:
    return _("{count} bottleneck(s) reported", count=count)


def bottleneck_csv(report: BottleneckReport) -> str:
    """Bottlenecks as CSV: one row per theme."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["year", "programme", "theme", *(r.value for r in Region), "total"])
    programme = report.programme.value if report.programme else ""
    for row in report.themes:
        writer.writerow(
            [report.year, programme, row.theme] + [row.by_region[r] for r in Region] + [row.total]
        )
    return out.getvalue()


def history_table(case_id: str, entries: Sequence[TrailEntry]) -> Table:
    """A case's audit trail."""
    table = Table(
        title=translate(_("History of case {case_id}", case_id=case_id)), box=box.SIMPLE_HEAD
    )
    table.add_column(translate(_("seq")), justify="right")
    for header in (_("recorded at"), _("by"), _("what happened")):
        table.add_column(translate(header), justify="left")
    for entry in entries:
        table.add_row(str(entry.seq), entry.at, entry.by, translate(entry.summary))
    return table


def _item(item: Item) -> Message:
    match item:
        case MeetingRow():
            return _(
                "case {case_id}  meeting {meeting}  held {held_on}  {region}",
                case_id=item.case_id,
                meeting=item.meeting,
                held_on=item.held_on,
                region=item.region,
            )
        case PlanRow():
            return _(
                "case {case_id}  meeting {meeting}  planned on {on}  {region}",
                case_id=item.case_id,
                meeting=item.meeting,
                on=item.on,
                region=item.region,
            )
        case CoordinatorRow():
            if item.designated:
                return _(
                    "case {case_id}  {region}  coordinator designated {designated_on}",
                    case_id=item.case_id,
                    region=item.region,
                    designated_on=item.designated_on,
                )
            return _("case {case_id}  {region}", case_id=item.case_id, region=item.region)
        case BottleneckRow():
            return _(
                "case {case_id}  seq {seq}  reported {reported_on}  {region}  theme {theme}",
                case_id=item.case_id,
                seq=item.seq,
                reported_on=item.reported_on,
                region=item.region,
                theme=item.theme,
            )
        case _:
            assert_never(item)


def _kind(explanation: Explanation) -> Message:
    items = [*explanation.counted, *(item for item, _why in explanation.left_out)]
    if items and isinstance(items[0], PlanRow):
        return _("planned meeting(s)")
    if items and isinstance(items[0], CoordinatorRow):
        return _("case(s)")
    if items and isinstance(items[0], BottleneckRow):
        return _("bottleneck(s)")
    return _("meeting(s)")


def explanation_text(explanation: Explanation) -> str:
    """An explained figure: what it counts, what it counted, what it left out and why."""
    kind = _kind(explanation)
    lines = [
        f"{explanation.figure} = {explanation.value}",
        translate(_("counts: {meaning}", meaning=explanation.meaning)),
        "",
        translate(_("counted: {count} {kind}", count=len(explanation.counted), kind=kind)),
    ]
    lines += ["  " + translate(_item(item)) for item in explanation.counted]
    if explanation.left_out:
        left_out = _("left out: {count} {kind}", count=len(explanation.left_out), kind=kind)
        lines += ["", translate(left_out)]
        lines += [
            "  " + translate(_("{what}: {why}", what=_item(item), why=why))
            for item, why in explanation.left_out
        ]
    return "\n".join(lines)


def projection_table(positions: dict[str, int], head: int, failed: Sequence[Failure]) -> Table:
    """Each projection: its position, how far behind the store, events it set aside."""
    table = Table(
        title=translate(_("Projections (the store is at position {head})", head=head)),
        box=box.SIMPLE_HEAD,
    )
    table.add_column(translate(_("projection")), justify="left")
    for header in (_("position"), _("behind"), _("set aside")):
        table.add_column(translate(header), justify="right")
    for name, position in positions.items():
        aside = sum(1 for f in failed if f.projection == name)
        table.add_row(name, str(position), str(max(0, head - position)), str(aside))
    return table


def failure_table(failed: Sequence[Failure]) -> Table:
    """The events projections could not apply: where they are and what went wrong."""
    table = Table(title=translate(_("Events set aside")), box=box.SIMPLE_HEAD)
    for header in (
        _("projection"),
        _("position"),
        _("case"),
        _("seq"),
        _("event"),
        _("error"),
        _("at"),
    ):
        table.add_column(translate(header))
    for f in failed:
        table.add_row(
            f.projection, str(f.position), f.case_id, str(f.seq), f.event_type, f.error, f.at
        )
    return table
