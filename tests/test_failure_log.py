"""A failure that repeats under a flusher is said once, again on a new reason or as a reminder,
and its end once."""

from __future__ import annotations

from structlog.testing import capture_logs

from unit_controller.failure_log import REMIND_EVERY_S, FailureLog


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
