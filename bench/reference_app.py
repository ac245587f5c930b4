"""R-insert and R-read: the smallest Flask + psycopg-pool service, run under the same
gunicorn settings as ours (`gunicorn -c webapp/gunicorn_conf.py bench.reference_app:app`).

POST /items     inserts one row, answers 201 {"id": n}        (what creating a job must beat)
GET /items/<n>  reads one row by primary key, answers its JSON (what a status poll must beat)
GET /hello      answers "hello", no database: the least a request costs under these
                settings (what a 304 answered from memory is held against)

The table and its rows are made by bench/run.py, with payloads as large as our status
document, so both sides move the same bytes. The obvious code: psycopg decodes the jsonb,
Flask encodes it again, as a status poll does with its document.
"""

from __future__ import annotations

import os

from flask import Flask, Response, jsonify
from psycopg_pool import ConnectionPool

app = Flask(__name__)
# Sized as ours (DB_POOL_MAX_SIZE); no check on lending: the least a service can do.
pool = ConnectionPool(os.environ["DATABASE_URL"], min_size=1,
                      max_size=int(os.environ.get("DB_POOL_MAX_SIZE", "8")), open=True)


@app.post("/items")
def insert() -> tuple[Response, int]:
    with pool.connection() as conn:
        row = conn.execute("INSERT INTO bench_items (payload) VALUES ('{}') RETURNING id"
                           ).fetchone()
    assert row is not None
    return jsonify({"id": row[0]}), 201


@app.get("/items/<int:item_id>")
def read(item_id: int) -> Response:
    with pool.connection() as conn:
        row = conn.execute("SELECT payload FROM bench_items WHERE id = %s",
                           (item_id,)).fetchone()
    if row is None:
        return Response(status=404)
    return jsonify(row[0])


@app.get("/hello")
def hello() -> str:
    return "hello"
