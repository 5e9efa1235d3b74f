"""Readers get a case replayed once per version: never an old version (a write of another
process included), never personal data kept after an erasure or for longer than a data key."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from uuid import UUID

import pytest

from conftest import reopen
from overleg.application import Overleg, Replays
from overleg.commands import EraseCase
from overleg.policies.access import Operator
from overleg.streams import import_stream

SAMPLE = Path(__file__).parents[2] / "samples" / "sample-stream.jsonl"


def _longest_case() -> tuple[UUID, list[str]]:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    by_case: defaultdict[str, list[str]] = defaultdict(list)
    for line in lines:
        by_case[json.loads(line)["case"]].append(line)
    case, own = max(by_case.items(), key=lambda item: len(item[1]))
    return UUID(case), own


def test_a_case_is_replayed_again_only_when_its_version_changed(
    store: Overleg, database_url: str
) -> None:
    case_id, lines = _longest_case()
    half = len(lines) // 2
    import_stream(store, lines[:half])
    first = store.read(case_id)
    assert first is not None and first.version == half
    assert store.read(case_id) is first  # unchanged: kept
    assert first.derived("n", lambda: len(first.events)) == half
    assert first.derived("n", lambda: -1) == half  # derived once per version

    other = reopen(database_url)  # another process writes the rest of the case
    try:
        import_stream(other, lines[half:])
    finally:
        other.close()
    now = store.read(case_id)
    assert now is not None and now is not first
    assert now.version == len(lines) == len(now.events)
    assert now.case.version == len(lines)
    assert store.read(UUID(int=7)) is None


def test_a_case_not_kept_is_read_once_and_a_kept_one_only_checked(
    store: Overleg, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id, lines = _longest_case()
    import_stream(store, lines)
    asked: list[str] = []
    for name in ("case_version", "select_case"):
        real = getattr(store.recorder, name)
        monkeypatch.setattr(
            store.recorder, name, lambda *a, _r=real, _n=name, **k: asked.append(_n) or _r(*a, **k)
        )
    store.replays.forget(case_id)
    cold = store.read(case_id)
    assert cold is not None and cold.version == len(lines)
    assert asked == ["select_case"]  # no version to check: nothing kept
    asked.clear()
    assert store.read(case_id) is cold
    assert asked == ["case_version"]  # kept: only its version checked


def test_an_erased_case_is_read_again_in_its_erased_form(store: Overleg) -> None:
    case_id, lines = _longest_case()
    import_stream(store, lines)
    before = store.read(case_id)
    assert before is not None
    store.handle(EraseCase(case_id, "request of the client"), Operator("operator-1"))
    assert store.replays.get(case_id, before.version) is None  # not kept a moment longer
    after = store.read(case_id)
    assert after is not None and after is not before
    assert after.case.erased_at is not None
    assert after.case.client_ref.startswith("erased:")


def test_a_kept_case_is_dropped_after_its_lifetime_and_beyond_the_size() -> None:
    kept = Replays(size=2, lifetime=60.0)
    for n in range(3):
        kept.keep(UUID(int=n), _FakeReplay(1))  # type: ignore[arg-type]
    assert kept.get(UUID(int=0), 1) is None  # the oldest went beyond the size
    assert kept.get(UUID(int=2), 1) is not None
    assert kept.get(UUID(int=2), 2) is None  # another version is not the kept one
    expiring = Replays(size=2, lifetime=0.0)
    expiring.keep(UUID(int=1), _FakeReplay(1))  # type: ignore[arg-type]
    assert expiring.get(UUID(int=1), 1) is None  # its lifetime is over
    expiring.keep(UUID(int=2), _FakeReplay(1))  # type: ignore[arg-type]
    expiring.get(UUID(int=3), 1)  # a read of any other case drops it too
    assert not expiring._kept


class _FakeReplay:
    def __init__(self, version: int) -> None:
        self.version = version
