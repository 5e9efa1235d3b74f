"""Tamper evidence: a hash chain per case over the stored events, and checkpoints over all.

Every stored event gets a *link*: SHA-256 over the previous link of its case (32 zero bytes
before the first event) and the event exactly as stored (case id, seq, topic, the stored
bytes). Links are written in the transaction of their events, in a table of their own
(``event_chain``), so an event changed, removed or moved in the database no longer matches
its link, and a link changed to match needs every later link of the case changed too.

A *checkpoint* (``event_checkpoint``) is the Merkle root over the last link of every case at
one position of the log, with that position and the number of cases. Checkpoints are kept
apart from the events and can be copied out of the store (``overleg checkpoint`` prints the
root): a history rewritten as a whole, links included, no longer gives the root that was
recorded before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

GENESIS = bytes(32)
_DOMAIN = b"overleg.event-chain.v1\x00"
_LEAF = b"overleg.checkpoint.leaf\x00"
_NODE = b"overleg.checkpoint.node\x00"


def link(previous: bytes, case_id: UUID | str, seq: int, topic: str, state: bytes) -> bytes:
    """The link of one stored event: its content and the link before it, hashed."""
    digest = hashlib.sha256(_DOMAIN)
    digest.update(previous)
    for part in (str(case_id).encode(), str(seq).encode(), topic.encode()):
        digest.update(len(part).to_bytes(4, "big"))
        digest.update(part)
    digest.update(len(state).to_bytes(8, "big"))
    digest.update(bytes(state))
    return digest.digest()


def content_digest(topic: str, state: bytes) -> bytes:
    """A digest of an event's content alone (kept beside its link, so that a check can tell
    an event changed from one moved to another place)."""
    return hashlib.sha256(topic.encode() + b"\x00" + bytes(state)).digest()


@dataclass(frozen=True)
class Head:
    """The last link of one case at some position of the log."""

    case_id: str
    seq: int
    link: bytes


def merkle_root(heads: Iterable[Head]) -> bytes:
    """The Merkle root over the heads of every case, in case order (zero bytes for none).

    Each level pairs its nodes in order; a level of an odd number repeats its last node."""
    level = [_leaf(h) for h in sorted(heads, key=lambda h: h.case_id)]
    if not level:
        return GENESIS
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [_node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


class MerkleRoot:
    """``merkle_root`` of heads given one at a time, in case order, keeping one node per
    level of the tree (a few KiB for any number of cases) instead of every head."""

    def __init__(self) -> None:
        self.count = 0
        self._waiting: list[bytes | None] = []  # per level, a left node without its right one
        self._last: str | None = None

    def add(self, head: Head) -> None:
        if self._last is not None and head.case_id <= self._last:
            raise ValueError(f"case {head.case_id} comes after case {self._last}")
        self._last = head.case_id
        self.count += 1
        node, height = _leaf(head), 0
        while height < len(self._waiting) and (left := self._waiting[height]) is not None:
            node = _node(left, node)
            self._waiting[height] = None
            height += 1
        if height == len(self._waiting):
            self._waiting.append(node)
        else:
            self._waiting[height] = node

    def root(self) -> bytes:
        """The root over the heads added: each level's odd last node is repeated, as in
        ``merkle_root``; ``last`` is the level's last node made from the ones below it."""
        if not self.count:
            return GENESIS
        last: bytes | None = None
        size, height = self.count, 0
        while size > 1:
            left = self._waiting[height] if height < len(self._waiting) else None
            if left is not None:
                last = _node(left, left if last is None else last)
            elif last is not None:
                last = _node(last, last)
            size, height = (size + 1) // 2, height + 1
        if last is not None:
            return last
        top = self._waiting[height]
        assert top is not None
        return top


def _leaf(head: Head) -> bytes:
    return hashlib.sha256(
        _LEAF + head.case_id.encode() + b"\x00" + str(head.seq).encode() + b"\x00" + head.link
    ).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


@dataclass(frozen=True)
class Checkpoint:
    """A recorded Merkle root over every case's head at a position of the log."""

    number: int
    made_at: str
    position: int
    cases: int
    root: bytes


def links_of(
    previous: dict[str, bytes], events: Sequence[tuple[str, int, str, bytes]]
) -> list[tuple[str, int, bytes, bytes]]:
    """The links (and content digests) of events in recorded order, each case continuing
    from ``previous`` (its last link before these, absent for a case that starts here);
    ``previous`` is updated."""
    made = []
    for case_id, seq, topic, state in events:
        new = link(previous.get(case_id, GENESIS), case_id, seq, topic, state)
        previous[case_id] = new
        made.append((case_id, seq, new, content_digest(topic, state)))
    return made
