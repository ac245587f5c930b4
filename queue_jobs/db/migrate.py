"""Applies sql/migrations in order, one transaction each, recorded in schema_migrations;
then applies sql/functions/*.sql again, so every stored function of ours has the body its
file holds.

`python -m queue_jobs.db.migrate` (what `make migrate` runs). Safe to run from several hosts
at once: a session advisory lock serialises them, and applied versions are skipped.

The functions files describe the schema at this release's latest migration: they are
applied only to a database that is at that version once the migrations are done (not with
`up_to` short of it, nor by an older release to a database a newer one migrated), in the
transaction of the last migration applied, or in one of their own if none was pending.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import psycopg

from queue_jobs.db.sql_files import functions, migrations

log = logging.getLogger(__name__)
_LOCK_KEY = 7_340_021  # any constant; shared by every migrating process

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""


def apply_migrations(conninfo: str, up_to: int | None = None) -> list[int]:
    """Applies every pending migration (up to version `up_to`, if given), then the functions
    files if the database is then at the latest version; returns the versions it applied."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(_CREATE_LEDGER)
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            pending = [m for m in migrations()
                       if m.version not in done and (up_to is None or m.version <= up_to)]
            reached = max(done | {m.version for m in pending}, default=0)
            with_functions = reached == latest_version()
            if with_functions:
                functions()  # a malformed file stops here, before any migration runs
            elif reached > latest_version():
                log.warning("schema at version %d, newer than this release's %d: its "
                            "functions are left as they are", reached, latest_version())
            for migration in pending:
                with conn.transaction():
                    conn.execute(migration.sql.encode())  # bytes: run as one simple query
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                    if with_functions and migration is pending[-1]:
                        apply_functions(conn)
                log.info("applied migration %04d_%s", migration.version, migration.name)
            if with_functions and not pending:
                with conn.transaction():
                    apply_functions(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return [m.version for m in pending]


def apply_functions(conn: psycopg.Connection[Any]) -> None:
    """Every sql/functions file, in the caller's transaction. Twice: first without checking
    the bodies, so that a LANGUAGE sql body may call a function whose file comes later; then
    checking each body against all of them (PL/pgSQL bodies are checked at their first
    call)."""
    for check_bodies in ("off", "on"):
        conn.execute("SELECT set_config('check_function_bodies', %s, true)", (check_bodies,))
        for function in functions():
            conn.execute(function.sql.encode())
    log.info("applied %d function(s) from sql/functions", len(functions()))


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
