"""The window's publisher under aiomqtt, against a real Mosquitto: each publish returns once its
PUBACK is back, aiomqtt's own publishes beside it still complete, and a publish on a lost
connection or one the broker refuses fails or waits to be cancelled, never returns as if it had
been delivered."""

from __future__ import annotations

import asyncio
import contextlib

import aiomqtt
import pytest

from tests.mqtt.broker import AclMosquitto, Mosquitto
from tests.mqtt.recorder import Recorder, mqtt_client
from unit_controller.mqtt.direct_publisher import DirectPublisher, PublishRefused

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


async def test_a_message_the_broker_refuses_is_never_taken_as_delivered(
    acl_mosquitto: AclMosquitto,
) -> None:
    # MQTT 5 (as the link speaks): Mosquitto answers a publish its ACL denies with PUBACK
    # reason 0x87.
    v5 = aiomqtt.ProtocolVersion.V5
    host, port = acl_mosquitto.host, acl_mosquitto.port
    async with aiomqtt.Client(host, port, identifier="direct-3", protocol=v5) as client:
        direct = DirectPublisher(client)
        with pytest.raises(PublishRefused) as refused:
            await asyncio.wait_for(direct.publish("denied/telemetry", b"x", 1), WAIT_S)
        assert refused.value.topic == "denied/telemetry"
        assert "authori" in refused.value.reason.lower()
        assert "denied/telemetry" in str(refused.value)
        # The next message, on a topic the broker takes, is delivered as before.
        await asyncio.wait_for(direct.publish("allowed/telemetry", b"x", 1), WAIT_S)
        assert direct._pending == {}


async def test_a_message_id_still_awaiting_aiomqtts_puback_is_not_taken_over(
    mosquitto: Mosquitto,
) -> None:
    # paho's ids wrap at 65535: after a long drain the next one may be an id aiomqtt still
    # waits on (its birth, say). A PUBACK could then not be told apart: refused, row kept.
    async with mqtt_client(mosquitto, identifier="direct-4") as client:
        direct = DirectPublisher(client)
        next_mid = client._client._last_mid % 65535 + 1
        client._pending_publishes[next_mid] = asyncio.Event()
        try:
            with pytest.raises(aiomqtt.MqttError, match="still awaiting its PUBACK"):
                await asyncio.wait_for(direct.publish("direct/wrap", b"x", 1), WAIT_S)
        finally:
            del client._pending_publishes[next_mid]
        assert direct._pending == {}
        await asyncio.wait_for(direct.publish("direct/wrap", b"x", 1), WAIT_S)
