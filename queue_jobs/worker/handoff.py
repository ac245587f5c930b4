"""What a worker's fetch hands to the run it starts, and what the run hands back.

The worker claims a run's job in the statement that fetches its dispatch
(store.fetch_and_claim_job): the claim is kept here, keyed by the procrastinate job id,
and the run takes it instead of claiming again (JobRun falls back to its own claim when
there is none: a run not fetched by one of our workers). The run's success ends
procrastinate's job in the same statement (DispatchFinish); the worker, settling the job,
learns here whether it is left to end it. Written and read on the worker's event loop,
except DispatchFinish.done, set by the run's thread before the run returns.
"""

from __future__ import annotations

from dataclasses import dataclass

from queue_jobs import models
from queue_jobs.runs.journal import DispatchFinish

HANDOFF = "run_handoff"  # its key in the jobs' additional_context


@dataclass
class Prefetched:
    claim: models.ClaimedJob | None  # None: the dispatch was no longer current
    finish: DispatchFinish


class RunHandoff:
    def __init__(self, delete_succeeded: bool) -> None:
        self.delete_succeeded = delete_succeeded  # the worker's delete_jobs, for a success
        self._runs: dict[int, Prefetched] = {}

    def put(self, dispatch_id: int, claim: models.ClaimedJob | None) -> None:
        self._runs[dispatch_id] = Prefetched(claim, DispatchFinish(self.delete_succeeded))

    def get(self, dispatch_id: int) -> Prefetched | None:
        """The run's: what its fetch claimed (None: not fetched by this worker)."""
        return self._runs.get(dispatch_id)

    def settle(self, dispatch_id: int) -> Prefetched | None:
        """The worker's, as the job ends: forgets it, and answers what it was."""
        return self._runs.pop(dispatch_id, None)
