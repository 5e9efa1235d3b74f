"""Shared fixtures: one event store per test, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import tempfile
import uuid

# The development keys and the default store of the commands the tests run (in this process
# and in every one it starts) live in a folder of this run, not in the developer's own.
os.environ.setdefault("XDG_DATA_HOME", tempfile.mkdtemp(prefix="overleg-tests-"))
# The commands speak English whatever the developer's locale; a test that wants Dutch asks.
os.environ["OVERLEG_LANGUAGE"] = "en"
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from overleg.adapters.eventstore import Database
from overleg.adapters.views import ViewStore
from overleg.aggregates.values import Channel, Client, Party, Programme, Region, Role
from overleg.api.answers import rendered
from overleg.api.schemas import CaseList
from overleg.application import CaseNotFound, Overleg
from overleg.commands import GiveConsent, SubmitRequest
from overleg.policies import access
from overleg.policies.access import Principal
from overleg.projections.bottlenecks import bottleneck_report
from overleg.projections.case_answer import case_out
from overleg.projections.case_view import view_of
from overleg.projections.statistics import annual_statistics

# The in-process API fixtures (settings, client, walk), for every test module that takes
# them; a module defines its own to differ.
pytest_plugins = ["api_client"]

POSTGRES_URL = os.environ.get(
    "OVERLEG_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# CI (and anyone who sets this) wants PostgreSQL tests to fail, never skip, without a server.
POSTGRES_REQUIRED = bool(os.environ.get("OVERLEG_REQUIRE_POSTGRES") or os.environ.get("CI"))
BACKENDS = ["sqlite", "postgresql"]


def _postgres_or_skip() -> Database:
    database = Database.from_url(POSTGRES_URL)
    try:
        with psycopg.connect(database.conninfo(), connect_timeout=5):
            pass
    except psycopg.OperationalError as error:
        message = f"PostgreSQL at {database.host}:{database.port} is not reachable: {error}"
        if POSTGRES_REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    return database


@pytest.fixture(autouse=True)
def _kept_cases_are_the_cases_their_events_make(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command that starts from the case the last command saved (``Overleg.drafts``)
    checks it against the case replayed from the store: the whole suite holds the two
    paths to the same case."""
    current = Overleg._current

    def checked(app: Overleg, case_id: uuid.UUID) -> Any:
        case = current(app, case_id)
        if case is not None:
            replayed = app.replay(case_id)[0]
            assert replayed is not None
            kept, stored = dict(vars(case)), dict(vars(replayed))
            kept.pop("_pending_events", None)
            stored.pop("_pending_events", None)
            assert kept == stored, f"case {case_id} kept differs from its events"
        return case

    monkeypatch.setattr(Overleg, "_current", checked)


@pytest.fixture(autouse=True)
def _answers_from_the_projections_are_the_answers_of_the_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every case and history answered from the projections instead of a replay
    (``_viewed_answer``, ``_trail_answer``, and on the event loop ``_viewed_on_loop``,
    ``_trail_on_loop``) checks its answer against the one the case's
    events give: the whole suite holds the two paths to the same answer, the same version
    and the same decision on who sees the case."""
    from overleg.api.routers import cases

    def folded(svc: Any, case_id: uuid.UUID, version: int | None = None) -> tuple[Any, list[Any]]:
        """The case its events make up to ``version`` (all: ``None``; a write since, another
        thread's, is not in it), and those events."""
        # Through the class: a test that counts the service's replays counts its own.
        events = Overleg.replay(svc.app, case_id)[1][:version]
        case = None
        for event in events:
            case = event.mutate(case)
        return case, events

    def events_then(svc: Any, who: Principal, case_id: uuid.UUID, version: int) -> list[Any]:
        """The case's events up to the version answered, once the caller is checked to see
        the case as they make it."""
        case, events = folded(svc, case_id, version)
        assert case is not None and access.sees(who, case), f"case {case_id} not to be seen"
        return events

    viewed, trailed = cases._viewed_answer, cases._trail_answer
    viewed_on_loop, trailed_on_loop = cases._viewed_on_loop, cases._trail_on_loop

    def view_replayed(svc: Any, who: Principal, case_id: uuid.UUID, answer: Any, today: Any) -> Any:
        view = view_of(events_then(svc, who, case_id, answer[0]))
        return view.version, cases.case_answer(view, today.date())

    def trail_replayed(svc: Any, who: Principal, case_id: uuid.UUID, answer: Any) -> Any:
        events = events_then(svc, who, case_id, answer[0])
        return len(events), cases._rendered_history(cases._history(events))

    def not_seen(svc: Any, who: Principal, case_id: uuid.UUID) -> None:
        """A case the projections answered not found for the caller: its events agree."""
        case, _ = folded(svc, case_id)
        assert case is None or not access.sees(who, case), f"case {case_id} refused to {who}"

    def refusal_checked(svc: Any, who: Principal, case_id: uuid.UUID, answering: Any) -> Any:
        try:
            return answering()
        except CaseNotFound:
            not_seen(svc, who, case_id)
            raise

    async def refusal_checked_on_loop(
        svc: Any, who: Principal, case_id: uuid.UUID, answering: Any
    ) -> Any:
        try:
            return await answering()
        except CaseNotFound:
            not_seen(svc, who, case_id)
            raise

    def checked_view(
        svc: Any, who: Principal, case_id: uuid.UUID, today: Any, *, at_once: bool = False
    ) -> Any:
        answer = refusal_checked(
            svc, who, case_id, lambda: viewed(svc, who, case_id, today, at_once=at_once)
        )
        if answer is not None:
            replayed = view_replayed(svc, who, case_id, answer, today)
            assert answer == replayed, f"case {case_id}: its view's answer differs from its events'"
        return answer

    def checked_trail(
        svc: Any, who: Principal, case_id: uuid.UUID, *, at_once: bool = False
    ) -> Any:
        answer = refusal_checked(
            svc, who, case_id, lambda: trailed(svc, who, case_id, at_once=at_once)
        )
        if answer is not None:
            replayed = trail_replayed(svc, who, case_id, answer)
            assert answer == replayed, f"case {case_id}: its trail differs from its events'"
        return answer

    async def checked_view_on_loop(svc: Any, who: Principal, case_id: uuid.UUID, today: Any) -> Any:
        answer, asked = await refusal_checked_on_loop(
            svc, who, case_id, lambda: viewed_on_loop(svc, who, case_id, today)
        )
        if answer is not None:
            replayed = view_replayed(svc, who, case_id, answer, today)
            assert answer == replayed, f"case {case_id}: its view's answer differs from its events'"
        return answer, asked

    async def checked_trail_on_loop(svc: Any, who: Principal, case_id: uuid.UUID) -> Any:
        answer, asked = await refusal_checked_on_loop(
            svc, who, case_id, lambda: trailed_on_loop(svc, who, case_id)
        )
        if answer is not None:
            replayed = trail_replayed(svc, who, case_id, answer)
            assert answer == replayed, f"case {case_id}: its trail differs from its events'"
        return answer, asked

    listed, listed_on_loop = cases._listed, cases._page_on_loop

    def page_checked(svc: Any, found: Any, today: Any) -> Any:
        """A page joined from the answers the case view keeps reads as the page rendered
        from each listed case's events (up to the version its answer names) would."""
        if found is None:
            return found
        cases_listed, body = found
        page = json.loads(body)
        items = []
        for item in page["items"]:
            _, events = folded(svc, uuid.UUID(item["case_id"]), item["version"])
            items.append(case_out(view_of(events), today.date()))
        expected = CaseList(
            items=items, total=page["total"], offset=page["offset"], limit=page["limit"]
        )
        assert body == rendered(expected), "a page differs from the one its cases' events make"
        assert cases_listed == [item["case_id"] for item in page["items"]]
        return found

    def checked_list(svc: Any, where: Any, offset: int, limit: int, today: Any) -> Any:
        return page_checked(svc, listed(svc, where, offset, limit, today), today)

    async def checked_list_on_loop(
        svc: Any, version: int, where: Any, offset: int, limit: int, today: Any
    ) -> Any:
        found = await listed_on_loop(svc, version, where, offset, limit, today)
        return page_checked(svc, found, today)

    monkeypatch.setattr(cases, "_listed", checked_list)
    monkeypatch.setattr(cases, "_page_on_loop", checked_list_on_loop)
    monkeypatch.setattr(cases, "_viewed_answer", checked_view)
    monkeypatch.setattr(cases, "_trail_answer", checked_trail)
    monkeypatch.setattr(cases, "_viewed_on_loop", checked_view_on_loop)
    monkeypatch.setattr(cases, "_trail_on_loop", checked_trail_on_loop)


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A URL of an empty event store: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'overleg.db'}"
        return
    server = _postgres_or_skip()
    schema = f"overleg_test_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}schema={schema}"
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture
def store(database_url: str) -> Iterator[Overleg]:
    """The application on an empty event store of each backend."""
    application = Overleg(Database.from_url(database_url))
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def projected(store: Overleg) -> Iterator[tuple[Overleg, ViewStore]]:
    """The application on an empty event store, and a connection to its projections."""
    views = ViewStore(store.database)
    try:
        yield store, views
    finally:
        views.close()


def reopen(database_url: str) -> Overleg:
    """A second, independent application on the same store (as another process would be)."""
    return Overleg(Database.from_url(database_url))


def consented(app: Overleg, case_id: uuid.UUID, team: Principal) -> int:
    """A case requested by a parent and consented to by its young client (Limburg,
    integrale jeugdhulp); its version."""
    app.handle(
        SubmitRequest(
            programme=Programme.INTEGRALE_JEUGDHULP,
            region=Region.LIMBURG,
            requested_by=Party("ouder-1", Role.PARENT),
            channel=Channel.PHONE,
            client=Client("jongere-1", None),
            question="Afstemming school en thuis",
            case_id=case_id,
        ),
        team,
    )
    return app.handle(GiveConsent(case_id, Party("jongere-1", Role.YOUTH)), team).version


def statistics_json(
    views: ViewStore, year: int, programme: Programme | None = None
) -> dict[str, Any]:
    """The annual statistics as the JSON the command prints and the API returns."""
    return annual_statistics(views, year, programme).model_dump(mode="json")


def bottlenecks_json(
    views: ViewStore, year: int, programme: Programme | None = None
) -> dict[str, Any]:
    """The bottleneck report as the JSON the command prints and the API returns."""
    return bottleneck_report(views, year, programme).model_dump(mode="json")


OUTCOME_KEYS = ("total", "pct", "by_region")


def v1_keys(figures: dict[str, Any]) -> dict[str, Any]:
    """The keys of contract v1's statistics, whatever contract v2 adds next to them."""
    meetings, registered = figures["meetings"], figures["fully_registered"]

    def outcome(name: str, *more: str) -> dict[str, Any]:
        return {key: registered[name][key] for key in (*OUTCOME_KEYS, *more)}

    return {
        "year": figures["year"],
        "programme": figures["programme"],
        "meetings": {
            key: meetings[key]
            for key in ("total", "first", "follow_up", "previous_year_total", "by_region")
        },
        "fully_registered": {
            "total": registered["total"],
            "youth_present": outcome("youth_present"),
            "parents_present": outcome("parents_present"),
            "workplans": outcome("workplans"),
            "coordinators": outcome("coordinators", "pct_of_workplans"),
        },
    }


def v2_additions(figures: dict[str, Any]) -> dict[str, Any]:
    """The keys contract v2 adds to the statistics."""
    return {
        "client_present": figures["fully_registered"]["client_present"],
        "planned_not_held": figures["meetings"]["planned_not_held"],
        "spilfiguur": figures["spilfiguur"],
        "bottlenecks_by_theme": figures["bottlenecks_by_theme"],
    }
