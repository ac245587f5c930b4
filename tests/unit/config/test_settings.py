"""Both sides' settings objects read a given mapping with environs: the defaults of
ops/env.example, and one SettingsError line naming each bad variable and its value."""

from __future__ import annotations

import math

import pytest

from queue_jobs.config.env_reader import EnvReader, SettingsError
from queue_jobs.config.settings import QueueSettings
from webapp.config import ConfigError, WebConfig

# Else a development secret file is made; 32 characters, as production requires.
SECRET = {"JWT_SECRET_KEY": "unit-test-secret-32-characters-!"}
LONG_ENOUGH = "g" * 32


def test_queue_defaults_are_those_of_env_example() -> None:
    settings = QueueSettings.from_env({})
    assert (settings.llm_provider, settings.openai_api_key, settings.openai_model,
            settings.openai_image_model) == ("offline", None, "gpt-4.1-mini", "gpt-image-1")
    assert (settings.llm_timeout_s, settings.job_timeout_s, settings.retention_days,
            settings.step_retries, settings.retry_backoff_s) == (60.0, 600.0, 30, 3, 1.0)
    assert (settings.stalled_after_s, settings.pool_size, settings.fetch_allow_private,
            settings.fetch_deadline_s) == (30.0, 10, False, 20.0)
    assert (settings.concurrency, settings.metrics_host, settings.metrics_port,
            settings.heartbeat_s, settings.shutdown_grace_s, settings.reaper_interval_s) == (
        4, "127.0.0.1", 0, 10.0, 10.0, 10)


def test_queue_values_are_parsed_and_empty_means_what_it_meant() -> None:
    settings = QueueSettings.from_env({
        "OPENAI_API_KEY": "sk-test", "WORKER_CONCURRENCY": "7", "WORKER_HEARTBEAT_S": "0.5",
        "FETCH_ALLOW_PRIVATE_NETWORKS": " Yes ", "JOB_TIMEOUT_S": "inf",
        "REAPER_INTERVAL_S": "1", "WORKER_METRICS_HOST": "::"})
    assert (settings.llm_provider, settings.concurrency, settings.heartbeat_s) == (
        "openai", 7, 0.5)
    assert settings.fetch_allow_private and math.isinf(settings.job_timeout_s)
    assert (settings.reaper_interval_s, settings.metrics_host) == (1, "::")
    # These were read as `env.get(NAME) or DEFAULT`: set but empty is the default.
    blank = QueueSettings.from_env({name: "" for name in (
        "WORKER_CONCURRENCY", "WORKER_METRICS_PORT", "WORKER_METRICS_HOST", "OPENAI_MODEL",
        "LLM_PROVIDER", "OPENAI_API_KEY")})
    assert (blank.concurrency, blank.metrics_port, blank.metrics_host, blank.openai_model,
            blank.llm_provider) == (4, 0, "127.0.0.1", "gpt-4.1-mini", "offline")


def test_an_explicit_mapping_is_read_not_the_process_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_CONCURRENCY", "abc")
    monkeypatch.setenv("DB_POOL_MAX_SIZE", "abc")
    assert QueueSettings.from_env({"WORKER_CONCURRENCY": "3"}).concurrency == 3
    assert WebConfig.from_env(environ=SECRET).pool_max_size == 8
    with pytest.raises(SettingsError, match="WORKER_CONCURRENCY"):
        QueueSettings.from_env()  # None: os.environ


@pytest.mark.parametrize(("environ", "message"), [
    ({"WORKER_CONCURRENCY": "abc"}, "WORKER_CONCURRENCY: Not a valid integer ('abc')"),
    ({"LLM_TIMEOUT_S": "soon"}, "LLM_TIMEOUT_S: Not a valid number ('soon')"),
    ({"JOB_RETENTION_DAYS": ""}, "JOB_RETENTION_DAYS: Not a valid integer ('')"),
    # The rules --concurrency and --metrics-port always had, now for the environment too.
    ({"WORKER_CONCURRENCY": "0"}, "WORKER_CONCURRENCY: Must be greater than or equal to 1 ('0')"),
    ({"WORKER_METRICS_PORT": "70000"}, "WORKER_METRICS_PORT: Must be greater than or equal "
                                       "to 0 and less than or equal to 65535 ('70000')"),
])
def test_a_bad_queue_value_is_named_with_its_value(environ: dict[str, str],
                                                   message: str) -> None:
    with pytest.raises(SettingsError) as raised:
        QueueSettings.from_env(environ)
    assert str(raised.value) == message


def test_every_bad_value_is_named_in_one_line() -> None:
    with pytest.raises(SettingsError) as raised:
        QueueSettings.from_env({"STEP_RETRIES": "three", "WORKER_HEARTBEAT_S": "1s"})
    assert str(raised.value) == ("STEP_RETRIES: Not a valid integer ('three'); "
                                 "WORKER_HEARTBEAT_S: Not a valid number ('1s')")
    assert "\n" not in str(raised.value)


def test_an_unknown_llm_provider_is_a_settings_error() -> None:
    with pytest.raises(SettingsError, match="LLM_PROVIDER must be 'openai' or 'offline'"):
        QueueSettings.from_env({"LLM_PROVIDER": "other"})


def test_web_defaults_are_those_of_env_example() -> None:
    config = WebConfig.from_env(environ=SECRET)
    assert (config.app_env, config.cors_origins, config.pool_min_size, config.pool_max_size,
            config.db_wait_s, config.access_token_ttl_s, config.refresh_token_ttl_s) == (
        "development", ("*",), 1, 8, 2.5, 900, 30 * 24 * 3600)
    assert (config.trusted_proxies, config.legacy_calls_per_process, config.ops_token,
            config.request_log) == (0, 6, None, True)
    assert (config.host, config.port, config.web_concurrency, config.web_threads,
            config.control_socket, config.log_format) == (
        "127.0.0.1", 8000, 2, 8, "", "")  # LOG_FORMAT unset: stderr decides (logs.py)
    assert (config.fair_use.max_active_per_session, config.fair_use.idempotency_window_s,
            config.auth_throttle.failures_per_email, config.auth_throttle.window_s) == (
        5, 24 * 3600, 100, 900)


def test_web_values_are_parsed_and_derived_as_before() -> None:
    config = WebConfig.from_env(environ={
        **SECRET, "APP_ENV": "production", "WEB_THREADS": "20", "PORT": "9000",
        "ACCESS_LOG": "0", "OPS_TOKEN": "  ", "CORS_ORIGINS": "https://a.example, ,"})
    assert (config.legacy_calls_per_process, config.port, config.request_log,
            config.ops_token, config.cors_origins) == (18, 9000, False, None,
                                                       ("https://a.example",))
    assert WebConfig.from_env(environ={**SECRET, "WEB_THREADS": "1"}
                              ).legacy_calls_per_process == 1
    assert WebConfig.from_env(environ={**SECRET, "APP_ENV": "production"}).cors_origins == ()
    # create_app's test_config wins over the environment.
    assert WebConfig.from_env({"pool_max_size": 2}, environ=SECRET).pool_max_size == 2


def test_a_bad_web_value_is_named_with_its_value() -> None:
    with pytest.raises(SettingsError) as raised:
        WebConfig.from_env(environ={**SECRET, "WEB_THREADS": "many", "DB_WAIT_S": "x"})
    assert str(raised.value) == ("WEB_THREADS: Not a valid integer ('many'); "
                                 "DB_WAIT_S: Not a valid number ('x')")


def test_production_without_a_secret_is_a_settings_error_too() -> None:
    with pytest.raises(ConfigError, match="JWT_SECRET_KEY is required") as raised:
        WebConfig.from_env(environ={"APP_ENV": "production"})
    assert isinstance(raised.value, SettingsError)
    assert WebConfig.from_env({"jwt_secret_key": LONG_ENOUGH},
                              environ={"APP_ENV": "production"}).jwt_secret_key == LONG_ENOUGH


@pytest.mark.parametrize(("environ", "named"), [
    ({"JWT_SECRET_KEY": "x"}, ["JWT_SECRET_KEY"]),
    ({"JWT_SECRET_KEY": "s" * 31}, ["JWT_SECRET_KEY"]),
    ({**SECRET, "OPS_TOKEN": "o" * 31}, ["OPS_TOKEN"]),
    ({"JWT_SECRET_KEY": "x", "OPS_TOKEN": "y"}, ["JWT_SECRET_KEY", "OPS_TOKEN"]),
])
def test_production_refuses_short_secrets(environ: dict[str, str], named: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        WebConfig.from_env(environ={**environ, "APP_ENV": "production"})
    assert str(raised.value) == "; ".join(
        f"{name}: must be at least 32 characters when APP_ENV=production" for name in named)
    # The same values are fine elsewhere, and 32 characters are enough in production.
    assert WebConfig.from_env(environ=environ).app_env == "development"
    assert WebConfig.from_env(environ={"APP_ENV": "production", "JWT_SECRET_KEY": LONG_ENOUGH,
                                       "OPS_TOKEN": LONG_ENOUGH}).ops_token == LONG_ENOUGH
    with pytest.raises(ConfigError, match=r"^JWT_SECRET_KEY: must be"):
        WebConfig.from_env({"jwt_secret_key": "short"}, environ={"APP_ENV": "production"})


def test_a_reader_goes_on_with_the_default_until_checked() -> None:
    env = EnvReader({"A_NUMBER": "x", "B_NUMBER": "2"})
    assert (env.int("A_NUMBER", 5), env.int("B_NUMBER", 5), env.seconds("C_S", 1.5)) == (
        5, 2, 1.5)
    with pytest.raises(SettingsError, match=r"^A_NUMBER: Not a valid integer \('x'\)$"):
        env.check()
