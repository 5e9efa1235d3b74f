"""The import benchmark's floors run, and the validated one checks every line against the
contract as `overleg import` does: a line the contract refuses stops it, as it stops the
import, where the floor that only parses takes it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from bench_import import _parsed, _validated, sealed_baseline, write_stream


def test_both_floors_seal_the_same_lines_and_only_the_validated_one_checks_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "stream.jsonl"
    lines = write_stream(path, 20)
    assert lines > 20
    for validate in (False, True):
        assert sealed_baseline("sqlite", path, tmp_path, validate=validate) > 0
    first = path.read_bytes().splitlines()[0]
    case, seq, kind, _at, by, _data = _parsed(first)
    assert _validated(first)[:3] == (case, seq, kind) and _validated(first)[4] == by

    wrong = json.loads(first)
    wrong["seq"] = 0  # the contract's seqs start at 1
    path.write_text(json.dumps(wrong) + "\n", encoding="utf-8")
    assert sealed_baseline("sqlite", path, tmp_path) > 0
    with pytest.raises(ValidationError):
        sealed_baseline("sqlite", path, tmp_path, validate=True)
