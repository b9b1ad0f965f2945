"""The Postgres storage of Optuna's studies: create its database on first use (prod shape, compose)."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def ensure_database(url: str) -> None:
    """Create the URL's database when it is missing, through the server's `postgres` database.

    scripts/prod.sh creates it when it starts Postgres; a compose deployment's volume may predate this
    feature, so the first search creates it (the configured user owns the cluster in both shapes).
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    name = target.database
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
            if found is None:
                # Identifiers cannot be bound parameters; quote it as Postgres does.
                conn.execute(text('CREATE DATABASE "{}"'.format(name.replace('"', '""'))))
                log.info("created the Optuna database %r", name)
    finally:
        admin.dispose()
