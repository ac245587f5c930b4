"""The HTTP side: a Flask app factory. Migrations are never run from here (`make migrate`)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, request
from psycopg_pool import ConnectionPool

from webapp import health, jobs, media
from webapp.config import WebConfig
from webapp.errors import register_error_handlers
from webapp.identity import init_jwt


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    config = WebConfig.from_env(test_config)
    app = Flask(__name__)
    app.config.update(
        JWT_SECRET_KEY=config.jwt_secret_key,
        JWT_ALGORITHM="HS256",
        JWT_DECODE_ALGORITHMS=["HS256"],
        JWT_TOKEN_LOCATION=["headers"],
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        JSON_SORT_KEYS=False,
    )
    app.extensions["web_config"] = config
    # One pool per gunicorn worker process: create_app runs after the fork (no --preload).
    # open(wait=False): the app starts even while PostgreSQL is down and answers 503.
    pool = ConnectionPool(
        config.database_url, min_size=config.pool_min_size, max_size=config.pool_max_size,
        timeout=config.db_wait_s, open=False, name="web",
        kwargs={"connect_timeout": max(1, int(config.db_wait_s)), "keepalives": 1},
        # After a database restart, idle connections are dead: test each before lending it
        # (one round trip) rather than fail a request, and stop backing off after a few
        # seconds so a recovered database is used at once.
        check=ConnectionPool.check_connection, reconnect_timeout=5,
    )
    pool.open(wait=False)
    app.extensions["db_pool"] = pool
    init_jwt(app)
    register_error_handlers(app)
    for blueprint in (jobs.bp, media.bp, health.bp):
        app.register_blueprint(blueprint)
    _add_cors(app, config.cors_origins)
    logging.basicConfig(level=logging.INFO)
    return app


def _add_cors(app: Flask, origins: tuple[str, ...]) -> None:
    @app.after_request
    def cors(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if origin and ("*" in origins or origin in origins):
            response.headers["Access-Control-Allow-Origin"] = "*" if "*" in origins else origin
            response.headers["Access-Control-Allow-Headers"] = (
                "Authorization, Content-Type, If-None-Match, x-session-id")
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Expose-Headers"] = "ETag, Retry-After"
            response.vary.add("Origin")
        return response
