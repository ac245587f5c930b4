"""Loads the project's SQL files: numbered migrations, stored functions and named queries.

A queries file holds blocks that start with `-- name: <identifier>`; the block's text up to
the next such line is the statement (comments included, PostgreSQL ignores them). A
functions file `<name>.sql` holds one `CREATE OR REPLACE FUNCTION <name>(...)`: that
function's current definition (sql/functions/README.md).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path


def shipped_dir(in_checkout: str, package: str) -> Path:
    """A folder of SQL files: at the top of a checkout (`sql/`, `ops/dashboards/`), or, in
    an installed package, the copy pyproject.toml ships under `package`."""
    checkout = Path(__file__).resolve().parents[2] / in_checkout
    if checkout.is_dir():
        return checkout
    spec = importlib.util.find_spec(package)  # a namespace package: a folder of data
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"neither {checkout} nor the package {package} exists")
    return Path(next(iter(spec.submodule_search_locations)))


SQL_DIR = shipped_dir("sql", "queue_jobs.sql")
_NAME_LINE = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_MIGRATION_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
_CREATE_FUNCTION = re.compile(r"\bCREATE\s+(OR\s+REPLACE\s+)?FUNCTION\s+(\w+)\s*\(",
                              re.IGNORECASE)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


@dataclass(frozen=True)
class StoredFunction:
    name: str
    sql: str


@cache
def named_queries() -> dict[str, str]:
    queries: dict[str, str] = {}
    for path in sorted((SQL_DIR / "queries").glob("*.sql")):
        text = path.read_text()
        matches = list(_NAME_LINE.finditer(text))
        for match, following in zip(matches, [*matches[1:], None], strict=True):
            end = following.start() if following else len(text)
            name = match.group(1)
            if name in queries:
                raise ValueError(f"query {name!r} is defined twice ({path.name})")
            queries[name] = text[match.end() : end].strip()
    return queries


@cache
def migrations() -> tuple[Migration, ...]:
    found = []
    for path in sorted((SQL_DIR / "migrations").glob("*.sql")):
        match = _MIGRATION_FILE.match(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} is not named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    # Increasing and each number once. A gap is allowed: work in parallel reserves numbers
    # (issue 17: 0018 and 0019 on separate branches), and a branch lacks the others' until
    # they merge; the ledger records versions, not a count.
    if versions[:1] != [1] or len(set(versions)) != len(versions):
        raise ValueError(f"migrations must be numbered from 1, each number once, found {versions}")
    return tuple(found)


@cache
def functions() -> tuple[StoredFunction, ...]:
    """sql/functions/*.sql in name order, each checked to create the function it is named
    after, with CREATE OR REPLACE (it is applied again at every migrate)."""
    found = []
    for path in sorted((SQL_DIR / "functions").glob("*.sql")):
        text = path.read_text()
        creates = [(bool(or_replace), name.lower())
                   for or_replace, name in _CREATE_FUNCTION.findall(text)]
        if creates != [(True, path.stem)]:
            raise ValueError(f"functions file {path.name} must hold one statement "
                             f"CREATE OR REPLACE FUNCTION {path.stem}(...)")
        found.append(StoredFunction(path.stem, text))
    return tuple(found)
