"""The development secrets kept under var/ (the JWT secret, make run's ops token): made once,
private from the start, and the same on every later start."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from webapp import config
from webapp.config import kept_secret


def test_made_once_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "var" / "ops-token"
    first = kept_secret(path, 24)
    assert len(first) == 32 and path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert kept_secret(path, 24) == first  # a restart: the same token
    assert [p.name for p in path.parent.iterdir()] == ["ops-token"]  # no draft left


def test_a_file_there_wins_and_an_empty_one_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "jwt-secret"
    path.write_text("set-by-hand\n")
    assert kept_secret(path) == "set-by-hand"
    path.write_text("")
    made = kept_secret(path)
    assert made and path.read_text().strip() == made


def test_make_runs_ops_token_survives_a_restart(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "DEV_OPS_TOKEN_FILE", tmp_path / "ops-token")
    token = config.dev_ops_token()
    assert config.dev_ops_token() == token
    assert (tmp_path / "ops-token").read_text().strip() == token
