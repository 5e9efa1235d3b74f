"""Where a developer's local files live."""

from __future__ import annotations

import os
from pathlib import Path


def development_home() -> Path:
    """The one place of a developer's local files: the development signing key, the
    development master key and the default SQLite store (``$XDG_DATA_HOME/overleg``, else
    ``~/.local/share/overleg``), whatever folder a command is run from."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "overleg"


DEV_HOME = development_home()
