"""The keys CLI behind scripts/keys.sh: create, list and revoke the API keys clients carry."""

from __future__ import annotations

import argparse
import fcntl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from services.core.identity import SCOPE_HELP, SCOPES, create_key, revoke
from services.core.key_file import read_key_file, write_key_file
from services.core.settings import get_settings


def _parser() -> argparse.ArgumentParser:
    scopes = "; ".join(f"{s}: {SCOPE_HELP[s]}" for s in sorted(SCOPES))
    parser = argparse.ArgumentParser(
        prog="keys.sh",
        description="API keys for clients (a backend that authenticates its own users, an operator's "
        "script). The key file (API_KEYS_FILE, default $VAR_DIR/api_keys.json, mode 600) holds only each "
        "key's sha256: a lost key cannot be shown again, only revoked and replaced.",
        epilog=f"Scopes: {scopes}. Examples: keys.sh create ui-server --scopes act-as-user,sign-up | "
        "keys.sh list | keys.sh revoke 3f9a0c1d2e4b5a69.",
    )
    parser.add_argument("--file", type=Path, default=None, help="the key file (default: API_KEYS_FILE)")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser(
        "create", help="make a key and print it once to stdout (it is stored only as a hash)"
    )
    create.add_argument("name", help="who holds it, e.g. ui-server or partner-acme")
    create.add_argument("--scopes", required=True, help=f"comma-separated, from: {', '.join(sorted(SCOPES))}")
    sub.add_parser("list", help="every key: id, name, scopes, created, revoked (never a secret)")
    rev = sub.add_parser("revoke", help="refuse a key from now on (the API rereads the file)")
    rev.add_argument("key_id", help="the id keys.sh list shows (the part after mik_)")
    return parser


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One writer at a time: two creates at once would otherwise each drop the other's key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def run(args: argparse.Namespace, path: Path, now: datetime, out: list[str]) -> int:
    """Execute one command against the key file, appending output lines; returns the exit code."""
    if args.command == "list":
        records = read_key_file(path)
        out.append(f"{'KEY_ID':<16}  {'NAME':<24}  {'SCOPES':<28}  {'CREATED':<25}  REVOKED")
        for r in records:
            out.append(f"{r.key_id:<16}  {r.name:<24}  {','.join(r.scopes):<28}  {r.created_at:<25}  "
                       f"{r.revoked_at or '-'}")  # fmt: skip
        return 0
    with _locked(path):
        records = read_key_file(path)
        if args.command == "create":
            plaintext, record = create_key(args.name, [s.strip() for s in args.scopes.split(",")], now)
            write_key_file(path, [*records, record])
            out.append(plaintext)  # the only time the key exists outside its holder
            return 0
        try:
            write_key_file(path, revoke(records, args.key_id, now))
        except KeyError:
            sys.stderr.write(f"error: no key {args.key_id!r} in {path}\n")
            return 1
        sys.stderr.write(f"revoked {args.key_id}\n")
        return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: exit 0 on success, 1 for an unknown key id, 2 on a usage error."""
    parser = _parser()
    args = parser.parse_args(argv)
    path = args.file or get_settings().api_keys_file
    if path is None:
        parser.error("no key file: set API_KEYS_FILE (scripts/env.sh does) or pass --file")
    out: list[str] = []
    try:
        code = run(args, path, datetime.now(UTC), out)
    except ValueError as exc:
        parser.error(str(exc))
    sys.stdout.write("\n".join(out) + ("\n" if out else ""))
    return code


if __name__ == "__main__":
    sys.exit(main())
