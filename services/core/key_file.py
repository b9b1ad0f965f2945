"""The clients' key file (API_KEYS_FILE): hashed key records read and written whole, atomically.

    {"keys": [{"key_id", "name", "sha256", "scopes", "created_at", "revoked_at"}]}

It holds hashes, never a key (services/core/identity.py makes and checks them), yet it is written with
mode 600: a hash still says which clients exist and what they may do.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from services.core.identity import KeyRecord


def read_key_file(path: Path) -> list[KeyRecord]:
    """Every record of the key file; none when the file does not exist yet."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [KeyRecord.from_json(r) for r in json.loads(text)["keys"]]


def write_key_file(path: Path, records: list[KeyRecord]) -> None:
    """Replace the key file with these records: a mode-600 temporary file, fsynced, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"keys": [r.to_json() for r in records]}, indent=2) + "\n"
    # mkstemp creates the file 600 from the start, so the records are never readable by others.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class KeyFile:
    """The key file as a server holds it: read again whenever it was replaced, so a revocation takes hold."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._records: list[KeyRecord] = []

    def records(self) -> list[KeyRecord]:
        """The current records (one stat per call; a read only after keys.sh changed the file)."""
        try:
            st = self.path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._records = read_key_file(self.path) if stamp is not None else []
            self._stamp = stamp
        return self._records
