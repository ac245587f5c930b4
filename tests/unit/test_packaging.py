"""pyproject.toml ships what the code needs: every Python package on disk (the list is
explicit because the SQL folders are shipped under package names of their own), the data
folders the code reads, and console scripts that exist."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["setuptools"]
PROJECT_TABLE = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]


def test_every_python_package_on_disk_is_shipped() -> None:
    on_disk = {".".join(init.parent.relative_to(PROJECT).parts)
               for root in ("webapp", "queue_jobs")
               for init in (PROJECT / root).rglob("__init__.py")}
    data_packages = set(SETUPTOOLS["package-dir"]) | {
        f"{name}.{child.name}" for name, folder in SETUPTOOLS["package-dir"].items()
        for child in (PROJECT / folder).iterdir() if child.is_dir()} | {"webapp.static"}
    assert set(SETUPTOOLS["packages"]) == on_disk | data_packages


def _folder(package: str) -> Path:
    """Where a shipped package's files are in the checkout."""
    for mapped, folder in SETUPTOOLS["package-dir"].items():
        if package == mapped or package.startswith(mapped + "."):
            return PROJECT / folder / Path(*package[len(mapped):].split(".")[1:])
    return PROJECT.joinpath(*package.split("."))


def test_the_data_folders_are_the_ones_the_code_reads() -> None:
    from queue_jobs.db.sql_files import SQL_DIR
    from queue_jobs.observability.dashboards import DASHBOARD_DIR

    shipped = {PROJECT / folder for folder in SETUPTOOLS["package-dir"].values()}
    assert {SQL_DIR, DASHBOARD_DIR} == shipped
    for package, patterns in SETUPTOOLS["package-data"].items():
        assert all(any(_folder(package).glob(pattern)) for pattern in patterns), package


def test_console_scripts_name_functions_that_exist() -> None:
    assert set(PROJECT_TABLE["scripts"]) == {"jobs-web", "jobs-worker", "jobs-migrate",
                                             "jobs-admin"}
    for target in PROJECT_TABLE["scripts"].values():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), target


def test_test_tools_stay_out_of_the_runtime_requirements() -> None:
    runtime = (PROJECT / "requirements.txt").read_text().lower()
    for tool in ("pytest", "schemathesis", "playwright", "ruff", "mypy", "import-linter",
                 "pgserver"):
        assert tool not in runtime, tool
