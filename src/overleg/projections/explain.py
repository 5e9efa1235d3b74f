"""Which meetings (plans, cases, bottlenecks) a figure of the annual statistics counts, and
which of its scope it leaves out and why."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from overleg.adapters.views import ViewStore
from overleg.aggregates.values import Programme
from overleg.i18n import Message, _
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
    "youth_present": _("where the young person was present"),
    "client_present": _("where the client was present"),
    "parents_present": _("where the parents were present"),
    "workplans": _("with a workplan"),
    "coordinators": _("with a coordinator (hulpcoördinator)"),
}
_NOT_COUNTED = {
    "youth_present": _("young person absent"),
    "client_present": _("client absent"),
    "parents_present": _("parents absent"),
    "workplans": _("no workplan agreed"),
    "coordinators": _("no coordinator (hulpcoördinator) appointed"),
}
NOT_REGISTERED = _("registration not completed")
RETRACTED = _("retracted (recorded in error)")
SECTIONS = ("meetings", "fully_registered", "spilfiguur", "bottlenecks_by_theme")

# What a figure counts: meetings, plans of meetings, cases, or reported bottlenecks.
Item = MeetingRow | PlanRow | CoordinatorRow | BottleneckRow


class UnknownFigure(ValueError):
    """The name of a figure that the statistics do not have."""


@dataclass
class Explanation:
    """A figure, what it counts, and what of its scope it leaves out (why, for each)."""

    figure: str
    value: int | float
    meaning: Message
    counted: list[Item] = field(default_factory=list)
    left_out: list[tuple[Item, Message]] = field(default_factory=list)


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
    section, _dot, rest = figure.partition(".")
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
    if section == "spilfiguur":
        return _spilfiguur(figure, value, path, rows, _context(year, None, programme, as_known_at))
    if section == "bottlenecks_by_theme":
        context = _context(year, None, programme, as_known_at)
        return _bottlenecks(figure, value, path[1], rows, context)
    if path[1] == "planned_not_held":
        return _planned(figure, value, rows, _context(year, None, programme, as_known_at))
    previous = path[-1] == "previous_year_total"
    scope_year = year - 1 if previous else year
    scope = [
        m
        for m in (rows.previous if previous else rows.meetings)
        if region is None or m.region == region
    ]
    if section == "meetings":
        context = _context(scope_year, region, programme, as_known_at)
        return _meetings(figure, value, path, scope, context, stats["meetings"]["total"])
    context = _context(year, region, programme, as_known_at)
    return _registered(figure, value, path, scope, context)


def _context(
    year: int, region: str | None, programme: Programme | None, as_known_at: datetime | None
) -> Message:
    """The scope of a figure in words: ``2015 in Antwerpen (integrale_jeugdhulp, as known at
    ...)``."""
    which = programme.value if programme else _("all programmes")
    when: str = str(year) if not region else _("{year} in {region}", year=year, region=region)
    if as_known_at is None:
        return _("{when} ({programmes})", when=when, programmes=which)
    return _(
        "{when} ({programmes}, as known at {instant})",
        when=when,
        programmes=which,
        instant=as_known_at.isoformat(),
    )


def _meetings(
    figure: str,
    value: Any,
    path: list[str],
    scope: Sequence[MeetingRow],
    context: Message,
    total: int,
) -> Explanation:
    counts: Callable[[MeetingRow], bool] = lambda m: True  # noqa: E731
    meaning = _("meetings held in {context}", context=context)
    if path[1] == "first":
        meaning = _(
            "first meetings held in {context} (each case's earliest held meeting)",
            context=context,
        )
        counts = lambda m: m.first  # noqa: E731
    elif path[1] == "follow_up":
        meaning = _(
            "follow-up meetings held in {context} (every later meeting of a case)",
            context=context,
        )
        counts = lambda m: not m.first  # noqa: E731
    if path[-1] == "pct":  # a region's share of all meetings of the year, every region
        meaning = _(
            "{meaning}, as a share of all {total} meetings of the year in every region",
            meaning=meaning,
            total=total,
        )
    explanation = Explanation(figure, value, meaning)
    for m in scope:
        if m.retracted:
            explanation.left_out.append((m, RETRACTED))
        elif counts(m):
            explanation.counted.append(m)
        else:
            explanation.left_out.append((m, _other_kind(path[1], m.meeting)))
    return explanation


def _other_kind(counted: str, number: int) -> Message:
    """Why a figure of first (follow-up) meetings leaves a meeting out: it is the other kind."""
    if counted == "first":
        return _("follow-up meeting (number {number})", number=number)
    return _("first meeting (number {number})", number=number)


def _registered(
    figure: str, value: Any, path: list[str], scope: Sequence[MeetingRow], context: Message
) -> Explanation:
    outcome = path[1] if path[1] in OUTCOMES else None
    registered = sum(1 for m in scope if m.registered and not m.retracted)
    meaning = _("fully registered meetings held in {context}", context=context)
    if outcome is not None:
        meaning = _("{meaning} {which}", meaning=meaning, which=_COUNTED[outcome])
        if path[-1] == "pct":
            meaning = _(
                "{meaning} (share of the {registered} fully registered meetings)",
                meaning=meaning,
                registered=registered,
            )
        elif path[-1] == "pct_of_workplans":
            meaning = _("{meaning} (share of the meetings with a workplan)", meaning=meaning)
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


def _planned(figure: str, value: Any, rows: YearRows, context: Message) -> Explanation:
    explanation = Explanation(
        figure,
        value,
        _(
            "meetings planned on a day of {context} whose last plan was cancelled or not held "
            "by 31 December, among the plans whose day is before {day}",
            context=context,
            day=rows.reference_day.isoformat(),
        ),
    )
    for plan in rows.plans:
        if rows.plan_counts(plan):
            explanation.counted.append(plan)
        elif plan.on >= rows.reference_day.isoformat():
            explanation.left_out.append((plan, _("its day has not passed")))
        else:
            explanation.left_out.append((plan, _("held on {day}", day=plan.held_on)))
    return explanation


def _spilfiguur(
    figure: str, value: Any, path: list[str], rows: YearRows, context: Message
) -> Explanation:
    chosen = path[1] == "chosen_by_client"
    meaning = _(
        "cases with a meeting held in {context} that have a designated coordinator "
        "(spilfiguur) at the end of the year",
        context=context,
    )
    if chosen:
        meaning = _("{meaning}, chosen by the client", meaning=meaning)
    explanation = Explanation(figure, value, meaning)
    for case in rows.coordinators:
        if not case.designated:
            if not chosen:  # a case without one is not in the base of the client's choices
                explanation.left_out.append((case, _("no coordinator designated by 31 December")))
        elif not chosen or case.chosen_by_client:
            explanation.counted.append(case)
        else:
            explanation.left_out.append((case, _("not chosen by the client")))
    return explanation


def _bottlenecks(
    figure: str, value: Any, theme: str, rows: YearRows, context: Message
) -> Explanation:
    meaning = _("bottlenecks reported in {context}, theme {theme}", context=context, theme=theme)
    explanation = Explanation(figure, value, meaning)
    for bottleneck in rows.bottlenecks:
        if bottleneck.theme == theme:
            explanation.counted.append(bottleneck)
        else:
            explanation.left_out.append((bottleneck, _("another theme")))
    return explanation


def _unknown(figure: str, themes: BottleneckThemes) -> Message:
    return _(
        "No figure {figure}. Figures are named by their path in the JSON statistics, e.g. "
        "meetings.total, meetings.first, meetings.follow_up, meetings.previous_year_total, "
        "meetings.planned_not_held, meetings.by_region.Antwerpen, fully_registered.total, "
        "fully_registered.{outcomes}.total, "
        "fully_registered.youth_present.by_region.Antwerpen, "
        "spilfiguur.cases, spilfiguur.chosen_by_client, "
        "bottlenecks_by_theme.THEME with a theme one of {themes}; "
        "with a region one of {regions}",
        figure=repr(figure),
        outcomes="{" + "|".join(OUTCOMES) + "}",
        themes=", ".join(themes.names),
        regions=", ".join(REGIONS),
    )
