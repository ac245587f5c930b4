"""What a chaos run does and when: the load, the faults on a timeline, the deadlines.

Times are seconds from the start of the load. A fault starts when its time has come and the
one before it is over (a SIGTERMed worker has exited, PostgreSQL is back), so a slow fault
shifts the rest rather than overlapping them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

KILL_WORKER = "kill-worker"  # SIGKILL the busiest worker process, then start a new one
TERM_WORKER = "term-worker"  # SIGTERM it, wait for its exit, then start a new one
KILL_WEB = "kill-web"  # SIGKILL one gunicorn worker (its master starts another)
PG_RESTART = "pg-restart"  # stop PostgreSQL for `seconds`, then start it again
PG_OUTAGE = "pg-outage"  # the same, longer; the load keeps going throughout
KINDS = (KILL_WORKER, TERM_WORKER, KILL_WEB, PG_RESTART, PG_OUTAGE)


@dataclass(frozen=True)
class Fault:
    at_s: float
    kind: str
    seconds: float = 0.0  # how long PostgreSQL stays down


@dataclass(frozen=True)
class Plan:
    name: str
    workers: int  # jobs-worker processes
    concurrency: int  # --concurrency of each
    web_processes: int  # WEB_CONCURRENCY of jobs-web
    chat_delay_s: float  # the fake model's time per chat call
    image_delay_s: float  # ... per image
    visit_every_s: float  # a new anonymous visitor this often during the load
    content_every: int  # every n-th visitor signs up and writes a post after the analysis
    poll_every_s: float  # a visitor's status polls
    load_s: float  # visitors arrive for this long; the faults happen within it
    drain_s: float  # then every job has this long to finish
    deadline_s: float  # the whole run, setup and checks included, never takes longer
    faults: tuple[Fault, ...]

    def outage_s(self) -> float:
        return max((f.seconds for f in self.faults if f.kind == PG_OUTAGE), default=0.0)


# A few minutes: each kind of fault at least twice, a 12 s outage. The last worker kill
# leaves the reaper (WORKER_STALLED_AFTER_S 30 + REAPER_INTERVAL_S 10) time within the drain.
SHORT = Plan(
    name="short", workers=3, concurrency=4, web_processes=2, chat_delay_s=1.0,
    image_delay_s=1.5, visit_every_s=1.5, content_every=3, poll_every_s=1.0, load_s=135,
    drain_s=150, deadline_s=600,
    faults=(
        Fault(15, KILL_WORKER), Fault(25, KILL_WEB), Fault(35, TERM_WORKER),
        Fault(50, PG_RESTART, 3), Fault(65, KILL_WORKER), Fault(80, PG_OUTAGE, 12),
        Fault(105, KILL_WEB), Fault(110, TERM_WORKER), Fault(120, KILL_WORKER),
    ))

# About fifteen minutes: more of everything and a 45 s outage, longer than the heartbeat
# threshold (a reaper must not take the runs of workers that only lost the database) and as
# long as the one that made procrastinate 3.10 workers exit.
FULL = replace(
    SHORT, name="full", load_s=420, drain_s=240, deadline_s=1200,
    faults=(
        Fault(20, KILL_WORKER), Fault(35, KILL_WEB), Fault(50, TERM_WORKER),
        Fault(70, PG_RESTART, 4), Fault(90, KILL_WORKER), Fault(105, KILL_WEB),
        Fault(120, TERM_WORKER), Fault(140, KILL_WORKER), Fault(160, PG_OUTAGE, 45),
        Fault(230, KILL_WORKER), Fault(245, KILL_WEB), Fault(260, TERM_WORKER),
        Fault(280, PG_RESTART, 3), Fault(300, KILL_WORKER), Fault(320, KILL_WEB),
        Fault(340, TERM_WORKER), Fault(360, KILL_WORKER), Fault(375, KILL_WORKER),
    ))
