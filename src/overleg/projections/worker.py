"""Following the event store: catch up from the stored positions, then apply new events live.

On PostgreSQL the worker sleeps on the event store's notification channel (LISTEN) and
wakes as soon as events are written; every ``poll`` seconds it looks anyway. SQLite has no
notifications, so there it looks every ``poll`` seconds.
"""

from __future__ import annotations

import threading
import time

import psycopg
from psycopg import sql

from overleg.adapters.views import APPLICATION_NAME
from overleg.logs import get_logger
from overleg.projections.runner import Projector

log = get_logger("overleg.worker")

# The longest pause before trying again after a failure. Short, so that projections are
# current again soon after the store is back (a pause doubling up to 30 s left them stale
# for up to a minute after a 5 s outage); a log line every 2 s while it is away is no burden.
MAX_PAUSE = 2.0


class Waker:
    """Waits until new events may have been written, or ``poll`` seconds have passed."""

    def __init__(self, projector: Projector, poll: float) -> None:
        self.poll = poll
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        database = projector.views.database
        channel = projector.reader.channel
        if database.backend == "postgresql" and channel:
            self._conn = psycopg.connect(
                database.conninfo(), autocommit=True, application_name=APPLICATION_NAME
            )
            self._conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    def wait(self, stop: threading.Event) -> None:
        if self._conn is None:
            stop.wait(self.poll)
            return
        for _ in self._conn.notifies(timeout=self.poll, stop_after=1):
            pass

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def follow(projector: Projector, stop: threading.Event, poll: float = 1.0) -> None:
    """Keep the projections current until ``stop`` is set.

    When the store cannot be reached, or an event cannot be applied, the error is logged
    and the work tried again after a growing pause (up to ``MAX_PAUSE``): a worker outlives
    a database restart, and a projection never silently stops.
    """
    waker: Waker | None = None
    failures = 0
    caught_up = False
    try:
        while not stop.is_set():
            try:
                if waker is None:
                    waker = Waker(projector, poll)
                elif caught_up:
                    waker.wait(stop)
                    if stop.is_set():
                        break
                started = time.perf_counter()
                applied = projector.catch_up()
                seconds = time.perf_counter() - started
                # Read here, where a store gone away meanwhile is one more failure to wait
                # out, not the end of the worker.
                positions = projector.positions() if applied or not caught_up else {}
            except Exception as error:  # logged, and tried again
                failures += 1
                pause = min(MAX_PAUSE, poll * 2 ** min(failures, 6))
                log.error(
                    "catch_up_failed",
                    error_type=type(error).__name__,
                    failures=failures,
                    retry_in_seconds=round(pause, 2),
                )
                if waker is not None:
                    waker.close()
                    waker = None
                stop.wait(pause)
                continue
            failures = 0
            if not caught_up:
                caught_up = True
                log.info(
                    "caught_up", events=applied, seconds=round(seconds, 3), positions=positions
                )
            elif applied:
                log.info("applied", events=applied, positions=positions)
    finally:
        if waker is not None:
            waker.close()
        log.info("stopped")


class BackgroundProjector:
    """Runs ``follow`` in a thread of this process (the embedded SQLite set-up).

    It owns the projector's view connection and closes it when it stops.
    """

    def __init__(self, projector: Projector, poll: float = 0.2) -> None:
        self.projector = projector
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(projector, poll), name="overleg-projections", daemon=True
        )

    def _run(self, projector: Projector, poll: float) -> None:
        try:
            follow(projector, self.stop, poll)
        except BaseException as error:  # kept for the owner to see; the thread ends
            self.error = error
            log.exception("projections_failed")

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=30)
        self.projector.views.close()
