"""A failure that repeats under a flusher is said once, again on a new reason or as a reminder,
and its end once."""

from __future__ import annotations

from structlog.testing import capture_logs

from unit_controller.failure_log import REMIND_EVERY_S, DropLog, FailureLog


def test_a_disk_that_keeps_refusing_is_said_once_then_reminded_and_its_end_once() -> None:
    now = [0.0]
    failures = FailureLog("outbox.flush", monotonic=lambda: now[0])
    with capture_logs() as logs:
        for _ in range(25):  # five seconds of a flusher retrying every 0.2 s
            failures.failed("database or disk is full", buffered=3)
            now[0] += 0.2
        failures.failed("disk I/O error", buffered=3)  # a new reason is news
        now[0] += REMIND_EVERY_S
        failures.failed("disk I/O error", buffered=3)
        failures.failed("disk I/O error", buffered=3)
        failures.recovered()
        failures.recovered()
    said = [(e["event"], e.get("error"), e.get("failures"), e.get("not_logged")) for e in logs]
    assert said == [
        ("outbox.flush_failed", "database or disk is full", 1, 0),
        ("outbox.flush_failed", "disk I/O error", 26, 24),
        ("outbox.flush_failed", "disk I/O error", 27, 0),
        ("outbox.flush_recovered", None, 28, None),
    ]
    assert logs[0]["buffered"] == 3
    assert logs[0]["log_level"] == "error"
    with capture_logs() as logs:
        failures.failed("database or disk is full", buffered=0)
    assert [e["failures"] for e in logs] == [1]  # counted afresh after a recovery


def test_a_cap_dropping_at_every_commit_is_said_once_a_minute_with_the_count() -> None:
    now = [0.0]
    drops = DropLog("outbox.dropped", monotonic=lambda: now[0])
    with capture_logs() as logs:
        for total in range(1, 601):  # ten minutes at one drop a second
            drops.dropped(1, reason="bytes", dropped_total=total)
            now[0] += 1.0
        drops.dropped(3, reason="age", dropped_total=603)  # a new reason is news
    said = [(e["event"], e["count"], e["reason"], e["dropped_total"]) for e in logs]
    assert said[:3] == [
        ("outbox.dropped", 1, "bytes", 1),
        ("outbox.dropped", 60, "bytes", 61),
        ("outbox.dropped", 60, "bytes", 121),
    ]
    assert len(said) == 11  # at drops 1, 61, ... 541, then the new reason
    assert sum(count for _, count, _, _ in said) == 603  # every drop counted in some line
    assert said[-1] == ("outbox.dropped", 3 + 59, "age", 603)
