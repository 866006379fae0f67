"""The real-broker fixtures themselves: round trip, TLS client certificates, sessions kept across
a restart, and no broker-side queue limit. Test support only; never sleeps for a fixed time.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from pathlib import Path

import aiomqtt
import pytest

from tests.mqtt.broker import Mosquitto
from tests.mqtt.recorder import Recorder, mqtt_client, publish

TOPIC = "fleet/v2/u-test/telemetry"


async def test_published_message_reaches_the_recorder(mosquitto: Mosquitto) -> None:
    async with Recorder(mosquitto) as rec:
        await publish(mosquitto.url, TOPIC, {"seq": 1})
        await publish(mosquitto, "fleet/v2/u-test/status", "online", retain=True)
        got = await rec.wait_for(lambda r: r.topic.endswith("/status"))
    assert got.payload == b"online"
    assert rec.json("telemetry") == [{"seq": 1}]
    assert [r.topic for r in rec.on("u-test/status")] == ["fleet/v2/u-test/status"]


async def test_tls_broker_takes_a_client_with_its_certificate(tls_mosquitto: Mosquitto) -> None:
    tls = tls_mosquitto.client_tls("u-test")
    async with Recorder(tls_mosquitto) as rec:
        await publish(tls_mosquitto.url, TOPIC, b"over tls", tls=tls)
        got = await rec.wait_for(lambda r: r.topic == TOPIC)
    assert got.payload == b"over tls"
    await _until_logged(tls_mosquitto, "u'u-test'")  # the certificate's CN, as the username


@pytest.mark.parametrize(
    ("certificate", "max_tls", "reason"),
    [
        # Capped at TLS 1.2 the refusal comes in the handshake, so connecting fails at once.
        pytest.param(
            "none", ssl.TLSVersion.TLSv1_2, "peer did not return a certificate", id="none-tls1.2"
        ),
        # With TLS 1.3 it comes after the handshake: aiomqtt only sees no CONNACK (a timeout).
        pytest.param("none", None, "peer did not return a certificate", id="none-tls1.3"),
        pytest.param(
            "another CA's", ssl.TLSVersion.TLSv1_2, "certificate verify failed", id="other-ca"
        ),
    ],
)
async def test_tls_broker_refuses_a_client_without_a_valid_certificate(
    tls_mosquitto: Mosquitto,
    tmp_path: Path,
    certificate: str,
    max_tls: ssl.TLSVersion | None,
    reason: str,
) -> None:
    context = ssl.create_default_context(cafile=tls_mosquitto.client_tls("u-test").ca_file)
    if certificate != "none":
        stranger = Mosquitto(workdir=tmp_path / "other-ca", tls=True).client_tls("u-test")
        context.load_cert_chain(stranger.cert_file, stranger.key_file)
    if max_tls is not None:
        context.maximum_version = max_tls
    client = aiomqtt.Client(tls_mosquitto.host, tls_mosquitto.port, tls_context=context, timeout=2)
    with pytest.raises(aiomqtt.MqttError):
        async with client:
            pass
    await _until_logged(tls_mosquitto, reason)


async def _until_logged(broker: Mosquitto, text: str, *, within_s: float = 5.0) -> None:
    """Wait (polling, bounded) until the broker's log holds `text`."""
    deadline = asyncio.get_running_loop().time() + within_s
    while text not in broker.log_tail(lines=1000):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{text!r} not in the broker log:\n{broker.log_tail()}")
        await asyncio.sleep(0.02)


async def test_persistent_recorder_gets_what_was_published_while_the_broker_restarted(
    mosquitto: Mosquitto,
) -> None:
    async with Recorder(mosquitto, persistent=True) as rec:
        # The restart drops the recorder's link and the block keeps it from coming back, so
        # the message is published before it reconnects: only its kept session (saved on
        # stop, reloaded on start) can deliver it.
        async with rec.offline(disconnect=False):
            mosquitto.restart()
            await publish(mosquitto, TOPIC, b"while away")
            assert not rec.connected
        got = await rec.wait_for(lambda r: r.payload == b"while away")
        assert rec.connections == 2
        assert not got.retain

        # And it comes back by itself from an outage it was not told about.
        mosquitto.restart()
        await publish(mosquitto, TOPIC, b"after")
        await rec.wait_for(lambda r: r.payload == b"after")
        assert rec.connections == 3


async def test_plain_recorder_resubscribes_after_a_broker_crash(mosquitto: Mosquitto) -> None:
    async with Recorder(mosquitto) as rec:
        mosquitto.kill()  # no session survives, and this one was clean anyway
        mosquitto.start()
        await rec.wait_connected(count=2)
        await publish(mosquitto, TOPIC, b"after the crash")
        await rec.wait_for(lambda r: r.payload == b"after the crash")


async def test_broker_queues_thousands_of_qos1_messages_for_an_offline_subscriber(
    mosquitto: Mosquitto,
) -> None:
    count = 2000  # twice Mosquitto's default max_queued_messages
    async with Recorder(mosquitto, persistent=True) as rec:
        async with rec.offline(), mqtt_client(mosquitto) as client:
            client.pending_calls_threshold = count  # all in flight at once, on purpose
            await asyncio.gather(
                *(client.publish(TOPIC, str(n).encode(), qos=1) for n in range(count))
            )
        await rec.wait_for(lambda r: r.payload == str(count - 1).encode())
    assert sorted(int(r.payload) for r in rec.on("telemetry")) == list(range(count))


DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"


class SiteBroker(Mosquitto):
    """The deploy/mosquitto example as shipped, its paths and port pointed into the workdir,
    with units u-001 and u-002 listed in the ACL as its example unit-01 is."""

    UNITS = ("u-001", "u-002")

    def site_acl(self) -> Path:
        text = (DEPLOY / "acl").read_text()
        match = re.search(r"^user unit-01\n(?:topic .*\n)+", text, re.MULTILINE)
        assert match, "deploy/mosquitto/acl no longer lists unit-01 as the example unit"
        blocks = "\n".join(match.group(0).replace("unit-01", unit) for unit in self.UNITS)
        path = self.workdir / "acl"
        path.write_text(text.replace(match.group(0), blocks))
        return path

    def config_text(self) -> str:
        server = self.server_tls()
        text = (DEPLOY / "mosquitto.conf").read_text()
        for shipped, here in {
            "listener 8883": f"listener {self.port} {self.host}",
            "/etc/mosquitto/certs/ca.crt": str(server.ca_file),
            "/etc/mosquitto/certs/server.crt": str(server.cert_file),
            "/etc/mosquitto/certs/server.key": str(server.key_file),
            "/etc/mosquitto/acl": str(self.site_acl()),
            "/var/lib/mosquitto/": f"{self.workdir}/",
            "/var/log/mosquitto/mosquitto.log": str(self.log_file),
        }.items():
            assert shipped in text, f"deploy/mosquitto/mosquitto.conf no longer has {shipped!r}"
            text = text.replace(shipped, here)
        assert not re.search(r"^[^#]*\s/(etc|var)/", text, re.MULTILINE), "a system path is left"
        return text + ("user root\n" if os.geteuid() == 0 else "")


async def test_site_example_lets_each_unit_write_its_own_topics_and_read_only_its_commands(
    tmp_path: Path,
) -> None:
    site = SiteBroker(workdir=tmp_path / "site", tls=True)
    try:
        site.start()
        # One connection per certificate (use_username_as_clientid): each client both records
        # and publishes on it. Each publish waits for its PUBACK, so the broker has routed (or
        # dropped) it before the next: once the markers arrive, anything let through wrongly
        # would have too.
        async with (
            Recorder(site, tls=site.client_tls("dashboard")) as dashboard,
            Recorder(site, tls=site.client_tls("u-001")) as unit1,
            Recorder(site, tls=site.client_tls("u-002")) as unit2,
            Recorder(site, tls=site.client_tls("u-999")) as rogue,
        ):
            # A certificate the CA signed for a unit nobody listed publishes nothing.
            await rogue.publish("fleet/v2/u-999/birth", b"rogue unit")
            await rogue.publish("fleet/v2/u-999/telemetry", b"rogue telemetry")
            await unit1.publish("fleet/v2/u-001/telemetry", b"own telemetry")
            await unit1.publish("fleet/v2/u-002/telemetry", b"spoofed")
            await unit1.publish("fleet/v2/u-001/cmd/start", b"self-command")
            await unit1.publish("fleet/v2/u-001/cmd", b"self-command")
            await dashboard.publish("fleet/v2/u-001/telemetry", b"dashboard forging")
            await dashboard.publish("fleet/v2/u-001/cmd/start", b"go")
            await dashboard.publish("fleet/v2/u-001/cmd/marker", b"m1")
            await dashboard.publish("fleet/v2/u-002/cmd/marker", b"m2")
            await dashboard.wait_for(lambda r: r.payload == b"m2")
            await unit1.wait_for(lambda r: r.payload == b"m1")
            await unit2.wait_for(lambda r: r.payload == b"m2")
    finally:
        site.kill()

    assert [r.payload for r in dashboard.received] == [b"own telemetry", b"go", b"m1", b"m2"]
    assert [r.payload for r in unit1.received] == [b"go", b"m1"]
    assert [r.payload for r in unit2.received] == [b"m2"]


class SparkplugSiteBroker(SiteBroker):
    """The site example with its Sparkplug lines uncommented, for each unit as for unit-01."""

    def site_acl(self) -> Path:
        # Uncommented as an installer would; unit-01's whole block (to its blank line), the
        # Sparkplug lines among its comments, once for each unit.
        text = re.sub(r"^# (topic \w+ spBv1\.0/)", r"\1", (DEPLOY / "acl").read_text(), flags=re.M)
        match = re.search(r"^user unit-01\n(?:.+\n)+", text, re.MULTILINE)
        assert match, "deploy/mosquitto/acl no longer lists unit-01 as the example unit"
        assert "spBv1.0/+/NDATA/unit-01" in match.group(0), "no Sparkplug lines for unit-01"
        blocks = "\n".join(match.group(0).replace("unit-01", unit) for unit in self.UNITS)
        path = self.workdir / "acl"
        path.write_text(text.replace(match.group(0), blocks))
        return path


async def test_site_example_with_its_sparkplug_lines_carries_each_units_node_topics(
    tmp_path: Path,
) -> None:
    # Found by an installer: as shipped it gave no Sparkplug lines, and NBIRTH/NDATA go at
    # QoS 0, so a Sparkplug unit's every message was dropped without a word.
    site = SparkplugSiteBroker(workdir=tmp_path / "site", tls=True)
    try:
        site.start()
        async with (
            Recorder(site, tls=site.client_tls("dashboard"), topic_filter="spBv1.0/#") as dashboard,
            Recorder(site, tls=site.client_tls("u-001"), topic_filter="spBv1.0/#") as unit1,
        ):
            await unit1.publish("spBv1.0/north/NBIRTH/u-001", b"birth")
            await unit1.publish("spBv1.0/north/NDATA/u-002", b"spoofed")
            await unit1.publish("spBv1.0/north/NCMD/u-002", b"commanding another")
            await unit1.publish("spBv1.0/north/NDATA/u-001", b"data")
            await dashboard.publish("spBv1.0/north/NCMD/u-002", b"not yours")
            await dashboard.publish("spBv1.0/north/NCMD/u-001", b"rebirth")
            await dashboard.wait_for(lambda r: r.payload == b"rebirth")
            await unit1.wait_for(lambda r: r.payload == b"rebirth")
    finally:
        site.kill()
    assert [r.payload for r in dashboard.received] == [b"birth", b"data", b"not yours", b"rebirth"]
    assert [r.payload for r in unit1.received] == [b"rebirth"]
