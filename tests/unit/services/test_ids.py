"""Job ids are RFC 9562 version 7 UUIDs: time first, so newer ids sort after older ones."""

from __future__ import annotations

import time
import uuid

from queue_jobs.services.ids import uuid7


def test_a_job_id_is_a_version_7_uuid_that_names_its_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    job_id = uuid7()
    after = time.time_ns() // 1_000_000
    assert (job_id.version, job_id.variant) == (7, uuid.RFC_4122)
    assert before <= job_id.int >> 80 <= after
    assert uuid.UUID(str(job_id)) == job_id


def test_ids_of_later_milliseconds_sort_later_and_never_repeat() -> None:
    first = uuid7()
    time.sleep(0.002)
    second = uuid7()
    assert first < second
    assert len({uuid7() for _ in range(10_000)}) == 10_000
