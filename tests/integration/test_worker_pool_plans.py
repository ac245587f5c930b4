"""The worker's pool (procrastinate's, from queue_jobs.db.connections.async_pool) never
plans a sequential scan where an index serves: a generic plan costed while the queue table
was nearly empty would otherwise scan all of it at every fetch of a later burst."""

from __future__ import annotations

import asyncio
import concurrent.futures

from queue_jobs.db import connections


def test_the_worker_pool_plans_no_sequential_scan(db_url: str) -> None:
    async def settings_seen() -> tuple[str, bool]:
        pool = connections.async_pool(conninfo=db_url, min_size=1, max_size=2, open=False)
        await pool.open(wait=True)
        try:
            async with pool.connection() as conn:
                cursor = await conn.execute("SHOW enable_seqscan")
                row = await cursor.fetchone()
                assert row is not None
                return str(row[0]), conn.autocommit
        finally:
            await pool.close()

    # In a thread of its own: the session may already run an event loop in this one
    # (Playwright's sync API does).
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        seen = thread.submit(asyncio.run, settings_seen()).result(timeout=30)
    assert seen == ("off", True)
