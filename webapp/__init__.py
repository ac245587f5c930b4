"""The HTTP side: a Flask app factory. Migrations are never run from here (`make migrate`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    # Everything is imported here, not at the top: gunicorn's master reads WebConfig (and
    # so imports this package) to check the settings, and must not load the whole app
    # before it forks its workers; and `jobs-web` patches for gevent (webapp/green.py)
    # after importing this package, before psycopg may be imported.
    import logging
    import threading
    from datetime import timedelta

    from flask import Flask
    from werkzeug.middleware.proxy_fix import ProxyFix

    from queue_jobs.config.settings import QueueSettings
    from queue_jobs.observability import logs
    from queue_jobs.services import connections, live
    from webapp.config import WebConfig
    from webapp.hooks.around_request import init_around_request
    from webapp.hooks.errors import register_error_handlers
    from webapp.hooks.identity import init_jwt
    from webapp.hooks.request_body import CappedRequest
    from webapp.polls_from_memory import PollsFromMemory
    from webapp.views import (
        auth,
        demo,
        health,
        jobs,
        legacy,
        media,
        metrics,
        openapi,
        ops,
        ops_api,
        posts,
    )

    overrides = dict(test_config or {})
    queue_settings: QueueSettings | None = overrides.pop("queue_settings", None)
    config = WebConfig.from_env(overrides)
    app = Flask(__name__)
    app.request_class = CappedRequest  # MAX_CONTENT_LENGTH holds for chunked bodies too
    app.config.update(
        JWT_SECRET_KEY=config.jwt_secret_key,
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
        JWT_TOKEN_LOCATION=["headers"],
        JWT_ACCESS_TOKEN_EXPIRES=timedelta(seconds=config.access_token_ttl_s),
        JWT_REFRESH_TOKEN_EXPIRES=timedelta(seconds=config.refresh_token_ttl_s),
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        JSON_SORT_KEYS=False,
    )
    app.extensions["web_config"] = config
    # One pool per gunicorn worker process: create_app runs after the fork (no --preload).
    # open(wait=False): the app starts even while PostgreSQL is down and answers 503;
    # fail_fast: at once, not after DB_WAIT_S, while the pool knows it is down.
    connections.check_cooperative_waits()
    pool = connections.open_pool(config.database_url, name="web", min_size=config.pool_min_size,
                        max_size=config.pool_max_size, timeout=config.db_wait_s,
                        connect_timeout=max(1, int(config.db_wait_s)), wait=False,
                        fail_fast=True)
    app.extensions["db_pool"] = pool
    # The deprecated synchronous endpoints run pipelines here, on this process's pool.
    settings = queue_settings or QueueSettings.from_env(database_url=config.database_url)
    if config.app_env == "production" and settings.llm_provider == "offline":
        logging.getLogger(__name__).warning(
            "LLM_PROVIDER is offline on this web host: the deprecated synchronous endpoints "
            "will answer heuristic results (set the same LLM settings as the workers)")
    app.extensions["run_resources"] = connections.in_process_resources(settings, pool)
    app.extensions["legacy_slots"] = threading.BoundedSemaphore(config.legacy_calls_per_process)
    # Started by its first use (a poll or a stream): one LISTEN connection per process.
    app.extensions["live_feed"] = live.LiveFeed(
        pool, config.database_url, max_streams=config.streams_per_process,
        eta_tick_s=config.stream_eta_tick_s)
    init_jwt(app)
    register_error_handlers(app)
    # Before the blueprints: its hooks run first and last, so every request is counted,
    # logged and timed whatever a blueprint's own app-wide hooks do.
    init_around_request(app, config)
    for blueprint in (jobs.bp, auth.bp, posts.bp, media.bp, health.bp, legacy.bp, openapi.bp,
                      demo.bp, metrics.bp, ops.bp, ops_api.bp):
        app.register_blueprint(blueprint)
    if config.trusted_proxies:
        # request.remote_addr (the rate limits' client address) from X-Forwarded-For.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.trusted_proxies)  # type: ignore[method-assign]
    # Outermost: a poll the live feed answers from memory needs none of the rest.
    app.wsgi_app = PollsFromMemory(  # type: ignore[method-assign]
        app.wsgi_app, app.extensions["live_feed"], config.cors_origins, config.request_log)
    logs.configure(replace_handlers=False)  # gunicorn's conf or pytest may have done it
    return app

