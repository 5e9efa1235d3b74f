"""Reported bottlenecks (knelpunten): structural, cross-case problems, as policy information."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from overleg.aggregates.case import Case
from overleg.aggregates.values import Programme
from overleg.projections.base import Projection
from overleg.projections.statistics import REGIONS
from overleg.projections.store import Tx, ViewStore


class Bottlenecks(Projection):
    """Every reported bottleneck with its theme, region, programme and year."""

    name: ClassVar[str] = "bottlenecks"
    version: ClassVar[int] = 1
    tables: ClassVar[tuple[str, ...]] = ("bottleneck", "bottleneck_case")

    def create(self, tx: Tx) -> None:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS bottleneck_case ("
            " case_id TEXT PRIMARY KEY, programme TEXT NOT NULL, region TEXT NOT NULL)"
        )
        tx.execute(
            "CREATE TABLE IF NOT EXISTS bottleneck ("
            " case_id TEXT NOT NULL, seq INTEGER NOT NULL,"
            " programme TEXT NOT NULL, region TEXT NOT NULL,"
            " reported_on TEXT NOT NULL, year INTEGER NOT NULL, theme TEXT NOT NULL,"
            " PRIMARY KEY (case_id, seq))"
        )
        tx.execute("CREATE INDEX IF NOT EXISTS bottleneck_year ON bottleneck (year)")

    def apply(self, tx: Tx, events: Sequence[Case.Event]) -> None:
        for e in events:
            if isinstance(e, Case.Requested):
                tx.execute(
                    "INSERT INTO bottleneck_case (case_id, programme, region) VALUES (?, ?, ?)",
                    (str(e.originator_id), e.programme, e.region),
                )
            elif isinstance(e, Case.BottleneckReported):
                day = e.timestamp.date()
                tx.execute(
                    "INSERT INTO bottleneck (case_id, seq, programme, region, reported_on,"
                    " year, theme) SELECT case_id, ?, programme, region, ?, ?, ?"
                    " FROM bottleneck_case WHERE case_id = ?",
                    (
                        e.originator_version,
                        day.isoformat(),
                        day.year,
                        e.theme,
                        str(e.originator_id),
                    ),
                )


def bottleneck_report(
    views: ViewStore, year: int, programme: Programme | None = None
) -> dict[str, Any]:
    """Bottlenecks reported in ``year`` per theme and region, most reported theme first."""
    sql = "SELECT theme, region, COUNT(*) FROM bottleneck WHERE year = ?"
    params: list[Any] = [year]
    if programme is not None:
        sql += " AND programme = ?"
        params.append(programme.value)
    sql += " GROUP BY theme, region"
    themes: dict[str, dict[str, int]] = {}
    for theme, region, count in views.read(sql, params):
        themes.setdefault(theme, dict.fromkeys(REGIONS, 0))[region] = int(count)
    ordered = sorted(themes.items(), key=lambda item: (-sum(item[1].values()), item[0]))
    rows = [
        {"theme": theme, "total": sum(by_region.values()), "by_region": by_region}
        for theme, by_region in ordered
    ]
    return {
        "year": year,
        "programme": None if programme is None else programme.value,
        "total": sum(sum(by_region.values()) for by_region in themes.values()),
        "themes": rows,
    }
