"""Who is calling: OAuth2 bearer tokens (JWT) verified against a key set, and their roles.

Production verifies tokens of the organisation's identity provider against its published
key set (``OVERLEG_JWKS_URL``, fetched and cached, or a mounted ``OVERLEG_JWKS_FILE``). For
development, ``overleg token`` signs tokens with a local key created on first use
(``OVERLEG_DEV_KEY_FILE``), and ``overleg serve`` without a key set accepts exactly those.
The local key never leaves the machine it was made on.

Besides ``sub`` and ``role``, a token may name the scope its holder works in: ``programme``,
``region`` and ``municipality`` (what each means for a role is ``policies.access``'s to say).
A value that names no programme or region, or no municipality, makes the token invalid.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from overleg.aggregates.values import Programme, Region
from overleg.aggregates.vocabulary import SHORT_TEXT_MAX_LENGTH, is_ref
from overleg.i18n import Message, _
from overleg.policies.access import Principal, StaffRole

ALGORITHMS = ["EdDSA", "ES256", "RS256"]
DEV_ISSUER = "overleg-dev"
# Tokens verified lately, kept (by their digest) so that a caller's next requests skip the
# signature check: at most this many, each for at most this long and never past its expiry.
TOKENS_KEPT = 4096
TOKEN_KEPT_SECONDS = 60.0


class InvalidToken(Exception):
    """The bearer token is missing, malformed, expired, or not signed by a trusted key."""


# What the JWT library says of the tokens it refuses most often, as texts users read (any
# other of its reasons is shown as it words it, in English).
_LIBRARY_REASONS: dict[str, Message] = {
    str(reason): reason
    for reason in (
        _("Signature has expired"),
        _("Signature verification failed"),
        _("The token is not yet valid (iat)"),
        _("The token is not yet valid (nbf)"),
        _("Invalid audience"),
        _("Audience doesn't match"),
        _("Invalid issuer"),
        _("Not enough segments"),
    )
}


def _reason(error: jwt.PyJWTError) -> str:
    """Why the library refused a token, in words users read where it is one it often gives."""
    said = str(error)
    if isinstance(error, jwt.MissingRequiredClaimError):
        missing = _('Token is missing the "{claim}" claim', claim=error.claim)
        return missing if missing == said else said
    return _LIBRARY_REASONS.get(said, said)


class TokenVerifier:
    """Verifies bearer tokens against a JSON Web Key Set: given, or fetched from the
    identity provider's JWKS URL (``from_url``)."""

    def __init__(self, jwks: dict[str, Any] | None, issuer: str, audience: str) -> None:
        self.keys = None if jwks is None else jwt.PyJWKSet.from_dict(jwks)
        self.issuer = issuer
        self.audience = audience
        self.client: jwt.PyJWKClient | None = None
        # Digest of a token -> its principal and the time (epoch s) it is kept until.
        self._kept: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()
        self._kept_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, issuer: str, audience: str) -> TokenVerifier:
        """Keys fetched from ``url`` and cached for five minutes; a token signed by a key
        the cache does not know makes it fetch the set again (at most every 5 seconds), so a
        key the provider rotated in is accepted at once and one it removed is soon not."""
        verifier = cls(None, issuer, audience)
        verifier.client = jwt.PyJWKClient(
            url, cache_jwk_set=True, lifespan=300, timeout=5, cooldown_duration=5
        )
        return verifier

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; ``InvalidToken`` says why one is not.

        A token verified less than ``TOKEN_KEPT_SECONDS`` ago (and not expired) is not
        checked again: a key the identity provider removes stops being accepted when the
        key set is fetched again, and a token verified with it before then at most that
        much later."""
        known = self.known(token)
        if known is not None:
            return known
        who, expires = self._verify(token)
        until = min(expires, time.time() + TOKEN_KEPT_SECONDS)
        with self._kept_lock:
            self._kept[_digest(token)] = (who, until)
            while len(self._kept) > TOKENS_KEPT:
                self._kept.popitem(last=False)
        return who

    def known(self, token: str) -> Principal | None:
        """The principal of a token verified lately and still valid, else ``None``."""
        key = _digest(token)
        with self._kept_lock:
            kept = self._kept.get(key)
            if kept is None:
                return None
            if time.time() < kept[1]:
                return kept[0]
            del self._kept[key]
            return None

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
            key = self._key(header.get("kid"))
            claims = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                audience=self.audience,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(_reason(error)) from None
        try:
            role = StaffRole(str(claims.get("role")))
        except ValueError:
            raise InvalidToken(_("the token carries no known role")) from None
        if not isinstance(claims["sub"], str) or not is_ref(claims["sub"]):
            raise InvalidToken(_("the token's subject (sub) is not a well-formed reference"))
        who = Principal(
            ref=str(claims["sub"]),
            role=role,
            region=_region(claims.get("region")),
            programme=_programme(claims.get("programme")),
            municipality=_municipality(claims.get("municipality")),
        )
        return who, float(claims["exp"])

    def _key(self, kid: object) -> jwt.PyJWK:
        if self.client is not None:
            if not isinstance(kid, str):
                raise InvalidToken(_("the token names no key (kid)"))
            try:
                return self.client.get_signing_key(kid)
            except jwt.PyJWKClientConnectionError:
                raise InvalidToken(_("the identity provider's key set cannot be fetched")) from None
            except jwt.PyJWKClientError:
                raise InvalidToken(_("the token is signed by an unknown key")) from None
        assert self.keys is not None, "a verifier has a key set or a client"
        for key in self.keys.keys:
            if kid is None or key.key_id == kid:
                return key
        raise InvalidToken(_("the token is signed by an unknown key"))


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def _region(claim: object) -> str | None:
    if claim is None:
        return None
    if not isinstance(claim, str) or claim not in {r.value for r in Region}:
        raise InvalidToken(
            _(
                "the token's region is not one of {regions}",
                regions=", ".join(r.value for r in Region),
            )
        )
    return claim


def _programme(claim: object) -> Programme | None:
    if claim is None:
        return None
    if not isinstance(claim, str) or claim not in {p.value for p in Programme}:
        raise InvalidToken(
            _(
                "the token's programme is not one of {programmes}",
                programmes=", ".join(p.value for p in Programme),
            )
        )
    return Programme(claim)


def _municipality(claim: object) -> str | None:
    if claim is None:
        return None
    if (
        not isinstance(claim, str)
        or not claim.strip()
        or len(claim) > SHORT_TEXT_MAX_LENGTH
        or "\x00" in claim
    ):
        raise InvalidToken(_("the token's municipality is not the name of a municipality"))
    return claim


def load_jwks(path: Path) -> dict[str, Any]:
    """A JSON Web Key Set from a file."""
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(loaded.get("keys"), list):
        raise ValueError(_("{path} is not a JSON Web Key Set (no 'keys' list)", path=str(path)))
    return loaded


def dev_private_key(path: Path) -> dict[str, Any]:
    """The local development signing key (an Ed25519 JWK), created on first use."""
    if path.exists():
        key: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    jwk: dict[str, Any] = OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate(), as_dict=True)
    jwk |= {"kid": f"overleg-dev-{uuid.uuid4().hex[:8]}", "alg": "EdDSA", "use": "sig"}
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        json.dump(jwk, out)
    return jwk


def public_jwks(private_jwk: dict[str, Any]) -> dict[str, Any]:
    """The key set that verifies tokens signed with ``private_jwk``."""
    return {"keys": [{k: v for k, v in private_jwk.items() if k != "d"}]}


def issue_dev_token(
    private_jwk: dict[str, Any],
    *,
    role: StaffRole,
    ref: str,
    audience: str,
    issuer: str = DEV_ISSUER,
    region: str | None = None,
    programme: Programme | None = None,
    municipality: str | None = None,
    lifetime: int = 8 * 3600,
) -> str:
    """A development token signed with the local key; ``region``, ``programme`` and
    ``municipality`` become its claims of the same names when given."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": ref,
        "role": role.value,
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
    }
    if region is not None:
        claims["region"] = region
    if programme is not None:
        claims["programme"] = programme.value
    if municipality is not None:
        claims["municipality"] = municipality
    key = jwt.PyJWK(private_jwk)
    return jwt.encode(claims, key.key, algorithm="EdDSA", headers={"kid": private_jwk["kid"]})
