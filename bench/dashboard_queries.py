"""Times every ops/dashboards/*.sql on a seeded job table (1,000,000 jobs by default) and
names the plan node that keeps each cheap. Writes bench/dashboard_queries.md and .json.

    .venv/bin/python -m bench.dashboard_queries [--jobs N] [--rounds R]

Uses DATABASE_URL's server if set (in a scratch database it creates and drops), else an
embedded PostgreSQL in a temporary directory. The seed spreads the jobs evenly over 30 days
(JOB_RETENTION_DAYS' default), so each 24-hour window holds 1/30 of them, like a table
that retention keeps at a steady size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

PROJECT_DIR = Path(__file__).resolve().parent.parent

from queue_jobs.db.embedded import start_embedded, uri_for  # noqa: E402
from queue_jobs.db.migrate import apply_migrations  # noqa: E402
from queue_jobs.observability.dashboards import dashboards  # noqa: E402

SCRATCH_DB = "bench_dashboards"
DAYS = 30

# One statement per table; %(jobs)s rows of jobs over DAYS days, ending now.
SEED = [
    """
    INSERT INTO jobs (id, type, owner_user_id, owner_session_id, input, status, progress,
                      current_step, error, error_code, step_durations_ms, llm_calls,
                      llm_tokens, created_at, updated_at, run_started_at, finished_at)
    SELECT gen_random_uuid(), j.type,
           CASE WHEN i %% 4 = 0 THEN md5((i %% 5000)::text)::uuid END,
           CASE WHEN i %% 4 <> 0 THEN 'sess_' || (i %% 20000) END,
           '{"url": "https://example.com/"}', j.status, 100, NULL,
           CASE WHEN j.status = 'failed' THEN 'failed' END,
           CASE WHEN j.status = 'failed' THEN
                (ARRAY['LLM_ERROR', 'FETCH_FAILED', 'CANCELLED', 'TIMEOUT'])[1 + i %% 4] END,
           '{}', 4, 3000, j.created_at, j.created_at + interval '40 seconds',
           j.created_at + interval '1 second', j.created_at + interval '40 seconds'
      FROM generate_series(1, %(jobs)s) AS i,
           LATERAL (SELECT CASE WHEN i %% 3 = 0 THEN 'content-generation'
                                ELSE 'website-analysis' END AS type,
                           CASE WHEN i %% 10 = 0 THEN 'failed' ELSE 'succeeded' END AS status,
                           now() - interval '1 minute'
                               - (i * (%(days)s * 86400.0 / %(jobs)s)) * interval '1 second'
                               AS created_at) j
    """,
    # A few hundred active ones, some of them stuck.
    """
    INSERT INTO jobs (id, type, owner_session_id, input, status, created_at, updated_at,
                      run_started_at)
    SELECT gen_random_uuid(), 'website-analysis', 'sess_active_' || i, '{}',
           CASE WHEN i %% 2 = 0 THEN 'queued' ELSE 'running' END,
           now() - i * interval '5 seconds', now() - i * interval '5 seconds',
           CASE WHEN i %% 2 = 1 THEN now() - i * interval '5 seconds' END
      FROM generate_series(1, 300) AS i
    """,
    # One record per step of every finished job.
    """
    INSERT INTO job_steps (job_id, job_type, step, attempt, outcome, duration_ms, llm_calls,
                           input_tokens, output_tokens, finished_at)
    SELECT j.id, j.type, s.step, 1, 'succeeded', 500 + (hashtext(j.id::text || s.step) & 8191),
           1, 600, 150, j.finished_at - s.back * interval '8 seconds'
      FROM jobs j
      CROSS JOIN LATERAL unnest(CASE WHEN j.type = 'website-analysis'
                                     THEN ARRAY['analyze', 'audiences', 'pitches', 'images']
                                     ELSE ARRAY['content', 'visuals', 'save'] END)
                 WITH ORDINALITY AS s(step, back)
     WHERE j.finished_at IS NOT NULL
    """,
    """
    INSERT INTO llm_usage_daily (day, job_type, step, model, calls, input_tokens,
                                 output_tokens)
    SELECT (finished_at AT TIME ZONE 'UTC')::date, job_type, step, 'gpt-4.1-mini',
           sum(llm_calls), sum(input_tokens), sum(output_tokens)
      FROM job_steps GROUP BY 1, 2, 3
    """,
    "INSERT INTO procrastinate_workers (last_heartbeat) SELECT now() FROM generate_series(1, 8)",
    # What the workers hold now, and a day of ended dispatches the hourly sweep has not
    # pruned yet.
    """
    INSERT INTO procrastinate_jobs (queue_name, task_name, args, status, worker_id)
    SELECT 'jobs', 'run_job', '{}'::jsonb, 'doing'::procrastinate_job_status,
           (SELECT min(id) FROM procrastinate_workers) + i %% 8
      FROM generate_series(1, 150) AS i
    UNION ALL
    SELECT 'jobs', 'run_job', '{}'::jsonb, 'cancelled', NULL
      FROM generate_series(1, %(jobs)s / 30 / 20)
    """,
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=PROJECT_DIR / "bench" / "dashboard_queries")
    args = parser.parse_args()
    server = None
    admin_url = os.environ.get("DATABASE_URL")
    if not admin_url:
        data_dir = Path(tempfile.mkdtemp(prefix="bench-dashboards-"))
        server = start_embedded(data_dir)
        admin_url = uri_for(server)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(SCRATCH_DB)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(SCRATCH_DB)))
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=SCRATCH_DB)
    try:
        apply_migrations(url)
        results = measure(url, args.jobs, args.rounds)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(
                sql.Identifier(SCRATCH_DB)))
    write(args.out, args.jobs, results)
    return 0


def measure(url: str, jobs: int, rounds: int) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.monotonic()
        for seed in SEED:
            conn.execute(seed.encode(), {"jobs": jobs, "days": DAYS})
        conn.execute("VACUUM (ANALYZE)")
        print(f"seeded {jobs} jobs in {time.monotonic() - started:.0f} s", flush=True)
        results = []
        for dashboard in dashboards():
            query = dashboard.sql.encode()
            conn.execute(query).fetchall()  # warm the cache, as a 10-second refresh would
            timings = []
            for _ in range(rounds):
                begun = time.perf_counter()
                rows = conn.execute(query).fetchall()
                timings.append((time.perf_counter() - begun) * 1000)
            plan = conn.execute(b"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query).fetchone()
            assert plan is not None
            results.append({"name": dashboard.name, "rows": len(rows),
                            "median_ms": round(statistics.median(timings), 2),
                            "max_ms": round(max(timings), 2),
                            "scans": scans(plan[0][0]["Plan"])})
            print(f"{dashboard.name}: {results[-1]['median_ms']} ms", flush=True)
        return results


def scans(node: dict[str, Any]) -> list[str]:
    """The plan's scan nodes: what each query reads, and through which index."""
    found = []
    rows = f"({node.get('Actual Rows', 0) * node.get('Actual Loops', 1)} rows)"
    if "Relation Name" in node:
        index = f" using {node['Index Name']}" if "Index Name" in node else ""
        found.append(f"{node['Node Type']} on {node['Relation Name']}{index} {rows}")
    elif "Index Name" in node:  # a Bitmap Index Scan under its Bitmap Heap Scan
        found.append(f"{node['Node Type']} on {node['Index Name']} {rows}")
    for child in node.get("Plans", []):
        found.extend(scans(child))
    return found


def write(out: Path, jobs: int, results: list[dict[str, Any]]) -> None:
    out.with_suffix(".json").write_text(json.dumps({"jobs": jobs, "results": results},
                                                   indent=2) + "\n")
    lines = [f"# Dashboard queries on {jobs:,} jobs", "",
             f"Seeded evenly over {DAYS} days; median of warm runs. "
             "Written by `python -m bench.dashboard_queries`.", "",
             "| query | median ms | max ms | rows | what it reads |", "|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['median_ms']} | {r['max_ms']} | {r['rows']} | "
              f"{'<br>'.join(r['scans'])} |" for r in results]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
