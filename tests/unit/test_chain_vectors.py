"""The chain's links and digests are fixed by their definition (docs/integrity.md): a
store written by any earlier overleg must verify with every later one. These vectors were
computed when the links were first defined; a change to how they are computed that alters
a single byte fails here."""

from __future__ import annotations

from uuid import UUID

from overleg.adapters.chain import GENESIS, content_digest, link

CASE = UUID("6b2004b7-7287-5f7a-94d4-b2f72a32f66a")
FIRST = "c66f46359b9d4cbd58b2172fb964f3304692c87e93b473d71e1aa2a681ca6f5d"
SECOND = "cdfb41387556e46811d52c8d28e6e8439a754f103f41240ecc0815b2df08f593"
DIGEST = "f15fe57a991ab0be7703ed9b11572179d61103eda04b3c0a8708a2d1a4de66c3"


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
