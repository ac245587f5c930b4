"""The worker that lives through PostgreSQL outages, and stops within a bound.

procrastinate 3.10's Worker stops as soon as one of its side tasks (heartbeat, periodic
deferrer, LISTEN, abort poller) raises, and an error in fetch_job ends its run too: any
PostgreSQL restart ended every worker process. ResilientWorker keeps procrastinate's
scheduling and changes what a lost database does:

- Every side task and the fetch loop treat a connection-level error
  (connections.is_unreachable) as an outage: they note it on the worker's DatabaseLink,
  back off (connections.Backoff: 0.5 s doubling to 2 s) and resume. Any other error still
  stops the worker, as before.
- While the database is unreachable the heartbeat task probes it at that backoff. The
  first statement that succeeds again ends the outage: the heartbeat is written at once,
  LISTEN is re-established on a new connection and, once listening, the worker fetches at
  once (notifications sent meanwhile are lost), not at the next poll.
- Jobs already running keep running (queue_jobs.worker.job_run waits for the database); a
  job's final status write (_persist_job_status) is retried until the database answers or
  the stopping worker gives up on it.
- Fewer round trips a job: the fetch claims a run's job in the same statement
  (store.fetch_and_claim_job; the claim is handed to the run, queue_jobs.worker.handoff),
  and a run whose success also ended procrastinate's job (store.succeed_job) is not
  finished again here. A stop waits for a fetch already sent (it may have claimed a job)
  until the hand-back deadline; the run it started is then handed back like any other.
- procrastinate prunes other workers' rows at every worker start, which after a restart
  deletes live workers still reconnecting; that pruning is disabled here and the reaper
  prunes instead, counting silence only while the database was up.
- Stopping is bounded from the stop request: running jobs get shutdown_graceful_timeout,
  then are aborted (handed back); hand-backs, final status writes and unregistering wait
  for the database HANDBACK_S more at most, then the worker gives up (DatabaseLink.given_up)
  and leaves the rest to the reaper, which re-dispatches such runs without counting them
  as lost. A worker started while the database is down waits for it likewise.

QueueApp (queue_jobs.worker.app) makes every worker of the App one of these, so
`procrastinate --app=queue_jobs.app worker`, jobs-worker and the tests' in-process worker
behave alike. It overrides private methods of procrastinate 3.10's Worker (named in
PRIVATE_HOOKS, which a unit test checks): re-check them on every upgrade.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from procrastinate import PsycopgConnector, job_context, jobs, manager, retry, sql, utils
from procrastinate.worker import Worker
from psycopg import sql as psql

from queue_jobs.db import store
from queue_jobs.db.connections import Backoff, is_unreachable
from queue_jobs.worker.handoff import HANDOFF, RunHandoff
from queue_jobs.worker.job_run import FIRST_STEPS
from queue_jobs.worker.link import LINK, DatabaseLink

logger = logging.getLogger("queue_jobs.worker")
T = TypeVar("T")

# What a stopping worker may still spend, after the jobs' grace, on handing runs back,
# writing final statuses and unregistering while the database does not answer.
HANDBACK_S = 2.0
LAST_ATTEMPT_S = 0.5
# procrastinate's own pruning at start is given a threshold no heartbeat reaches (the
# reaper prunes instead, see sql/queries/procrastinate.sql: prune_lost_workers).
NEVER_PRUNE_S = 10.0 * 365 * 24 * 3600
# The private methods of procrastinate 3.10's Worker overridden or called here, and the
# private attributes used, for the upgrade check (tests/unit/worker/test_resilient.py).
PRIVATE_METHODS = ("_fetch_and_process_jobs", "_persist_job_status", "_update_heartbeat",
                   "_poll_jobs_to_abort", "_periodic_deferrer", "_start_side_tasks",
                   "_shutdown", "_abort_running_jobs", "_handle_notification",
                   "_handle_abort_jobs_requested", "_run_loop", "_process_job")
PRIVATE_ATTRIBUTES = ("_new_job_event", "_stop_event", "_running_jobs", "_job_semaphore",
                      "_job_ids_to_abort")


class ResilientWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.stalled_after_s = float(kwargs.get("stalled_worker_timeout", 30.0))
        kwargs["stalled_worker_timeout"] = NEVER_PRUNE_S
        super().__init__(*args, **kwargs)
        self.link = DatabaseLink()
        self.handoff = RunHandoff(delete_succeeded=self._deletes(jobs.Status.SUCCEEDED))
        self.additional_context = {**(self.additional_context or {}), LINK: self.link,
                                   HANDOFF: self.handoff}
        self._fetch_sent = False  # a fetch statement is on its way (or its answer is)
        self.stop_requested_at: float | None = None  # time.monotonic()
        self._beat_now = asyncio.Event()
        self._relisten = asyncio.Event()

    # --- the outage, noticed and ended -------------------------------------------------

    def _lost(self, error: BaseException) -> None:
        self.link.lost(error)

    def _reached(self) -> None:
        """A statement succeeded: if the database was unreachable until now, beat, listen
        again and fetch."""
        if self.link.regained():
            self._beat_now.set()
            self._relisten.set()
            self._new_job_event.set()

    async def _pause(self, seconds: float) -> None:
        """Sleeps, cut short by a stop request; once stopping, by the hand-back deadline."""
        deadline = self._handback_deadline()
        if deadline is not None:
            await asyncio.sleep(max(0.0, min(seconds, deadline - time.monotonic())))
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    def _handback_deadline(self) -> float | None:
        if self.stop_requested_at is None:
            return None
        return self.stop_requested_at + (self.shutdown_graceful_timeout or 0) + HANDBACK_S

    def _given_up(self) -> bool:
        deadline = self._handback_deadline()
        if deadline is not None and time.monotonic() >= deadline:
            self.link.given_up.set()
        return self.link.given_up.is_set()

    async def _until_reached(self, attempt: Callable[[], Awaitable[T]],
                             gives_up: Callable[[], bool]) -> tuple[bool, T | None]:
        """`attempt` until it succeeds (True, its result) or the database is unreachable
        and gives_up() (False, None). Other errors are raised. Once stopping, an attempt
        gets no more than what is left until the hand-back deadline (at least
        LAST_ATTEMPT_S: the database may be up, and the write worth making)."""
        backoff = Backoff()
        while True:
            deadline = self._handback_deadline()
            try:
                if deadline is None:
                    result = await attempt()
                else:
                    result = await asyncio.wait_for(
                        attempt(), max(LAST_ATTEMPT_S, deadline - time.monotonic()))
            except Exception as error:
                if not (is_unreachable(error) or isinstance(error, TimeoutError)):
                    raise
                self._lost(error)
                if gives_up():
                    return False, None
                await self._pause(backoff.delay())
                if gives_up():
                    return False, None
                continue
            self._reached()
            return True, result

    # --- start and stop ----------------------------------------------------------------

    def stop(self) -> None:
        if self.stop_requested_at is None and not self._stop_event.is_set():
            self.stop_requested_at = time.monotonic()
        super().stop()

    async def run(self) -> None:
        # A worker started while the database is down waits for it (super().run() would
        # raise at its first statement). Once registered, outages are handled inside.
        backoff = Backoff()
        while True:
            try:
                await super().run()
                return
            except Exception as error:
                if self.run_task is not None or not is_unreachable(error):
                    raise  # not a failure to start
                self._lost(error)
                if self._stop_event.is_set() or self.stop_requested_at is not None:
                    return
                await self._pause(backoff.delay())
                if self.stop_requested_at is not None:
                    return

    async def _shutdown(self, side_tasks: list[asyncio.Task[Any]]) -> None:
        """procrastinate's, with every wait bounded from the stop request."""
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()
        await utils.cancel_and_capture_errors(side_tasks)
        if self._running_jobs:
            # None: as procrastinate, wait for the jobs however long they take.
            grace = self.shutdown_graceful_timeout
            left = (None if grace is None
                    else max(0.0, self.stop_requested_at + grace - time.monotonic()))
            logger.info("waiting %s for %s running job(s)",
                        "for as long as they take" if left is None else f"up to {left:.1f} s",
                        len(self._running_jobs))
            await asyncio.wait(self._running_jobs, timeout=left)
        deadline = self._handback_deadline()
        assert deadline is not None
        giving_up = asyncio.get_running_loop().call_at(
            asyncio.get_running_loop().time() + max(0.0, deadline - time.monotonic()),
            self.link.given_up.set)
        try:
            if self._running_jobs:
                logger.info("%s job(s) still running after the grace: handing them back",
                            len(self._running_jobs))
                await self._abort_running_jobs()
            worker_id = self.worker_id
            assert worker_id is not None
            unregistered, _ = await self._until_reached(
                lambda: self.app.job_manager.unregister_worker(worker_id), self._given_up)
            if not unregistered:
                logger.warning(
                    "worker %s not unregistered (database unreachable): its row stays until "
                    "the reaper prunes it, and runs it could not hand back are re-dispatched "
                    "without counting as lost", worker_id)
        finally:
            giving_up.cancel()
        self.worker_id = None
        logger.info("stopped worker on %s", utils.queues_display(self.queues))

    # --- jobs --------------------------------------------------------------------------

    async def _fetch_and_process_jobs(self) -> None:
        # A stop request interrupts a fetch that waits for the database (the pool's wait
        # would hold the stop up). A fetch statement already sent may have taken a job and
        # claimed it: the stop lets it answer, until the hand-back deadline, and the run it
        # starts is handed back like any other. Should one cut short have gone through on
        # the server, the procrastinate job is 'doing' with our (soon unregistered) id and
        # its jobs row claimed: the reaper re-dispatches it.
        fetching = asyncio.create_task(self._fetch_and_start_jobs(), name="fetch")
        stopping = asyncio.create_task(self._stop_event.wait())
        try:
            await asyncio.wait({fetching, stopping}, return_when=asyncio.FIRST_COMPLETED)
            deadline = self._handback_deadline()
            if not fetching.done() and self._fetch_sent and deadline is not None:
                await asyncio.wait({fetching}, timeout=max(0.0, deadline - time.monotonic()))
        finally:
            stopping.cancel()
            if not fetching.done():
                fetching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({fetching})
        if fetching.cancelled():
            return
        error = fetching.exception()
        if error is None:
            self._reached()
            return
        if not is_unreachable(error):
            raise error
        self._lost(error)
        # The run loop now waits for a notification, a stop or the poll interval; the
        # heartbeat task probes the database and wakes it (_new_job_event) once it answers.

    async def _fetch_and_start_jobs(self) -> None:
        """procrastinate 3.10's Worker._fetch_and_process_jobs, fetching with _fetch_job:
        fetch and start jobs until there is none left or a stop is requested."""
        while not self._stop_event.is_set():
            acquire_sem_task = asyncio.create_task(self._job_semaphore.acquire())
            job = None
            try:
                await utils.wait_any(acquire_sem_task, self._stop_event.wait())
                if self._stop_event.is_set():
                    break
                job = await self._fetch_job()
            finally:
                if (not job or self._stop_event.is_set()) and acquire_sem_task.done():
                    self._job_semaphore.release()
                self._new_job_event.clear()
            if not job:
                break
            self._start_job(job)

    async def _fetch_job(self) -> jobs.Job | None:
        """procrastinate's fetch_job and, for a run of ours, its claim (handed to the run)."""
        worker_id = self.worker_id
        assert worker_id is not None
        connector = self.app.connector
        if not isinstance(connector, PsycopgConnector):
            return await self.app.job_manager.fetch_job(queues=self.queues,
                                                        worker_id=worker_id)
        try:
            async with connector.pool.connection() as conn:
                self._fetch_sent = True
                row, claim = await store.fetch_and_claim_job(conn, self.queues, worker_id,
                                                             FIRST_STEPS)
        finally:
            self._fetch_sent = False
        if row is None:
            return None
        job = jobs.Job.from_row(row)
        if job.task_name == store.RUN_TASK and job.id is not None:
            self.handoff.put(job.id, claim)
        return job

    def _start_job(self, job: jobs.Job) -> None:
        """The rest of procrastinate's loop: the job's context and task."""
        job_id = job.id

        def abort_reason() -> job_context.AbortReason | None:
            return self._job_ids_to_abort.get(job_id) if job_id else None

        context = job_context.JobContext(
            app=self.app, worker_name=self.worker_name, worker_queues=self.queues,
            additional_context=(self.additional_context.copy()
                                if self.additional_context else {}),
            job=job, abort_reason=abort_reason, start_timestamp=time.time())
        job_task = asyncio.create_task(self._process_job(context),
                                       name=f"process job {job.task_name}[{job.id}]")
        self._running_jobs[job_task] = context

        def on_job_complete(task: asyncio.Task[Any]) -> None:
            del self._running_jobs[task]
            self._job_semaphore.release()

        job_task.add_done_callback(on_job_complete)

    async def _persist_job_status(self, job: jobs.Job, status: jobs.Status,
                                  retry_decision: retry.RetryDecision | None,
                                  context: job_context.JobContext,
                                  job_result: job_context.JobResult | None) -> None:
        assert job.id is not None
        prefetched = self.handoff.settle(job.id)
        if prefetched is not None and retry_decision is None:
            # A run this worker fetched: its success may have ended the job already, and
            # if not, the finish must not fail on a job its run ended unbeknown to us.
            if prefetched.finish.done:
                done = True
            else:
                done, _ = await self._until_reached(
                    lambda: self._finish_dispatch(job, status), self._given_up)
            self._job_ids_to_abort.pop(job.id, None)
        else:
            done, _ = await self._until_reached(
                lambda: super(ResilientWorker, self)._persist_job_status(
                    job=job, status=status, retry_decision=retry_decision, context=context,
                    job_result=job_result),
                self._given_up)
        if not done:
            logger.warning("a job's final status could not be written (database "
                           "unreachable): left for the reaper")

    async def _finish_dispatch(self, job: jobs.Job, status: jobs.Status) -> None:
        """procrastinate's finish_job, unless the job has ended already (store)."""
        assert job.id is not None
        async with self.app.connector.pool.connection() as conn:  # type: ignore[attr-defined]
            await store.finish_dispatch(conn, job.id, status.value, self._deletes(status))

    def _deletes(self, status: jobs.Status) -> bool:
        """procrastinate's delete_jobs rule, for a job ending with `status`."""
        return {jobs.DeleteJobCondition.ALWAYS: True,
                jobs.DeleteJobCondition.NEVER: False,
                jobs.DeleteJobCondition.SUCCESSFUL: status == jobs.Status.SUCCEEDED,
                }[self.delete_jobs]

    # --- side tasks --------------------------------------------------------------------

    def _start_side_tasks(self) -> list[asyncio.Task[Any]]:
        side_tasks = [
            asyncio.create_task(self._update_heartbeat(), name="update_heartbeats"),
            asyncio.create_task(self._periodic_deferrer(), name="deferrer"),
            asyncio.create_task(self._poll_jobs_to_abort(), name="poll_jobs_to_abort"),
        ]
        if self.listen_notify:
            side_tasks.append(asyncio.create_task(self._listen(), name="listener"))
        return side_tasks

    async def _update_heartbeat(self) -> None:
        """Beats every update_heartbeat_interval; while the database is unreachable, probes
        it at the backoff; beats at once when it answers again."""
        backoff = Backoff()
        while True:
            if self.link.reachable:
                backoff.reset()
                delay = self.update_heartbeat_interval
            else:
                delay = backoff.delay()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._beat_now.wait(), delay)
            self._beat_now.clear()
            worker_id = self.worker_id
            assert worker_id is not None
            try:
                await self.app.job_manager.update_heartbeat(worker_id)
            except Exception as error:
                if not is_unreachable(error):
                    raise
                self._lost(error)
                continue
            self._reached()

    async def _periodic_deferrer(self) -> None:
        backoff = Backoff()
        while True:
            try:
                return await super()._periodic_deferrer()
            except Exception as error:
                if not is_unreachable(error):
                    raise
                self._lost(error)
            await self._pause(backoff.delay())

    async def _poll_jobs_to_abort(self) -> None:
        while True:
            await asyncio.sleep(self.abort_job_polling_interval)
            if not self._running_jobs or not self.link.reachable:
                continue
            try:
                job_ids = await self.app.job_manager.list_jobs_to_abort_async()
            except Exception as error:
                if is_unreachable(error):
                    self._lost(error)
                else:  # as procrastinate does: log, and poll again
                    logger.exception("poll_jobs_to_abort error")
                continue
            self._handle_abort_jobs_requested(job_ids)

    async def _listen(self) -> None:
        """procrastinate's LISTEN loop, on a connection of its own that is replaced after
        every outage; each time it starts listening, the worker fetches."""
        backoff = Backoff()
        while True:
            self._relisten.clear()
            listening = asyncio.create_task(self._listen_once(backoff))
            relisten = asyncio.create_task(self._relisten.wait())
            try:
                await asyncio.wait({listening, relisten}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (listening, relisten):
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait({listening, relisten})
            error = None if listening.cancelled() else listening.exception()
            if error is None:
                continue  # asked to listen again: the database is back
            if not is_unreachable(error):
                raise error
            self._lost(error)
            await self._pause(backoff.delay())

    async def _listen_once(self, backoff: Backoff) -> None:
        pool: Any = getattr(self.app.connector, "pool", None)
        conninfo = pool.conninfo if pool is not None else ""
        kwargs = dict(pool.kwargs or {}) if pool is not None else {}
        kwargs["autocommit"] = True
        async with await psycopg.AsyncConnection.connect(conninfo, **kwargs) as conn:
            for channel in manager.get_channel_for_queues(queues=self.queues):
                await conn.execute(psql.SQL(sql.queries["listen_queue"]).format(
                    channel_name=psql.Identifier(channel)))
            backoff.reset()
            self._reached()
            self._relisten.clear()  # this is the new LISTEN _reached asks for
            self._new_job_event.set()  # whatever was deferred before LISTEN took hold
            async for notify in conn.notifies():
                await self._handle_notification(channel=notify.channel,
                                                notification=json.loads(notify.payload))
