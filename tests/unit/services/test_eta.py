"""The estimate's maths: the wait in the queue, a step's overrun, a step's finished units."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from queue_jobs.models import QueuePace, StepTiming
from queue_jobs.pipeline.website_analysis import PIPELINE
from queue_jobs.services.eta import (
    OVERRUN_SHARE,
    TtlCache,
    pipeline_seconds,
    queue_wait_s,
    remaining_seconds,
    step_seconds_left,
)

NOW = datetime(2026, 1, 29, 12, 0, 0, tzinfo=UTC)
TIMINGS = {"analyze": StepTiming(4000, 6000), "audiences": StepTiming(2000, 3000),
           "pitches": StepTiming(2000, 3000), "images": StepTiming(10_000, 20_000)}


def _pace(starts: int = 0, busy: int = 4, workers: int = 1,
          mean_run_s: float | None = 20.0) -> QueuePace:
    return QueuePace(recent_starts=starts, window_s=300.0, live_workers=workers,
                     busy_slots=busy, mean_run_s=mean_run_s)


def test_the_wait_is_the_starts_needed_at_the_recent_start_rate() -> None:
    pace = _pace(starts=60)  # one start every 5 s
    assert queue_wait_s(1, pace, 99.0) == pytest.approx(5.0)  # the next slot to free
    assert queue_wait_s(21, pace, 99.0) == pytest.approx(105.0)


def test_without_recent_starts_the_busy_slots_pace_the_wait() -> None:
    # 2 starts in 5 minutes are no rate: 4 busy slots of 20 s runs start one every 5 s.
    assert queue_wait_s(10, _pace(starts=2, busy=4, mean_run_s=20.0), 99.0) == \
        pytest.approx(50.0)
    # no run history at all: the job's own pipeline time stands in for a run
    assert queue_wait_s(10, _pace(starts=0, busy=2, mean_run_s=None), 30.0) == \
        pytest.approx(150.0)
    # no live worker: as if one slot, rather than no estimate
    assert queue_wait_s(2, _pace(starts=0, busy=0, workers=0, mean_run_s=10.0), 99.0) == \
        pytest.approx(20.0)


def test_idle_time_in_the_window_does_not_slow_a_backlog() -> None:
    # 30 starts in 5 minutes (one every 10 s) include a quiet spell; with 4 busy slots of
    # 4 s runs, slots free one a second: the backlog drains at that pace.
    assert queue_wait_s(10, _pace(starts=30, busy=4, mean_run_s=4.0), 99.0) == \
        pytest.approx(10.0)
    # and a window faster than the busy slots (shorter runs of late) is kept
    assert queue_wait_s(10, _pace(starts=300, busy=1, mean_run_s=20.0), 99.0) == \
        pytest.approx(10.0)


def test_a_free_slot_means_no_wait() -> None:
    assert queue_wait_s(3, _pace(starts=60, busy=0, workers=2), 99.0) == 0.0


def test_a_queued_estimate_adds_the_wait_to_the_pipeline() -> None:
    idle = remaining_seconds(PIPELINE, "queued", None, None, NOW, TIMINGS)
    waiting = remaining_seconds(PIPELINE, "queued", None, None, NOW, TIMINGS, wait_s=105.0)
    assert idle == pipeline_seconds(PIPELINE, TIMINGS) == 18
    assert waiting == 18 + 105
    # a running job has no wait, whatever it is given
    running = remaining_seconds(PIPELINE, "running", "analyze", NOW, NOW, TIMINGS,
                                wait_s=105.0)
    assert running == 18


def test_an_overrunning_step_is_extended_to_its_p90_then_by_a_share_of_the_overrun() -> None:
    timing = StepTiming(mean_ms=10_000, p90_ms=20_000)
    assert step_seconds_left(timing, 5.0, 4.0) == pytest.approx(6.0)  # within the mean
    assert step_seconds_left(timing, 5.0, 12.0) == pytest.approx(8.0)  # to the p90
    # past the p90 the remainder grows with the overrun, and never drops to nothing
    past = [step_seconds_left(timing, 5.0, elapsed) for elapsed in (20.0, 40.0, 100.0)]
    assert past == pytest.approx([OVERRUN_SHARE * 10, OVERRUN_SHARE * 30, OVERRUN_SHARE * 90])
    assert past == sorted(past) and past[0] > 1
    # no history: the default stands for mean and p90
    assert step_seconds_left(None, 5.0, 9.0) == pytest.approx(OVERRUN_SHARE * 4)


def test_a_step_with_units_done_goes_at_its_own_pace() -> None:
    timing = StepTiming(mean_ms=10_000, p90_ms=20_000)
    # 1 of 4 images in 8 s: 24 s more at this pace (slower than the mean)
    assert step_seconds_left(timing, 5.0, 8.0, 0.25) == pytest.approx(24.0)
    # faster than the mean: the mean's remaining share
    assert step_seconds_left(timing, 5.0, 1.0, 0.5) == pytest.approx(5.0)
    assert step_seconds_left(timing, 5.0, 30.0, 1.0) == 0.0


def test_the_images_step_reads_its_units_from_progress() -> None:
    images = PIPELINE.steps.index(next(s for s in PIPELINE.steps if s.key == "images"))
    low, high = PIPELINE.progress_before(images), PIPELINE.progress_before(images + 1)
    started = NOW - timedelta(seconds=12)
    none_done = remaining_seconds(PIPELINE, "running", "images", started, NOW, TIMINGS,
                                  progress=low)
    half_done = remaining_seconds(PIPELINE, "running", "images", started, NOW, TIMINGS,
                                  progress=low + (high - low) // 2)
    assert none_done == 8  # 12 s of a 10 s mean: to the 20 s p90
    assert half_done is not None and half_done <= 13  # 12 s for half: about 12 s more
    assert half_done >= 11


def test_the_cache_loads_once_per_ttl() -> None:
    cache: TtlCache[int] = TtlCache(ttl_s=60)
    loads: list[int] = []

    def load() -> int:
        loads.append(1)
        return len(loads)

    assert [cache.get("a", load), cache.get("a", load), cache.get("b", load)] == [1, 1, 2]
    assert TtlCache[int](ttl_s=0).get("a", load) == 3


def test_an_empty_history_is_kept_only_briefly() -> None:
    cache: TtlCache[dict[str, int]] = TtlCache(ttl_s=60, empty_ttl_s=0)
    histories = [{}, {}, {"fetch": 1}, {"fetch": 2}]

    def load() -> dict[str, int]:
        return histories.pop(0)

    # no history yet: asked again next time (the first jobs to finish count at once)
    assert [cache.get("t", load), cache.get("t", load)] == [{}, {}]
    assert cache.peek("t") is None
    # a history: kept for the TTL
    assert [cache.get("t", load), cache.get("t", load)] == [{"fetch": 1}, {"fetch": 1}]
    assert cache.peek("t") == {"fetch": 1}
