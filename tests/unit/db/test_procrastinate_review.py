"""What a procrastinate upgrade reviews stays in one list: every named statement on its
tables or functions is in sql/queries/procrastinate.sql, and that file's header names every
other file of ours that uses them (stored functions, dashboards)."""

from __future__ import annotations

import re
from pathlib import Path

from queue_jobs.db.sql_files import SQL_DIR
from queue_jobs.observability.dashboards import DASHBOARD_DIR

PROJECT = Path(__file__).resolve().parents[3]
REVIEW_FILE = SQL_DIR / "queries" / "procrastinate.sql"
_COMMENT = re.compile(r"--[^\n]*")
_PROCRASTINATE_OBJECT = re.compile(r"\bprocrastinate_\w+", re.IGNORECASE)


def uses_procrastinate(path: Path) -> bool:
    """Names one of procrastinate's tables, types or functions outside a comment."""
    return bool(_PROCRASTINATE_OBJECT.search(_COMMENT.sub("", path.read_text())))


def test_every_named_statement_on_procrastinate_is_in_its_own_file() -> None:
    elsewhere = [path.name for path in sorted((SQL_DIR / "queries").glob("*.sql"))
                 if path != REVIEW_FILE and uses_procrastinate(path)]
    assert elsewhere == []
    assert uses_procrastinate(REVIEW_FILE)


def test_its_header_names_every_other_file_that_uses_procrastinate() -> None:
    header = REVIEW_FILE.read_text().split("-- name:", 1)[0]
    users = [path for folder in (SQL_DIR / "functions", DASHBOARD_DIR)
             for path in sorted(folder.glob("*.sql")) if uses_procrastinate(path)]
    assert users  # jobs_dispatch_run, the workers dashboard
    missing = [str(path.relative_to(PROJECT)) for path in users
               if str(path.relative_to(PROJECT)) not in header]
    assert missing == []
