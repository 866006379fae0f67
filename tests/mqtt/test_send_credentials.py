"""`send` to a broker that wants a user name and password, as a site broker may."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mqtt.broker import Mosquitto
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
    assert code == 1, err
    assert "no cmd_result from u1 within 1 s" in err
    code, _, err = await _cli(*send, "--password-file", str(tmp_path / "none"))
    assert code == 2
    assert "--password-file" in err
