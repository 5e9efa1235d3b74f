"""How statistics, bottlenecks and histories are shown: report tables, CSV and charts."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import assert_never

from rich import box
from rich.table import Table

from overleg.aggregates.values import Region
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

OUTCOME_LABELS = {
    "youth_present": "youth present",
    "client_present": "client present",
    "parents_present": "parents present",
    "workplans": "workplans",
    "coordinators": "coordinators",
}
CHART_SUFFIXES = (".png", ".svg")


def _title(stats: Statistics) -> str:
    programme = stats.programme.value if stats.programme else "all programmes"
    return f"Client consultations (cliëntoverleg) {stats.year}, {programme}"


# Short headings for a narrow terminal (80 columns), explained in the caption.
COMPACT = {
    "meetings": "meet.",
    "fully registered": "reg.",
    "youth present": "youth",
    "client present": "client",
    "parents present": "parents",
    "workplans": "plans",
    "coordinators": "coord.",
}
WIDE_ENOUGH = 110  # columns from which the table shows its full headings


def statistics_table(
    stats: Statistics, registered: dict[Region, int], width: int | None = None
) -> Table:
    """The statistics as the annual report shows them: regions as rows, a total row. On a
    terminal narrower than ``WIDE_ENOUGH`` columns the headings are short (the caption says
    what they stand for) and the total row's percentages get a row of their own."""
    meetings, fully = stats.meetings, stats.fully_registered
    compact = width is not None and width < WIDE_ENOUGH
    headers = ["meetings", "%", "fully registered", *OUTCOME_LABELS.values()]
    legend = (
        " Headings: meet. meetings, reg. fully registered, youth/client/parents present, "
        "plans workplans, coord. coordinators."
        if compact
        else ""
    )
    table = Table(
        title=_title(stats),
        caption=(
            f"{meetings.total} meetings: {meetings.first} first, "
            f"{meetings.follow_up} follow-up; {meetings.previous_year_total} in "
            f"{stats.year - 1}; {meetings.planned_not_held} planned and not held. "
            f"Attendance and outcomes count the {fully.total} fully "
            "registered meetings; percentages of the total row are of those. "
            f"A designated coordinator (spilfiguur) in {stats.spilfiguur.cases} case(s), "
            f"{stats.spilfiguur.chosen_by_client} chosen by the client.{legend}"
        ),
        box=box.SIMPLE_HEAD,
        # Narrow: one space of padding where the box already leaves one between columns.
        padding=(0, 0, 0, 1) if compact else (0, 1),
    )
    table.add_column("region", no_wrap=True)
    for header in headers:
        shown = COMPACT.get(header, header) if compact else header
        table.add_column(shown, justify="right", no_wrap=compact)
    for region in Region:
        table.add_row(
            region.value,
            str(meetings.by_region[region].count),
            f"{meetings.by_region[region].pct:.1f}",
            str(registered[region]),
            *(str(stats.outcome(name).by_region[region]) for name in OUTCOMES),
        )
    table.add_section()
    outcomes = [stats.outcome(name) for name in OUTCOMES]
    table.add_row(
        "total",
        str(meetings.total),
        "",
        str(fully.total),
        *(str(o.total) if compact else f"{o.total} ({o.pct:.1f} %)" for o in outcomes),
        style="bold",
    )
    if compact:
        table.add_row("% of reg.", "", "", "", *(f"{o.pct:.1f}" for o in outcomes))
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
    left.set_title(f"Meetings per region ({meetings.total} in all)")
    left.set_ylabel("meetings")
    left.tick_params(axis="x", labelrotation=30)
    width = 0.8 / len(OUTCOMES)
    for k, name in enumerate(OUTCOMES):
        rates = [pct(stats.outcome(name).by_region[r], registered[r]) for r in Region]
        positions = [i + (k - (len(OUTCOMES) - 1) / 2) * width for i in range(len(regions))]
        grouped = right.bar(positions, rates, width, label=OUTCOME_LABELS[name])
        # Each bar says its value: a rate is read, not estimated from the axis.
        right.bar_label(grouped, fmt="%.0f", fontsize="x-small", padding=1)
    right.set_xticks(range(len(regions)), regions, rotation=30)
    right.set_ylim(0, 100)
    right.set_ylabel("% of the region's fully registered meetings")
    right.set_title(f"Attendance and outcomes ({fully.total} fully registered meetings)")
    right.legend(loc="upper left", fontsize="small")
    fig.suptitle(_title(stats))
    fig.savefig(path)
    plt.close(fig)


def theme_table(stats: Statistics) -> Table:
    """Bottlenecks reported in the year per theme of the analysts' list."""
    table = Table(
        title=f"Bottlenecks reported in {stats.year} per theme",
        caption=f"{sum(stats.bottlenecks_by_theme.values())} bottleneck(s) reported",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("theme")
    table.add_column("reported", justify="right")
    for theme, count in stats.bottlenecks_by_theme.items():
        table.add_row(theme, str(count))
    return table


def bottleneck_table(report: BottleneckReport) -> Table:
    """Bottlenecks per theme (rows) and region (columns)."""
    programme = report.programme.value if report.programme else "all programmes"
    table = Table(
        title=f"Reported bottlenecks {report.year}, {programme}",
        caption=f"{report.total} bottleneck(s) reported",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("theme")
    for region in Region:
        table.add_column(region.value, justify="right")
    table.add_column("total", justify="right")
    for row in report.themes:
        table.add_row(row.theme, *(str(row.by_region[r]) for r in Region), str(row.total))
    return table


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
    table = Table(title=f"History of case {case_id}", box=box.SIMPLE_HEAD)
    for header in ("seq", "recorded at", "by", "what happened"):
        table.add_column(header, justify="right" if header == "seq" else "left")
    for entry in entries:
        table.add_row(str(entry.seq), entry.at, entry.by, entry.summary)
    return table


def _item(item: Item) -> str:
    match item:
        case MeetingRow():
            return (
                f"case {item.case_id}  meeting {item.meeting}  held {item.held_on}  {item.region}"
            )
        case PlanRow():
            return (
                f"case {item.case_id}  meeting {item.meeting}  planned on {item.on}  {item.region}"
            )
        case CoordinatorRow():
            designated = f"  coordinator designated {item.designated_on}" if item.designated else ""
            return f"case {item.case_id}  {item.region}{designated}"
        case BottleneckRow():
            return (
                f"case {item.case_id}  seq {item.seq}  reported {item.reported_on}  "
                f"{item.region}  theme {item.theme}"
            )
        case _:
            assert_never(item)


def _kind(explanation: Explanation) -> str:
    items = [*explanation.counted, *(item for item, _ in explanation.left_out)]
    if items and isinstance(items[0], PlanRow):
        return "planned meeting(s)"
    if items and isinstance(items[0], CoordinatorRow):
        return "case(s)"
    if items and isinstance(items[0], BottleneckRow):
        return "bottleneck(s)"
    return "meeting(s)"


def explanation_text(explanation: Explanation) -> str:
    """An explained figure: what it counts, what it counted, what it left out and why."""
    kind = _kind(explanation)
    lines = [
        f"{explanation.figure} = {explanation.value}",
        f"counts: {explanation.meaning}",
        "",
        f"counted: {len(explanation.counted)} {kind}",
    ]
    lines += [f"  {_item(item)}" for item in explanation.counted]
    if explanation.left_out:
        lines += ["", f"left out: {len(explanation.left_out)} {kind}"]
        lines += [f"  {_item(item)}: {why}" for item, why in explanation.left_out]
    return "\n".join(lines)


def projection_table(positions: dict[str, int], head: int, failed: Sequence[Failure]) -> Table:
    """Each projection: its position, how far behind the store, events it set aside."""
    table = Table(title=f"Projections (the store is at position {head})", box=box.SIMPLE_HEAD)
    for header in ("projection", "position", "behind", "set aside"):
        table.add_column(header, justify="left" if header == "projection" else "right")
    for name, position in positions.items():
        aside = sum(1 for f in failed if f.projection == name)
        table.add_row(name, str(position), str(max(0, head - position)), str(aside))
    return table


def failure_table(failed: Sequence[Failure]) -> Table:
    """The events projections could not apply: where they are and what went wrong."""
    table = Table(title="Events set aside", box=box.SIMPLE_HEAD)
    for header in ("projection", "position", "case", "seq", "event", "error", "at"):
        table.add_column(header)
    for f in failed:
        table.add_row(
            f.projection, str(f.position), f.case_id, str(f.seq), f.event_type, f.error, f.at
        )
    return table
