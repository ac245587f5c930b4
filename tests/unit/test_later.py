"""The shared delayed-call thread: cancel is final and idempotent, and a failing call
does not stop the ones after it."""

from __future__ import annotations

import threading

from queue_jobs.pipeline import later


def test_a_cancelled_call_never_runs_and_cancel_can_be_repeated() -> None:
    ran = threading.Event()
    handle = later.call_later(0.05, ran.set)
    handle.cancel()
    handle.cancel()  # returns at once
    done = threading.Event()
    later.call_later(0.1, done.set)
    assert done.wait(5)
    assert not ran.is_set()


def test_a_failing_call_leaves_the_thread_serving_the_next() -> None:
    def fail() -> None:
        raise RuntimeError("boom")

    later.call_later(0, fail)
    done = threading.Event()
    later.call_later(0.01, done.set)
    assert done.wait(5)


def test_cancel_waits_for_a_call_under_way() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        release.wait(5)
        finished.set()

    handle = later.call_later(0, slow)
    assert started.wait(5)
    threading.Timer(0.05, release.set).start()
    handle.cancel()
    assert finished.is_set()


def test_calls_cancelled_before_they_fall_due_do_not_hold_up_the_next() -> None:
    for _ in range(100):
        later.call_later(0.02, lambda: None).cancel()
    done = threading.Event()
    later.call_later(0.03, done.set)
    assert done.wait(5)


def test_a_sooner_call_ends_the_wait_for_a_later_one() -> None:
    far_ran, near_ran = threading.Event(), threading.Event()
    far = later.call_later(60, far_ran.set)
    later.call_later(0.01, near_ran.set)
    assert near_ran.wait(5)  # not after 60 s
    far.cancel()
    assert not far_ran.is_set()


def test_a_call_may_arm_another_and_cancel_itself() -> None:
    inner_ran = threading.Event()
    handles: list[later.Handle] = []

    def outer() -> None:
        handles[0].cancel()  # its own handle: returns at once, no deadlock
        later.call_later(0.01, inner_ran.set)  # armed while the thread runs a call

    handles.append(later.call_later(0, outer))
    assert inner_ran.wait(5)
