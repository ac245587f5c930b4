"""An embedded PostgreSQL for `make run` and the tests (no DATABASE_URL needed).

pgserver ships the server binaries in a wheel and runs as root; data stays in the given
directory between runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def start_embedded(data_dir: Path) -> Any:
    """Starts (or reuses) the server of data_dir; it stops when the last user exits."""
    import pgserver  # imported here: production deployments never need it

    data_dir.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(data_dir, cleanup_mode="stop")


def uri_for(server: Any, dbname: str = "postgres") -> str:
    uri: str = server.get_uri(dbname)
    return uri
