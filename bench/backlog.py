"""A telemetry backlog on disk, as a daemon left it after a long broker outage.

Writes through the real `Outbox` (its schema, ids and stored totals), so a daemon opens the
file as its own; never touches a file that is not in a scratch directory of the caller's.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from unit_controller.mqtt.outbox import Outbox, OutboxRow
from unit_controller.mqtt.service import OUTBOX_FILE

__all__ = ["fill_outbox", "outbox_path", "telemetry_payload"]

# Rows per commit while filling: big transactions, yet a bounded list in memory.
_COMMIT_ROWS = 20_000
_BASE_TS_MS = 1_700_000_000_000
_MESSAGE = {
    "sess": 3,
    "boot": 2,
    "state": "EXECUTE",
    "state_no": 6,
    "phase": "coprecipitation",
    "temperature_c": 57.91,
    "ph": 11.02,
    "heater_duty": 0.31,
    "agitator": True,
    "purge": True,
    "level": "normal",
    "pumps": {"P-201": 0.0, "P-203": 1.84, "P-204": 0.61, "P-205": 4.2},
}
# The fields after ts and seq, as `json.dumps(separators=(",", ":"))` writes them.
_REST = json.dumps(_MESSAGE, separators=(",", ":"))[1:-1]


def outbox_path(state_dir: Path) -> Path:
    """Where the daemon keeps its outbox in `state_dir` (`--state-dir`)."""
    return state_dir / OUTBOX_FILE


def telemetry_payload(seq: int, payload_bytes: int = 400) -> bytes:
    """A compact JSON telemetry message of about `payload_bytes` (bench/bench_outbox.py's)."""
    head = f'{{"ts":{_BASE_TS_MS + seq * 1000},"seq":{seq},{_REST},"pad":"'
    pad = max(0, payload_bytes - len(head) - 2)
    return f'{head}{"x" * pad}"}}'.encode()


def fill_outbox(path: Path, rows: int, *, payload_bytes: int = 400) -> None:
    """Create (or add to) the outbox at `path` with `rows` pending telemetry rows.

    The rows are stamped now, so the age cap keeps them; mind the daemon's byte cap
    (`[mqtt.outbox] max_bytes`, 256 MiB by default): 1M rows of 400 B exceed it, and a daemon
    with the default cap drops the oldest at its first commit.
    """
    asyncio.run(_fill(path, rows, payload_bytes))


async def _fill(path: Path, rows: int, payload_bytes: int) -> None:
    box = Outbox(path=path, max_bytes=2**62, max_age_s=365 * 86400.0, wall=time.time)
    async with box:
        committing: asyncio.Future[list[OutboxRow]] | None = None
        for start in range(0, rows, _COMMIT_ROWS):
            # The next rows are made while the last ones commit on the outbox's thread.
            for seq in range(start, min(rows, start + _COMMIT_ROWS)):
                box.put("telemetry", telemetry_payload(seq, payload_bytes))
            if committing is not None:
                await committing
            committing = asyncio.ensure_future(box.flush())
        if committing is not None:
            await committing
