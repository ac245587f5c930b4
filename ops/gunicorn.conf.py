"""gunicorn settings for `gunicorn -c ops/gunicorn.conf.py wsgi:app`.

gthread: status polls are short and I/O bound; threads let one process answer many at once.
No preload_app: each worker opens its own connection pool after the fork.
"""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 60
graceful_timeout = 20
keepalive = 5
preload_app = False
accesslog = "-" if os.environ.get("ACCESS_LOG", "1") == "1" else None
