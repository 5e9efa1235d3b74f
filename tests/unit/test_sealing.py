"""Master keys as the configuration gives them, sealed parts bound to their place, and the
erased form of a personal part."""

from __future__ import annotations

import base64

import pytest

from overleg.adapters.sealing import (
    SEALED,
    KeyProblem,
    MasterKeyError,
    MasterKeys,
    is_sealed,
    open_sealed,
)
from overleg.aggregates.personal import ERASED_TEXT, Pseudonyms, erased_form

CASE = "7d1d6a0e-5b0b-4f4c-9d3e-1f2a3b4c5d6e"
KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no master key"),
        ("k1", "ID:BASE64"),
        (":" + KEY, "ID:BASE64"),
        ("k1:not*base64", "not base64"),
        ("k1:" + base64.urlsafe_b64encode(b"short").decode(), "32 bytes, not 5"),
        (f"k1:{KEY},k1:{KEY}", "same id"),
    ],
)
def test_a_master_key_the_configuration_gets_wrong_is_named(text: str, says: str) -> None:
    with pytest.raises(MasterKeyError, match=says):
        MasterKeys.parse(text, "OVERLEG_MASTER_KEYS")


def test_keys_one_a_line_with_comments_the_first_current() -> None:
    keys = MasterKeys.parse(f"# rotated 2026-11\nnew:{KEY}\nold:{KEY}  # retire soon\n", "file")
    assert keys.current.id == "new" and set(keys.keys) == {"new", "old"}
    assert MasterKeys.parse(MasterKeys.generate("x"), "t").current.id == "x"


def test_a_data_key_is_bound_to_its_case_and_opens_with_any_listed_master_key() -> None:
    old = MasterKeys.parse(MasterKeys.generate("old"), "t")
    new = MasterKeys([MasterKeys.parse(MasterKeys.generate("new"), "t").current, old.current])
    master, wrapped = old.wrap(CASE, b"k" * 32)
    assert new.unwrap(CASE, master, wrapped) == b"k" * 32
    with pytest.raises(KeyProblem, match="does not open"):
        new.unwrap("another-case", master, wrapped)
    with pytest.raises(KeyProblem, match="does not have"):
        new.unwrap(CASE, "gone", wrapped)


def test_a_sealed_part_opens_only_at_its_own_case_and_seq() -> None:
    from overleg.adapters.sealing import Keyring, KeyRow, Opening

    class Store:
        def select_keys(self, case_ids: object) -> dict[str, KeyRow]:
            return {}

        def select_erased(self, case_ids: object) -> dict[str, dict[int, dict[str, object]]]:
            return {}

    ring = Keyring(MasterKeys.parse(MasterKeys.generate("k"), "t"))
    ring.store = Store()
    sealed = ring.seal(CASE, 3, {"ref": "jongere-1"})
    assert is_sealed(sealed) and sealed.startswith(SEALED) and "jongere-1" not in sealed
    key = ring.pending([CASE])[0]
    assert key[0] == CASE
    data_key = ring._fresh[CASE][0]
    assert open_sealed(data_key, CASE, 3, sealed) == {"ref": "jongere-1"}
    with pytest.raises(KeyProblem):
        open_sealed(data_key, CASE, 4, sealed)  # moved to another seq
    with pytest.raises(KeyProblem):
        open_sealed(b"x" * 32, CASE, 3, sealed)  # another key
    assert Opening(None, None).erased is None


def test_the_erased_form_keeps_shape_roles_and_who_is_who() -> None:
    pseudonyms = Pseudonyms()
    requested = erased_form(
        {
            "requester_ref": "ouder-1",
            "client_ref": "jongere-1",
            "client_birth_date": "2010-01-02",
            "question": "Hulp bij school",
        },
        pseudonyms,
    )
    assert requested == {
        "requester_ref": "erased:1",
        "client_ref": "erased:2",
        "client_birth_date": None,
        "question": ERASED_TEXT,
    }
    planned = erased_form(
        {
            "place": "Thuis",
            "invited": [{"ref": "jongere-1", "role": "youth"}, {"ref": "hv-1", "role": "service"}],
            "not_invited": ["ouder-1"],
            "agreements": [{"who": "hv-1", "what": "x", "due": "2026-01-01", "domain": None}],
            "coordinator": None,
        },
        pseudonyms,
    )
    assert planned == {
        "place": ERASED_TEXT,
        "invited": [{"ref": "erased:2", "role": "youth"}, {"ref": "erased:3", "role": "service"}],
        "not_invited": ["erased:1"],
        "agreements": [{"who": "erased:3", "what": ERASED_TEXT, "due": None, "domain": None}],
        "coordinator": None,
    }
