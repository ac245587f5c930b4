"""The load: anonymous visitors, each in a thread of its own, as the demo page behaves.

A visitor creates a website analysis with a fresh session id and polls its status until it
is finished; every `content_every`-th one then signs up with that session (its organization
becomes the user's) and has a post written, with a visual, saved as a draft. A create that
is refused (503, or the connection cut) is tried again a second later, as a frontend would,
until the load ends. Every request is timed and kept (`Answer`), whatever came back.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.chaos.plan import Plan

REQUEST_TIMEOUT_S = 15.0  # an answer later than this counts as none
ANALYSIS = "website-analysis"
CONTENT = "content-generation"
FINISHED = ("succeeded", "failed")


@dataclass(frozen=True)
class Answer:
    what: str  # create, status, register, login, final, image
    at_s: float  # when it was sent, seconds from the start of the run
    seconds: float
    status: int | None  # None: no answer
    error: str | None = None  # "timeout" or "connection" when there was no answer


@dataclass
class Job:
    id: str
    type: str
    headers: dict[str, str]
    created_at_s: float
    last: dict[str, Any] | None = None  # the last status document a visitor saw


@dataclass
class Load:
    plan: Plan
    base_url: str
    site_url: str
    clock: Callable[[], float]
    answers: list[Answer] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    creating: threading.Event = field(default_factory=threading.Event)
    polling: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)  # visitors that stopped on a surprise
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    # --- the visitors --------------------------------------------------------------------

    def start(self) -> None:
        self.creating.set()
        self.polling.set()
        arrivals = threading.Thread(target=self._arrivals, name="chaos-arrivals", daemon=True)
        arrivals.start()
        self._threads.append(arrivals)

    def stop_creating(self) -> None:
        self.creating.clear()

    def stop(self) -> None:
        self.creating.clear()
        self.polling.clear()
        for thread in list(self._threads):
            thread.join(REQUEST_TIMEOUT_S + 5)

    def visitors_done(self) -> bool:
        return not any(t.is_alive() for t in self._threads)

    def _arrivals(self) -> None:
        number = 0
        while self.creating.is_set():
            number += 1
            visitor = threading.Thread(target=self._visit_or_note, args=(number,),
                                       name=f"chaos-visitor-{number}", daemon=True)
            visitor.start()
            with self._lock:
                self._threads.append(visitor)
            time.sleep(self.plan.visit_every_s)

    def _visit_or_note(self, number: int) -> None:
        try:
            self.visit(number)
        except Exception as error:  # an answer the harness did not expect: reported
            with self._lock:
                self.errors.append(f"visitor {number}: {error!r}")

    def visit(self, number: int) -> None:
        http = requests.Session()
        session = {"x-session-id": f"chaos_{uuid.uuid4().hex}"}
        analysis = self.create(http, ANALYSIS, {"url": self.site_url}, session)
        if analysis is None:
            return
        document = self.poll_to_end(http, analysis)
        if number % self.plan.content_every or document is None \
                or document["status"] != "succeeded":
            return
        token = self.sign_up(http, session)
        if token is None:
            return
        body = {"organizationId": document["result"]["organizationId"],
                "topic": {"title": "How to get paid faster"},
                "businessInfo": {"targetAudience": "freelancers"},
                "options": {"includeVisuals": True, "autoSave": True, "status": "draft"}}
        post = self.create(http, CONTENT, body, {"Authorization": f"Bearer {token}"})
        if post is not None:
            self.poll_to_end(http, post)

    def create(self, http: requests.Session, job_type: str, body: dict[str, Any],
               headers: dict[str, str]) -> Job | None:
        while self.creating.is_set():
            response = self.send(http, "create", "POST", f"/api/v1/jobs/{job_type}",
                                 json=body, headers=headers)
            if response is not None and response.status_code == 201:
                job = Job(str(response.json()["jobId"]), job_type, headers, self.clock())
                with self._lock:
                    self.jobs.append(job)
                return job
            time.sleep(1.0)
        return None

    def poll_to_end(self, http: requests.Session, job: Job) -> dict[str, Any] | None:
        while self.polling.is_set():
            response = self.send(http, "status", "GET", f"/api/v1/jobs/{job.id}/status",
                                 headers=job.headers)
            if response is not None and response.status_code == 200:
                job.last = dict(response.json())
                if job.last["status"] in FINISHED:
                    break
            time.sleep(self.plan.poll_every_s)
        return job.last

    def sign_up(self, http: requests.Session, session: dict[str, str]) -> str | None:
        """A new account claiming the session's organization; a sign-up whose 201 was lost
        (a killed web worker) is followed by a login."""
        credentials = {"email": f"{session['x-session-id']}@example.com",
                       "password": "correct horse battery", "name": "Chaos"}
        what, path = "register", "/api/v1/auth/register"
        while self.creating.is_set():
            response = self.send(http, what, "POST", path, json=credentials, headers=session)
            if response is not None and response.status_code in (200, 201):
                return str(response.json()["accessToken"])
            if response is not None and response.status_code == 409:
                what, path = "login", "/api/v1/auth/login"
                continue
            time.sleep(1.0)
        return None

    # --- requests ------------------------------------------------------------------------

    def send(self, http: requests.Session, what: str, method: str, path: str,
             **kwargs: Any) -> requests.Response | None:
        """One request, timed and recorded; None when no answer came."""
        started = time.monotonic()
        at_s = self.clock()
        response: requests.Response | None = None
        error = None
        try:
            response = http.request(method, self.base_url + path, timeout=REQUEST_TIMEOUT_S,
                                    **kwargs)
        except requests.Timeout:
            error = "timeout"
        except requests.ConnectionError:
            error = "connection"
        answer = Answer(what, round(at_s, 3), round(time.monotonic() - started, 3),
                        None if response is None else response.status_code, error)
        with self._lock:
            self.answers.append(answer)
        return response
