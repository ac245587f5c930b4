"""Live status's own metrics, per web process (summed by /metrics over gunicorn's processes)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

STREAMS_OPEN = Gauge("live_streams_open", "Event streams open now.",
                     multiprocess_mode="livesum")
STATUS_ANSWERS = Counter("status_answers_total",
                         "Status polls answered, by source: memory (no database round "
                         "trip) or database.", ["source"])
LISTENER_GAPS = Counter("live_listener_gaps_total",
                        "Times a web process lost its listening connection.")
INSTRUMENTS = (STREAMS_OPEN, STATUS_ANSWERS, LISTENER_GAPS)
FROM_MEMORY = STATUS_ANSWERS.labels("memory")
FROM_DATABASE = STATUS_ANSWERS.labels("database")
