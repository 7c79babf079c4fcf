"""The work queue: one entry per key, never two workers on one key, and safety work first."""

from __future__ import annotations

from canary.workqueue import WorkQueue


def test_safety_work_overtakes_a_long_queue_of_routine_steps() -> None:
    queue = WorkQueue()
    for i in range(1000):
        queue.add(("ns", f"routine-{i}"))
    queue.add(("ns", "rollback"), urgent=True)
    queue.add(("ns", "routine-500"), urgent=True)  # already queued: moves to the safety lane
    queue.add(("ns", "alert"), urgent=True)
    assert [queue.get(0) for _ in range(4)] == [("ns", "rollback"), ("ns", "routine-500"), ("ns", "alert"),
                                                ("ns", "routine-0")]
    assert len(queue) == 998


def test_a_key_is_queued_once_and_never_handed_to_two_workers() -> None:
    queue = WorkQueue()
    queue.add(("ns", "a"))
    queue.add(("ns", "a"))
    assert queue.get(0) == ("ns", "a") and queue.get(0) is None
    queue.add(("ns", "a"), urgent=True)  # changed while being worked on: runs again after, still urgent
    assert queue.get(0) is None
    queue.add(("ns", "b"))
    queue.done(("ns", "a"))
    assert queue.get(0) == ("ns", "a") and queue.get(0) == ("ns", "b")
