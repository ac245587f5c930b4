"""What create_app puts on the app for the views: the pool and the configuration."""

from __future__ import annotations

from flask import current_app
from psycopg_pool import ConnectionPool

from webapp.config import WebConfig


def db_pool() -> ConnectionPool:
    pool: ConnectionPool = current_app.extensions["db_pool"]
    return pool


def web_config() -> WebConfig:
    config: WebConfig = current_app.extensions["web_config"]
    return config
