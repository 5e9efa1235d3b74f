"""How long work reports its progress: to a progress bar on a terminal, or to nobody."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives progress of a long import, export or rebuild (a progress bar, or nothing).

    A phase's ``description`` names it (``validating``, ``writing``, ``projecting``); a
    progress bar shows that name in the user's language."""

    def phase(self, description: str, total: int | None) -> None: ...
    def advance(self, amount: int) -> None: ...


class Silent:
    """Progress nobody watches."""

    def phase(self, description: str, total: int | None) -> None:
        return None

    def advance(self, amount: int) -> None:
        return None
