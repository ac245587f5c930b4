"""A worker killed with SIGKILL mid-job: the reaper of another worker recovers the job.

These run the real worker (`python -m queue_jobs.worker`) as subprocesses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.support import (
    ApiClient,
    image_ids_in,
    image_ids_of_job,
    new_session,
    recorded_llm_calls,
)

PROJECT_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


class CliWorkers:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "queue_jobs.worker", "--concurrency", "2"],
            cwd=PROJECT_DIR, env=self.env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)


@pytest.fixture
def cli_workers(db_url: str, fake_llm: FakeOpenAI) -> Iterator[CliWorkers]:
    # PYTHONPATH: the console script does not put the working directory on sys.path.
    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR), "DATABASE_URL": db_url,
           "LLM_PROVIDER": "openai",
           "OPENAI_API_KEY": "test-key", "OPENAI_BASE_URL": fake_llm.base_url,
           "FETCH_ALLOW_PRIVATE_NETWORKS": "true", "WORKER_HEARTBEAT_S": "0.5",
           "WORKER_STALLED_AFTER_S": "2", "REAPER_INTERVAL_S": "1",
           "RETRY_BACKOFF_S": "0.05"}
    workers = CliWorkers(env)
    yield workers
    workers.stop_all()


def _kill_mid_job(api: ApiClient, cli_workers: CliWorkers, fake_llm: FakeOpenAI,
                  website: FakeWebsite, session: dict[str, str]) -> str:
    fake_llm.set_delay("chat:audiences", 60)
    victim = cli_workers.start()
    job_id = api.create_analysis(website.url("/"), session)
    fake_llm.wait_for_calls("chat:audiences", 1, timeout=20)
    # Shown before its call is made: the step before it was written as it finished.
    assert api.status(job_id, session)["currentStep"] == "Generating audiences..."
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    fake_llm.set_delay("chat:audiences", 0)
    return job_id


def test_killed_worker_job_is_recovered_and_resumes_from_its_checkpoint(
        api: ApiClient, cli_workers: CliWorkers, fake_llm: FakeOpenAI, website: FakeWebsite,
        db: psycopg.Connection[Any]) -> None:
    session = new_session()
    job_id = _kill_mid_job(api, cli_workers, fake_llm, website, session)
    cli_workers.start()  # the rescuer: its periodic reaper finds the dead run
    done = api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=40)
    assert done["status"] == "succeeded", done
    assert fake_llm.calls("chat:business_analysis") == 1  # checkpoint kept, not re-run
    assert fake_llm.calls("chat:audiences") == 2
    row = db.execute("SELECT lost_runs FROM jobs WHERE id = %s", (job_id,)).fetchone()
    assert row == (1,)


def test_third_lost_run_fails_the_job_with_worker_lost(
        api: ApiClient, cli_workers: CliWorkers, fake_llm: FakeOpenAI, website: FakeWebsite,
        db: psycopg.Connection[Any]) -> None:
    session = new_session()
    job_id = _kill_mid_job(api, cli_workers, fake_llm, website, session)
    # As if two earlier runs of this attempt had been lost already.
    db.execute("UPDATE jobs SET lost_runs = 2 WHERE id = %s", (job_id,))
    cli_workers.start()
    done = api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=40)
    assert (done["status"], done["errorCode"]) == ("failed", "WORKER_LOST")
    assert done["currentStep"] == "Generating audiences..."


def test_a_worker_killed_mid_images_is_resumed_with_only_the_missing_images(
        api: ApiClient, cli_workers: CliWorkers, fake_llm: FakeOpenAI, website: FakeWebsite,
        db: psycopg.Connection[Any]) -> None:
    session = new_session()
    fake_llm.set_delay("images", 60, after=1)  # the first image is made, the second hangs
    victim = cli_workers.start()
    job_id = api.create_analysis(website.url("/"), session)
    # Asked for after the first image was saved (and its call recorded).
    fake_llm.wait_for_calls("images", 2, timeout=30)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    answered_by_the_victim = fake_llm.answered("chat") + fake_llm.answered("images")
    assert recorded_llm_calls(db, job_id) == (answered_by_the_victim,) * 2
    fake_llm.set_delay("images", 0)  # the hung request stays hung: it is never answered

    cli_workers.start()
    done = api.wait_for_status(job_id, session, {"succeeded", "failed"}, timeout=40)
    assert done["status"] == "succeeded", done
    scenarios = len(done["result"]["scenarios"])
    assert fake_llm.answered("images") == scenarios  # the victim's one, the missing ones
    assert fake_llm.calls("images") == scenarios + 1  # and the one the kill cut short
    assert image_ids_of_job(db, job_id) == image_ids_in(done["result"])
    answered = fake_llm.answered("chat") + fake_llm.answered("images")
    assert recorded_llm_calls(db, job_id) == (answered, answered)
