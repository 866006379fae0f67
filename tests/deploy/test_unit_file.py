"""The shipped systemd unit as systemd judges it (verify, security), the lock file, the real
unit's example config, and the daemon started the way the unit starts it."""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import os
import pwd
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path
from subprocess import Popen

import pytest
from packaging.requirements import Requirement

from tests.deploy.conftest import ROOT, install, run

SERVICE = ROOT / "systemd/unit-controller.service"
WAIT_S = 60.0


def _unit(path: Path = SERVICE) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    return parser


def test_the_unit_is_hardened_to_an_exposure_of_at_most_1_5() -> None:
    done = run(["systemd-analyze", "security", "--offline=yes", "--threshold=15", "--no-pager",
                str(SERVICE)], check=False, cwd=Path("/"))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    overall = [line for line in done.stdout.splitlines() if "Overall exposure" in line]
    assert overall, done.stdout
    assert float(overall[0].split("unit-controller.service:")[1].split()[0]) <= 1.5


def test_the_unit_verifies_in_a_staged_tree(bundle: Path, staged: Path) -> None:
    install(bundle, staged)
    # What a Debian root has beside ours: the system's units (sysinit.target...) and chgrp.
    (staged / "usr/lib/systemd").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", staged / "usr/lib/systemd/system", symlinks=True)
    (staged / "usr/bin").mkdir(parents=True, exist_ok=True)
    shutil.copy2(shutil.which("chgrp") or "/bin/chgrp", staged / "usr/bin/chgrp")
    for merged in ("lib", "bin"):
        (staged / merged).symlink_to(f"usr/{merged}")
    for unit in ("unit-controller.service", "serial-getty@ttyS0.service"):
        done = run(["systemd-analyze", "verify", f"--root={staged}", unit], check=False,
                   cwd=Path("/"))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert not done.stderr.strip()
    # The same check fails when the binary the unit starts is not there.
    (staged / "opt/unit-controller/current").unlink()
    missing = run(["systemd-analyze", "verify", f"--root={staged}", "unit-controller.service"],
                  check=False, cwd=Path("/"))  # fmt: skip
    assert missing.returncode != 0
    assert "unit-controller is not executable" in missing.stderr


def test_the_unit_says_what_the_issue_asks() -> None:
    service = _unit()["Service"]
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    assert service["UMask"] == "0027"
    assert service["StateDirectoryMode"] == "0750"
    assert "check-config" in service["ExecStartPre"]
    assert service["ProtectSystem"] == "strict"
    assert "PrivateDevices" not in service
    assert _unit()["Unit"]["StartLimitBurst"]


def test_the_unit_lets_the_console_name_its_user_and_starts_without_a_network() -> None:
    unit = _unit()
    service = unit["Service"]
    # In PrivateUsers='s namespace the field tech's socket peer would read as `nobody`.
    assert "PrivateUsers" not in service
    # The interlocks scan from boot: nothing may hold the start until a link or a time server.
    ordering = unit["Unit"].get("After", "") + " " + unit["Unit"].get("Wants", "")
    assert "network-online.target" not in ordering
    assert "time-sync.target" not in ordering


def test_the_unit_waits_out_the_default_outbox_drain_before_killing_it() -> None:
    from unit_controller.mqtt.settings import MqttSettings

    drain_s = MqttSettings().drain_timeout_s
    # The abort, outputs off and the journal come before the drain, `offline` after it.
    assert float(_unit()["Service"]["TimeoutStopSec"]) >= drain_s + 10


def test_the_real_units_example_config_checks_ok() -> None:
    done = run([sys.executable, "-m", "unit_controller.cli", "check-config",
                "deploy/examples/unit.toml"])  # fmt: skip
    assert done.stdout.strip() == "ok"
    text = (ROOT / "deploy/examples/unit.toml").read_text()
    config = tomllib.loads(text)
    assert config["hal"]["backend"] == "serial"
    rules = (ROOT / "deploy/udev/70-unit-controller.rules").read_text()
    ports = [d["port"] for d in config["devices"].values() if "port" in d]
    ports.append(config["hal"]["serial"]["relay_board_port"])
    # Every port is a name the udev rules make.
    for port in ports:
        assert f'SYMLINK+="{port.removeprefix("/dev/")}"' in rules, port


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    locked: dict[str, str] = {}
    entries = (ROOT / "deploy/requirements.lock").read_text().split("\n")
    for index, line in enumerate(entries):
        if line and not line[0].isspace() and not line.startswith("#"):
            name, version = line.split(" ")[0].split("==")
            locked[name.lower().replace("_", "-")] = version
            assert "--hash=sha256:" in entries[index + 1], line
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency)
        name = requirement.name.lower().replace("_", "-")
        assert name in locked, f"{name} is not in deploy/requirements.lock: run deploy/lock"
        assert requirement.specifier.contains(locked[name]), (name, locked[name])


# --- the daemon as the unit starts it ------------------------------------------------------


def _start(command: list[str], *, env: dict[str, str], umask: int, log: Path) -> Popen[bytes]:
    """As systemd starts ExecStart=: from /, with the unit's UMask= and environment."""
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd="/", env=env, stdout=out, stderr=out,
                                preexec_fn=lambda: os.umask(umask))  # fmt: skip


@pytest.fixture
def service_dirs() -> Iterator[Path]:
    """A folder another user can reach (pytest's own tmp is 0700 to root)."""
    base = Path(tempfile.mkdtemp(prefix="unit-start-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


async def test_the_daemon_started_as_the_unit_starts_it_leaves_nothing_readable_by_others(
    service_dirs: Path,
) -> None:
    service = _unit()["Service"]
    user = "nobody" if os.geteuid() == 0 else None
    owner = pwd.getpwnam(user) if user else pwd.getpwuid(os.geteuid())
    dirs = {}
    for kind, variable in (("State", "STATE_DIRECTORY"), ("Runtime", "RUNTIME_DIRECTORY"),
                      ("Configuration", "CONFIGURATION_DIRECTORY")):  # fmt: skip
        path = service_dirs / kind.lower() / "unit-controller"
        path.mkdir(parents=True)
        path.parent.chmod(0o755)
        path.chmod(int(service[f"{kind}DirectoryMode"], 8))
        # systemd hands state and runtime to the service's user; the config is root's, readable
        # by the service's group (tmpfiles.d).
        os.chown(path, 0 if kind == "Configuration" else owner.pw_uid, owner.pw_gid)
        dirs[variable] = path
    config = dirs["CONFIGURATION_DIRECTORY"] / "unit.toml"
    shutil.copy(ROOT / "deploy/examples/sim.toml", config)
    os.chown(config, 0, owner.pw_gid)
    config.chmod(0o640)
    notify = service_dirs / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify))
    notify.chmod(0o777)
    listener.setblocking(False)

    # ExecStart= as written, with this checkout's interpreter for the installed binary.
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/bin/unit-controller")
    command = [sys.executable, "-m", "unit_controller.cli", *argv[1:]]
    if user:
        command = ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}",
                   "--clear-groups", *command]  # fmt: skip
    umask = int(service["UMask"], 8)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_DIRECTORY")}
    env |= {k: str(v) for k, v in dirs.items()}
    env |= {"NOTIFY_SOCKET": str(notify), "PYTHONPATH": str(ROOT), "HOME": "/"}
    log = service_dirs / "daemon.log"
    proc = _start(command, env=env, umask=umask, log=log)
    try:
        loop = asyncio.get_running_loop()
        seen = ""
        for _ in range(int(WAIT_S / 0.5)):
            if "READY=1" in seen or proc.poll() is not None:
                break
            with contextlib.suppress(TimeoutError):
                seen += (await asyncio.wait_for(loop.sock_recv(listener, 4096), 0.5)).decode()
        assert "READY=1" in seen, f"no READY=1:\n{log.read_text()}"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(WAIT_S) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
    made = [p for d in (dirs["STATE_DIRECTORY"], dirs["RUNTIME_DIRECTORY"]) for p in d.rglob("*")]
    assert any(p.name.startswith("journal") for p in made), made
    readable = {
        str(p): oct(stat.S_IMODE(p.lstat().st_mode))
        for p in [*made, dirs["STATE_DIRECTORY"], dirs["RUNTIME_DIRECTORY"]]
        if p.lstat().st_mode & stat.S_IROTH or (p.is_file() and p.lstat().st_mode & 0o007)
    }
    assert readable == {}, f"readable by others: {readable}\n{log.read_text()}"
