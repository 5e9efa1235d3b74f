"""Personal data sealed per case (crypto-shredding).

Every event keeps what identifies or describes a person in its ``personal`` part. That part
is stored encrypted (AES-256-GCM) with a **data key of its case**; the event's other facts
(what the statistics count) stay readable. The data keys live apart from the events, in
``case_keys``, each wrapped (encrypted) by a **master key** from the configuration, so the
database alone opens nothing.

Erasing a case destroys its data key: its events' personal parts can never be opened again,
while their stored bytes, and so the hash chain and every figure, stay exactly as they were.
What readers see of an erased case's personal parts is their erased form
(``aggregates/personal.py``), kept in ``erased_personal``.

Master keys rotate without touching an event: a new master key wraps every data key again
(``overleg keys rotate``); the old one may then be retired.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder

from overleg.adapters.recent import Recent
from overleg.adapters.rows import case_key
from overleg.i18n import _, text_of
from overleg.logs import get_logger
from overleg.paths import DEV_HOME

log = get_logger("overleg.sealing")

SEALED = "sealed:1:"  # how a sealed personal part starts (format 1: nonce, then AES-GCM)
NONCE_BYTES = 12
KEY_BYTES = 32
# The local development master key, made on first use, beside the development signing key.
DEV_MASTER_KEYS = DEV_HOME / "dev-master-keys"
CACHED_KEYS = 4096  # data keys kept in memory for sealing, most recently used first
# How long a data key stays in that memory: a key another process destroyed is not kept
# here for longer (reads fetch keys from the store every time).
CACHED_SECONDS = 60.0


class MasterKeyError(ValueError):
    """The master keys cannot be read from the configuration."""


class KeyProblem(Exception):
    """A case's sealed personal data cannot be opened (its key is missing, or wrapped by a
    master key the configuration does not have)."""


class ErasedKey(Exception):
    """A case's personal data was erased: nothing new can be sealed for it."""

    def __init__(self, case_id: str) -> None:
        super().__init__(_("the personal data of case {case_id} was erased", case_id=case_id))
        self.case_id = case_id


@dataclass(frozen=True)
class MasterKey:
    """One master key and the name it is known by in ``case_keys``."""

    id: str
    key: bytes


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MasterKeyError(_("{where}: the key is not base64", where=where)) from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(
            _(
                "{where}: a master key is {size} bytes, not {given}",
                where=where,
                size=KEY_BYTES,
                given=len(key),
            )
        )
    return key


class MasterKeys:
    """The configured master keys; the first one wraps new data keys, all of them unwrap."""

    def __init__(self, keys: Sequence[MasterKey]) -> None:
        if not keys:
            raise MasterKeyError(_("no master key is configured"))
        ids = [k.id for k in keys]
        if len(set(ids)) != len(ids):
            raise MasterKeyError(_("two master keys have the same id"))
        self.keys = {k.id: k for k in keys}
        self.current = keys[0]

    @classmethod
    def parse(cls, text: str, source: str) -> MasterKeys:
        """Keys written ``ID:BASE64`` (32 bytes each), one a line or separated by commas;
        the first is the current one. ``#`` starts a comment."""
        keys = []
        entries = [e.strip() for line in text.splitlines() for e in line.split("#")[0].split(",")]
        for number, entry in enumerate((e for e in entries if e), start=1):
            key_id, colon, encoded = entry.partition(":")
            where = _("{source}, key {number}", source=source, number=number)
            if not colon or not key_id.strip():
                raise MasterKeyError(_("{where}: write each key as ID:BASE64", where=where))
            keys.append(MasterKey(key_id.strip(), _decode_key(encoded.strip(), where)))
        return cls(keys)

    @classmethod
    def generate(cls, key_id: str) -> str:
        """A new master key, written as the configuration reads it."""
        return f"{key_id}:{base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()}"

    def wrap(self, case_id: str, data_key: bytes) -> tuple[str, bytes]:
        """The data key encrypted by the current master key (bound to its case)."""
        return self.current.id, encrypt(AESGCM(self.current.key), data_key, case_id.encode())

    def unwrap(self, case_id: str, master_id: str, wrapped: bytes) -> bytes:
        """The data key of a case, from its wrapped form."""
        master = self.keys.get(master_id)
        if master is None:
            raise KeyProblem(
                _(
                    "the data key of case {case_id} is wrapped by master key {master_id}, "
                    "which the configuration does not have",
                    case_id=case_id,
                    master_id=repr(master_id),
                )
            )
        try:
            return decrypt(AESGCM(master.key), wrapped, case_id.encode())
        except InvalidTag:
            raise KeyProblem(
                _(
                    "the data key of case {case_id} does not open with master key {master_id}",
                    case_id=case_id,
                    master_id=repr(master_id),
                )
            ) from None


def load_master_keys(text: str | None, file: Path | None, dev_file: Path) -> MasterKeys:
    """The master keys: given as text (``OVERLEG_MASTER_KEYS``), else read from a file
    (``OVERLEG_MASTER_KEYS_FILE``), else the local development key (made on first use)."""
    if text:
        return MasterKeys.parse(text, "OVERLEG_MASTER_KEYS")
    if file is not None:
        try:
            content = file.read_text(encoding="utf-8")
        except OSError as error:
            raise MasterKeyError(
                _("{file}: cannot be read ({why})", file=str(file), why=error.strerror)
            ) from None
        return MasterKeys.parse(content, str(file))
    if not dev_file.exists():
        dev_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(dev_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(MasterKeys.generate("dev-1") + "\n")
    if dev_file not in _WARNED:  # once per process and file, not at every store opened
        _WARNED.add(dev_file)
        log.warning("development_master_key", detail="no OVERLEG_MASTER_KEYS(_FILE): local dev key")
    return MasterKeys.parse(dev_file.read_text(encoding="utf-8"), str(dev_file))


_WARNED: set[Path] = set()


# A new data key not yet stored, by case: the key, its master key's id, the wrapped key.
FreshKeys = MutableMapping[str, tuple[bytes, str, bytes]]


@dataclass(frozen=True)
class KeyRow:
    """A case's row of ``case_keys``: its wrapped data key, or when it was erased."""

    case_id: str
    master_id: str | None
    wrapped: bytes | None
    erased_at: str | None


@dataclass(frozen=True)
class Opening:
    """What opens one case's sealed personal parts: its data key, or (erased) the erased
    form of each event's personal part, by seq."""

    key: bytes | None
    erased: dict[int, dict[str, Any]] | None = None
    problem: str | None = None  # why its key cannot be had (said when an event is opened)


class KeyStore(Protocol):
    """What the keyring needs of the store."""

    def select_keys(self, case_ids: Sequence[str]) -> dict[str, KeyRow]: ...
    def select_erased(self, case_ids: Sequence[str]) -> dict[str, dict[int, dict[str, Any]]]: ...


class Keyring:
    """Seals and opens the personal parts of events with their cases' data keys.

    A new case's data key is made here and written in the transaction of the case's first
    events (``pending``), so no event is ever stored without the key that opens it. Reads
    fetch the keys of the cases they read in one query (``reading``); a key is always read
    from the store when a case is read, so an erasure by any process is seen at once.

    Keys made and not yet stored wait in memory, or, for a thread inside
    ``making_keys_in`` (an import: one new key per case of a whole registry), in the mapping
    it gives.
    """

    def __init__(self, masters: MasterKeys) -> None:
        self.masters = masters
        self.store: KeyStore | None = None
        self._lock = threading.Lock()
        # Keys made here, not yet stored: key, master key id, wrapped key.
        self._fresh: FreshKeys = {}
        # Data keys to seal with, and since when. (A cipher is made for each use: that takes a
        # microsecond, and each one kept would hold 2.5 KiB outside Python.)
        self._cache: Recent[str, tuple[bytes, float]] = Recent(CACHED_KEYS)
        self._local = threading.local()

    # -- sealing ----------------------------------------------------------------------

    def seal(self, case_id: str, seq: int, personal: dict[str, Any]) -> str:
        """One event's personal part, encrypted with its case's data key."""
        cipher = self._sealing_cipher(case_id, new_case=seq == 1)
        plain = json.dumps(personal, ensure_ascii=False, separators=(",", ":")).encode()
        sealed = encrypt(cipher, plain, _aad(case_id, seq))
        return SEALED + base64.b64encode(sealed).decode("ascii")

    def _sealing_cipher(self, case_id: str, *, new_case: bool) -> AESGCM:
        """The cipher of the case's data key. A case's first event makes its key without
        asking the store: were the case stored already, its first event could not be."""
        with self._lock:
            fresh = self._fresh_keys().get(case_id)
            if fresh is not None:
                return AESGCM(fresh[0])
            cached = self._cache.get(case_id)
            if cached is not None and time.monotonic() - cached[1] < CACHED_SECONDS:
                return AESGCM(cached[0])
        scoped = self._scope().get(case_id)
        if scoped is not None:
            if scoped.problem is not None:
                raise KeyProblem(scoped.problem)
            if scoped.key is None:
                raise ErasedKey(case_id)
            return AESGCM(scoped.key)
        if not new_case:
            row = self._store().select_keys([case_id]).get(case_id)
            if row is not None:
                return AESGCM(self._remember(case_id, self._unwrapped(row)))
        data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        master_id, wrapped = self.masters.wrap(case_id, data_key)
        with self._lock:
            made = self._fresh_keys().setdefault(case_id, (data_key, master_id, wrapped))
            return AESGCM(made[0])

    def pending(self, case_ids: Iterable[str]) -> list[tuple[str, str, bytes]]:
        """The keys made here for these cases and not yet stored: (case, master, wrapped)."""
        with self._lock:
            fresh = self._fresh_keys()
            found = ((c, fresh.get(c)) for c in dict.fromkeys(case_ids))
            return [(c, made[1], made[2]) for c, made in found if made is not None]

    def stored(self, case_ids: Iterable[str]) -> None:
        """These cases' new keys were committed with their events."""
        with self._lock:
            made = self._fresh_keys()
            for case_id in case_ids:
                fresh = made.pop(case_id, None)
                if fresh is not None:
                    self._cache_key(case_id, fresh[0])

    def forget(self, case_id: str) -> None:
        """The case's key was destroyed: keep no copy of it."""
        with self._lock:
            self._cache.pop(case_id)
            self._fresh_keys().pop(case_id, None)

    @contextmanager
    def making_keys_in(self, fresh: FreshKeys) -> Iterator[None]:
        """Inside the block, the keys this thread makes wait in ``fresh`` until stored,
        instead of in the keyring's memory; ``fresh`` is left as it is at the end (an
        import drops it, stored or not, with its other scratch data)."""
        self._local.fresh = fresh
        try:
            yield
        finally:
            self._local.fresh = None

    def _fresh_keys(self) -> FreshKeys:
        fresh: FreshKeys | None = getattr(self._local, "fresh", None)
        return self._fresh if fresh is None else fresh

    def _remember(self, case_id: str, key: bytes) -> bytes:
        with self._lock:
            self._cache_key(case_id, key)
        return key

    def _cache_key(self, case_id: str, key: bytes) -> None:
        self._cache.put(case_id, (key, time.monotonic()))

    # -- opening ----------------------------------------------------------------------

    @contextmanager
    def reading(
        self, case_ids: Iterable[str], rows: Mapping[str, KeyRow] | None = None
    ) -> Iterator[None]:
        """Fetch the keys of these cases once, for the events read inside the block (their
        rows of ``case_keys`` given, when read with the events)."""
        scope = self._scope()
        wanted = [c for c in dict.fromkeys(case_ids) if c not in scope]
        added = self._openings(wanted, rows) if wanted else {}
        scope.update(added)
        try:
            yield
        finally:
            for case_id in added:
                scope.pop(case_id, None)

    def open(self, case_id: str, seq: int, sealed: str) -> dict[str, Any]:
        """One event's personal part: decrypted, or its erased form."""
        opening = self._scope().get(case_id)
        if opening is None:
            opening = self._openings([case_id])[case_id]
        if opening.problem is not None:
            raise KeyProblem(opening.problem)
        if opening.key is None:
            if opening.erased is None:
                raise KeyProblem(_("the data key of case {case_id} is missing", case_id=case_id))
            erased = opening.erased.get(seq)
            if erased is None:
                raise KeyProblem(
                    _(
                        "case {case_id} was erased, but not the event at seq {seq}",
                        case_id=case_id,
                        seq=seq,
                    )
                )
            return erased
        return open_sealed(opening.key, case_id, seq, sealed)

    def _openings(
        self, case_ids: Sequence[str], given: Mapping[str, KeyRow] | None = None
    ) -> dict[str, Opening]:
        store = self._store()
        rows = store.select_keys(case_ids) if given is None else given
        openings: dict[str, Opening] = {}
        erased: list[str] = []
        for case_id in case_ids:
            row = rows.get(case_id)
            if row is None:
                with self._lock:
                    fresh = self._fresh_keys().get(case_id)
                if fresh is None:
                    openings[case_id] = Opening(None, None)  # no key: nothing opens
                else:
                    openings[case_id] = Opening(fresh[0])
            elif row.wrapped is None:
                erased.append(case_id)
            else:
                try:
                    openings[case_id] = Opening(self._remember(case_id, self._unwrapped(row)))
                except KeyProblem as problem:
                    openings[case_id] = Opening(None, None, text_of(problem))
        if erased:
            forms = store.select_erased(erased)
            for case_id in erased:
                self.forget(case_id)
                openings[case_id] = Opening(None, forms.get(case_id, {}))
        return openings

    def _unwrapped(self, row: KeyRow) -> bytes:
        assert row.master_id is not None and row.wrapped is not None
        return self.masters.unwrap(row.case_id, row.master_id, row.wrapped)

    def _scope(self) -> dict[str, Opening]:
        scope: dict[str, Opening] | None = getattr(self._local, "scope", None)
        if scope is None:
            scope = self._local.scope = {}
        return scope

    def _store(self) -> KeyStore:
        if self.store is None:
            raise RuntimeError("the keyring has no store yet")
        return self.store


def open_sealed(key: bytes, case_id: str, seq: int, sealed: str) -> dict[str, Any]:
    """One sealed personal part, opened with its case's data key."""
    try:
        raw = base64.b64decode(sealed[len(SEALED) :], validate=True)
        plain = decrypt(AESGCM(key), raw, _aad(case_id, seq))
    except (InvalidTag, binascii.Error, ValueError):
        raise KeyProblem(_("the personal part at seq {seq} does not open", seq=seq)) from None
    found: dict[str, Any] = json.loads(plain)
    return found


def encrypt(cipher: AESGCM, plain: bytes, bound_to: bytes) -> bytes:
    """``plain`` encrypted under a fresh random nonce, which leads the result, and bound to
    ``bound_to`` (it opens only with the same)."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + cipher.encrypt(nonce, plain, bound_to)


def decrypt(cipher: AESGCM, sealed: bytes, bound_to: bytes) -> bytes:
    """What ``encrypt`` sealed; ``InvalidTag`` when it was changed or bound to another."""
    return cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], bound_to)


def _aad(case_id: str, seq: int) -> bytes:
    """What a sealed part is bound to: its case and seq (moved elsewhere, it does not open)."""
    return f"{case_id}/{seq}".encode()


def is_sealed(personal: object) -> bool:
    """Whether a stored personal part is sealed (events recorded before sealing are not)."""
    return isinstance(personal, str) and personal.startswith(SEALED)


class SealingMapper(Mapper[UUID]):
    """The library's mapper, sealing every event's personal part on the way to the store and
    opening it on the way back."""

    def __init__(self, transcoder: Transcoder, keyring: Keyring) -> None:
        super().__init__(transcoder=transcoder)
        self.keyring = keyring

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        personal = vars(domain_event).get("personal")
        if not isinstance(personal, dict):
            return super().to_stored_event(domain_event)
        case_id = case_key(domain_event.originator_id)
        sealed = self.keyring.seal(case_id, domain_event.originator_version, personal)
        shell = object.__new__(type(domain_event))
        object.__setattr__(shell, "__dict__", {**vars(domain_event), "personal": sealed})
        return super().to_stored_event(shell)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        personal = vars(event).get("personal")
        if is_sealed(personal):
            assert isinstance(personal, str)
            vars(event)["personal"] = self.keyring.open(
                case_key(stored_event.originator_id), stored_event.originator_version, personal
            )
        return event
