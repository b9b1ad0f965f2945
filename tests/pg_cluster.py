"""A throw-away PostgreSQL 15 cluster on loopback, run as the `postgres` user the way scripts/prod.sh does."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.harness.processes import free_port
from tests import prerequisites


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Yield a SQLAlchemy URL (user airflow, random password, database `optuna` not yet created); skip if impossible."""
    pg_bin = prerequisites.postgres_bin()
    # Under /tmp with o+x parents: pytest's own tmp folders are mode 700, which the postgres user cannot enter.
    base = Path(tempfile.mkdtemp(prefix="optuna-pg-", dir="/tmp"))
    base.chmod(0o755)
    shutil.chown(base, "postgres")
    password = secrets.token_hex(12)
    (base / "pwfile").write_text(password + "\n")
    shutil.chown(base / "pwfile", "postgres")
    as_pg = [prerequisites.program("runuser"), "-u", "postgres", "--"]
    data = str(base / "data")
    subprocess.run([*as_pg, str(pg_bin / "initdb"), "-D", data, "-A", "scram-sha-256",
                    f"--pwfile={base / 'pwfile'}", "-U", "airflow", "-E", "UTF8"],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    (base / "pwfile").unlink()
    port = free_port()
    subprocess.run([*as_pg, str(pg_bin / "pg_ctl"), "-D", data, "-l", str(base / "log"), "-w", "-t", "60",
                    "-o", f"-p {port} -k {base} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True, timeout=120)  # fmt: skip
    try:
        yield f"postgresql+psycopg2://airflow:{password}@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run([*as_pg, str(pg_bin / "pg_ctl"), "-D", data, "stop", "-m", "fast", "-w"],
                       capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(base, ignore_errors=True)
