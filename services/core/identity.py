"""Who is who: the user id alphabet, signed user tokens, and the API keys clients carry (pure logic).

One owner for three rules every host shares (issue 32):
- a user id is `USER_ID_PATTERN`: accepted by /feedback if and only if it can be erased by its path route,
  curated, and keyed in S3 (`users/erasures/<id>.json`) and in the user store;
- a user token is a JWT (PyJWT, HS256) the server signs for one user id, with a `kid` header so signing
  keys rotate without logging anyone out;
- an API key (`mik_<key_id>_<secret>`) is a client's credential, stored only as a hash, with scopes.

Nothing here reads a file, the clock or the environment: keys, records and `now` are passed in
(services/core/key_file.py reads and writes the key file; services/core/settings.py holds the secrets).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import jwt

from services.core.settings import Settings

# Letters, digits, '_' and '-', 1 to 64: what token_urlsafe, uuid hex and every id in use today
# ("anon-<32 hex>" from the UI, "sim-N", "bench-N", "ml-<userId>[-<copy>]") are made of. No '/' (a path
# segment of /users/{id} and of an S3 key), no '.' ("." and ".." are path steps), no '%', ':' or spaces
# (nothing to escape in a URL, an S3 key, a Redis key or a file name); 64 leaves room over the 37 of
# the longest id in use. The pattern is RE2-compatible, so Arrow's regex checks curated days with it.
USER_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
USER_ID_RULE = "1 to 64 letters, digits, '_' or '-'"
_USER_ID_RE = re.compile(USER_ID_PATTERN)
USER_ID_PREFIX = "u-"  # a server-issued id, told apart from the older client-made "anon-" ids

TOKEN_ALGORITHM = "HS256"  # pinned on verify: the token's own `alg` header is never trusted
TOKEN_AUDIENCE = "movie-intel-user"  # a token of another system signed with the same key is refused
TOKEN_ISSUER = "movie-intel"
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key of at least the hash's size (256 bits)
DEFAULT_KID = "default"  # the kid of a single USER_TOKEN_SECRET
CLOCK_SKEW_S = 60  # replicas' clocks may disagree this much on when a token was issued

API_KEY_PREFIX = "mik"
# What a client key may do. Each is granted on its own, so a leaked key does only what it was made for.
SCOPES = frozenset({"act-as-user", "admin", "sign-up"})
SCOPE_HELP = {
    # A backend that authenticates its own users (the UI's server, a partner site, the simulator, the
    # benches) names the user per call instead of holding each user's token.
    "act-as-user": "act for any user id: read, send feedback for, get recommendations as, and erase it",
    # /admin/reload and the other operator routes; Gorse keeps its admin key apart in the same way.
    "admin": "call /admin/* (reload models, operator routes)",
    # The UI's server makes every visitor's user from one address, so the anonymous per-address sign-up
    # rate would cap it; made accounts are what moves an experiment, so this is never implied by the others.
    "sign-up": "create users (POST /users) beyond the anonymous per-address rate, counted per key",
}


class TokenError(Exception):
    """A user token that cannot be accepted (the base of the three below)."""


class TokenExpired(TokenError):
    """A genuine token past its expiry: the holder should renew or sign up again."""


class TokenInvalid(TokenError):
    """A forged, malformed, other-system or other-algorithm token."""


class UnknownKid(TokenError):
    """A token signed with a key id not in the key set (retired by rotation, or never ours)."""


def is_valid_user_id(user_id: Any) -> bool:
    """Whether a value is a user id of the one alphabet (USER_ID_PATTERN)."""
    return isinstance(user_id, str) and _USER_ID_RE.fullmatch(user_id) is not None


def new_user_id() -> str:
    """A fresh server-issued pseudonymous id: 'u-' and 128 random bits, nothing about the person."""
    return USER_ID_PREFIX + secrets.token_urlsafe(16)


@dataclass(frozen=True)
class TokenKeys:
    """The signing key set: the first key signs, every key verifies (rotation without logging out)."""

    kids: tuple[str, ...]
    by_kid: dict[str, bytes]  # kid -> secret

    def __repr__(self) -> str:  # never the secrets, even in a traceback's locals
        return f"TokenKeys(kids={self.kids!r})"

    @property
    def signing_kid(self) -> str:
        """The kid new tokens are signed with."""
        return self.kids[0]

    @classmethod
    def parse(cls, keys: str | None = None, secret: str | None = None) -> TokenKeys:
        """Keys from USER_TOKEN_KEYS ("kid1:secret1,kid2:secret2") or one USER_TOKEN_SECRET (kid "default")."""
        if (keys is None) == (secret is None):
            raise ValueError("set exactly one of USER_TOKEN_KEYS and USER_TOKEN_SECRET")
        pairs = [(DEFAULT_KID, secret)] if secret is not None else _pairs(keys or "")
        out: dict[str, bytes] = {}
        for kid, value in pairs:
            raw = (value or "").encode()
            if len(raw) < MIN_SECRET_BYTES:
                # The kid is named, never the secret.
                raise ValueError(f"user token key {kid!r}: shorter than {MIN_SECRET_BYTES} bytes")
            if kid in out:
                raise ValueError(f"user token key {kid!r}: given twice")
            out[kid] = raw
        return cls(tuple(out), out)

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenKeys | None:
        """The key set the settings name (secrets unwrapped only here); None when neither variable is set."""
        keys, secret = settings.user_token_keys, settings.user_token_secret
        if keys is None and secret is None:
            return None
        return cls.parse(
            keys.get_secret_value() if keys is not None else None,
            secret.get_secret_value() if secret is not None else None,
        )


def _pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for entry in text.split(","):
        kid, sep, value = entry.strip().partition(":")
        if not sep or not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", kid):
            raise ValueError(
                "USER_TOKEN_KEYS: each entry is kid:secret, kid of 1-32 letters, digits, '_', '-'"
            )
        pairs.append((kid, value))
    return pairs


@dataclass(frozen=True)
class UserClaims:
    """What a verified token says: whose it is, when it was issued and expires (epoch s), which key signed it."""

    sub: str
    iat: int
    exp: int
    kid: str


def issue_user_token(user_id: str, keys: TokenKeys, now: datetime, ttl_s: float) -> str:
    """A token for a user id, signed with the set's first key, valid for ttl_s from now."""
    if not is_valid_user_id(user_id):
        raise ValueError(f"not a user id ({USER_ID_RULE})")
    iat = int(now.timestamp())
    claims = {"sub": user_id, "iat": iat, "exp": iat + int(ttl_s), "aud": TOKEN_AUDIENCE, "iss": TOKEN_ISSUER}
    kid = keys.signing_kid
    return jwt.encode(claims, keys.by_kid[kid], algorithm=TOKEN_ALGORITHM, headers={"kid": kid})


def verify_user_token(token: str, keys: TokenKeys, now: datetime) -> UserClaims:
    """The claims of a token this server signed that is valid at `now`; TokenExpired, TokenInvalid or UnknownKid."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenInvalid(f"malformed token: {exc}") from None
    kid = header.get("kid")
    if header.get("alg") != TOKEN_ALGORITHM or not isinstance(kid, str):
        raise TokenInvalid(f"not an {TOKEN_ALGORITHM} token with a kid")
    if kid not in keys.by_kid:
        raise UnknownKid(f"unknown signing key id {kid!r}")
    try:
        # The times are checked below against `now`: PyJWT's own checks read the system clock.
        claims = jwt.decode(
            token,
            keys.by_kid[kid],
            algorithms=[TOKEN_ALGORITHM],
            audience=TOKEN_AUDIENCE,
            issuer=TOKEN_ISSUER,
            options={
                "require": ["sub", "iat", "exp", "aud", "iss"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "strict_aud": True,
            },
        )
    except jwt.PyJWTError as exc:
        raise TokenInvalid(f"{type(exc).__name__}: {exc}") from None
    sub, iat, exp = claims["sub"], claims["iat"], claims["exp"]
    if not is_valid_user_id(sub) or not all(
        isinstance(t, int) and not isinstance(t, bool) for t in (iat, exp)
    ):
        raise TokenInvalid("claims: sub is not a user id, or iat/exp not integers")
    t = now.timestamp()
    if iat > t + CLOCK_SKEW_S:
        raise TokenInvalid("issued in the future")
    if exp <= t:
        raise TokenExpired(f"expired at {exp}")
    return UserClaims(sub, iat, exp, kid)


def renew_user_token(token: str, keys: TokenKeys, now: datetime, ttl_s: float) -> str:
    """A fresh token (signed with today's first key) for the holder of a token still valid at `now`."""
    return issue_user_token(verify_user_token(token, keys, now).sub, keys, now, ttl_s)


@dataclass(frozen=True)
class KeyRecord:
    """A client key as the key file holds it: its id, a name, the sha256 of the key, scopes, and times."""

    key_id: str
    name: str
    sha256: str
    scopes: tuple[str, ...]
    created_at: str
    revoked_at: str | None = None

    def revoked(self, now: datetime) -> bool:
        """Whether the key is refused at `now` (from its revoked_at on)."""
        return self.revoked_at is not None and datetime.fromisoformat(self.revoked_at) <= now

    def to_json(self) -> dict[str, Any]:
        """The record as the key file stores it (a hash, never the key)."""
        return {**self.__dict__, "scopes": list(self.scopes)}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> KeyRecord:
        """A record read back from the key file."""
        return cls(
            key_id=str(obj["key_id"]),
            name=str(obj["name"]),
            sha256=str(obj["sha256"]),
            scopes=tuple(obj["scopes"]),
            created_at=str(obj["created_at"]),
            revoked_at=obj.get("revoked_at"),
        )


def _digest(plaintext: str) -> str:
    # A plain sha256 suffices: the keys are 256 random bits, so there is no dictionary to try, and a slow
    # password hash (bcrypt, argon2) would only cost every request its time.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_key(name: str, scopes: Iterable[str], now: datetime) -> tuple[str, KeyRecord]:
    """A new client key: the plaintext (shown once, never stored) and the record to store."""
    wanted = tuple(sorted(set(scopes)))
    unknown = set(wanted) - SCOPES
    if not wanted or unknown:
        raise ValueError(
            f"scopes: give one or more of {', '.join(sorted(SCOPES))} (unknown: {sorted(unknown)})"
        )
    if not name.strip() or len(name) > 100:
        raise ValueError("name: 1 to 100 characters")
    key_id = secrets.token_hex(8)  # hex: no '_', so the key splits unambiguously
    plaintext = f"{API_KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    created = now.isoformat(timespec="seconds")
    return plaintext, KeyRecord(key_id, name.strip(), _digest(plaintext), wanted, created)


def authenticate_key(plaintext: str, records: Iterable[KeyRecord], now: datetime) -> KeyRecord | None:
    """The record of a genuine, unrevoked key; None for anything else."""
    prefix, _, rest = plaintext.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != API_KEY_PREFIX or not key_id or not secret:
        return None
    digest = _digest(plaintext)
    for record in records:
        if record.key_id == key_id:  # key ids are not secret (keys.sh list shows them)
            if hmac.compare_digest(record.sha256, digest) and not record.revoked(now):
                return record
            return None
    return None


def revoke(records: Iterable[KeyRecord], key_id: str, now: datetime) -> list[KeyRecord]:
    """The records with `key_id` revoked from `now` (an earlier revocation stands); KeyError when unknown."""
    out = list(records)
    for n, record in enumerate(out):
        if record.key_id == key_id:
            if record.revoked_at is None:
                out[n] = replace(record, revoked_at=now.isoformat(timespec="seconds"))
            return out
    raise KeyError(key_id)
