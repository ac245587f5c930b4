"""The deployment files (ops/Procfile, ops/systemd/*, ops/run_dev.py, ops/env.example) run
what the Makefile runs: the same entry points, which exist and import, and they know every
setting the code reads."""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
OPS = PROJECT / "ops"
SYSTEMD = OPS / "systemd"
WORKER = ["jobs-worker"]
SCRIPTS = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]["scripts"]


def procfile() -> dict[str, list[str]]:
    lines = [line for line in (OPS / "Procfile").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    return {name: shlex.split(command) for name, command in
            (line.split(":", 1) for line in lines)}


def exec_starts() -> dict[str, list[str]]:
    found = {}
    for unit in SYSTEMD.glob("*.service"):
        match = re.search(r"^ExecStart=(.+)$", unit.read_text(), re.MULTILINE)
        assert match, unit
        found[unit.stem] = shlex.split(match.group(1))
    return found


def makefile_recipe(target: str) -> list[str]:
    match = re.search(rf"^{target}:.*\n\t(.+)$", (PROJECT / "Makefile").read_text(),
                      re.MULTILINE)
    assert match, target
    return shlex.split(match.group(1))


def assert_runnable(command: list[str]) -> None:
    """Every console script it names is the package's and its function imports, every
    module it names imports, and every project file it names exists."""
    for index, word in enumerate(command):
        script = word.rsplit("/", 1)[-1]
        if script.startswith("jobs-"):
            module, _, function = SCRIPTS[script].partition(":")
            assert callable(getattr(importlib.import_module(module), function)), script
        if word == "-m" or word.startswith("--app="):
            module = command[index + 1] if word == "-m" else word.removeprefix("--app=")
            module = module.rsplit(".", 1)[0] if module.endswith(".app") else module
            assert importlib.util.find_spec(module) is not None, module
        if word == "-c" and not command[index + 1].startswith("python:"):
            assert (PROJECT / command[index + 1]).is_file(), command[index + 1]
        if re.fullmatch(r"\w+:app", word):
            assert (PROJECT / f"{word.split(':')[0]}.py").is_file(), word


def test_procfile_runs_the_migrations_the_api_and_a_worker() -> None:
    processes = procfile()
    # No one-shot `release` process: under honcho or foreman its exit stops the others.
    assert set(processes) == {"web", "worker"}
    assert processes["web"] == ["jobs-migrate", "&&", "exec", "jobs-web"]
    assert processes["worker"] == WORKER
    for command in processes.values():
        assert_runnable(command)


def test_makefile_and_make_run_start_the_same_worker() -> None:
    assert makefile_recipe("worker") == ["$(BIN)/jobs-worker"]
    assert makefile_recipe("web") == ["$(BIN)/jobs-web"]
    run_dev = (OPS / "run_dev.py").read_text()
    assert 'BIN / "jobs-worker"' in run_dev and 'BIN / "jobs-web"' in run_dev


def test_ci_runs_the_short_chaos_test_after_the_suite() -> None:
    assert makefile_recipe("chaos") == ["$(BIN)/python", "-m", "tests.chaos"]
    assert makefile_recipe("chaos-short") == ["$(BIN)/python", "-m", "tests.chaos", "--short"]
    assert_runnable(makefile_recipe("chaos-short"))
    steps = [line.split("#")[0].strip() for line in (PROJECT / ".ci" / "run").read_text()
             .splitlines() if line.startswith("make ")]
    assert steps == ["make test", "make chaos-short"]


def test_systemd_units_run_the_same_entry_points_and_restart() -> None:
    units = exec_starts()
    assert set(units) == {"jobs-web", "jobs-worker@", "jobs-worker-check@", "jobs-migrate"}
    for name, command in units.items():
        text = (SYSTEMD / f"{name}.service").read_text()
        if name == "jobs-worker-check@":
            continue  # a shell around curl, below
        assert command[0].startswith("/opt/jobs/.venv/bin/")
        assert_runnable(command)
        assert "EnvironmentFile=/etc/jobs/env" in text
        if name != "jobs-migrate":  # long-running: must come back after any exit
            assert "Restart=always" in text
    assert units["jobs-worker@"][0].endswith("/" + procfile()["worker"][0])
    # The instance name is the port of /healthz and /metrics.
    assert units["jobs-worker@"][1:] == ["--metrics-port", "%i"]


def test_the_worker_accepts_the_command_lines_of_the_deploy_files() -> None:
    from queue_jobs.worker.main import parse_args

    # jobs-worker@9101: systemd puts the instance name in place of %i. The option wins
    # over a WORKER_METRICS_PORT of the environment file.
    instance = [word.replace("%i", "9101") for word in exec_starts()["jobs-worker@"][1:]]
    unit = parse_args(instance, env={"WORKER_METRICS_PORT": "1", "WORKER_CONCURRENCY": "7"})
    assert (unit.metrics_port, unit.concurrency, unit.queues) == (9101, 7, None)
    plain = parse_args([], env={})
    assert (plain.metrics_port, plain.concurrency, plain.queues) == (0, 4, None)
    queues = parse_args(["--queue", "jobs", "--queue", "maintenance"], env={})
    assert queues.queues == ["jobs", "maintenance"]


OK = '{"status": "ok", "workerId": 1}'
STALE = '{"status": "unhealthy", "reason": "heartbeat 40.0 s old"}'
UNREACHABLE = '{"status": "unhealthy", "reason": "database unreachable: OperationalError"}'


def _run_check(tmp_path: Path, host: str | None, answer: str) -> tuple[str, str]:
    """The check's shell line as systemd would run it for jobs-worker@9101 ($$ is $, %i the
    instance), with curl and systemctl replaced by stubs that record their arguments; curl
    prints `answer` (empty: no answer, curl fails)."""
    line = exec_starts()["jobs-worker-check@"]
    assert line[:2] == ["/bin/sh", "-c"]
    script = line[2].replace("$$", "$").replace("%i", "9101")
    (tmp_path / "answer").write_text(answer)
    for name, code in (("curl", 0 if answer else 7), ("systemctl", 0)):
        stub = tmp_path / name
        stub.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/{name}.args"\n'
                        f'cat "{tmp_path}/answer"\nexit {code}\n')
        stub.chmod(0o755)
    (tmp_path / "systemctl.args").unlink(missing_ok=True)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", **({"WORKER_METRICS_HOST": host} if host else {})}
    subprocess.run(["/bin/sh", "-c", script], env=env, check=True, timeout=10)
    restart = tmp_path / "systemctl.args"
    return ((tmp_path / "curl.args").read_text().split()[-1],
            restart.read_text().strip() if restart.exists() else "")


def test_the_liveness_check_restarts_the_worker_of_its_port(tmp_path: Path) -> None:
    restart = "--no-block restart jobs-worker@9101.service"
    assert _run_check(tmp_path, None, OK) == ("http://127.0.0.1:9101/healthz", "")
    assert _run_check(tmp_path, "0.0.0.0", STALE) == ("http://127.0.0.1:9101/healthz", restart)
    assert _run_check(tmp_path, None, "")[1] == restart  # no answer at all
    # The worker waits for the database by itself: a restart would not help.
    assert _run_check(tmp_path, None, UNREACHABLE)[1] == ""
    assert _run_check(tmp_path, "::", OK)[0] == "http://[::1]:9101/healthz"
    assert _run_check(tmp_path, "10.0.0.7", OK)[0] == "http://10.0.0.7:9101/healthz"
    check = (SYSTEMD / "jobs-worker-check@.service").read_text()
    assert "Requisite=jobs-worker@%i.service" in check
    assert "EnvironmentFile=-/etc/jobs/env" in check
    assert "OnUnitActiveSec=" in (SYSTEMD / "jobs-worker-check@.timer").read_text()


# A name in quotes read from os.environ or from a mapping or EnvReader called `env`: a
# lookup (env["X"], .get, .setdefault, .pop) or a typed read (env.int("X", 5), .str,
# .seconds).
ENV_READ = re.compile(
    r"""(?:\bos\.environ|\benv)(?:\.\w+)?\s*[(\[]\s*["']([A-Z][A-Z0-9_]*)["']""")


def settings_read_from_the_environment() -> set[str]:
    sources = [*(PROJECT / "queue_jobs").rglob("*.py"), *(PROJECT / "webapp").rglob("*.py"),
               *OPS.glob("*.py"), PROJECT / "wsgi.py"]
    for source in sources:  # ENV_READ knows a reader by its name
        for name in re.findall(r"(\w+)\s*=\s*EnvReader\(", source.read_text()):
            assert name == "env", f"{source.name}: call the EnvReader `env`, not {name!r}"
    return {name for source in sources for name in ENV_READ.findall(source.read_text())}


def test_env_example_lists_every_setting_with_placeholders_only() -> None:
    read = settings_read_from_the_environment()
    assert {"DATABASE_URL", "JWT_SECRET_KEY", "WORKER_METRICS_PORT", "PORT"} <= read
    # Read only through EnvReader's typed reads (an int, seconds): the pattern sees those.
    assert {"WORKER_CONCURRENCY", "DB_WAIT_S", "WORKER_HEARTBEAT_S"} <= read
    text = (OPS / "env.example").read_text()
    listed = set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", text, re.MULTILINE))
    assert read - listed == set(), "settings missing from ops/env.example"
    assert listed - read == set(), "ops/env.example lists settings nothing reads"
    active = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, re.MULTILINE))
    assert active["JWT_SECRET_KEY"] == ""  # empty: production refuses to start until set
    assert "CHANGE-ME" in active["DATABASE_URL"]
    assert not re.search(r"sk-[A-Za-z0-9]{8,}", text)
    for unit in SYSTEMD.glob("jobs-*.service"):
        if "EnvironmentFile=/etc/jobs/env" in unit.read_text():
            assert "ops/env.example" in unit.read_text(), unit.name
