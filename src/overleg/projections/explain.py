"""Which meetings a figure of the annual statistics counts, and which it leaves out and why."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from overleg.adapters.views import ViewStore
from overleg.aggregates.values import Programme
from overleg.projections.statistics import (
    OUTCOMES,
    REGIONS,
    MeetingRow,
    annual_statistics,
    meetings_of,
)

_COUNTED = {
    "youth_present": "where the young person was present",
    "parents_present": "where the parents were present",
    "workplans": "with a workplan",
    "coordinators": "with a coordinator (hulpcoördinator)",
}
_NOT_COUNTED = {
    "youth_present": "young person absent",
    "parents_present": "parents absent",
    "workplans": "no workplan agreed",
    "coordinators": "no coordinator (hulpcoördinator) appointed",
}
NOT_REGISTERED = "registration not completed"


class UnknownFigure(ValueError):
    """The name of a figure that the statistics do not have."""


@dataclass
class Explanation:
    """A figure, the meetings it counts, and the meetings of its scope it leaves out."""

    figure: str
    value: int | float
    meaning: str
    counted: list[MeetingRow] = field(default_factory=list)
    left_out: list[tuple[MeetingRow, str]] = field(default_factory=list)


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
    views: ViewStore, year: int, figure: str, programme: Programme | None = None
) -> Explanation:
    """Explain one figure of ``annual_statistics(year, programme)``, named by its JSON path."""
    path = figure.split(".")
    if path[0] not in ("meetings", "fully_registered"):
        raise UnknownFigure(_unknown(figure))
    if len(path) == 1:  # a section names its total
        path.append("total")
    stats = annual_statistics(views, year, programme).model_dump(mode="json")
    try:
        value = _lookup(stats, path)
    except KeyError:
        raise UnknownFigure(_unknown(figure)) from None
    if isinstance(value, dict):
        if "count" in value:  # meetings.by_region.R means its count
            value = value["count"]
        elif "total" in value:
            value = value["total"]
        else:
            raise UnknownFigure(_unknown(figure))
    region = _region_of(path)
    if region is not None and region not in REGIONS:
        raise UnknownFigure(_unknown(figure))
    scope_year = year - 1 if path[-1] == "previous_year_total" else year
    scope = [
        m for m in meetings_of(views, scope_year, programme) if region is None or m.region == region
    ]
    where = f" in {region}" if region else ""
    which = programme.value if programme else "all programmes"
    if path[0] == "meetings":
        context = f"{scope_year}{where} ({which})"
        return _meetings(figure, value, path, scope, context, stats["meetings"]["total"])
    return _registered(figure, value, path, scope, f"{year}{where} ({which})")


def _meetings(
    figure: str, value: Any, path: list[str], scope: list[MeetingRow], context: str, total: int
) -> Explanation:
    counts: Callable[[MeetingRow], bool] = lambda m: True  # noqa: E731
    meaning = f"meetings held in {context}"
    reason = ""
    if path[1] == "first":
        counts, meaning, reason = (lambda m: m.meeting == 1), f"first {meaning}", "follow-up"
    elif path[1] == "follow_up":
        counts, meaning, reason = (lambda m: m.meeting > 1), f"follow-up {meaning}", "first"
    if path[-1] == "pct":  # a region's share of all meetings of the year, every region
        meaning = f"{meaning}, as a share of all {total} meetings of the year in every region"
    explanation = Explanation(figure, value, meaning)
    for m in scope:
        if counts(m):
            explanation.counted.append(m)
        else:
            explanation.left_out.append((m, f"{reason} meeting (number {m.meeting})"))
    return explanation


def _registered(
    figure: str, value: Any, path: list[str], scope: list[MeetingRow], context: str
) -> Explanation:
    outcome = path[1] if path[1] in OUTCOMES else None
    registered = sum(1 for m in scope if m.registered)
    meaning = f"fully registered meetings held in {context}"
    if outcome is not None:
        meaning = f"{meaning} {_COUNTED[outcome]}"
        if path[-1] == "pct":
            meaning += f" (share of the {registered} fully registered meetings)"
        elif path[-1] == "pct_of_workplans":
            meaning += " (share of the meetings with a workplan)"
    explanation = Explanation(figure, value, meaning)
    for m in scope:
        if not m.registered:
            explanation.left_out.append((m, NOT_REGISTERED))
        elif outcome is None or m.counts_in(outcome):
            explanation.counted.append(m)
        elif outcome == "coordinators" and path[-1] == "pct_of_workplans" and not m.workplan:
            continue  # not in the base of this share at all
        else:
            explanation.left_out.append((m, _NOT_COUNTED[outcome]))
    return explanation


def _unknown(figure: str) -> str:
    outcomes = "|".join(OUTCOMES)
    return (
        f"No figure {figure!r}. Figures are named by their path in the JSON statistics, e.g. "
        "meetings.total, meetings.first, meetings.follow_up, meetings.previous_year_total, "
        "meetings.by_region.Antwerpen, fully_registered.total, "
        f"fully_registered.{{{outcomes}}}.total, "
        "fully_registered.youth_present.by_region.Antwerpen, "
        f"with a region one of {', '.join(REGIONS)}"
    )
