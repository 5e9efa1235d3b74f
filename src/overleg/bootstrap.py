"""The composition root: settings, stores, projector and token verifier, built once.

The service's lifespan, every ``overleg`` command and the tests build what they use here,
so each is put together the same way and ``Settings`` is read in this one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

from overleg.adapters.migrations import migrate
from overleg.adapters.records import ReadLog
from overleg.adapters.sealing import DEV_MASTER_KEYS, load_master_keys
from overleg.adapters.views import ViewStore
from overleg.adapters.watch import watch_for
from overleg.api.auth import TokenVerifier, dev_private_key, load_jwks, public_jwks
from overleg.application import REPLAY_LIFETIME, Clock, Overleg, utc_now
from overleg.logs import get_logger
from overleg.projections.memo import Memo
from overleg.projections.positions import PositionFeed
from overleg.projections.runner import ProjectionBehind, Projector
from overleg.projections.themes import BottleneckThemes, packaged
from overleg.projections.worker import BackgroundProjector
from overleg.settings import Settings

log = get_logger("overleg.bootstrap")

# Cases whose answer from the case view is kept (as many as the cases kept for readers).
VIEWED_KEPT = 256


def read_settings() -> Settings:
    """The configuration, from ``OVERLEG_*`` environment variables (the one place)."""
    return Settings()


def verifier_for(settings: Settings) -> TokenVerifier:
    """Production: the identity provider's key set (its URL, or a file). Development: the
    local key's public half."""
    if settings.jwks_url is not None:
        return TokenVerifier.from_url(settings.jwks_url, settings.jwt_issuer, settings.jwt_audience)
    if settings.jwks_file is not None:
        return TokenVerifier(
            load_jwks(settings.jwks_file), settings.jwt_issuer, settings.jwt_audience
        )
    jwks = public_jwks(dev_private_key(settings.dev_key_file))
    log.warning("development_tokens", detail="no OVERLEG_JWKS_FILE: accepting local dev tokens")
    return TokenVerifier(jwks, settings.jwt_issuer, settings.jwt_audience)


@dataclass
class Services:
    """Everything the service and the commands use, opened once and closed once."""

    settings: Settings
    app: Overleg
    views: ViewStore
    inline_projections: bool
    # The analysts' list of bottleneck themes the figures count under.
    themes: BottleneckThemes = field(default_factory=packaged)
    background: BackgroundProjector | None = None
    # The figures last computed, kept while their projection has not moved.
    figures: Memo = field(default_factory=Memo)
    # Pages of case lists last read, kept while the case view has not moved (at most as
    # long as the cases kept for readers: they hold personal data).
    pages: Memo = field(default_factory=lambda: Memo(lifetime=REPLAY_LIFETIME))
    # Cases last answered from the case view, kept while the log's head has not moved (at
    # most as long as the cases kept for readers: they hold personal data).
    viewed: Memo = field(default_factory=lambda: Memo(VIEWED_KEPT, lifetime=REPLAY_LIFETIME))
    _closed: bool = field(default=False, repr=False)

    @cached_property
    def projector(self) -> Projector:
        """Keeps the projections current (creates their tables when first needed)."""
        return Projector(self.app.event_log, self.views)

    @cached_property
    def reads(self) -> ReadLog:
        """Who read which case (auditors' read log)."""
        return ReadLog(self.views)

    @cached_property
    def verifier(self) -> TokenVerifier:
        """Verifies bearer tokens (built when first needed: only the service needs it)."""
        return verifier_for(self.settings)

    def fresh_views(self) -> ViewStore:
        """The projections, brought up to date first when this process keeps them."""
        if self.inline_projections:
            self.projector.catch_up()
        return self.views

    @cached_property
    def feed(self) -> PositionFeed | None:
        """The projections' positions as the worker announces them (PostgreSQL, when
        another process keeps the projections); None where there is nothing to follow."""
        if self.inline_projections or self.projector.moved_channel is None:
            return None
        return PositionFeed(self.projector, self.app.commands.events_table_name)

    def version_of(self, name: str) -> int:
        """What changes whenever projection ``name`` may have changed, for keys of answers
        kept (``figures``): in a process that keeps the projections current, the log's head
        its last catch-up reached (no query); where the worker announces its moves, the
        position last announced (a query only after a move); else the stored position."""
        if self.inline_projections and self.projector.current is not None:
            return self.projector.current
        if self.feed is not None:
            return self.feed.position(name)
        return self.projector.position(name)

    def known_version_of(self, name: str) -> int | None:
        """``version_of(name)`` when it is known without waiting: where the worker's
        announcements are followed and none is pending, and the projection is not further
        behind the head read with it than ``current_version_of`` allows; or where this process
        keeps the projections and they hold the log's head (``head_in_views``). Else
        ``None`` (a thread asks, and refuses a projection far behind)."""
        if self.inline_projections:
            return self.head_in_views()
        if self.feed is None:
            return None
        known = self.feed.known(name)
        if known is None or known[1] > self.settings.ready_max_lag:
            return None
        return known[0]

    def current_version_of(self, name: str) -> int:
        """``version_of(name)``, refusing a projection further behind the log's head than
        ``OVERLEG_READY_MAX_LAG`` (the bound of readiness) with ``ProjectionBehind``:
        answers read from it now would leave out what it has not applied yet, and be taken
        for the whole. Where this process keeps the projections they were caught up before
        (``fresh_views``): never refused. Where the worker keeps them, the position and the
        head are read together (``PositionFeed``; else asked of the store)."""
        if self.inline_projections:
            return self.version_of(name)
        if self.feed is not None:
            version, behind = self.feed.position_and_lag(name)
        else:
            version = self.projector.position(name)
            behind = max(0, self.app.event_log.head() - version)
        if behind > self.settings.ready_max_lag:
            raise ProjectionBehind(name, behind, self.settings.ready_max_lag)
        return version

    def head_in_views(self) -> int | None:
        """The log's head, when the projections are known, without waiting, to hold every
        event up to it: where this process keeps them current (SQLite), and the store's
        watch says the head is one that a whole catch-up of this process reached (the
        service's own, or its projections thread's) and saw applied (``watch_writes``).
        Else ``None``."""
        if not self.inline_projections or self.app.writes is None:
            return None
        head = self.app.writes.head_now()
        if head is None:
            return None
        own = self.__dict__.get("projector")  # only if made: making it writes (its set-up)
        reached = [None if own is None else own.current]
        if self.background is not None:
            reached.append(self.background.projector.current)
        return head if head in reached else None

    def watch_writes(self) -> None:
        """Let a case kept for readers be answered without asking the store while its watch
        says nothing was written since (``adapters/watch.py``): for the service's event
        loop (``Overleg.known_read``)."""
        if self.app.writes is None:
            table = self.app.commands.events_table_name
            self.app.writes = watch_for(self.app.database, self.app.event_log.channel, table)
            if self.app.writes is not None:
                self.app.writes.mark()  # listening from the start (PostgreSQL)

    def close(self) -> None:
        """Stop the projections' thread and close every connection."""
        if self._closed:
            return
        self._closed = True
        if self.background is not None:
            self.background.close()
        feed = self.__dict__.get("feed")  # only if it was made
        if feed is not None:
            feed.close()
        reads = self.__dict__.get("reads")
        if reads is not None:
            reads.close()
        if self.app.writes is not None:
            self.app.writes.close()
        self.views.close()
        self.app.close()


def bootstrap(
    settings: Settings | None = None,
    *,
    follow: bool = False,
    clock: Clock = utc_now,
) -> Services:
    """Open the event store and the projections of ``settings`` (read from the environment
    when not given). ``follow``: keep the projections current in a thread of this process,
    when the settings say this process does that (``OVERLEG_PROJECTIONS``)."""
    settings = settings or read_settings()
    # Read first: a list that cannot be read stops the start (ThemesFileError), not a query.
    themes = BottleneckThemes.load(settings.bottleneck_themes_file)
    database = replace(settings.database(), timeout=settings.store_timeout)
    masters = load_master_keys(
        settings.master_keys.get_secret_value() if settings.master_keys else None,
        settings.master_keys_file,
        DEV_MASTER_KEYS,
    )
    app = Overleg(database, clock=clock, v2_from=settings.v2_from, masters=masters)
    views: ViewStore | None = None
    try:
        views = ViewStore(app.database)
        migrate(views)  # a store migrated by a newer overleg stops the start (SchemaTooNew)
        inline = settings.projections_inline(app.database.backend)
        services = Services(
            settings=settings,
            app=app,
            views=views,
            inline_projections=inline,
            themes=themes,
        )
        if follow and inline:
            # Its own connection: the thread writes while requests read.
            services.background = BackgroundProjector(
                Projector(app.event_log, ViewStore(app.database))
            )
            services.background.start()
    except BaseException:
        if views is not None:
            views.close()
        app.close()
        raise
    return services
