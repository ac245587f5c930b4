"""Integration fixtures: a real PostgreSQL (embedded, or TEST_DATABASE_URL), one database
per test cloned from a migrated template (pytest-postgresql makes the template; the clones
are made ahead and dropped after, off the test's time), the fake OpenAI-compatible server,
the local web site, the Flask app and an in-process procrastinate worker."""

from __future__ import annotations

import itertools
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import psycopg
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from pytest_postgresql import factories

from queue_jobs.config.settings import QueueSettings
from queue_jobs.db.embedded import start_embedded, uri_for
from queue_jobs.db.migrate import apply_migrations
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.website import FakeWebsite
from tests.integration.support import PROJECT_DIR, ApiClient, ThreadWorker, free_port
from webapp import create_app

TEST_JWT_SECRET = "test-secret-key-that-is-long-enough-for-hs256"
# Playwright drives Debian's Chromium (`make deps`): browser downloads are not possible.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = PROJECT_DIR / "var" / "artifacts"  # screenshots the browser tests keep


@dataclass(frozen=True)
class ServerParams:
    """What pytest-postgresql's `depends_on` reads from a base fixture."""

    host: str
    port: int
    user: str
    password: str | None
    options: str = ""
    maintenance_dbname: str = "postgres"
    template_dbname: str | None = None

    def conninfo(self, dbname: str) -> str:
        return make_conninfo(host=self.host, port=self.port, user=self.user, dbname=dbname,
                             password=self.password or "")


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ServerParams]:
    url = os.environ.get("TEST_DATABASE_URL")
    server = None
    if not url:
        server = start_embedded(PROJECT_DIR / "var" / "test-pgdata")
        url = uri_for(server)
    params = conninfo_to_dict(url)
    try:
        yield ServerParams(host=str(params.get("host", "localhost")),
                           port=int(str(params.get("port", 5432))), user=str(params.get("user")),
                           password=str(params["password"]) if params.get("password") else None)
    finally:
        if server is not None:
            # pgserver lets go at exit (atexit), which pytest-xdist's worker processes never
            # run: without this the last of them would leave the server running.
            server.cleanup()


def _load_schema(host: str, port: int, user: str, dbname: str, password: str | None,
                 **_: Any) -> None:
    apply_migrations(make_conninfo(host=host, port=port, user=user, dbname=dbname,
                                   password=password or ""))


postgresql_template = factories.postgresql_noproc(
    dbname=f"jobs_template_{os.getpid()}", depends_on="pg_server", load=[_load_schema])


class DatabaseSupply:
    """Fresh databases cloned from the template, on a thread of its own: the next test's
    clone is made while a test runs, and a test's database is dropped while the next one
    runs. A clone copies the whole template and a drop forces a checkpoint (PostgreSQL
    16): about a second together when the machine is busy, which no test waits for now,
    unless its clone is not ready yet."""

    def __init__(self, server: ServerParams, template: str) -> None:
        self._maintenance = server.conninfo(server.maintenance_dbname)
        self._template = sql.Identifier(template)
        self._names = (f"jobs_test_{os.getpid()}_{n}" for n in itertools.count())
        self._orders: queue.SimpleQueue[tuple[str, str] | None] = queue.SimpleQueue()
        self._ready: queue.SimpleQueue[str | Exception] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._work, name="database-supply", daemon=True)
        self._thread.start()
        self._order_clone()

    def _order_clone(self) -> None:
        self._orders.put(("create", next(self._names)))

    def take(self) -> str:
        """A database nobody has used; the next one is ordered at once."""
        self._order_clone()
        made = self._ready.get(timeout=120)
        if isinstance(made, Exception):
            self._ready.put(made)  # every later test fails alike, without the wait
            raise made
        return made

    def give_back(self, name: str) -> None:
        """Dropped soon, connections and all."""
        self._orders.put(("drop", name))

    def close(self) -> None:
        """Waits until every database given back, and the clone made ahead, is dropped."""
        self._orders.put(None)
        self._thread.join(timeout=120)

    def _work(self) -> None:
        try:
            with psycopg.connect(self._maintenance, autocommit=True) as conn:
                while (order := self._orders.get()) is not None:
                    action, name = order
                    if action == "create":
                        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                            sql.Identifier(name), self._template))
                        self._ready.put(name)
                    else:
                        self._drop(conn, name)
                while not self._ready.empty():  # made ahead, never taken
                    if isinstance(unused := self._ready.get(), str):
                        self._drop(conn, unused)
        except Exception as error:
            self._ready.put(error)  # for the test that waits

    @staticmethod
    def _drop(conn: psycopg.Connection[Any], name: str) -> None:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


@pytest.fixture(scope="session")
def database_supply(pg_server: ServerParams, postgresql_template: Any
                    ) -> Iterator[DatabaseSupply]:
    supply = DatabaseSupply(pg_server, postgresql_template.template_dbname)
    yield supply
    supply.close()


@pytest.fixture
def db_url(pg_server: ServerParams, database_supply: DatabaseSupply) -> Iterator[str]:
    """The test's own database, a clone of the migrated template."""
    name = database_supply.take()
    yield pg_server.conninfo(name)
    database_supply.give_back(name)


@pytest.fixture
def db(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection for assertions on the tables."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake_llm(fake_llm_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    fake_llm_server.reset()
    yield fake_llm_server
    fake_llm_server.reset()


@pytest.fixture(scope="session")
def website_server() -> Iterator[FakeWebsite]:
    with FakeWebsite() as site:
        yield site


@pytest.fixture
def website(website_server: FakeWebsite) -> FakeWebsite:
    website_server.reset()  # hit counts and delays are per test
    return website_server


@pytest.fixture
def settings(db_url: str, fake_llm: FakeOpenAI) -> QueueSettings:
    return QueueSettings.from_env(
        {}, database_url=db_url, llm_provider="openai", openai_api_key="test-key",
        openai_base_url=fake_llm.base_url, fetch_allow_private=True, llm_timeout_s=10.0,
        step_retries=2, retry_backoff_s=0.05, stalled_after_s=3.0, pool_size=4,
        job_timeout_s=60.0)


@pytest.fixture
def api(db_url: str) -> Iterator[ApiClient]:
    client = ApiClient.for_database(db_url, TEST_JWT_SECRET)
    yield client
    client.close()


@pytest.fixture
def api_factory(db_url: str) -> Iterator[Callable[..., ApiClient]]:
    """Makes APIs on the test's database with create_app overrides, closed at the end."""
    clients: list[ApiClient] = []

    def make(**overrides: Any) -> ApiClient:
        client = ApiClient(create_app({"database_url": db_url, "jwt_secret_key": TEST_JWT_SECRET,
                                       **overrides}))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def worker(settings: QueueSettings) -> Iterator[ThreadWorker]:
    with ThreadWorker(settings, concurrency=4) as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make deps` (make test does it)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox"])
        yield launched
        launched.close()


@contextmanager
def browser_page(browser: Browser, base_url: str) -> Iterator[Page]:
    """A page in a browser context of its own (its own storage), relative URLs at
    base_url; the context closes after."""
    context = browser.new_context(base_url=base_url)
    try:
        yield context.new_page()
    finally:
        context.close()


def start_gunicorn(db_url: str, *, processes: int, output: IO[bytes] | int = subprocess.DEVNULL,
                   **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """The app under webapp/gunicorn_conf.py as shipped (it chooses its own metrics directory),
    as a subprocess on a free port: the process and its base URL."""
    port = free_port()
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("PROMETHEUS_MULTIPROC_DIR", "LOG_FORMAT", "ACCESS_LOG")}
    environment.update({"DATABASE_URL": db_url, "PORT": str(port),
                        "WEB_CONCURRENCY": str(processes), "JWT_SECRET_KEY": TEST_JWT_SECRET,
                        "LLM_PROVIDER": "offline", **env})
    gunicorn = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "webapp/gunicorn_conf.py",
         "wsgi:app"], cwd=PROJECT_DIR, env=environment, stdout=output, stderr=output)
    return gunicorn, f"http://127.0.0.1:{port}"
