"""``Recent`` keeps the entries put or touched last, at most its size, and gives back the
one it lets go: against a plain list of keys, oldest use first, under any sequence of uses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from overleg.adapters.recent import Recent

KEYS = st.integers(min_value=0, max_value=6)
USES = st.lists(
    st.tuples(st.sampled_from(["get", "touch", "put", "pop"]), KEYS, st.integers()), max_size=60
)


@given(size=st.integers(min_value=1, max_value=4), uses=USES)
def test_recent_keeps_what_was_used_last(size: int, uses: list[tuple[str, int, int]]) -> None:
    recent: Recent[int, int] = Recent(size)
    order: list[int] = []  # the keys kept, the one used longest ago first
    values: dict[int, int] = {}
    for use, key, value in uses:
        if use == "get":
            assert recent.get(key) == values.get(key)
        elif use == "touch":
            assert recent.touch(key) == values.get(key)
            if key in values:
                order.remove(key)
                order.append(key)
        elif use == "put":
            if key in values:
                order.remove(key)
            order.append(key)
            values[key] = value
            expected = []
            while len(order) > size:
                oldest = order.pop(0)
                expected.append((oldest, values.pop(oldest)))
            assert recent.put(key, value) == expected
        else:
            assert recent.pop(key) == values.pop(key, None)
            if key in order:
                order.remove(key)
        assert len(recent) == len(order) <= size
        assert all(k in recent for k in order)
    recent.clear()
    assert len(recent) == 0


def test_recent_keeps_at_least_one_entry() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Recent(0)
