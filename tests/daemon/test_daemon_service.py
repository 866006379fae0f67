"""The daemon as systemd and a site's security see it: sd_notify messages, and the console PIN."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
from pathlib import Path
from typing import Any

from tests.daemon.harness import WAIT_S, Control, Daemon
from unit_controller.config import DEFAULT_CONFIG
from unit_controller.pin import hash_pin


def _datagrams(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


async def test_tells_systemd_ready_feeds_the_watchdog_and_says_stopping(tmp_path: Path) -> None:
    address = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(address))
    listener.setblocking(False)
    daemon = Daemon(tmp_path, env={"NOTIFY_SOCKET": str(address), "WATCHDOG_USEC": "2000000"})
    try:
        await daemon.start()
        seen: list[str] = []
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(WAIT_S):
            while sum("WATCHDOG=1" in m for m in seen) < 2:
                seen.append((await loop.sock_recv(listener, 4096)).decode())
        ready = next(m for m in seen if "READY=1" in m)
        assert "STATUS=STOPPED" in ready
        assert daemon.terminate() == 0
        seen += _datagrams(listener)
        assert any("STOPPING=1" in m for m in seen), seen
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
        listener.close()


async def test_no_watchdog_pings_when_systemd_set_no_watchdog(tmp_path: Path) -> None:
    address = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(address))
    listener.setblocking(False)
    daemon = Daemon(tmp_path, env={"NOTIFY_SOCKET": str(address)})
    try:
        await daemon.start()
        async with Control(daemon.socket) as control:
            for _ in range(int(WAIT_S / 0.05)):  # scans enough to have fed a watchdog
                if (await control.request("stats"))["result"]["scans"] >= 50:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the daemon did not scan")
        assert daemon.terminate() == 0
        seen = _datagrams(listener)
        assert any("READY=1" in m for m in seen), seen
        assert any("STOPPING=1" in m for m in seen), seen
        assert not any("WATCHDOG=1" in m for m in seen), seen
    finally:
        if daemon.proc is not None and daemon.proc.poll() is None:
            daemon.kill()
        listener.close()


async def test_manual_mode_needs_the_pin_when_one_is_configured(tmp_path: Path) -> None:
    config = tmp_path / "unit.toml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    config.write_text(
        text.replace("[console]\n", f'[console]\npin_hash = "{hash_pin("4711")}"\n', 1),
        encoding="utf-8",
    )
    daemon = Daemon(tmp_path, args=("--config", str(config)))
    await daemon.start()
    try:
        async with Control(daemon.socket, client="console") as control:
            assert control.hello["pin_required"] is True
            locked = await control.request("manual", on=True)
            assert locked["code"] == "pin_required"
            wrong = await control.request("unlock", pin="1234")
            assert wrong["code"] == "refused"
            assert wrong["error"] == "wrong PIN"
            assert (await control.request("unlock", pin="4711"))["ok"]
            assert (await control.request("manual", on=True))["result"] == {"manual": True}
            assert (await control.request("manual", on=False))["ok"]
        async with Control(daemon.socket, client="console") as control:
            # The PIN holds for one session only, and `unitmode manual` is manual mode.
            assert (await control.request("manual", on=True))["code"] == "pin_required"
            locked = await control.request("unitmode", mode="manual")
            assert locked["code"] == "pin_required"
            maintenance = await control.request("unitmode", mode="maintenance")
            assert maintenance["result"] == {"unit_mode": "maintenance", "manual": False}
            status = (await control.request("status"))["result"]
            assert (status["unit_mode"], status["UnitModeCurrent"]) == ("maintenance", 2)
        async with Control(daemon.socket, client="cli") as control:
            # manual mode needs someone at the unit, PIN or not
            remote = await control.request("unitmode", mode="manual")
            assert remote["code"] == "refused"
            assert "console only" in remote["error"]
    finally:
        assert daemon.terminate() == 0


async def test_only_the_listed_users_may_act_as_the_console(tmp_path: Path) -> None:
    config = tmp_path / "unit.toml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    config.write_text(
        text.replace("[console]\n", '[console]\nusers = ["fieldtech"]\n', 1), encoding="utf-8"
    )
    daemon = Daemon(tmp_path, args=("--config", str(config)))
    await daemon.start()
    try:
        async with Control(daemon.socket) as control:
            refused = await control.request("identify", client="console", user="root")
            assert refused["code"] == "refused"
            assert "fieldtech" in refused["error"]
            assert (await control.request("manual", on=True))["code"] == "refused"
            # Anyone on the socket may still read and give the operating commands.
            assert (await control.request("reset"))["ok"]
    finally:
        assert daemon.terminate() == 0


async def test_says_whether_the_clock_is_synchronised_and_alarms_while_it_is_not(
    tmp_path: Path,
) -> None:
    flag = tmp_path / "timesync" / "synchronized"
    config = tmp_path / "unit.toml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    section = f'synchronized_flag = "{flag}"\nrequire_sync = true\ncheck_every_s = 0.1\n'
    shipped = 'synchronized_flag = "/run/systemd/timesync/synchronized"\n'
    assert shipped in text
    config.write_text(text.replace(shipped, section, 1), encoding="utf-8")
    daemon = Daemon(tmp_path, args=("--config", str(config)))
    await daemon.start()
    try:
        async with Control(daemon.socket) as control:
            status = await control.until(lambda s: s["state"] is not None, what="scanning")
            assert status["clock_synchronized"] is False
            alarms = (await control.request("alarms"))["result"]["alarms"]
            clock = [a for a in alarms if a["id"] == "clock_not_synchronized"]
            assert [a["priority"] for a in clock] == ["low"]
            flag.parent.mkdir()
            flag.touch()  # what systemd-timesyncd does once it has synchronised
            await control.until(lambda s: s["clock_synchronized"] is True, what="synchronised")
            alarms = (await control.request("alarms"))["result"]["alarms"]
            clock = [a for a in alarms if a["id"] == "clock_not_synchronized"]
            # Returned to normal; it stays listed until someone acknowledges it (ISA-18.2).
            assert [a["state"] for a in clock] == ["unack_returned"], alarms
    finally:
        assert daemon.terminate() == 0


async def test_leaves_nothing_readable_by_others_even_under_a_lax_umask(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    # What an earlier release left behind: a state directory and a file anyone could read.
    daemon.state.mkdir(mode=0o755)
    (daemon.state / "journal.sqlite3-old").write_bytes(b"")
    (daemon.state / "journal.sqlite3-old").chmod(0o644)
    old = os.umask(0o022)  # inherited by the daemon: what a hand start often has
    try:
        await daemon.start()
    finally:
        os.umask(old)
    try:
        async with Control(daemon.socket) as control:
            await control.until(lambda s: s["state"] is not None, what="scanning")
    finally:
        assert daemon.terminate() == 0
    made = [daemon.state, daemon.runtime, *daemon.state.rglob("*"), *daemon.runtime.rglob("*")]
    assert any(p.name == "journal.sqlite3" for p in made)
    readable = {
        str(p): oct(stat.S_IMODE(p.lstat().st_mode))
        for p in made
        if p.lstat().st_mode & stat.S_IROTH or (not p.is_dir() and p.lstat().st_mode & 0o007)
    }
    assert readable == {}
    # Whatever the umask it was started with: its directory 0750, its files 0640.
    assert stat.S_IMODE(daemon.state.stat().st_mode) == 0o750
    files = [p for p in daemon.state.rglob("*") if p.is_file() and p.name != "journal.sqlite3-old"]
    assert files
    assert {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {
        str(p): oct(0o640) for p in files
    }


async def test_without_a_config_it_says_it_runs_the_simulator_and_under_systemd_refuses(
    tmp_path: Path,
) -> None:
    daemon = Daemon(tmp_path / "hand")
    await daemon.start()
    assert daemon.terminate() == 0
    assert "no --config: running the simulator's example" in daemon.log.read_text()
    # Under systemd the config directory is the unit's: no unit.toml there, no start.
    empty = tmp_path / "etc"
    empty.mkdir()
    systemd = Daemon(tmp_path / "unit", env={"CONFIGURATION_DIRECTORY": str(empty)})
    systemd.spawn()
    assert systemd.proc is not None
    assert systemd.proc.wait(30) == 2
    assert f"{empty / 'unit.toml'}: no such file" in systemd.log.read_text()


async def test_a_stopped_process_raises_scan_stall_with_its_length_once_it_runs_again(
    tmp_path: Path,
) -> None:
    config = tmp_path / "unit.toml"
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    config.write_text(text.replace("[unit]\n", "[unit]\nstall_alarm_s = 1.0\n", 1))
    daemon = Daemon(tmp_path, args=("--config", str(config)))
    await daemon.start()
    try:
        assert daemon.proc is not None
        async with Control(daemon.socket) as control:
            before = (await control.until(lambda s: s["state"] is not None, what="scanning"))[
                "alarms_active"
            ]
            daemon.proc.send_signal(signal.SIGSTOP)
            await asyncio.sleep(2.5)  # the stall itself: real time the process does not run
            daemon.proc.send_signal(signal.SIGCONT)
            found: list[dict[str, Any]] = []
            async with asyncio.timeout(WAIT_S):
                while not found:  # other alarms may come first on a loaded machine
                    await control.until(lambda s: s["alarms_active"] > before, what="an alarm")
                    alarms = (await control.request("alarms"))["result"]["alarms"]
                    found = [a for a in alarms if a["id"] == "scan_stall"]
        seconds = float(found[0]["message"].split("still for ")[1].split(" s")[0])
        assert 1.5 <= seconds < 30, found
        assert found[0]["priority"] == "medium"
    finally:
        assert daemon.terminate() == 0


def test_under_the_service_the_console_group_is_left_to_its_exec_start_post() -> None:
    # Found by an installer: the service may not chown (~@privileged), so a `[console] group`
    # that check-config passed stopped the service for good (exit 2, never restarted).
    from unit_controller.daemon.daemon import socket_group

    assert socket_group("daemon", {}) == "daemon"  # a daemon run by hand gives it itself
    assert socket_group(None, {"RUNTIME_DIRECTORY": "/run/unit-controller"}) is None
    assert socket_group("daemon", {"RUNTIME_DIRECTORY": "/run/unit-controller"}) is None
