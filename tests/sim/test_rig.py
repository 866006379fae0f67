"""The fleet test rig: several simulated units in one process, each a whole unit on the broker
(birth, retained status, telemetry with its own seq, its Will), on one scan tick.

Real time against a real Mosquitto; every wait is for a message, bounded generously.
"""

from __future__ import annotations

import asyncio
import resource
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.mqtt.broker import Mosquitto
from tests.mqtt.conftest import mosquitto
from tests.mqtt.recorder import Received, Recorder
from unit_controller.cli import main
from unit_controller.config import load_config, with_overrides
from unit_controller.sim import rig as rig_module
from unit_controller.sim.rig import Rig, RigError, RigOptions, ensure_descriptors, unit_ids

__all__ = ["mosquitto"]

pytestmark = pytest.mark.xdist_group("real_time")

WAIT_S = 60.0  # a loaded CI machine; a healthy run takes a few seconds


def _options(broker: Mosquitto, tmp_path: Path, units: int, **kw: object) -> RigOptions:
    config = with_overrides(load_config(), mqtt_url=broker.url)
    return RigOptions(units=units, config=config, state_dir=tmp_path / "rig", **kw)  # type: ignore[arg-type]


def _status(unit: str, payload: bytes) -> Callable[[Received], bool]:
    def matches(r: Received) -> bool:
        return r.topic == f"fleet/v2/{unit}/status" and r.payload == payload

    return matches


def test_unit_ids_are_the_prefix_and_a_padded_number() -> None:
    assert unit_ids("rig-", 3) == ["rig-0001", "rig-0002", "rig-0003"]
    assert unit_ids("t", 12345)[-1] == "t12345"


async def test_each_unit_of_the_rig_is_a_whole_unit_on_the_broker(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    units = unit_ids("rig-", 3)
    rig = Rig(_options(mosquitto, tmp_path, 3), say=lambda _: None)
    async with Recorder(mosquitto) as rec:
        running = asyncio.create_task(rig.run())
        try:
            for unit in units:
                await rec.wait_for(_status(unit, b"online"), timeout=WAIT_S)
            # Two telemetry messages from each, the batch under way.
            for unit in units:
                seen = 0

                def telemetry(r: object, u: str = unit) -> bool:
                    nonlocal seen
                    if getattr(r, "topic", "") != f"fleet/v2/{u}/telemetry":
                        return False
                    seen += 1
                    return seen >= 2

                await rec.wait_for(telemetry, timeout=WAIT_S)
        finally:
            rig.stop()
            assert await asyncio.wait_for(running, WAIT_S) == 0
        for unit in units:
            await rec.wait_for(_status(unit, b"offline"), timeout=WAIT_S)
    for unit in units:
        rows = [r.json() for r in rec.received if r.topic == f"fleet/v2/{unit}/telemetry"]
        seqs = [row["seq"] for row in rows]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing lost
        assert {row["state"] for row in rows} <= {"STARTING", "EXECUTE", "IDLE", "RESETTING"}
    assert rig.units[0].controller.machine.state.value in {"EXECUTE", "STARTING"}
    # Seeded apart: their probes' noise differs.
    readings = {u.controller.snapshot.image.ph.value for u in rig.units if u.controller.snapshot}
    assert len(readings) == 3


async def test_an_idle_rig_starts_no_batch(mosquitto: Mosquitto, tmp_path: Path) -> None:
    rig = Rig(_options(mosquitto, tmp_path, 2, recipe=None, seconds=0.5), say=lambda _: None)
    assert await asyncio.wait_for(rig.run(), WAIT_S) == 0
    assert [u.controller.machine.state.value for u in rig.units] == ["STOPPED", "STOPPED"]


def test_a_rig_without_a_broker_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(RigError, match="--mqtt"):
        Rig(RigOptions(units=1, config=load_config(), state_dir=tmp_path))


def test_too_few_open_files_allowed_is_said_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(resource, "getrlimit", lambda _: (256, 1024))
    with pytest.raises(RigError, match=r"1000 units need about 4064 open files; the hard limit"):
        ensure_descriptors(1000)
    raised: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "setrlimit", lambda _, limits: raised.append(limits))
    assert ensure_descriptors(100) == 100 * rig_module.FDS_PER_UNIT + rig_module.FDS_SPARE
    assert raised == [(464, 1024)]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["rig", "--units", "0", "--mqtt", "mqtt://127.0.0.1:1"], "units must be 1..5000"),
        (["rig", "--units", "two", "--mqtt", "mqtt://127.0.0.1:1"], "not a whole number"),
        (["rig", "--units", "2", "--mqtt", "mqtt://127.0.0.1:1", "--prefix", "a/b"], "prefix"),
        (["rig", "--units", "2", "--mqtt", "mqtt://127.0.0.1:1", "--seconds", "-1"], "above 0"),
        (["rig", "--units", "2", "--idle", "--recipe", "leach"], "not allowed with"),
    ],
)
def test_bad_rig_options_are_named_and_exit_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err


def test_a_rig_with_no_broker_named_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rig", "--units", "2", "--seconds", "1"]) == 2
    assert "--mqtt" in capsys.readouterr().err


def test_a_bad_broker_url_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rig", "--units", "2", "--mqtt", "http://x"]) == 2
    assert "mqtt" in capsys.readouterr().err


async def test_the_rig_command_stops_its_units_cleanly_on_sigterm(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with Recorder(mosquitto) as rec:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "unit_controller.cli", "rig", "--units", "2", "--idle",
            "--mqtt", mosquitto.url, "--prefix", "cli-", "--state-dir", str(tmp_path / "rig"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            first = await asyncio.wait_for(proc.stdout.readline(), WAIT_S)
            assert first.startswith(b"rig: 2 units (cli-0001..cli-0002) publishing to mqtt://")
            for unit in ("cli-0001", "cli-0002"):
                await rec.wait_for(_status(unit, b"online"), timeout=WAIT_S)
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), WAIT_S) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        for unit in ("cli-0001", "cli-0002"):
            await rec.wait_for(_status(unit, b"offline"), timeout=WAIT_S)
    assert sorted(p.name for p in (tmp_path / "rig").iterdir()) == ["cli-0001", "cli-0002"]


def test_a_missing_config_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["rig", "--units", "2", "--mqtt", "mqtt://127.0.0.1:1", "--config", "/nonexistent.toml"]
    assert main(argv) == 2
    assert "/nonexistent.toml" in capsys.readouterr().err


def test_an_unknown_recipe_is_named_before_any_unit_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "rig"
    argv = ["rig", "--units", "2", "--mqtt", "mqtt://127.0.0.1:1", "--recipe", "nosuch"]
    assert main([*argv, "--state-dir", str(state)]) == 2
    assert "no recipe named 'nosuch'" in capsys.readouterr().err
    assert not state.exists()


def test_a_state_dir_that_cannot_hold_outboxes_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    argv = ["rig", "--units", "1", "--mqtt", "mqtt://127.0.0.1:1", "--state-dir", str(blocked)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "a-file" in err


async def test_a_rig_that_falls_behind_still_hears_a_stop(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    rig = Rig(_options(mosquitto, tmp_path, 2, recipe=None), say=lambda _: None)
    rig.period_s = 0.0  # every tick late: only the wait between ticks lets the stop in

    async def stop_once_scanning() -> None:
        # Not after a fixed time: on a loaded machine the units take longer than that to start.
        while rig.scans == 0:  # noqa: ASYNC110 (the rig offers no event for its first scan)
            await asyncio.sleep(0.01)
        rig.stop()

    stopping = asyncio.create_task(stop_once_scanning())
    assert await asyncio.wait_for(rig.run(), WAIT_S) == 0
    await stopping
    assert rig.scans > 0


async def test_a_rig_stopped_before_it_started_starts_no_unit(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    rig = Rig(_options(mosquitto, tmp_path, 3), say=lambda _: None)
    rig.stop()
    assert await asyncio.wait_for(rig.run(), WAIT_S) == 0
    assert rig.units == []
