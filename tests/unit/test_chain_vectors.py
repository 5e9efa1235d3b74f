"""The chain's links and digests are fixed by their definition (docs/integrity.md): a
store written by any earlier overleg must verify with every later one. These vectors were
computed when the links were first defined; a change to how they are computed that alters
a single byte fails here."""

from __future__ import annotations

import hashlib
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from overleg.adapters.chain import GENESIS, Head, MerkleRoot, content_digest, link, merkle_root

CASE = UUID("6b2004b7-7287-5f7a-94d4-b2f72a32f66a")
FIRST = "c66f46359b9d4cbd58b2172fb964f3304692c87e93b473d71e1aa2a681ca6f5d"
SECOND = "cdfb41387556e46811d52c8d28e6e8439a754f103f41240ecc0815b2df08f593"
DIGEST = "f15fe57a991ab0be7703ed9b11572179d61103eda04b3c0a8708a2d1a4de66c3"
ROOT = "219ef0bc95118a80c4c19a73bc43057350756343cf992266a7c6a6437dd31284"  # of heads(5)


def heads(count: int) -> list[Head]:
    """Heads of ``count`` cases, in case order."""
    made = [
        Head(str(UUID(int=i * 7919 + 1)), i + 1, hashlib.sha256(bytes([i % 256])).digest())
        for i in range(count)
    ]
    return sorted(made, key=lambda h: h.case_id)


def test_links_are_as_they_were_defined() -> None:
    first = link(GENESIS, CASE, 1, "overleg.case.requested.v1", b'{"a":1}')
    assert first.hex() == FIRST
    # The case id as text and the stored bytes as a view give the same link.
    second = link(
        first,
        str(CASE),
        2,
        "overleg.case.chair_appointed.v1",
        memoryview(b'{"chair":"voorzitter-1"}'),
    )
    assert second.hex() == SECOND


def test_content_digests_are_as_they_were_defined() -> None:
    assert content_digest("overleg.case.requested.v1", b'{"a":1}').hex() == DIGEST


def test_checkpoint_roots_are_as_they_were_defined() -> None:
    assert merkle_root(heads(5)).hex() == ROOT
    assert merkle_root(reversed(heads(5))).hex() == ROOT  # in case order, however given
    assert merkle_root([]) == GENESIS


def streamed(given: list[Head]) -> MerkleRoot:
    root = MerkleRoot()
    for head in given:
        root.add(head)
    return root


@given(st.integers(0, 140))
def test_a_root_made_one_head_at_a_time_is_the_root_of_all(count: int) -> None:
    """Every shape of tree: a level of an odd number of nodes, at any height."""
    made = streamed(heads(count))
    assert (made.root(), made.count) == (merkle_root(heads(count)), count)


def test_a_root_made_one_head_at_a_time_needs_them_in_case_order() -> None:
    first, second = heads(2)
    with pytest.raises(ValueError, match="comes after"):
        streamed([second, first])
    with pytest.raises(ValueError, match="comes after"):
        streamed([first, first])
