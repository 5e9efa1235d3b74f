"""The analysts' list of bottleneck themes: every reported theme counts under a listed one or
as ``andere``, so figures never show a theme as it was typed."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from overleg.i18n import _

# Where a theme not on the list is counted.
OTHER = "andere"
# The list that comes with overleg (package data of ``overleg.policies``).
PACKAGED = "bottleneck_themes.txt"


class ThemesFileError(ValueError):
    """The list of bottleneck themes cannot be read."""


def _key(theme: str) -> str:
    return theme.strip().casefold()


@dataclass(frozen=True)
class BottleneckThemes:
    """The listed themes, in the list's order; matching ignores case and surrounding spaces."""

    listed: tuple[str, ...]
    _by_key: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_key: dict[str, str] = {}
        for theme in self.listed:
            by_key.setdefault(_key(theme), theme)
        object.__setattr__(self, "_by_key", by_key)

    @property
    def names(self) -> tuple[str, ...]:
        """Every theme a figure can show: the listed ones, then ``andere``."""
        return self.listed if OTHER in self.listed else (*self.listed, OTHER)

    def theme_of(self, reported: str) -> str:
        """The listed theme a reported one names, or ``andere``."""
        return self._by_key.get(_key(reported), OTHER)

    def named(self, name: str) -> str | None:
        """The theme a figure name means (any case), or ``None`` when it is none of them."""
        key = _key(name)
        return next((theme for theme in self.names if _key(theme) == key), None)

    @classmethod
    def parse(cls, text: str) -> BottleneckThemes:
        """One theme a line; ``#`` starts a comment; blank lines are skipped."""
        themes: list[str] = []
        for line in text.splitlines():
            theme = line.split("#", 1)[0].strip().lower()
            if theme and theme not in themes:
                themes.append(theme)
        return cls(tuple(themes))

    @classmethod
    def load(cls, path: Path | None = None) -> BottleneckThemes:
        """The list in ``path``; ``None``: the list that comes with overleg."""
        if path is None:
            return packaged()
        try:
            return cls.parse(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            why = (
                (error.strerror or type(error).__name__)
                if isinstance(error, OSError)
                else _("it is not UTF-8 text")
            )
            raise ThemesFileError(
                _("Cannot read the bottleneck themes file {path}: {why}", path=str(path), why=why)
            ) from None


def packaged() -> BottleneckThemes:
    """The list of themes that comes with overleg."""
    text = resources.files("overleg.policies").joinpath(PACKAGED).read_text(encoding="utf-8")
    return BottleneckThemes.parse(text)
