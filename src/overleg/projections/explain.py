"""Which meetings (plans, cases, bottlenecks) a figure of the annual statistics counts, and
which of its scope it leaves out and why."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from overleg.adapters.views import ViewStore
from overleg.aggregates.values import Programme
from overleg.projections.statistics import (
    OUTCOMES,
    REGIONS,
    BottleneckRow,
    CoordinatorRow,
    MeetingRow,
    PlanRow,
    YearRows,
    figures,
    year_rows,
)
from overleg.projections.themes import BottleneckThemes, packaged

_COUNTED = {
    "youth_present": "where the young person was present",
    "client_present": "where the client was present",
    "parents_present": "where the parents were present",
    "workplans": "with a workplan",
    "coordinators": "with a coordinator (hulpcoördinator)",
}
_NOT_COUNTED = {
    "youth_present": "young person absent",
    "client_present": "client absent",
    "parents_present": "parents absent",
    "workplans": "no workplan agreed",
    "coordinators": "no coordinator (hulpcoördinator) appointed",
}
NOT_REGISTERED = "registration not completed"
RETRACTED = "retracted (recorded in error)"
SECTIONS = ("meetings", "fully_registered", "spilfiguur", "bottlenecks_by_theme")

# What a figure counts: meetings, plans of meetings, cases, or reported bottlenecks.
Item = MeetingRow | PlanRow | CoordinatorRow | BottleneckRow


class UnknownFigure(ValueError):
    """The name of a figure that the statistics do not have."""


@dataclass
class Explanation:
    """A figure, what it counts, and what of its scope it leaves out."""

    figure: str
    value: int | float
    meaning: str
    counted: list[Item] = field(default_factory=list)
    left_out: list[tuple[Item, str]] = field(default_factory=list)


def _lookup(stats: dict[str, Any], path: list[str]) -> Any:
    node: Any = stats
    for key in path:
        if not isinstance(node, dict) or key not in node:
            raise KeyError(key)
        node = node[key]
    return node


def _region_of(path: list[str]) -> str | None:
    if "by_region" not in path:
        return None
    index = path.index("by_region")
    return path[index + 1] if index + 1 < len(path) else None


def explain(
    views: ViewStore,
    year: int,
    figure: str,
    programme: Programme | None = None,
    *,
    as_known_at: datetime | None = None,
    themes: BottleneckThemes | None = None,
    today: date | None = None,
) -> Explanation:
    """Explain one figure of ``annual_statistics(year, programme, ...)``, named by its path
    in the JSON, from the same rows (as known now, or at ``as_known_at``)."""
    themes = themes if themes is not None else packaged()
    section, _, rest = figure.partition(".")
    if section not in SECTIONS:
        raise UnknownFigure(_unknown(figure, themes))
    # A theme may hold a dot; every other figure is a path of keys.
    path = [section, rest] if section == "bottlenecks_by_theme" else figure.split(".")
    if len(path) == 1 and section in ("meetings", "fully_registered"):
        path.append("total")  # a section names its total
    rows = year_rows(views, year, programme, as_known_at=as_known_at, themes=themes, today=today)
    stats = figures(rows, programme).model_dump(mode="json")
    if section == "bottlenecks_by_theme":
        theme = themes.named(rest)
        if theme is None:
            raise UnknownFigure(_unknown(figure, themes))
        path[1] = theme
    try:
        value = _lookup(stats, path)
    except KeyError:
        raise UnknownFigure(_unknown(figure, themes)) from None
    if isinstance(value, dict):
        if "count" in value:  # meetings.by_region.R means its count
            value = value["count"]
        elif "total" in value:
            value = value["total"]
        else:
            raise UnknownFigure(_unknown(figure, themes))
    region = _region_of(path)
    if region is not None and region not in REGIONS:
        raise UnknownFigure(_unknown(figure, themes))
    which = programme.value if programme else "all programmes"
    known = "" if as_known_at is None else f", as known at {as_known_at.isoformat()}"
    where = f" in {region}" if region else ""
    if section == "spilfiguur":
        return _spilfiguur(figure, value, path, rows, f"{year} ({which}{known})")
    if section == "bottlenecks_by_theme":
        return _bottlenecks(figure, value, path[1], rows, f"{year} ({which}{known})")
    if path[1] == "planned_not_held":
        return _planned(figure, value, rows, f"{year} ({which}{known})")
    previous = path[-1] == "previous_year_total"
    scope_year = year - 1 if previous else year
    scope = [
        m
        for m in (rows.previous if previous else rows.meetings)
        if region is None or m.region == region
    ]
    if section == "meetings":
        context = f"{scope_year}{where} ({which}{known})"
        return _meetings(figure, value, path, scope, context, stats["meetings"]["total"])
    return _registered(figure, value, path, scope, f"{year}{where} ({which}{known})")


def _meetings(
    figure: str,
    value: Any,
    path: list[str],
    scope: Sequence[MeetingRow],
    context: str,
    total: int,
) -> Explanation:
    counts: Callable[[MeetingRow], bool] = lambda m: True  # noqa: E731
    meaning = f"meetings held in {context}"
    reason = ""
    if path[1] == "first":
        meaning = f"first {meaning} (each case's earliest held meeting)"
        counts, reason = (lambda m: m.first), "follow-up"
    elif path[1] == "follow_up":
        meaning = f"follow-up {meaning} (every later meeting of a case)"
        counts, reason = (lambda m: not m.first), "first"
    if path[-1] == "pct":  # a region's share of all meetings of the year, every region
        meaning = f"{meaning}, as a share of all {total} meetings of the year in every region"
    explanation = Explanation(figure, value, meaning)
    for m in scope:
        if m.retracted:
            explanation.left_out.append((m, RETRACTED))
        elif counts(m):
            explanation.counted.append(m)
        else:
            explanation.left_out.append((m, f"{reason} meeting (number {m.meeting})"))
    return explanation


def _registered(
    figure: str, value: Any, path: list[str], scope: Sequence[MeetingRow], context: str
) -> Explanation:
    outcome = path[1] if path[1] in OUTCOMES else None
    registered = sum(1 for m in scope if m.registered and not m.retracted)
    meaning = f"fully registered meetings held in {context}"
    if outcome is not None:
        meaning = f"{meaning} {_COUNTED[outcome]}"
        if path[-1] == "pct":
            meaning += f" (share of the {registered} fully registered meetings)"
        elif path[-1] == "pct_of_workplans":
            meaning += " (share of the meetings with a workplan)"
    explanation = Explanation(figure, value, meaning)
    for m in scope:
        if m.retracted:
            explanation.left_out.append((m, RETRACTED))
        elif not m.registered:
            explanation.left_out.append((m, NOT_REGISTERED))
        elif outcome is None or m.counts_in(outcome):
            explanation.counted.append(m)
        elif outcome == "coordinators" and path[-1] == "pct_of_workplans" and not m.workplan:
            continue  # not in the base of this share at all
        else:
            explanation.left_out.append((m, _NOT_COUNTED[outcome]))
    return explanation


def _planned(figure: str, value: Any, rows: YearRows, context: str) -> Explanation:
    explanation = Explanation(
        figure,
        value,
        f"meetings planned on a day of {context} whose last plan was cancelled or not held "
        f"by 31 December, among the plans whose day is before "
        f"{rows.reference_day.isoformat()}",
    )
    for plan in rows.plans:
        if rows.plan_counts(plan):
            explanation.counted.append(plan)
        elif plan.on >= rows.reference_day.isoformat():
            explanation.left_out.append((plan, "its day has not passed"))
        else:
            explanation.left_out.append((plan, f"held on {plan.held_on}"))
    return explanation


def _spilfiguur(
    figure: str, value: Any, path: list[str], rows: YearRows, context: str
) -> Explanation:
    chosen = path[1] == "chosen_by_client"
    meaning = (
        f"cases with a meeting held in {context} that have a designated coordinator "
        "(spilfiguur) at the end of the year"
    )
    if chosen:
        meaning += ", chosen by the client"
    explanation = Explanation(figure, value, meaning)
    for case in rows.coordinators:
        if not case.designated:
            if not chosen:  # a case without one is not in the base of the client's choices
                explanation.left_out.append((case, "no coordinator designated by 31 December"))
        elif not chosen or case.chosen_by_client:
            explanation.counted.append(case)
        else:
            explanation.left_out.append((case, "not chosen by the client"))
    return explanation


def _bottlenecks(figure: str, value: Any, theme: str, rows: YearRows, context: str) -> Explanation:
    explanation = Explanation(figure, value, f"bottlenecks reported in {context}, theme {theme}")
    for bottleneck in rows.bottlenecks:
        if bottleneck.theme == theme:
            explanation.counted.append(bottleneck)
        else:
            explanation.left_out.append((bottleneck, "another theme"))
    return explanation


def _unknown(figure: str, themes: BottleneckThemes) -> str:
    outcomes = "|".join(OUTCOMES)
    return (
        f"No figure {figure!r}. Figures are named by their path in the JSON statistics, e.g. "
        "meetings.total, meetings.first, meetings.follow_up, meetings.previous_year_total, "
        "meetings.planned_not_held, meetings.by_region.Antwerpen, fully_registered.total, "
        f"fully_registered.{{{outcomes}}}.total, "
        "fully_registered.youth_present.by_region.Antwerpen, "
        "spilfiguur.cases, spilfiguur.chosen_by_client, "
        f"bottlenecks_by_theme.THEME with a theme one of {', '.join(themes.names)}; "
        f"with a region one of {', '.join(REGIONS)}"
    )
