"""Who is who: the user id alphabet, user tokens (forged, expired, rotated) and client API keys."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from pydantic import SecretStr

from services.core import identity
from services.core.identity import (
    KeyRecord,
    TokenExpired,
    TokenInvalid,
    TokenKeys,
    UnknownKid,
    authenticate_key,
    create_key,
    is_valid_user_id,
    issue_user_token,
    new_user_id,
    renew_user_token,
    revoke,
    verify_user_token,
)
from services.core.settings import Settings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = 86400
OLD, NEW = "a" * 32, "b" * 64  # 64: HS512 would warn about a shorter key
KEYS = TokenKeys.parse(f"k2:{NEW},k1:{OLD}")


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def _claims(**over: object) -> dict:
    iat = int(NOW.timestamp())
    return {"sub": "u-ana", "iat": iat, "exp": iat + DAY, "aud": identity.TOKEN_AUDIENCE,
            "iss": identity.TOKEN_ISSUER, **over}  # fmt: skip


def _signed(claims: dict, secret: str = NEW, kid: str = "k2", alg: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=alg, headers={"kid": kid})


@pytest.mark.parametrize(
    "user_id",
    ["anon-" + "0f" * 16, "u-" + "x" * 62, "sim-12", "ml-42-3", "bench-7", "cached-0", "e2e-user", "A_b-9"],
)
def test_every_id_in_use_today_is_in_the_alphabet(user_id: str) -> None:
    assert is_valid_user_id(user_id)


@pytest.mark.parametrize(
    "user_id", ["", "u" * 65, "a/b", "..", "a.b", "ana\n", " ana", "a%2Fb", "a:b", "é", None, 7]
)
def test_ids_a_path_or_a_key_cannot_carry_are_refused(user_id: object) -> None:
    assert not is_valid_user_id(user_id)


def test_new_user_ids_are_valid_prefixed_and_distinct() -> None:
    ids = {new_user_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(is_valid_user_id(u) and re.fullmatch(r"u-[A-Za-z0-9_-]{22}", u) for u in ids)


def test_a_token_round_trips_with_its_subject_times_and_kid() -> None:
    token = issue_user_token("u-ana", KEYS, NOW, DAY)
    claims = verify_user_token(token, KEYS, NOW + timedelta(seconds=DAY - 1))
    assert (claims.sub, claims.exp - claims.iat, claims.kid) == ("u-ana", DAY, "k2")
    assert jwt.get_unverified_header(token)["kid"] == "k2"  # the first key signs


def test_a_token_at_its_expiry_is_expired_not_invalid() -> None:
    token = issue_user_token("u-ana", KEYS, NOW, DAY)
    with pytest.raises(TokenExpired):
        verify_user_token(token, KEYS, NOW + timedelta(seconds=DAY))


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(_signed(_claims(), secret="c" * 32), id="forged-with-another-secret"),
        pytest.param(_signed(_claims(), secret=OLD, kid="k2"), id="signed-by-a-set-key-under-another-kid"),
        pytest.param(_signed(_claims(aud="another-system")), id="wrong-audience"),
        pytest.param(_signed(_claims(iss="another-issuer")), id="wrong-issuer"),
        pytest.param(_signed({k: v for k, v in _claims().items() if k != "exp"}), id="no-exp"),
        pytest.param(_signed({k: v for k, v in _claims().items() if k != "iat"}), id="no-iat"),
        pytest.param(_signed({k: v for k, v in _claims().items() if k != "sub"}), id="no-sub"),
        pytest.param(_signed(_claims(sub="a/b")), id="sub-outside-the-alphabet"),
        pytest.param(_signed(_claims(exp="tomorrow")), id="exp-not-a-number"),
        pytest.param(_signed(_claims(iat=int(NOW.timestamp()) + 3600)), id="issued-in-the-future"),
        pytest.param(_signed(_claims(), secret=NEW, alg="HS512"), id="another-hmac-algorithm"),
        pytest.param(_b64({"alg": "none", "kid": "k2"}) + "." + _b64(_claims()) + ".", id="alg-none"),
        pytest.param(jwt.encode(_claims(), NEW, algorithm="HS256"), id="no-kid"),
        pytest.param("not.a.token", id="garbage"),
    ],
)
def test_forged_or_foreign_tokens_are_invalid(token: str) -> None:
    with pytest.raises(TokenInvalid):
        verify_user_token(token, KEYS, NOW)


def test_a_tampered_subject_breaks_the_signature() -> None:
    header, _, sig = issue_user_token("u-ana", KEYS, NOW, DAY).split(".")
    with pytest.raises(TokenInvalid):
        verify_user_token(f"{header}.{_b64(_claims(sub='u-bob'))}.{sig}", KEYS, NOW)


def test_rotation_keeps_old_tokens_while_their_kid_is_in_the_set() -> None:
    before = TokenKeys.parse(f"k1:{OLD}")
    old_token = issue_user_token("u-ana", before, NOW, DAY)
    assert verify_user_token(old_token, KEYS, NOW).kid == "k1"  # k2 now signs, k1 still verifies
    assert verify_user_token(issue_user_token("u-ana", KEYS, NOW, DAY), KEYS, NOW).kid == "k2"
    with pytest.raises(UnknownKid):
        verify_user_token(old_token, TokenKeys.parse(f"k2:{NEW}"), NOW)  # k1 retired


def test_renewal_needs_a_valid_token_and_signs_with_the_current_key() -> None:
    token = issue_user_token("u-ana", TokenKeys.parse(f"k1:{OLD}"), NOW, DAY)
    later = NOW + timedelta(hours=20)
    renewed = verify_user_token(renew_user_token(token, KEYS, later, DAY), KEYS, later)
    assert (renewed.sub, renewed.kid, renewed.exp) == ("u-ana", "k2", int(later.timestamp()) + DAY)
    with pytest.raises(TokenExpired):
        renew_user_token(token, KEYS, NOW + timedelta(days=2), DAY)


@pytest.mark.parametrize(
    ("keys", "secret", "message"),
    [
        ("k1:weak-secret", None, "shorter than 32 bytes"),
        (f"k1:{OLD},k1:{NEW}", None, "given twice"),
        (OLD, None, "each entry is kid:secret"),
        (f"a/b:{OLD}", None, "each entry is kid:secret"),
        (None, "x" * 31, "shorter than 32 bytes"),
        (None, None, "exactly one"),
        (f"k1:{OLD}", NEW, "exactly one"),
    ],
)
def test_weak_or_malformed_key_sets_are_refused_without_showing_a_secret(
    keys: str | None, secret: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as err:
        TokenKeys.parse(keys, secret)
    assert not any(s in str(err.value) for s in (OLD, NEW, "weak-secret", "x" * 31))


def test_the_settings_give_a_single_secret_the_default_kid() -> None:
    settings = Settings(_env_file=None, user_token_secret=SecretStr(NEW))
    keys = TokenKeys.from_settings(settings)
    assert keys is not None and keys.kids == ("default",) and NEW not in repr(keys)
    assert TokenKeys.from_settings(Settings(_env_file=None)) is None
    assert Settings(_env_file=None).user_token_ttl_s == 30 * DAY


def test_a_key_authenticates_until_it_is_revoked() -> None:
    plaintext, record = create_key("ui-server", ["sign-up", "act-as-user"], NOW)
    assert re.fullmatch(r"mik_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", plaintext)
    assert record.scopes == ("act-as-user", "sign-up") and record.key_id in plaintext
    assert plaintext not in json.dumps(record.to_json())  # only its hash is stored
    _, other = create_key("partner", ["admin"], NOW)
    records = [other, record]
    assert authenticate_key(plaintext, records, NOW) == record
    assert KeyRecord.from_json(json.loads(json.dumps(record.to_json()))) == record
    later = NOW + timedelta(hours=1)
    revoked = revoke(records, record.key_id, later)
    assert authenticate_key(plaintext, revoked, later) is None
    assert authenticate_key(plaintext, revoked, NOW) == revoked[1]  # refused from its revoked_at on
    assert revoke(revoked, record.key_id, later + timedelta(days=1)) == revoked  # the first time stands
    with pytest.raises(KeyError):
        revoke(records, "0" * 16, NOW)


def test_wrong_or_malformed_keys_authenticate_nobody() -> None:
    plaintext, record = create_key("ui-server", ["act-as-user"], NOW)
    key_id = record.key_id
    for attempt in [
        plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B"),  # one character off
        f"mik_{key_id}_",
        f"mik_{key_id}",
        plaintext.replace("mik_", "mak_", 1),
        "",
        record.sha256,  # the stored hash is not a key
    ]:
        assert authenticate_key(attempt, [record], NOW) is None


@pytest.mark.parametrize(
    ("name", "scopes"), [("x", []), ("x", ["root"]), ("", ["admin"]), ("n" * 101, ["admin"])]
)
def test_keys_need_known_scopes_and_a_name(name: str, scopes: list[str]) -> None:
    with pytest.raises(ValueError):
        create_key(name, scopes, NOW)
