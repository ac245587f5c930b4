"""`python -m queue_jobs.worker`: the worker process (queue_jobs.worker.main)."""

import sys

from queue_jobs.worker.main import main

sys.exit(main())
