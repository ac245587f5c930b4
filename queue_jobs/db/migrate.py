"""Applies sql/migrations in order, one transaction each, recorded in schema_migrations.

`python -m queue_jobs.db.migrate` (what `make migrate` runs). Safe to run from several hosts
at once: a session advisory lock serialises them, and applied versions are skipped.
"""

from __future__ import annotations

import logging
import os
import sys

import psycopg

from queue_jobs.db.sql_files import migrations

log = logging.getLogger(__name__)
_LOCK_KEY = 7_340_021  # any constant; shared by every migrating process

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


def apply_migrations(conninfo: str, up_to: int | None = None) -> list[int]:
    """Applies every pending migration (up to version `up_to`, if given); returns the
    versions it applied."""
    applied_now: list[int] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(_CREATE_LEDGER)
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in migrations():
                if migration.version in done or (up_to is not None and migration.version > up_to):
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())  # bytes: run as one simple query
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                log.info("applied migration %04d_%s", migration.version, migration.name)
                applied_now.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def latest_version() -> int:
    return migrations()[-1].version


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    conninfo = os.environ.get("DATABASE_URL")
    if not conninfo:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    applied = apply_migrations(conninfo)
    print(f"schema at version {latest_version()} ({len(applied)} migration(s) applied)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
