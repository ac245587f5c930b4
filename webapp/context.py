"""What create_app puts on the app for the views: the pool and the configuration."""

from __future__ import annotations

import logging
import threading

from flask import current_app, request

from queue_jobs.services.connections import ConnectionPool, InProcessResources
from queue_jobs.services.live import LiveFeed
from webapp.config import WebConfig

log = logging.getLogger(__name__)
_warned_about_proxy = False


def db_pool() -> ConnectionPool:
    pool: ConnectionPool = current_app.extensions["db_pool"]
    return pool


def live_feed() -> LiveFeed:
    feed: LiveFeed = current_app.extensions["live_feed"]
    return feed


def web_config() -> WebConfig:
    config: WebConfig = current_app.extensions["web_config"]
    return config


def run_resources() -> InProcessResources:
    """What the deprecated synchronous endpoints run pipelines with, in this process."""
    resources: InProcessResources = current_app.extensions["run_resources"]
    return resources


def legacy_slots() -> threading.BoundedSemaphore:
    slots: threading.BoundedSemaphore = current_app.extensions["legacy_slots"]
    return slots


def client_address() -> str:
    """The address the rate limits count by (X-Forwarded-For only with TRUSTED_PROXIES)."""
    global _warned_about_proxy
    if ("X-Forwarded-For" in request.headers and not web_config().trusted_proxies
            and not _warned_about_proxy):
        _warned_about_proxy = True  # once per process: the log is not the place to flood
        log.warning("requests carry X-Forwarded-For but TRUSTED_PROXIES is 0: rate limits "
                    "count every client behind the proxy as one address")
    return request.remote_addr or "unknown"
