"""jobs-admin: find any job and act on it from a shell, against DATABASE_URL.

    jobs-admin list [--status S] [--type T] [--error-code C] [--owner O]
                    [--created-from T] [--created-to T] [--id-prefix H] [--limit N] [--cursor C]
    jobs-admin show JOB_ID
    jobs-admin retry JOB_ID | retry FILTER... [--yes --expect N]
    jobs-admin cancel JOB_ID | cancel FILTER... [--yes --expect N]
    jobs-admin types
    jobs-admin pause TYPE [--reason TEXT]
    jobs-admin resume TYPE
    jobs-admin prune --older-than-days N

A readable table by default, `--json` for scripts. A bulk retry or cancel prints how many
jobs match and asks for that count to be typed back (or takes `--yes --expect N`: refused
if more than N match). Every action is in the audit trail as `cli:<login name>`.
Exit status: 0 done, 1 refused or not found (the reason on stderr), 2 usage.
The same services as the ops API (webapp/views/ops_api.py).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
import uuid
from collections.abc import Callable, Sequence
from typing import IO, Any

from queue_jobs.config.env_reader import exit_on_bad_settings
from queue_jobs.config.settings import QueueSettings
from queue_jobs.services import connections, jobs, ops_actions, ops_jobs
from queue_jobs.services.connections import Conn, ConnectionPool
from queue_jobs.services.errors import DomainError
from queue_jobs.services.ops_jobs import JobFilter

PROGRAM = "jobs-admin"
# API filter name -> flag: errorCode -> --error-code
FLAGS = {name: "--" + re.sub(r"(?<!^)([A-Z])", r"-\1", name).lower()
         for name in ops_jobs.FILTER_NAMES}
LIST_COLUMNS = (("JOB", "jobId"), ("TYPE", "type"), ("STATUS", "status"),
                ("STEP", "currentStep"), ("ERROR CODE", "errorCode"), ("OWNER", "owner"),
                ("CREATED", "createdAt"))
STEP_COLUMNS = (("STEP", "step"), ("TRY", "attempt"), ("OUTCOME", "outcome"),
                ("STARTED", "startedAt"), ("MS", "durationMs"), ("LLM CALLS", "llmCalls"),
                ("TOKENS IN", "inputTokens"), ("TOKENS OUT", "outputTokens"),
                ("RE-ASKS", "reasks"))


class Refused(Exception):
    """Ends the command with exit status 1 and this message."""


def actor() -> str:
    """cli:<login name>, with what the audit's actor rule refuses replaced by _."""
    try:
        login = getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        login = "unknown"
    return ops_actions.check_actor(re.sub(r"[^A-Za-z0-9._@:+-]", "_", f"cli:{login}")[:64])


def _argument_type(parse: Callable[[str], Any]) -> Callable[[str], str]:
    """argparse checks the value with the API's own parser (exit 2 with its message)."""
    def checked(text: str) -> str:
        try:
            parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
        return text
    return checked


def _add_filters(parser: argparse.ArgumentParser) -> None:
    for name, flag in FLAGS.items():
        _attribute, parse = ops_jobs.FILTERS[name]
        parser.add_argument(flag, dest=name, type=_argument_type(parse), metavar="VALUE")


def _filter(args: argparse.Namespace) -> JobFilter:
    return JobFilter.from_strings({name: getattr(args, name) for name in ops_jobs.FILTER_NAMES})


def _job_id(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a job id is a UUID") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="find jobs, newest first")
    _add_filters(listing)
    listing.add_argument("--limit", type=int, default=ops_jobs.DEFAULT_PAGE)
    listing.add_argument("--cursor", help="the next page's cursor, as the last one printed")

    show = commands.add_parser("show", help="one job's page")
    show.add_argument("job_id", type=_job_id)

    for action in ("retry", "cancel"):
        acting = commands.add_parser(action, help=f"{action} one job, or every matching job")
        acting.add_argument("job_id", type=_job_id, nargs="?")
        _add_filters(acting)
        acting.add_argument("--yes", action="store_true",
                            help="do not ask: act on the --expect N jobs the filter matches")
        acting.add_argument("--expect", type=int, metavar="N",
                            help="with --yes: the count confirmed (refused if more match)")

    prune = commands.add_parser("prune", help="delete finished jobs older than N days now")
    prune.add_argument("--older-than-days", type=int, required=True, metavar="N")
    commands.add_parser("types", help="job types, paused or not")
    pause = commands.add_parser("pause", help="hold a job type's queued jobs (new ones too)")
    pause.add_argument("job_type", metavar="TYPE")
    pause.add_argument("--reason", default="", help="shown to the users of its held jobs")
    resume = commands.add_parser("resume", help="dispatch a paused type's held jobs")
    resume.add_argument("job_type", metavar="TYPE")
    return parser


def main(argv: Sequence[str] | None = None, *, stdin: IO[str] | None = None,
         stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("retry", "cancel"):
        _check_action_usage(parser, args)
    with exit_on_bad_settings(PROGRAM):
        settings = QueueSettings.from_env()
    if not settings.database_url:
        print(f"{PROGRAM}: set DATABASE_URL", file=stderr)
        return 2
    pool = connections.open_pool(settings.database_url, name="jobs-admin", min_size=1,
                                 max_size=2, timeout=10.0, connect_timeout=5, wait=True)
    try:
        out = Output(stdout, as_json=args.json)
        COMMANDS[args.command](pool, settings, args, out, stdin)
    except (DomainError, Refused) as error:
        print(f"{PROGRAM}: {error}", file=stderr)
        return 1
    except BrokenPipeError:
        # `jobs-admin show ... | head`: the reader has what it wanted. Point stdout at
        # /dev/null so that Python's flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        pool.close()
    return 0


def _check_action_usage(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    filtered = any(getattr(args, name) is not None for name in ops_jobs.FILTER_NAMES)
    if args.job_id is not None and (filtered or args.yes or args.expect is not None):
        parser.error(f"{args.command}: a job id, or filters, not both")
    if args.job_id is None and not filtered:
        parser.error(f"{args.command}: give a job id, or filters ({', '.join(FLAGS.values())})")
    if args.yes != (args.expect is not None):
        parser.error(f"{args.command}: --yes and --expect N go together")


class Output:
    def __init__(self, stream: IO[str], *, as_json: bool) -> None:
        self.stream, self.as_json = stream, as_json

    def line(self, text: str = "") -> None:
        print(text, file=self.stream)

    def json(self, value: Any) -> None:
        self.line(json.dumps(value, indent=2, default=str))

    def table(self, rows: Sequence[dict[str, Any]],
              columns: Sequence[tuple[str, str]]) -> None:
        cells = [[title for title, _key in columns],
                 *([_cell(row.get(key)) for _title, key in columns] for row in rows)]
        widths = [max(len(row[index]) for row in cells) for index in range(len(columns))]
        for row in cells:
            self.line("  ".join(cell.ljust(width) for cell, width
                                in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict) and "kind" in value:  # an owner
        return f"{value['kind']}:{value['id']}"
    return str(value)


Command = Callable[[ConnectionPool, QueueSettings, argparse.Namespace, Output, IO[str]], None]


def list_jobs(pool: ConnectionPool, _settings: QueueSettings, args: argparse.Namespace,
              out: Output, _stdin: IO[str]) -> None:
    with connections.autocommit(pool) as conn:
        page = ops_jobs.search(conn, _filter(args), args.cursor, args.limit)
    if out.as_json:
        out.json(page)
        return
    out.table(page["jobs"], LIST_COLUMNS)
    if page["nextCursor"]:
        out.line(f"\nmore: --cursor {page['nextCursor']}")


def show_job(pool: ConnectionPool, _settings: QueueSettings, args: argparse.Namespace,
             out: Output, _stdin: IO[str]) -> None:
    with pool.connection() as conn:
        detail = ops_jobs.job_detail(conn, args.job_id, _status_document)
    if out.as_json:
        out.json(detail)
        return
    job = detail["job"]
    for key in ("jobId", "type", "status", "progress", "currentStep", "attempt", "lostRuns",
                "errorCode", "error", "llmCalls", "llmTokens", "createdAt", "runStartedAt",
                "finishedAt"):
        out.line(f"{key:>13}: {_cell(job[key])}")
    owner = detail["owner"]
    out.line(f"{'owner':>13}: {owner['kind']}:{owner['id']}"
             + (f" ({owner['email']})" if owner["email"] else ""))
    out.line(f"{'input':>13}: {json.dumps(job['input'])}")
    out.line("\nsteps:")
    out.table(detail["steps"], STEP_COLUMNS)
    out.line("\ndispatches:")
    out.table([{**d, "events": " ".join(e["type"] for e in d["events"])}
               for d in detail["dispatches"]],
              (("ID", "id"), ("STATUS", "status"), ("WORKER", "workerId"),
               ("EVENTS", "events")))
    out.line("\nimages: " + (" ".join(image["url"] for image in detail["images"]) or "-"))
    out.line("\naudit:")
    out.table(detail["audit"], (("AT", "at"), ("ACTOR", "actor"), ("ACTION", "action")))


def _status_document(conn: Conn, job_id: uuid.UUID, owner: Any) -> Any:
    answer = jobs.job_status(conn, job_id, owner)
    return None if answer.body is None else json.loads(answer.body)


def _act(action: str) -> Command:
    def command(pool: ConnectionPool, settings: QueueSettings, args: argparse.Namespace,
                out: Output, stdin: IO[str]) -> None:
        who = actor()
        if args.job_id is not None:
            with pool.connection() as conn:
                if action == "retry":
                    ops_actions.retry_one(conn, who, args.job_id, fair=settings.fair_dispatch)
                else:
                    ops_actions.cancel_one(conn, who, args.job_id)
            done = {"jobId": str(args.job_id), "action": action, "actor": who}
            out.json(done) if out.as_json else out.line(f"{action}: {args.job_id}")
            return
        job_filter = _filter(args)
        with connections.autocommit(pool) as conn:
            plan = ops_actions.matching(conn, action, job_filter)
        confirmed = args.expect if args.yes else _confirm(action, plan, out, stdin)
        report = ops_actions.run_bulk(pool, who, action, job_filter, confirmed,
                                      fair=settings.fair_dispatch)
        if out.as_json:
            out.json(report)
        else:
            out.line(f"{action}: {report['acted']} jobs, {report['skipped']} skipped "
                     f"(changed since), in {report['batches']} batches")
    return command


def _confirm(action: str, plan: dict[str, Any], out: Output, stdin: IO[str]) -> int:
    """The dry run's count, typed back by the operator; Refused otherwise."""
    by_status = ", ".join(f"{count} {status}" for status, count in plan["byStatus"].items())
    print(f"{plan['matching']} jobs match ({by_status}). Type {plan['matching']} to "
          f"{action} them: ", end="", file=out.stream, flush=True)
    answer = stdin.readline().strip()
    if answer != str(plan["matching"]):
        raise Refused("not confirmed: nothing done")
    return int(plan["matching"])


def prune(pool: ConnectionPool, _settings: QueueSettings, args: argparse.Namespace,
          out: Output, _stdin: IO[str]) -> None:
    report = ops_actions.prune(pool, actor(), args.older_than_days)
    if out.as_json:
        out.json(report)
    else:
        out.line(f"deleted {report['deleted']} finished jobs older than "
                 f"{report['olderThanDays']} days")


def job_types(pool: ConnectionPool, _settings: QueueSettings, _args: argparse.Namespace,
              out: Output, _stdin: IO[str]) -> None:
    with connections.autocommit(pool) as conn:
        types = ops_actions.job_types(conn)
    if out.as_json:
        out.json(types)
        return
    out.table([{**state, "paused": "paused" if state["paused"] else "running"}
               for state in types],
              (("TYPE", "type"), ("STATE", "paused"), ("HELD", "heldJobs"),
               ("SINCE", "pausedAt"), ("BY", "pausedBy"), ("REASON", "reason")))


def pause_type(pool: ConnectionPool, _settings: QueueSettings, args: argparse.Namespace,
               out: Output, _stdin: IO[str]) -> None:
    with pool.connection() as conn:
        paused = ops_actions.pause(conn, actor(), args.job_type, args.reason)
    if out.as_json:
        out.json(paused)
    elif paused["changed"]:
        out.line(f"paused {paused['type']}: {paused['heldBack']} queued jobs held back")
    else:
        out.line(f"{paused['type']} was paused already (its reason stands)")


def resume_type(pool: ConnectionPool, settings: QueueSettings, args: argparse.Namespace,
                out: Output, _stdin: IO[str]) -> None:
    resumed = ops_actions.resume(pool, actor(), args.job_type, fair=settings.fair_dispatch)
    if out.as_json:
        out.json(resumed)
    elif resumed["changed"]:
        out.line(f"resumed {resumed['type']}: {resumed['released']} held jobs dispatched")
    else:
        out.line(f"{resumed['type']} was not paused")


COMMANDS: dict[str, Command] = {"list": list_jobs, "show": show_job, "retry": _act("retry"),
                                "cancel": _act("cancel"), "prune": prune, "types": job_types,
                                "pause": pause_type, "resume": resume_type}


if __name__ == "__main__":
    sys.exit(main())
