"""The publish window: full while there is work, refilled at each PUBACK (never in lock-step),
acking a row in the outbox only after its PUBACK, and ending on the first failed publish."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from unit_controller.mqtt.outbox import Outbox, OutboxRow
from unit_controller.mqtt.window import PublishWindow


class Broker:
    """A fake client: each publish waits until the test sends its PUBACK (or a failure)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self._pubacks: dict[bytes, asyncio.Future[None]] = {}

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        /,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the client's signature)
    ) -> None:
        assert qos == 1
        self.sent.append(payload)
        self._pubacks[payload] = asyncio.get_running_loop().create_future()
        await self._pubacks[payload]

    def puback(self, payload: bytes) -> None:
        self._pubacks[payload].set_result(None)

    def fail(self, payload: bytes, error: Exception) -> None:
        self._pubacks[payload].set_exception(error)


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    async with Outbox(path=tmp_path / "o.sqlite3", max_bytes=10**6, max_age_s=3600) as box:
        yield box


async def _rows(outbox: Outbox, count: int) -> list[OutboxRow]:
    for i in range(count):
        outbox.put("telemetry", b"%d" % i)
    return await outbox.flush()


async def _turns(count: int = 5) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_each_puback_frees_one_slot_for_the_next_row_at_once(outbox: Outbox) -> None:
    broker = Broker()
    window = PublishWindow(client=broker, outbox=outbox, size=3, timeout_s=10)
    rows = await _rows(outbox, 6)

    async def feed() -> None:
        for row in rows:
            await window.put("t", row)

    feeding = asyncio.create_task(feed())
    await _turns()
    assert broker.sent == [b"0", b"1", b"2"]  # full, and the fourth waits for a slot
    broker.puback(b"1")  # one PUBACK, out of order: one more goes, without waiting for 0 and 2
    await _turns()
    assert broker.sent == [b"0", b"1", b"2", b"3"]
    assert window.in_flight == 3
    for payload in (b"0", b"2", b"3"):
        broker.puback(payload)
    await _turns()
    assert broker.sent == [b"0", b"1", b"2", b"3", b"4", b"5"]
    await feeding
    for payload in (b"4", b"5"):
        broker.puback(payload)
    await window.drained()
    assert outbox.pending_count == 0
    await window.close()


async def test_a_big_window_is_topped_up_in_small_steps_long_before_it_empties(
    outbox: Outbox,
) -> None:
    broker = Broker()
    window = PublishWindow(client=broker, outbox=outbox, size=40, timeout_s=10)
    rows = await _rows(outbox, 100)

    async def feed() -> None:
        for row in rows:
            await window.put("t", row)

    feeding = asyncio.create_task(feed())
    await _turns()
    assert len(broker.sent) == 40
    for payload in (b"3", b"0", b"7", b"1"):
        broker.puback(payload)
    await _turns()
    assert len(broker.sent) == 40  # a few slots free: the producer is left to sleep
    broker.puback(b"2")  # the fifth (an eighth of the window): topped up at once
    await _turns()
    assert len(broker.sent) == 45
    assert window.in_flight == 40
    feeding.cancel()
    await window.close()


async def test_a_live_row_waits_for_one_refill_not_for_the_whole_backlog(
    outbox: Outbox,
) -> None:
    broker = Broker()
    window = PublishWindow(client=broker, outbox=outbox, size=40, timeout_s=10)
    *backlog, live = await _rows(outbox, 201)

    async def feed() -> None:
        for row in backlog:
            await window.put("backfill", row)

    feeding = asyncio.create_task(feed())
    await _turns()
    live_put = asyncio.create_task(window.put("telemetry", live))
    await _turns()
    assert not live_put.done()  # the window is full of the backlog
    for payload in broker.sent[:5]:  # one refill's worth of PUBACKs
        broker.puback(payload)
    await _turns()
    assert live_put.done()
    assert b"200" in broker.sent
    assert len(broker.sent) == 45
    feeding.cancel()
    await window.close()


async def test_a_publish_left_without_its_puback_past_the_timeout_fails_the_window(
    outbox: Outbox,
) -> None:
    broker = Broker()
    now = [100.0]
    window = PublishWindow(
        client=broker, outbox=outbox, size=10, timeout_s=0.02, clock=lambda: now[0]
    )
    (row,) = await _rows(outbox, 1)
    await window.put("t", row)
    watching = asyncio.create_task(window.failed())
    await asyncio.sleep(0.03)  # a few watchdog rounds within the timeout (the clock stands)
    assert not watching.done()
    now[0] += 1.0
    with pytest.raises(aiomqtt.MqttError, match="no PUBACK within"):
        await watching
    await window.close()
    assert outbox.pending_count == 1


async def test_a_row_is_acked_in_the_outbox_only_after_its_puback(outbox: Outbox) -> None:
    broker = Broker()
    window = PublishWindow(client=broker, outbox=outbox, size=10, timeout_s=10)
    first, second = await _rows(outbox, 2)
    await window.put("t", first)
    await window.put("t", second)
    await _turns()
    assert broker.sent == [b"0", b"1"]
    assert outbox.pending_count == 2  # published, not yet acknowledged: still owed
    broker.puback(b"1")
    await _turns()
    assert outbox.pending_count == 1
    await outbox.flush()
    assert [r.id for r in await outbox.read(after_id=0, up_to_id=10, limit=10)] == [first.id]
    await window.close()  # the row in flight stays stored for the next connection
    await outbox.flush()
    assert [r.id for r in await outbox.read(after_id=0, up_to_id=10, limit=10)] == [first.id]


async def test_the_first_failed_publish_ends_the_window_and_its_row_stays(
    outbox: Outbox,
) -> None:
    broker = Broker()
    window = PublishWindow(client=broker, outbox=outbox, size=1, timeout_s=10)
    first, second = await _rows(outbox, 2)
    watching = asyncio.create_task(window.failed())
    await window.put("t", first)
    putting = asyncio.create_task(window.put("t", second))
    await _turns()
    broker.fail(b"0", ConnectionResetError("gone"))
    with pytest.raises(ConnectionResetError):
        await watching
    with pytest.raises(ConnectionResetError):
        await putting  # the slot it waited for came free, but the window has failed
    assert broker.sent == [b"0"]
    await window.close()
    assert outbox.pending_count == 2
