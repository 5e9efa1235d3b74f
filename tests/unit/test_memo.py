"""A figure is computed once per position of its projection, however many ask at once."""

from __future__ import annotations

import threading
import time

from overleg.projections.memo import Memo


def test_an_answer_is_kept_while_the_projection_stays_at_its_position() -> None:
    memo, computed = Memo(), []

    def compute(value: str) -> str:
        computed.append(value)
        return value

    assert memo.get("2015", 10, lambda: compute("a")) == "a"
    assert memo.get("2015", 10, lambda: compute("b")) == "a"  # kept
    assert memo.get("2015", 11, lambda: compute("c")) == "c"  # the projection moved on
    assert memo.get("2016", 11, lambda: compute("d")) == "d"  # another question
    assert computed == ["a", "c", "d"]


def test_many_asking_at_once_compute_a_missing_answer_once() -> None:
    memo, computed, answers = Memo(), [], []

    def slow() -> int:
        computed.append(1)
        time.sleep(0.05)
        return 42

    readers = [
        threading.Thread(target=lambda: answers.append(memo.get("k", 1, slow))) for _ in range(8)
    ]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    assert answers == [42] * 8
    assert computed == [1]
    assert not memo._computing  # nothing left behind per question


def test_only_the_most_recent_answers_are_kept() -> None:
    memo = Memo(size=2)
    for year in range(3):
        memo.get(year, 1, lambda year=year: year)
    assert memo.get(0, 1, lambda: -1) == -1  # the oldest was dropped
    assert memo.get(2, 1, lambda: -1) == 2


def test_a_peek_gives_a_kept_answer_without_computing_or_waiting() -> None:
    memo = Memo()
    assert memo.peek("2015", 10) is None  # nothing kept: nothing computed either
    memo.get("2015", 10, lambda: "a")
    assert memo.peek("2015", 10) == ("a",)
    assert memo.peek("2015", 11) is None  # the projection moved on
    with memo._lock:  # another thread looking at the answers: no wait
        assert memo.peek("2015", 10) is None


def test_an_answer_offered_is_kept_unless_the_answers_are_busy_and_clear_drops_all() -> None:
    memo = Memo()
    memo.offer("case", 7, "a")
    assert memo.peek("case", 7) == ("a",)
    with memo._lock:  # another thread looking at the answers: not kept, and no wait
        memo.offer("other", 7, "b")
    assert memo.peek("other", 7) is None
    memo.clear()
    assert memo.peek("case", 7) is None


def test_with_a_lifetime_an_answer_is_given_only_within_it_and_then_let_go() -> None:
    """Answers holding personal data (``Services.viewed``) stay no longer than the cases kept
    for readers: past its lifetime an answer is not given, and every answer past it is let
    go at the next use (looked for at most once a second)."""
    now = [100.0]
    memo = Memo(8, lifetime=60.0, clock=lambda: now[0])
    memo.offer("case-a", 1, "a")
    now[0] += 30
    memo.offer("case-b", 1, "b")
    assert memo.peek("case-a", 1) == ("a",)  # within its lifetime
    now[0] += 31  # a: 61 s, b: 31 s
    assert memo.peek("case-a", 1) is None  # past it: not given
    assert memo.peek("case-b", 1) == ("b",)
    assert len(memo._kept) == 1  # a let go
    now[0] += 30  # b: 61 s; nobody asks for it
    memo.offer("case-c", 1, "c")  # the next use lets it go all the same
    assert len(memo._kept) == 1 and memo.peek("case-c", 1) == ("c",)
    computed: list[str] = []
    now[0] += 61
    assert memo.get("case-c", 1, lambda: computed.append("c") or "c2") == "c2"  # again
    assert computed == ["c"]


def test_without_a_lifetime_answers_stay_as_long_as_they_are_among_the_most_recent() -> None:
    now = [0.0]
    memo = Memo(8, clock=lambda: now[0])
    memo.offer("2015", 3, "figures")
    now[0] += 10_000
    assert memo.peek("2015", 3) == ("figures",)
