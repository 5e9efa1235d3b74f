"""Commands' writes, committed in groups.

A store has one writer at a time: SQLite has one writer, and on PostgreSQL writers take
turns at the events' table lock, which keeps the notification order free of gaps
(``recorders.py``). Each commit waits for the disk. While one command's events are being
written, the commands of this process that arrive queue; the next writer takes every queued
command (at most ``GROUP_MOST``) and writes them in one transaction, each in a savepoint of
its own (``insert_group`` of each recorder): one refused (its version or its key already
taken) leaves the others stored, and nothing of it. On PostgreSQL a group takes the table
lock once, for its one commit: other processes' writers wait for it once a group.

Each command's caller waits for its own answer, which it gets only once the group has
committed: no command is answered before it is on disk, and a failed commit fails every
command of its group (nothing of any was stored; or, when the commit's answer was lost, the
outcome of each is unknown and settled as a single command's is).

A command that waits alone is written alone: one writer at a time, as before, so a quiet
store commits each command at once.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import StoredEvent

from overleg.metrics import COMMANDS_PER_COMMIT

# The most commands one transaction writes: a group's commit answers them all at once, and a
# long group would make its first command wait for the last.
GROUP_MOST = 64


@dataclass(eq=False)
class Write:
    """One command's events and their extra columns (its command-log entry), to be written;
    once ``done`` is set, ``error`` is what refused it (``None``: stored and committed)."""

    stored: Sequence[StoredEvent]
    extra: dict[str, Any]
    error: BaseException | None = None
    taken: bool = False  # a writer has it: its answer will come, whatever the wait
    done: threading.Event = field(default_factory=threading.Event)


class GroupWriter:
    """Writes commands one group at a time, the group being whatever queued meanwhile."""

    def __init__(self, write: Callable[[Sequence[Write]], None], most: int = GROUP_MOST) -> None:
        self._write = write  # writes a group in one transaction, setting each one's error
        self._most = most
        self._queue: deque[Write] = deque()
        self._queued = threading.Lock()
        self._writer = threading.Lock()

    @property
    def waiting(self) -> int:
        """How many commands wait for a writer to take them."""
        with self._queued:
            return len(self._queue)

    def write(self, item: Write, timeout: float) -> bool:
        """Write ``item`` with whatever else is waiting; ``False`` when no writer took it
        within ``timeout`` seconds (nothing of it is written). Raises what refused it."""
        with self._queued:
            self._queue.append(item)
        if self._writer.acquire(timeout=max(0.0, timeout)):
            try:
                while not item.done.is_set():
                    self._write_next()
            finally:
                self._writer.release()
        else:
            with self._queued:
                if not item.taken:
                    self._queue.remove(item)
                    return False
            item.done.wait()  # being written now, in another command's group
        if item.error is not None:
            raise item.error
        return True

    def _write_next(self) -> None:
        """Write the next group, holding the writer's lock."""
        with self._queued:
            group = [self._queue.popleft() for _ in range(min(self._most, len(self._queue)))]
            for each in group:
                each.taken = True
        try:
            self._write(group)
        except BaseException as failed:  # the commit's: none of the group is stored
            for each in group:
                each.error = failed
        finally:
            COMMANDS_PER_COMMIT.observe(len(group))
            for each in group:
                each.done.set()
