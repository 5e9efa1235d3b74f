"""What a process keeps in memory up to a number of entries: the ones used last.

Data keys, cases' last links, read sets, an import's cases and the figures' answers are each
kept so, each with its own bound; ``Recent`` is that one rule, written once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """At most ``size`` entries: those put or touched last. Putting one more lets the one
    used longest ago go, and gives it back (for an owner that keeps it elsewhere).

    Not locked: an owner whose threads share it holds its own lock around each use."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a Recent keeps at least one entry, not {size}")
        self.size = size
        self._kept: OrderedDict[K, V] = OrderedDict()  # the one used longest ago first

    def get(self, key: K) -> V | None:
        """The entry kept under ``key``, as used as it was (its place unchanged)."""
        return self._kept.get(key)

    def touch(self, key: K) -> V | None:
        """The entry kept under ``key``, now the one used last."""
        found = self._kept.get(key)
        if found is not None:
            self._kept.move_to_end(key)
        return found

    def put(self, key: K, value: V) -> list[tuple[K, V]]:
        """Keep ``value`` under ``key``, as the one used last; the entries let go to stay
        within ``size`` (none, or the one used longest ago)."""
        self._kept[key] = value
        self._kept.move_to_end(key)
        gone: list[tuple[K, V]] = []
        while len(self._kept) > self.size:
            gone.append(self._kept.popitem(last=False))
        return gone

    def pop(self, key: K) -> V | None:
        """Let the entry under ``key`` go; the entry, if there was one."""
        return self._kept.pop(key, None)

    def items(self) -> list[tuple[K, V]]:
        """Every entry, the one used longest ago first (a copy: the owner may let some go
        while it looks through them)."""
        return list(self._kept.items())

    def clear(self) -> None:
        self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)

    def __contains__(self, key: object) -> bool:
        return key in self._kept
