"""The OpenAPI document (webapp/views/openapi.py) against the live app.

Every URL rule of the app is documented with its methods, and schemathesis, in process (WSGI)
on the real per-test PostgreSQL, sends generated valid and invalid requests to every
operation: no 500, and every answer (status, content type, body, headers) is one the
document describes. Real jobs, an organization, a post and images are made first (a worker
runs only while seeding), so the generated requests can also reach them.
"""

from __future__ import annotations

import itertools
import re
import sys
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jsonschema
import pytest
import schemathesis
from flask import Flask
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from queue_jobs.config.settings import QueueSettings
from queue_jobs.services import urls
from queue_jobs.services.accounts import AuthThrottle
from queue_jobs.services.fair_use import FairUse
from tests.fakes.website import FakeWebsite
from tests.integration.conftest import TEST_JWT_SECRET
from tests.integration.support import ApiClient, ThreadWorker, new_session
from webapp import create_app
from webapp.schemas.inputs import PYTHON_SPACE, LoginRequest
from webapp.views.openapi import OPENAPI_PATH, build_document

GENEROUS = 10**6
PASSWORD = "correct horse battery"
OPS_TOKEN = "ops-token-for-the-fuzzing-run"
CONFIG = schemathesis.Config.from_dict({
    "seed": 20260129,  # with `deterministic`, the same requests on every run
    # No NUL characters: the app refuses them in any string (400, said in the document's
    # description), which a JSON Schema cannot say without a pattern on every string.
    "generation": {"mode": "all", "max-examples": 40, "deterministic": True,
                   "database": "none", "unique-inputs": True, "allow-x00": False},
    "phases": {"stateful": {"enabled": False}},
    # An active job's event stream never ends by itself, and keep-alive comments are no
    # events: schemathesis reads it until its request timeout (10 s by default). A second
    # takes in the first event and several keep-alives (the fuzzing app sends one every
    # 0.2 s, fuzz_app), all validated alike.
    "operations": [{"include-name": "GET /api/v1/jobs/{jobId}/events",
                    "request-timeout": 1.0}],
    # A valid request may still meet a used Idempotency-Key (422), like a finished job (409).
    "checks": {"positive_data_acceptance": {"expected-statuses": [
        "2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]}},
})


# ------------------------------------------------------------------------------------------
# Every route is documented, and nothing else is.
# ------------------------------------------------------------------------------------------

def _shape(path: str) -> str:
    """/api/v1/jobs/<job_id>/status and /api/v1/jobs/{jobId}/status are the same route."""
    return re.sub(r"<[^>]+>|{[^}]+}", "{}", path)


def app_routes(app: Flask) -> set[tuple[str, str]]:
    # HEAD and OPTIONS are Flask's own answers for every rule.
    return {(_shape(rule.rule), method)
            for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}


def documented_routes() -> set[tuple[str, str]]:
    return {(_shape(path), method.upper())
            for path, operations in build_document()["paths"].items()
            for method in operations}


def test_every_route_of_the_app_is_documented_and_nothing_else(api: ApiClient) -> None:
    routes, documented = app_routes(api.app), documented_routes()
    assert routes - documented == set(), "add them to webapp.views.openapi.OPERATIONS"
    assert documented - routes == set(), "documented, but the app has no such route"


def test_not_blank_means_what_str_strip_keeps() -> None:
    everything = [chr(code) for code in range(sys.maxunicode + 1)]
    in_pattern = re.compile(f"[{PYTHON_SPACE}]")
    assert {c for c in everything if in_pattern.fullmatch(c)} == {
        c for c in everything if c.isspace()}


def test_the_document_is_served_as_built(api: ApiClient) -> None:
    response = api.http.get(OPENAPI_PATH)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == build_document()
    assert response.get_json()["openapi"] == "3.1.0"
    OPENAPI_31_VALIDATOR.validate(response.get_json())  # the OpenAPI 3.1 meta-schema


# ------------------------------------------------------------------------------------------
# What the generated requests can find: real identities and resources.
# ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Seeded:
    session: dict[str, str]
    access: dict[str, str]  # the user's access token
    refresh: dict[str, str]  # the same user's refresh token
    job_ids: list[str]  # succeeded, queued and failed jobs of the session and the user
    organization_id: str
    post_id: str
    image_ids: list[str]
    etags: list[str]  # of finished jobs, whose documents no longer change
    login: dict[str, str]  # the user's email and password


def _wait_succeeded(api: ApiClient, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    document = api.wait_for_status(job_id, headers, {"succeeded", "failed"}, timeout=30)
    assert document["status"] == "succeeded", document
    return document


def _image_id(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _run_jobs(api: ApiClient, website: FakeWebsite, session: dict[str, str]) -> dict[str, Any]:
    """A website analysis by the session, then a signed-up user's blog post for it."""
    analysis_id = api.create_analysis(website.url("/"), session)
    analysis = _wait_succeeded(api, analysis_id, session)["result"]
    # The funnel: registering with the session makes the organization the user's.
    account = api.register(password=PASSWORD, headers=session)
    user = api.bearer(account)
    response = api.http.post("/api/v1/jobs/content-generation", headers=user, json={
        "topic": {"title": "Getting paid faster"}, "businessInfo": {},
        "organizationId": analysis["organizationId"],
        "options": {"includeVisuals": True, "autoSave": True}})
    assert response.status_code == 201, response.get_json()
    post_job_id = response.get_json()["jobId"]
    post = _wait_succeeded(api, post_job_id, user)["result"]
    return {"account": account, "job_ids": [analysis_id, post_job_id],
            "organization_id": analysis["organizationId"],
            "post_id": post["savedPost"]["id"],
            "image_ids": [_image_id(s["imageUrl"]) for s in analysis["scenarios"]]
            + [_image_id(v["imageUrl"]) for v in post["data"]["visuals"]]}


def _etag(api: ApiClient, job_id: str, headers: dict[str, str]) -> str:
    return str(api.http.get(f"/api/v1/jobs/{job_id}/status", headers=headers).headers["ETag"])


def _seed(api: ApiClient, settings: QueueSettings, website: FakeWebsite) -> Seeded:
    session = new_session()
    with ThreadWorker(settings):  # stopped before fuzzing: generated jobs stay queued
        made = _run_jobs(api, website, session)
    account = made["account"]
    user = api.bearer(account)
    queued = api.create_analysis(website.url("/"), session)
    failed = api.create_analysis(website.url("/"), session)
    assert api.http.post(f"/api/v1/jobs/{failed}/cancel", headers=session).status_code == 200
    finished = [(made["job_ids"][0], session), (made["job_ids"][1], user), (failed, session)]
    return Seeded(
        session=session, access=user,
        refresh={"Authorization": f"Bearer {account['refreshToken']}"},
        job_ids=[*made["job_ids"], queued, failed],
        organization_id=made["organization_id"], post_id=made["post_id"],
        image_ids=made["image_ids"],
        etags=[_etag(api, job_id, headers) for job_id, headers in finished],
        login={"email": account["user"]["email"], "password": PASSWORD})


@pytest.fixture
def fuzz_app(db_url: str, settings: QueueSettings) -> Iterator[Flask]:
    # Limits so generous that rate limiting does not hide everything else (it is tested on
    # its own in test_fair_use and test_accounts).
    app = create_app({
        "database_url": db_url, "jwt_secret_key": TEST_JWT_SECRET, "queue_settings": settings,
        "ops_token": OPS_TOKEN,
        # A stream of an active job stays open, sending keep-alives: a few within the
        # second schemathesis reads it (CONFIG), not the production one per 10 s.
        "stream_keepalive_s": 0.2,
        "fair_use": FairUse(max_active_per_session=10_000, max_active_per_user=10_000,
                            creates_per_address_per_minute=0),
        "auth_throttle": AuthThrottle(
            failures_per_email_and_address=GENEROUS, failures_per_address=GENEROUS,
            failures_per_email=GENEROUS, registrations_per_address=GENEROUS),
    })
    yield app
    app.extensions["db_pool"].close()


@pytest.fixture
def seeded(fuzz_app: Flask, settings: QueueSettings, website: FakeWebsite) -> Seeded:
    return _seed(ApiClient(fuzz_app), settings, website)


# ------------------------------------------------------------------------------------------
# The schemathesis run.
# ------------------------------------------------------------------------------------------

def _security_names(operation: Any) -> set[str]:
    return {name for requirement in operation.definition.raw.get("security", [])
            for name in requirement}


def _identities(seeded: Seeded) -> Iterator[dict[str, str]]:
    """For "JWT or session": both, the session alone, the token alone, in turn."""
    return itertools.cycle([{**seeded.access, **seeded.session}, seeded.session, seeded.access])


def _auth_provider(seeded: Seeded) -> type:
    identities = _identities(seeded)

    class Identity:
        """The credentials each operation's security asks for (schemathesis itself also
        sends requests without them, or with invalid ones, in its negative cases)."""

        def get(self, case: schemathesis.Case, ctx: schemathesis.AuthContext
                ) -> dict[str, str] | None:
            names = _security_names(case.operation)
            if case.operation.path == "/api/v1/auth/refresh":
                return seeded.refresh
            if names == {"bearerAuth", "sessionId"}:
                return next(identities)
            if names == {"sessionId"}:
                return seeded.session  # register, login: the funnel's optional session
            if names == {"opsToken"}:
                return {"Authorization": f"Bearer {OPS_TOKEN}"}
            return seeded.access if names == {"bearerAuth"} else None

        def set(self, case: schemathesis.Case, data: dict[str, str],
                ctx: schemathesis.AuthContext) -> None:
            case.headers.update(data)

    return Identity


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return isinstance(value, str)


def _url_the_pattern_cannot_judge(url: object) -> bool:
    """URLs the document's pattern allows but the app rightly refuses (400): a host urlsplit
    cannot parse or the host rule refuses for what the pattern leaves out (lengths, hyphens
    at a label's ends), or text UTF-8 cannot hold. A JSON Schema pattern cannot say these
    without backtracking."""
    if not isinstance(url, str):
        return False
    if any("\ud800" <= char <= "\udfff" or char == "\x00" for char in url):
        return True
    return urls.url_problem(url) is not None


KNOWN_IDS = {"jobId": "job_ids", "postId": "post_id", "imageId": "image_ids"}
BULK_PATHS = ("/ops/api/jobs/retry", "/ops/api/jobs/cancel")


def _documented_bulk_body(body: Any) -> bool:
    """Whether the API document allows this body of a bulk action."""
    components = build_document()["components"]  # its $refs are #/components/...
    return jsonschema.Draft202012Validator(
        {**components["schemas"]["OpsBulkRequest"], "components": components}).is_valid(body)


def _register_hooks(schema: Any, seeded: Seeded) -> None:
    def known(name: str) -> list[str]:
        value = getattr(seeded, KNOWN_IDS[name])
        return value if isinstance(value, list) else [value]

    @schema.hook
    def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any]) -> Any:
        # A valid but random id is almost never found: often use one that exists instead.
        # Invalid ids (negative cases) are left alone.
        if not isinstance(path_parameters, dict):
            return st.just(path_parameters)
        choices = {name: st.sampled_from([value, *known(name)])
                   if name in KNOWN_IDS and _is_uuid(value) else st.just(value)
                   for name, value in path_parameters.items()}
        return st.fixed_dictionaries(choices)

    @schema.hook
    def flatmap_body(context: Any, body: Any) -> Any:
        # Also the organization that exists, and the credentials that sign in.
        if isinstance(body, dict) and isinstance(body.get("organizationId"), str):
            return st.sampled_from([body, {**body, "organizationId": seeded.organization_id}])
        if (context.operation.path == "/api/v1/auth/login" and isinstance(body, dict)
                and not LoginRequest().validate(body)):  # negative cases stay negative
            return st.sampled_from([body, seeded.login])
        if context.operation.path in BULK_PATHS and _documented_bulk_body(body):
            # A made-up filter matches no job (404): also the dry run of every job (a
            # body the document allows stays one; negative cases stay negative).
            return st.sampled_from([body, {"filter": {}, "dryRun": True}])
        return st.just(body)

    @schema.hook
    def flatmap_headers(context: Any, headers: dict[str, Any] | None) -> Any:
        # A random If-None-Match never matches: offer "*" and real ETags for the 304.
        if not (context.operation.path.endswith("/status")
                and isinstance(headers, dict | None)):
            return st.just(headers)
        return st.sampled_from([headers, *({**(headers or {}), "If-None-Match": tag}
                                           for tag in ["*", *seeded.etags])])

    @schema.hook
    def filter_body(context: Any, body: Any) -> bool:
        return not (isinstance(body, dict) and _url_the_pattern_cannot_judge(body.get("url")))


@pytest.fixture
def api_schema(fuzz_app: Flask, seeded: Seeded) -> Any:
    schema = schemathesis.openapi.from_wsgi(OPENAPI_PATH, fuzz_app, config=CONFIG)
    schema.auth(refresh_interval=None)(_auth_provider(seeded))
    _register_hooks(schema, seeded)
    return schema


Answers = Counter[tuple[str, str, int]]  # (operation, method sent, status) -> how many


@pytest.fixture
def answers() -> Iterator[Answers]:
    """What the fuzzing got back; each operation must have succeeded at least once, or the
    identities and ids above no longer get generated requests past 401 and 404."""
    seen: Answers = Counter()
    yield seen
    print("\n".join(f"{label} ({method}): {status} x{count}"
                    for (label, method, status), count in sorted(seen.items())))
    # (schemathesis leaves out the operation that serves the document itself)
    tried = {label for (label, _, _) in seen}
    succeeded = {label for (label, method, status) in seen
                 if label.startswith(f"{method} ") and status < 400}
    assert tried - succeeded == set(), "never answered with success"


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32.5 renames the test per operation through `node._nodeid`, which
    # pytest 9.2 no longer has (it keeps the id elsewhere); give it the attribute to use.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


# Not the deprecated synchronous endpoints: each generated request would run a whole
# pipeline in the request. tests/integration/test_legacy.py checks their answers against
# this document instead.
lazy_schema = schemathesis.pytest.from_fixture("api_schema").exclude(tag="legacy")


def _excluded_checks(operation: Any) -> list[Any]:
    excluded: list[Any] = []
    if "sessionId" in _security_names(operation):
        # Anonymous sessions are made up by the client: any well-formed x-session-id is a
        # valid one, so "a made-up credential was accepted" is how they work, not a hole.
        excluded.append(ignored_auth)
    if operation.path.startswith("/ops/api/"):
        # The ops API's filter values (ISO 8601 times, owners, cursors the API gave out)
        # are checked past what a JSON Schema can say: a schema-valid "2000-99-99" or a
        # made-up cursor is rightly a 400. Every other check holds (no 500, answers as
        # documented); tests/integration/test_ops_api.py checks the 400s one by one.
        excluded.append(positive_data_acceptance)
    return excluded


@lazy_schema.parametrize()
def test_every_answer_is_documented_and_none_is_a_server_error(
        case: schemathesis.Case, answers: Answers) -> None:
    response = case.call_and_validate(excluded_checks=_excluded_checks(case.operation))
    answers[case.operation.label, case.method.upper(), response.status_code] += 1


class Call(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    expected: int
    path_parameters: Mapping[str, str] = {}
    body: Mapping[str, Any] | None = None


def _real_calls(seeded: Seeded) -> list[Call]:
    session, user = seeded.session, seeded.access
    analysis, generation, queued, failed = seeded.job_ids
    status = "/api/v1/jobs/{jobId}/status"
    return [
        Call("GET", status, session, 200, {"jobId": analysis}),  # result §6.1
        Call("GET", status, {**session, "If-None-Match": seeded.etags[0]}, 304,
             {"jobId": analysis}),
        Call("GET", status, user, 200, {"jobId": generation}),  # result §6.2
        Call("GET", status, session, 200, {"jobId": queued}),
        Call("GET", status, session, 200, {"jobId": failed}),
        Call("GET", "/api/v1/jobs/", session, 200),
        Call("GET", "/api/v1/jobs/", user, 200),
        Call("GET", "/api/v1/auth/me", user, 200),
        Call("POST", "/api/v1/auth/login", session, 200, body=seeded.login),
        Call("GET", "/api/v1/posts/{postId}", user, 200, {"postId": seeded.post_id}),
        *(Call("GET", "/api/v1/images/{imageId}", {**session, **user}, 200,
               {"imageId": image_id}) for image_id in seeded.image_ids),
        Call("POST", "/api/v1/jobs/{jobId}/cancel", session, 200, {"jobId": queued}),
        Call("POST", "/api/v1/jobs/{jobId}/retry", session, 200, {"jobId": failed}),
        Call("POST", "/api/v1/jobs/{jobId}/cancel", session, 409, {"jobId": analysis}),
    ]


def test_real_jobs_posts_and_images_answer_as_documented(api_schema: Any,
                                                         seeded: Seeded) -> None:
    """The answers fuzzing may or may not reach, each checked once: both kinds of result
    (§6), a queued and a failed job, the lists, me, login, the post and every image."""
    for call in _real_calls(seeded):
        operation = api_schema[call.path][call.method]
        body = {} if call.body is None else {"body": dict(call.body)}
        case = operation.Case(path_parameters=dict(call.path_parameters), **body)
        response = case.call_and_validate(headers=call.headers,
                                          excluded_checks=_excluded_checks(operation))
        assert response.status_code == call.expected, (call, response.text)


# ------------------------------------------------------------------------------------------
# What schemathesis found in the app (fixed): kept as regression tests.
# ------------------------------------------------------------------------------------------

def test_405_names_the_allowed_methods(api: ApiClient) -> None:
    response = api.http.delete("/healthz")
    assert response.status_code == 405
    assert "GET" in response.headers.get("Allow", "")  # RFC 9110 §15.5.6: MUST


@pytest.mark.parametrize("url", ["http://[::1/", "http://[838f:]/", "http://a\uff03b/"])
def test_a_malformed_url_host_is_a_400(api: ApiClient, url: str) -> None:
    response = api.http.post("/api/v1/jobs/website-analysis", json={"url": url},
                             headers=new_session())
    assert response.status_code == 400, response.get_json()
