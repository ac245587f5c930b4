"""R-celery: Flask + Celery 5 + Redis, as Celery's and Flask's docs show them: the view
calls `task.delay()`, the task reports progress with `update_state`, the status view reads
`AsyncResult`. The same routes and job as ours (four steps, progress after each); the
result is `{"success": true}`, or padded to `resultBytes` for the poll figures.

    gunicorn -c webapp/gunicorn_conf.py bench.peers.celery_side:app
    celery -A bench.peers.celery_side worker --pool prefork --concurrency 4

REDIS_URL names the Redis server: the broker is its database 0, the result backend 1.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery, Task
from flask import Flask, jsonify, request

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
STEP_SECONDS = float(os.environ.get("BENCH_STEP_SECONDS", "0"))
STEPS = (("analyze", 30), ("audiences", 20), ("pitches", 20), ("images", 30))
STATUS = {"PENDING": "queued", "STARTED": "running", "PROGRESS": "running",
          "RETRY": "queued", "SUCCESS": "succeeded", "FAILURE": "failed",
          "REVOKED": "cancelled"}

celery = Celery("bench_peer", broker=f"{REDIS_URL}/0", backend=f"{REDIS_URL}/1")
celery.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                   broker_connection_retry_on_startup=True)


@celery.task(bind=True, name="website_analysis")
def website_analysis(self: Task, url: str, result_bytes: int = 0) -> dict[str, Any]:
    progress = 0
    for index, (step, weight) in enumerate(STEPS):
        if STEP_SECONDS:
            time.sleep(STEP_SECONDS)
        progress += weight
        following = STEPS[index + 1][0] if index + 1 < len(STEPS) else step
        self.update_state(state="PROGRESS",
                          meta={"progress": progress, "currentStep": following})
    result: dict[str, Any] = {"success": True}
    if result_bytes:
        result["notes"] = "x" * result_bytes
    return result


app = Flask(__name__)


@app.post("/api/v1/jobs/website-analysis")
def create() -> Any:
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("url"), str):
        return jsonify(error="url is required"), 400
    task = website_analysis.delay(body["url"], int(body.get("resultBytes", 0)))
    return jsonify(jobId=task.id), 201


@app.get("/api/v1/jobs/<job_id>/status")
def status(job_id: str) -> Any:
    # Celery cannot tell an unknown id from a queued one: both are PENDING.
    found = celery.AsyncResult(job_id)
    state = found.state
    document: dict[str, Any] = {"jobId": job_id, "status": STATUS.get(state, state.lower()),
                                "progress": 0, "currentStep": None}
    if state == "PROGRESS" and isinstance(found.info, dict):
        document.update(found.info)
    elif state == "SUCCESS":
        document.update(progress=100, result=found.result)
    elif state == "FAILURE":
        document["error"] = str(found.info)
    return jsonify(document)


@app.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")
