"""keys.sh on a real key file: create prints the key once, list shows no secret, revoke takes hold."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.core.identity import authenticate_key
from services.core.key_file import KeyFile, read_key_file, write_key_file
from services.core.keys_cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_create_list_revoke_on_a_key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "var" / "api_keys.json"  # its folder does not exist yet
    code, out, err = _run(
        capsys, "--file", str(path), "create", "ui-server", "--scopes", "act-as-user,sign-up"
    )
    plaintext = out.strip()
    assert code == 0 and plaintext.startswith("mik_") and "\n" not in plaintext and err == ""
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert plaintext not in path.read_text()
    _run(capsys, "--file", str(path), "create", "ops", "--scopes", "admin")
    records = read_key_file(path)
    assert [(r.name, r.scopes) for r in records] == [
        ("ui-server", ("act-as-user", "sign-up")),
        ("ops", ("admin",)),
    ]
    now = datetime.now(UTC)
    assert authenticate_key(plaintext, records, now) == records[0]

    code, listing, _ = _run(capsys, "--file", str(path), "list")
    assert code == 0 and records[0].key_id in listing and "ui-server" in listing and "act-as-user" in listing
    secret = plaintext.split("_", 2)[2]
    assert secret not in listing and records[0].sha256 not in listing

    code, out, err = _run(capsys, "--file", str(path), "revoke", records[0].key_id)
    assert code == 0 and out == "" and records[0].key_id in err
    after = read_key_file(path)
    assert after[0].revoked_at is not None and after[1].revoked_at is None
    assert authenticate_key(plaintext, after, datetime.now(UTC)) is None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    _, listing, _ = _run(capsys, "--file", str(path), "list")
    assert after[0].revoked_at in listing


def test_unknown_key_ids_and_scopes_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "api_keys.json"
    code, _, err = _run(capsys, "--file", str(path), "revoke", "0123456789abcdef")
    assert code == 1 and "no key" in err
    with pytest.raises(SystemExit) as exit_:
        main(["--file", str(path), "create", "x", "--scopes", "act-as-user,root"])
    assert exit_.value.code == 2 and "root" in capsys.readouterr().err
    assert not path.exists()  # nothing written for a refused key


def test_without_a_key_file_configured_it_says_how_to_set_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.core import keys_cli
    from services.core.settings import Settings

    monkeypatch.setattr(keys_cli, "get_settings", lambda: Settings(_env_file=None, api_keys_file=None))
    with pytest.raises(SystemExit):
        main(["list"])
    assert "API_KEYS_FILE" in capsys.readouterr().err


def test_a_server_rereads_the_key_file_once_it_is_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "api_keys.json"
    held = KeyFile(path)
    assert held.records() == []  # no file yet: no client keys
    _run(capsys, "--file", str(path), "create", "partner", "--scopes", "act-as-user")
    first = held.records()
    assert [r.name for r in first] == ["partner"]
    _run(capsys, "--file", str(path), "revoke", first[0].key_id)
    assert held.records()[0].revoked_at is not None  # a revocation takes hold without a restart
    write_key_file(path, [])
    assert held.records() == [] and json.loads(path.read_text()) == {"keys": []}
