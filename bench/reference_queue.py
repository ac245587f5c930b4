"""R-queue: raw procrastinate with a no-op task, the same worker concurrency as ours.

    python bench/reference_queue.py defer N      # N jobs, one transaction
    python bench/reference_queue.py work C       # a worker of concurrency C, until stopped

Jobs/s is measured by bench/run.py from procrastinate's own events (first 'started' to
last 'succeeded'), as ours is from our jobs table.
"""

from __future__ import annotations

import asyncio
import os
import sys

from procrastinate import App, PsycopgConnector
from procrastinate.types import JSONValue

QUEUE = "bench_reference"

app = App(connector=PsycopgConnector(conninfo=os.environ.get("DATABASE_URL", "")))


@app.task(name="bench_noop", queue=QUEUE)
async def noop(n: int) -> None:
    return None


async def defer(count: int) -> None:
    async with app.open_async():
        jobs: list[dict[str, JSONValue]] = [{"n": n} for n in range(count)]
        await noop.batch_defer_async(*jobs)


def main(argv: list[str]) -> int:
    command, number = argv[0], int(argv[1])
    if command == "defer":
        asyncio.run(defer(number))
    elif command == "work":
        asyncio.run(_work(number))
    else:
        raise SystemExit(f"unknown command {command!r}")
    return 0


async def _work(concurrency: int) -> None:
    async with app.open_async():
        await app.run_worker_async(queues=[QUEUE], concurrency=concurrency,
                                   wait=True, install_signal_handlers=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
