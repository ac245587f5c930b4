"""The connection pools skip the test round trip before each statement
(queue_jobs.db.connections), so what that test was for must still hold: a connection the
server closed is never lent."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg

from queue_jobs.db import connections as pools
from queue_jobs.worker.app import make_connector
from tests.integration.support import wait_until


def _terminate(db: psycopg.Connection[Any], pid: int) -> None:
    db.execute("SELECT pg_terminate_backend(%s)", (pid,))
    wait_until(lambda: db.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                                  (pid,)).fetchone() == (0,),
               message=f"backend {pid} to end")


def test_the_service_pool_replaces_a_connection_the_server_closed(
        db_url: str, db: psycopg.Connection[Any]) -> None:
    pool = pools.open_pool(db_url, name="test", min_size=1, max_size=1, timeout=5,
                           connect_timeout=5, wait=True)
    try:
        with pools.autocommit(pool) as conn:
            closed = conn.info.backend_pid
        _terminate(db, closed)
        with pools.autocommit(pool) as conn:  # lent again well within IDLE_CHECK_S
            assert conn.info.backend_pid != closed
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        pool.close()


def test_procrastinate_runs_outside_transactions_and_never_gets_a_closed_connection(
        db_url: str, db: psycopg.Connection[Any]) -> None:
    async def main() -> None:
        connector = make_connector(db_url)
        await connector.open_async()
        try:
            async with connector.pool.connection() as conn:
                assert conn.autocommit
                closed = conn.info.backend_pid
            _terminate(db, closed)
            row = await connector.execute_query_one_async(
                "SELECT pg_backend_pid() AS pid, now() = statement_timestamp() AS own_txn")
            assert row["pid"] != closed
            assert row["own_txn"]  # no transaction was open before this statement
        finally:
            await connector.close_async()

    # In a thread of its own: the browser tests' sync Playwright leaves a loop running in
    # this one.
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(asyncio.run, main()).result(timeout=60)
