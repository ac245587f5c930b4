"""Migrations on a real PostgreSQL: a fresh database, applied twice, /readyz before and
after, and the per-test template (what every other test runs on) equals their sum; the
stored functions of ours are those of sql/functions, which migrate applies again."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import procrastinate
import psycopg
import pytest
from psycopg import sql

from queue_jobs.db.migrate import apply_migrations, latest_version
from queue_jobs.db.sql_files import functions, migrations
from tests.integration.conftest import TEST_JWT_SECRET, ServerParams
from tests.integration.support import ApiClient

# Every migration file's version, in order (sql_files.migrations refuses gaps).
ALL_VERSIONS = [migration.version for migration in migrations()]

PROCRASTINATE_TABLES = {"procrastinate_jobs", "procrastinate_workers"}
OUR_TABLES = {"jobs", "images", "organizations", "users", "posts", "idempotency_keys",
              "rate_limits"}

# Indexes of ours on procrastinate's tables (an upgrade keeps them: its migrations do not
# know them), named as ours.
OUR_INDEXES_ON_ITS_TABLES = {"jobs_queue_todo_order_idx"}  # migration 0023

# Everything a migration can create in the public schema, in a stable order. Names are
# compared, not OIDs, so two databases migrated the same way have equal fingerprints.
_FINGERPRINT_QUERIES = {
    "columns": """
        SELECT table_name, column_name, ordinal_position, data_type, udt_name,
               column_default, is_nullable, character_maximum_length, is_identity
        FROM information_schema.columns
        WHERE table_schema = 'public'
        ORDER BY table_name, ordinal_position""",
    "indexes": """
        SELECT tablename, indexname, indexdef
        FROM pg_indexes
        WHERE schemaname = 'public'
        ORDER BY tablename, indexname""",
    "functions": """
        SELECT p.proname, pg_get_function_identity_arguments(p.oid),
               pg_get_function_result(p.oid), p.prokind, md5(p.prosrc)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public'
        ORDER BY 1, 2""",
    "constraints": """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = 'public'
        ORDER BY 1, 2""",
    "triggers": """
        SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND NOT t.tgisinternal
        ORDER BY 1, 2""",
    "types": """
        SELECT t.typname, t.typtype,
               array(SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = t.oid
                     ORDER BY e.enumsortorder)
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c')
              AND NOT EXISTS (SELECT 1 FROM pg_class c
                              WHERE c.oid = t.typrelid AND c.relkind <> 'c')
        ORDER BY 1""",
}


# Our stored functions (not procrastinate's), each with its whole definition as PostgreSQL
# prints it back: arguments, result, language, volatility and body. In name order as
# Python sorts them (proname is of type name, collation "C").
_OUR_FUNCTIONS = """
    SELECT p.proname, pg_get_functiondef(p.oid)
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.proname NOT LIKE 'procrastinate%'
    ORDER BY 1, pg_get_function_identity_arguments(p.oid)"""
# The last migration that defines a function of ours; the later ones leave that to
# sql/functions (README there).
_LAST_MIGRATION_WITH_FUNCTIONS = 13
# A body of lock_key other than its file's.
_ANOTHER_LOCK_KEY = """
    CREATE OR REPLACE FUNCTION lock_key(key text) RETURNS void LANGUAGE sql
    AS $$ SELECT pg_advisory_xact_lock(hashtextextended(key, 1)) $$"""


def our_functions(conninfo: str) -> list[tuple[str, str]]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return [(name, definition) for name, definition in conn.execute(_OUR_FUNCTIONS)]


def schema_fingerprint(conninfo: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return {name: conn.execute(query).fetchall()
                for name, query in _FINGERPRINT_QUERIES.items()}


def ledger(conninfo: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(
            "SELECT version, name, applied_at FROM schema_migrations ORDER BY version"
        ).fetchall()


def tables(conninfo: str) -> set[str]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {row[0] for row in rows}


@pytest.fixture
def empty_db_url(pg_server: ServerParams) -> Iterator[str]:
    """A brand-new database with nothing in it (not cloned from the migrated template)."""
    with scratch_database(pg_server) as url:
        yield url


@contextlib.contextmanager
def scratch_database(pg_server: ServerParams) -> Iterator[str]:
    name = f"migrations_{uuid.uuid4().hex[:12]}"
    maintenance = pg_server.conninfo(pg_server.maintenance_dbname)
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield pg_server.conninfo(name)
    finally:
        with psycopg.connect(maintenance, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                         .format(sql.Identifier(name)))


def test_a_fresh_database_gets_every_migration(empty_db_url: str) -> None:
    assert tables(empty_db_url) == set()

    applied = apply_migrations(empty_db_url)

    expected = ALL_VERSIONS
    assert applied == expected
    assert [row[0] for row in ledger(empty_db_url)] == expected
    present = tables(empty_db_url)
    assert present >= PROCRASTINATE_TABLES | OUR_TABLES | {"schema_migrations"}, present


def test_applying_twice_applies_nothing_and_changes_nothing(empty_db_url: str) -> None:
    apply_migrations(empty_db_url)
    fingerprint, rows = schema_fingerprint(empty_db_url), ledger(empty_db_url)
    assert all(fingerprint.values()), {k: len(v) for k, v in fingerprint.items()
                                       if k in ("columns", "indexes", "functions")}

    assert apply_migrations(empty_db_url) == []

    assert ledger(empty_db_url) == rows
    assert schema_fingerprint(empty_db_url) == fingerprint


def test_the_migrations_give_the_installed_procrastinate_its_own_schema(
        empty_db_url: str, pg_server: ServerParams) -> None:
    """After a procrastinate upgrade (requirements.txt), this fails until its new
    migrations are copied into sql/migrations (README: upgrading procrastinate)."""
    apply_migrations(empty_db_url)
    own_schema = Path(procrastinate.__file__).parent / "sql" / "schema.sql"
    with scratch_database(pg_server) as reference_url:
        with psycopg.connect(reference_url, autocommit=True) as conn:
            conn.execute(own_schema.read_bytes())
        reference = schema_fingerprint(reference_url)

    def procrastinate_objects(fingerprint: dict[str, list[tuple[Any, ...]]]
                              ) -> dict[str, list[tuple[Any, ...]]]:
        return {kind: [row for row in rows if str(row[0]).startswith("procrastinate")
                       and not (kind == "indexes" and row[1] in OUR_INDEXES_ON_ITS_TABLES)]
                for kind, rows in fingerprint.items()}

    migrated = schema_fingerprint(empty_db_url)
    ours = procrastinate_objects(migrated)
    assert ours == procrastinate_objects(reference)
    assert all(ours.values())
    assert {row[1] for row in migrated["indexes"]} >= OUR_INDEXES_ON_ITS_TABLES


def test_readyz_answers_503_until_the_schema_is_current(empty_db_url: str) -> None:
    api = ApiClient.for_database(empty_db_url, TEST_JWT_SECRET)
    try:
        response = api.http.get("/readyz")
        assert response.status_code == 503
        assert response.is_json, response.data
        body = response.get_json()
        assert body["status"] == "schema-outdated"
        assert body["errorCode"] == "SCHEMA_OUTDATED"
        assert body["schemaVersion"] == 0
        assert body["expectedVersion"] == latest_version()

        apply_migrations(empty_db_url)

        response = api.http.get("/readyz")
        assert response.status_code == 200, response.get_json()
        assert response.get_json() == {"status": "ready", "schemaVersion": latest_version()}
    finally:
        api.close()


def test_the_test_template_equals_the_sum_of_the_migrations(
        empty_db_url: str, db_url: str, db: psycopg.Connection[Any]) -> None:
    apply_migrations(empty_db_url)

    versions = [row[0] for row in db.execute(
        "SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == ALL_VERSIONS
    assert schema_fingerprint(db_url) == schema_fingerprint(empty_db_url)


def test_images_made_before_accounts_stay_visible_and_old_writers_keep_working(
        empty_db_url: str) -> None:
    """0004/0005 on a database that already holds jobs and images: nothing is lost, and the
    image INSERT of the previous release (still running on workers mid-deploy) works."""
    apply_migrations(empty_db_url, up_to=3)
    session = "sess_before_accounts"
    job_id, image_id = uuid.uuid4(), uuid.uuid4()
    old_insert_image = ("INSERT INTO images (id, job_id, content_type, data, prompt) "
                        "VALUES (%s, %s, 'image/png', %s, 'p')")
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO jobs (id, type, owner_session_id, input) "
                     "VALUES (%s, 'website-analysis', %s, '{}')", (job_id, session))
        conn.execute(old_insert_image, (image_id, job_id, b"\x89PNG old"))

    assert apply_migrations(empty_db_url) == [v for v in ALL_VERSIONS if v >= 4]

    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(old_insert_image, (uuid.uuid4(), job_id, b"\x89PNG mid-deploy"))
    api = ApiClient.for_database(empty_db_url, TEST_JWT_SECRET)
    try:
        image = api.http.get(f"/api/v1/images/{image_id}", headers={"x-session-id": session})
        assert image.status_code == 200 and image.data == b"\x89PNG old"
        stranger = api.http.get(f"/api/v1/images/{image_id}",
                                headers={"x-session-id": "sess_somebody_else"})
        assert stranger.status_code == 404
    finally:
        api.close()


def test_the_functions_files_are_the_functions_a_migrated_database_has(
        empty_db_url: str, pg_server: ServerParams) -> None:
    """One file per function of ours, sql/functions/<name>.sql, and one function per file:
    no function a migration made is left without a file, no overload of an older signature
    is left behind. On the sum of the migrations alone (no functions step), each file
    changes its own function only and nothing but functions, and all of them give what
    migrate gives."""
    apply_migrations(empty_db_url)
    migrated = our_functions(empty_db_url)
    assert [name for name, _ in migrated] == [function.name for function in functions()]

    with scratch_database(pg_server) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            for migration in migrations():
                with conn.transaction():
                    conn.execute(migration.sql.encode())
        before_files = schema_fingerprint(url)
        for function in functions():
            before = set(our_functions(url))
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(function.sql.encode())
            changed = {name for name, _ in before ^ set(our_functions(url))}
            assert changed <= {function.name}, function.name
        assert our_functions(url) == migrated
        after_files = schema_fingerprint(url)
    assert {kind: rows for kind, rows in after_files.items() if kind != "functions"} == {
        kind: rows for kind, rows in before_files.items() if kind != "functions"}


def test_migrations_leave_the_definitions_of_our_functions_to_their_files() -> None:
    """A later migration may DROP a function of ours (before its file creates it with a new
    signature), not define one: its file would undo that at the same migrate. The one
    exception: a new trigger function's placeholder (a CREATE TRIGGER needs its function),
    created without OR REPLACE (so never over a body) as a trigger that does nothing, for
    its file to replace at the same migrate (unless a later migration drops it: its file
    goes then)."""
    defines = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+)", re.IGNORECASE)
    placeholder = re.compile(
        r"\bCREATE\s+FUNCTION\s+(\w+)\(\)\s+RETURNS\s+trigger\s+LANGUAGE\s+plpgsql\s+"
        r"AS\s+\$\$\s*BEGIN\s+RETURN\s+NULL;\s+END\s*\$\$;", re.IGNORECASE)
    drops = re.compile(r"\bDROP\s+FUNCTION\s+(?:IF\s+EXISTS\s+)?(\w+)\(\)", re.IGNORECASE)
    files = {function.name for function in functions()}
    for migration in migrations():
        if migration.version > _LAST_MIGRATION_WITH_FUNCTIONS:
            dropped_later = {name for later in migrations() if later.version > migration.version
                             for name in drops.findall(later.sql)}
            placeholders = set(placeholder.findall(migration.sql))
            assert placeholders <= files | dropped_later, (
                f"{migration.version:04d}: {placeholders - files - dropped_later}")
            ours = [name for name in defines.findall(migration.sql)
                    if not name.lower().startswith("procrastinate")
                    and name not in placeholders]
            assert ours == [], f"{migration.version:04d}_{migration.name}: {ours}"


def test_migrate_puts_back_the_body_a_function_has_in_its_file(empty_db_url: str) -> None:
    apply_migrations(empty_db_url)
    expected = our_functions(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute(_ANOTHER_LOCK_KEY)
    assert our_functions(empty_db_url) != expected

    assert apply_migrations(empty_db_url) == []

    assert our_functions(empty_db_url) == expected


def test_an_older_release_leaves_the_functions_of_a_newer_schema_alone(
        empty_db_url: str) -> None:
    """A web host of the previous release migrates as it starts (ops/Procfile), maybe after
    the new release did: it must not put its older bodies back."""
    apply_migrations(empty_db_url)
    with psycopg.connect(empty_db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, 'newer')",
                     (latest_version() + 1,))
        conn.execute(_ANOTHER_LOCK_KEY)
    newer = our_functions(empty_db_url)

    assert apply_migrations(empty_db_url) == []

    assert our_functions(empty_db_url) == newer
