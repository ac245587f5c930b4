"""The deployment files (ops/Procfile, ops/systemd/*.service) run what the Makefile runs:
the same entry points, which exist and import."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
OPS = PROJECT / "ops"


def procfile() -> dict[str, list[str]]:
    lines = [line for line in (OPS / "Procfile").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    return {name: shlex.split(command) for name, command in
            (line.split(":", 1) for line in lines)}


def exec_starts() -> dict[str, list[str]]:
    found = {}
    for unit in (OPS / "systemd").glob("*.service"):
        match = re.search(r"^ExecStart=(.+)$", unit.read_text(), re.MULTILINE)
        assert match, unit
        found[unit.stem] = shlex.split(match.group(1))
    return found


def assert_runnable(command: list[str]) -> None:
    """Every module it names imports, and every project file it names exists."""
    for index, word in enumerate(command):
        if word == "-m" or word.startswith("--app="):
            module = command[index + 1] if word == "-m" else word.removeprefix("--app=")
            module = module.rsplit(".", 1)[0] if module.endswith(".app") else module
            assert importlib.util.find_spec(module) is not None, module
        if word == "-c":
            assert (PROJECT / command[index + 1]).is_file(), command[index + 1]
        if re.fullmatch(r"\w+:app", word):
            assert (PROJECT / f"{word.split(':')[0]}.py").is_file(), word


def test_procfile_runs_the_migrations_the_api_and_a_worker() -> None:
    processes = procfile()
    assert set(processes) == {"release", "web", "worker"}
    assert processes["web"][:3] == ["gunicorn", "-c", "ops/gunicorn.conf.py"]
    assert processes["worker"][1:5] == ["-m", "procrastinate", "--app=queue_jobs.app",
                                        "worker"]
    for command in processes.values():
        assert_runnable(command)


def test_systemd_units_run_the_same_entry_points_and_restart() -> None:
    units = exec_starts()
    assert set(units) == {"jobs-web", "jobs-worker", "jobs-migrate"}
    for name, command in units.items():
        assert command[0].startswith("/opt/jobs/.venv/bin/")
        assert_runnable(command)
        text = (OPS / "systemd" / f"{name}.service").read_text()
        if name != "jobs-migrate":  # long-running: must come back after any exit
            assert "Restart=always" in text
    assert units["jobs-worker"][1:5] == procfile()["worker"][1:5]
