"""`send` to a broker that wants a user name and password, as a site broker may."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt.broker import AclMosquitto, Mosquitto
from tests.mqtt.recorder import publish
from tests.mqtt.test_daemon_signed import _cli

pytestmark = pytest.mark.xdist_group("real_time")

USER, PASSWORD = "ops", "s3cret-pass"


class PasswordMosquitto(Mosquitto):
    """A broker that lets in only USER with PASSWORD."""

    def config_text(self) -> str:
        passwords = self.workdir / "passwords"
        subprocess.run(
            ["mosquitto_passwd", "-b", "-c", str(passwords), USER, PASSWORD],
            check=True,
            capture_output=True,
        )
        text = super().config_text().replace("allow_anonymous true", "allow_anonymous false")
        return text + f"\npassword_file {passwords}\n"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = PasswordMosquitto(workdir=tmp_path / "broker")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_send_gives_the_broker_its_user_name_and_password(
    broker: Mosquitto, tmp_path: Path
) -> None:
    key = tmp_path / "ops.key"
    assert (await _cli("keygen", str(key), "--name", "ops"))[0] == 0
    right, wrong = tmp_path / "right", tmp_path / "wrong"
    right.write_text(PASSWORD + "\n")
    wrong.write_text("guess\n")
    send = ("send", "hold", "--unit", "u1", "--key", str(key), "--by", "ops", "--url", broker.url)
    code, _, err = await _cli(*send, "--username", USER, "--password-file", str(wrong))
    assert code == 1, err
    assert "Not authorized" in err, err
    # Let in: no unit answers, so it waits for the result and says none came.
    code, _, err = await _cli(
        *send, "--username", USER, "--password-file", str(right), "--timeout-s", "1"
    )
    assert code == 4, err  # sent, its outcome not known: not "refused"
    assert "no cmd_result from u1 within 1 s" in err
    code, _, err = await _cli(*send, "--password-file", str(tmp_path / "none"))
    assert code == 2
    assert "--password-file" in err
    # A password alone is never sent (MQTT pairs it with a user name): said, not ignored.
    code, _, err = await _cli(*send, "--password-file", str(right))
    assert code == 2
    assert "--password-file needs --username" in err


async def test_send_says_the_broker_refused_the_command_not_that_the_unit_was_silent(
    acl_mosquitto: AclMosquitto, tmp_path: Path
) -> None:
    key = tmp_path / "ops.key"
    assert (await _cli("keygen", str(key), "--name", "ops"))[0] == 0
    send = ("send", "hold", "--key", str(key), "--by", "ops", "--url", acl_mosquitto.url)
    # Its ACL lets this client write only under allowed/: the command never reaches the unit.
    code, _, err = await _cli(*send, "--unit", "u1", "--timeout-s", "20")
    assert code == 1, err
    assert "the broker refused a message on fleet/v2/u1/cmd/hold" in err, err
    assert "did not reach u1" in err


async def test_send_skips_what_is_no_result_on_the_topic_and_waits_for_its_own(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    key = tmp_path / "ops.key"
    assert (await _cli("keygen", str(key), "--name", "ops"))[0] == 0
    for stray in (b"garbage", b"\xff\xfe", b"[1, 2]", b'{"id": "someone else\'s"}'):
        await publish(mosquitto, "fleet/v2/u1/cmd_result", stray, retain=True)
        send = ("send", "hold", "--unit", "u1", "--key", str(key), "--by", "ops")
        code, _, err = await _cli(*send, "--url", mosquitto.url, "--timeout-s", "1")
        assert code == 4, err
        assert "Traceback" not in err
        assert "no cmd_result from u1 within 1 s: the broker took the command" in err
