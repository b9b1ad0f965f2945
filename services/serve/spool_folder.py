"""The spool folder's own files beside events.db: the lock one process holds, and the replica id."""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import socket
from pathlib import Path

_REPLICA_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class SpoolLocked(RuntimeError):
    """Another process already owns this spool folder."""


def lock_folder(directory: Path) -> int:
    """Take the folder's lock and return its descriptor; SpoolLocked when another live process holds it."""
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise SpoolLocked(
            f"the event spool {directory} is in use by another process: give each API replica "
            "(and each uvicorn worker) its own SPOOL_DIR"
        ) from exc
    return fd


def load_replica_id(directory: Path, configured: str | None) -> str:
    """The replica id kept in the folder: the configured one (then kept), the kept one, or a new one."""
    # Kept in the folder so a restarted replica names its batches as before; set REPLICA_ID to choose.
    path = directory / "replica_id"
    if configured:
        if not _REPLICA_ID.match(configured):
            raise ValueError(f"REPLICA_ID {configured!r}: use 1-64 letters, digits, '.', '_' or '-'")
        path.write_text(configured + "\n")
        return configured
    if path.exists():
        return path.read_text().strip()
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:40] or "replica"
    generated = f"{host}-{secrets.token_hex(3)}"
    path.write_text(generated + "\n")
    return generated
