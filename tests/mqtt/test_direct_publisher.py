"""The window's publisher under aiomqtt, against a real Mosquitto: each publish returns once its
PUBACK is back, aiomqtt's own publishes beside it still complete, and a publish on a lost
connection fails or waits to be cancelled, never returns as if it had been delivered."""

from __future__ import annotations

import asyncio
import contextlib

import aiomqtt
import pytest

from tests.mqtt.broker import Mosquitto
from tests.mqtt.recorder import Recorder, mqtt_client
from unit_controller.mqtt.direct_publisher import DirectPublisher

pytestmark = pytest.mark.xdist_group("real_time")

WAIT_S = 30.0


async def test_publishes_beside_aiomqtts_own_all_arrive_and_none_is_left_pending(
    mosquitto: Mosquitto,
) -> None:
    async with Recorder(mosquitto, topic_filter="direct/#") as rec:
        async with mqtt_client(mosquitto, identifier="direct-1") as client:
            direct = DirectPublisher(client)
            window = asyncio.Semaphore(50)

            async def one(n: int) -> None:
                async with window:
                    await direct.publish("direct/window", b"%d" % n, 1)

            async def theirs() -> None:
                for n in range(20):  # as birth, state and command results go: through aiomqtt
                    await client.publish("direct/aiomqtt", b"%d" % n, qos=1, timeout=WAIT_S)

            await asyncio.wait_for(asyncio.gather(theirs(), *(one(n) for n in range(500))), WAIT_S)
            assert direct._pending == {}
            # QoS 0 is done once written.
            await asyncio.wait_for(direct.publish("direct/qos0", b"x", 0), WAIT_S)
        await rec.wait_for(lambda _: len(rec.on("direct/window")) >= 500, timeout=WAIT_S)
        await rec.wait_for(lambda _: len(rec.on("direct/aiomqtt")) >= 20, timeout=WAIT_S)
    assert sorted(int(r.payload) for r in rec.on("direct/window")) == list(range(500))


async def test_a_publish_on_a_lost_connection_is_never_taken_as_delivered(
    mosquitto: Mosquitto,
) -> None:
    with contextlib.suppress(aiomqtt.MqttError):
        async with mqtt_client(mosquitto, identifier="direct-2") as client:
            direct = DirectPublisher(client)
            mosquitto.stop()
            outcome: BaseException | None = None
            try:
                # Either refused at once (the socket is gone) or left waiting for a PUBACK
                # that cannot come, for the link to cancel when it sees the connection lost.
                await asyncio.wait_for(direct.publish("direct/lost", b"x" * 100, 1), 3.0)
            except (aiomqtt.MqttError, TimeoutError) as exc:
                outcome = exc
            assert outcome is not None, "a publish to a stopped broker returned as delivered"
            assert direct._pending == {}
