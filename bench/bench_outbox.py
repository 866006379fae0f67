"""Benchmark: outbox put+flush and ack+flush throughput, and memory over a 100k-row backlog.

Run: .venv/bin/python bench/bench_outbox.py [rows]  (default 100000). Prints figures; asserts
nothing (speed targets are checked here, never in tests).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a plain script

from bench.backlog import telemetry_payload
from unit_controller.logs import configure_logging
from unit_controller.mqtt.outbox import Outbox

BATCH = 250  # rows per commit, as the flusher groups them under load
PAYLOAD_BYTES = 400


def _payload(seq: int) -> bytes:
    """A telemetry message of about PAYLOAD_BYTES of JSON, as the bridge writes them."""
    return telemetry_payload(seq, PAYLOAD_BYTES)


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f} rows/s"


async def _bench(path: Path, rows: int) -> None:
    box = Outbox(path=path, max_bytes=2**30, max_age_s=7 * 86400)
    await box.open()
    rss_start = _rss_mib()
    put_s = flush_s = 0.0
    flush_ms: list[float] = []
    for start in range(0, rows, BATCH):
        payloads = [_payload(seq) for seq in range(start, min(rows, start + BATCH))]
        t0 = time.perf_counter()
        for payload in payloads:
            box.put("telemetry", payload)
        t1 = time.perf_counter()
        await box.flush()
        t2 = time.perf_counter()
        put_s += t1 - t0
        flush_s += t2 - t1
        flush_ms.append((t2 - t1) * 1000)
    rss_backlog = _rss_mib()
    size = len(_payload(0))
    print(f"outbox, {rows} rows of {size} B JSON in commits of {BATCH} ({path.parent})")
    print(
        f"  put+flush: {_rate(rows, put_s + flush_s)}; put() {put_s / rows * 1e6:.1f} µs a row "
        f"on the loop; commit of {BATCH}: median {statistics.median(flush_ms):.1f} ms, "
        f"max {max(flush_ms):.1f} ms"
    )
    stat = await asyncio.to_thread(path.stat)
    print(
        f"  backlog {box.pending_count} rows, {box.pending_bytes / 2**20:.1f} MiB payload, "
        f"file {stat.st_size / 2**20:.1f} MiB (+ WAL)"
    )
    await box.close()

    t0 = time.perf_counter()
    box = Outbox(path=path, max_bytes=2**30, max_age_s=7 * 86400)
    await box.open()
    print(f"  reopen with the backlog: {(time.perf_counter() - t0) * 1000:.0f} ms")
    rss_reopened = _rss_mib()

    ack_s = 0.0
    for first in range(1, rows + 1, BATCH):
        t0 = time.perf_counter()
        for row_id in range(first, min(rows + 1, first + BATCH)):
            box.ack(row_id)
        await box.flush()
        ack_s += time.perf_counter() - t0
    print(f"  ack+flush: {_rate(rows, ack_s)} (left {box.pending_count})")
    rss_end = _rss_mib()
    await box.close()
    print(
        f"  RSS MiB: {rss_start:.1f} opened empty, {rss_backlog:.1f} with the backlog "
        f"(+{rss_backlog - rss_start:.1f}), {rss_reopened:.1f} after reopen, "
        f"{rss_end:.1f} after acking all"
    )


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    configure_logging("error")
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as directory:
        asyncio.run(_bench(Path(directory) / "outbox.sqlite3", rows))


if __name__ == "__main__":
    main()
