"""The outbox drain figure on a tiny scale, and the backlog file it drains.

Starts a Mosquitto and drains in real time (the real-time xdist group); asserts no time.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest

from bench.backlog import fill_outbox, outbox_path, telemetry_payload
from bench.core import Context, Figure
from bench.figures import outbox
from unit_controller.mqtt.outbox import Outbox
from unit_controller.mqtt.service import OUTBOX_FILE


@pytest.mark.xdist_group("real_time")
def test_every_figure_comes_from_a_tiny_run(tmp_path: Path) -> None:
    figures = outbox.measure(Context(workdir=tmp_path, tiny=True, repeats=1, say=lambda _: None))
    assert set(figures) == set(outbox.KEYS)
    for figure in figures.values():
        assert isinstance(figure, Figure)
        assert figure.unit == "msg/s"
        assert math.isfinite(figure.value)
        assert figure.value > 0
        assert figure.note
    drain = figures["outbox_drain_msgs_per_s"]
    assert drain.baseline == figures["raw_aiomqtt_qos1_msgs_per_s"].value
    assert drain.goal is not None
    assert (drain.goal.limit, drain.goal.better, drain.goal.on) == (0.9, "higher", "ratio")


def test_a_filled_backlog_opens_as_the_daemons_own_outbox(tmp_path: Path) -> None:
    path = outbox_path(tmp_path)
    assert path == tmp_path / OUTBOX_FILE
    fill_outbox(path, 250, payload_bytes=300)

    async def opened() -> tuple[int, int, list[bytes]]:
        async with Outbox(path=path, max_bytes=10**9, max_age_s=3600) as box:
            rows = await box.read(after_id=0, up_to_id=10**9, limit=1000)
            return box.pending_count, box.pending_bytes, [r.payload for r in rows]

    count, nbytes, payloads = asyncio.run(opened())
    assert (count, nbytes) == (250, 250 * 300)
    assert payloads == [telemetry_payload(seq, 300) for seq in range(250)]
    assert [json.loads(p)["seq"] for p in payloads] == list(range(250))
