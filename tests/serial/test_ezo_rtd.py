"""EZO-RTD driver against the emulator on a real pty: readings, bad answers, silence, unplugging.

The reading must match the simulated probe, go stale (never wrong) when reads fail, and say
"device lost" once the circuit has not answered past its limit; it recovers when it comes back.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from hal.mock.devices import RTD_OPEN_CIRCUIT_C
from hal.reading import BadReason
from tests.serial.conftest import RtdRig


def _events(logs: list[MutableMapping[str, Any]]) -> list[object]:
    return [entry["event"] for entry in logs]


def _freeze(rig: RtdRig) -> float:
    """Hold the probe's output so the driver's reading can be compared exactly."""
    rig.unit.rtd.model.stuck = True
    rig.unit.rtd.resample(rig.unit.plant.temperature_c)
    value = rig.unit.rtd.latest().value
    assert value is not None
    return value


async def _fresh_reading(rig: RtdRig, *, after: float, within_s: float = 30.0) -> None:
    await rig.until(
        lambda: rig.driver.latest().good and rig.driver.latest().at > after,
        within_s=within_s,
        what="a fresh reading",
    )


async def test_reading_matches_the_simulated_probe(rtd_rig: RtdRig) -> None:
    value = _freeze(rtd_rig)
    await _fresh_reading(rtd_rig, after=rtd_rig.clock.monotonic())
    assert rtd_rig.driver.latest().value == pytest.approx(value, abs=1e-9)


async def test_continuous_mode_is_turned_off_first_and_its_lines_are_ignored(
    rtd_rig: RtdRig,
) -> None:
    assert rtd_rig.emulator.commands[:2] == ["C,0", "*OK,1"]
    assert not rtd_rig.emulator.continuous
    value = _freeze(rtd_rig)
    # Continuous mode back on behind the driver's back: stray lines between and inside replies.
    rtd_rig.emulator.continuous = True
    for _ in range(3):
        await _fresh_reading(rtd_rig, after=rtd_rig.clock.monotonic())
        assert rtd_rig.driver.latest().value == pytest.approx(value, abs=1e-9)


async def test_an_error_answer_is_retried_and_the_reading_carries_on(rtd_rig: RtdRig) -> None:
    reads_before = len(rtd_rig.sent("R"))
    rtd_rig.emulator.error_next(2)
    with capture_logs() as logs:
        await rtd_rig.until(
            lambda: rtd_rig.emulator.pending_errors == 0, within_s=30.0, what="errors sent"
        )
        await _fresh_reading(rtd_rig, after=rtd_rig.clock.monotonic())
    assert "ezo.error" in _events(logs)
    assert len(rtd_rig.sent("R")) >= reads_before + 3


async def test_errors_without_end_make_the_reading_bad_naming_them_but_not_the_device_lost(
    rtd_rig: RtdRig,
) -> None:
    rtd_rig.emulator.error_next(10_000)
    # Once the circuit answers *ER, the read before it has been taken in.
    await rtd_rig.until(
        lambda: rtd_rig.emulator.pending_errors < 10_000, within_s=30.0, what="errors begin"
    )
    last_good = rtd_rig.driver.latest().at
    await rtd_rig.until(
        lambda: rtd_rig.driver.latest().age(rtd_rig.clock.monotonic()) > 2 * 5.0,
        within_s=40.0,
        what="reading stale",
    )
    latest = rtd_rig.driver.latest()
    assert latest.at == last_good  # stamped with the last sample it gave
    # It answers (*ER): not lost, and the reading says what it answers instead.
    assert latest.reason is BadReason.DEVICE_ERROR
    assert "the circuit answered *ER to R, 3 tries in a row; last reading" in (latest.why or "")
    rtd_rig.emulator.error_next(0)
    await _fresh_reading(rtd_rig, after=last_good)
    assert rtd_rig.driver.latest().good


async def test_garbage_is_retried_and_the_reading_recovers(rtd_rig: RtdRig) -> None:
    value = _freeze(rtd_rig)
    rtd_rig.emulator.garbage(40)
    with capture_logs() as logs:
        await rtd_rig.until(
            lambda: rtd_rig.emulator.pending_garbage == 0, within_s=40.0, what="garbage sent"
        )
        await _fresh_reading(rtd_rig, after=rtd_rig.clock.monotonic())
    assert "ezo.garbage" in _events(logs)
    assert rtd_rig.driver.latest().value == pytest.approx(value, abs=1e-9)


async def test_a_circuit_that_answers_only_garbage_is_lost_for_garbled_replies(
    rtd_rig: RtdRig,
) -> None:
    rtd_rig.emulator.garbage(1_000_000)
    await rtd_rig.until(
        lambda: "device_lost" in (rtd_rig.driver.latest().why or ""),
        within_s=30.0,
        what="device lost",
    )
    why = rtd_rig.driver.latest().why or ""
    assert "(its limit 15 s): garbled replies on " in why
    assert why.endswith("usb-ezo-rtd-TT-101")


async def test_silence_past_the_lost_limit_reads_device_lost_then_recovers(
    rtd_rig: RtdRig,
) -> None:
    with capture_logs() as logs:
        rtd_rig.emulator.silent(True)
        last_answer = rtd_rig.driver.latest().at
        await rtd_rig.until(
            lambda: not rtd_rig.driver.latest().good, within_s=30.0, what="device lost"
        )
        assert rtd_rig.clock.monotonic() - last_answer >= 15.0  # not before the lost limit
        reason = rtd_rig.driver.latest().why or ""
        assert "device_lost" in reason
        assert "(its limit 15 s): no response" in reason, reason
        rtd_rig.emulator.silent(False)
        await _fresh_reading(rtd_rig, after=rtd_rig.clock.monotonic(), within_s=40.0)
    assert {"ezo.timeout", "device.lost", "device.back"} <= set(_events(logs))


async def test_a_circuit_that_keeps_failing_is_logged_once_until_it_answers_again(
    rtd_rig: RtdRig,
) -> None:
    # A dead probe answered *ER every read and wrote a warning a second, all weekend.
    with capture_logs() as logs:
        rtd_rig.emulator.error_next(10_000)
        start = rtd_rig.clock.monotonic()
        await rtd_rig.until(
            lambda: rtd_rig.clock.monotonic() > start + 60.0, within_s=70.0, what="a minute"
        )
        assert rtd_rig.emulator.pending_errors < 10_000 - 20  # it kept asking
        assert _events(logs).count("ezo.error") == 1
        rtd_rig.emulator.error_next(0)
        await _fresh_reading(rtd_rig, after=rtd_rig.clock.monotonic())
        rtd_rig.emulator.error_next(3)
        await rtd_rig.until(
            lambda: _events(logs).count("ezo.error") == 2, within_s=10.0, what="logged again"
        )


async def test_a_circuit_that_answers_garbage_for_minutes_is_logged_once_for_each_complaint(
    rtd_rig: RtdRig,
) -> None:
    # Every failed read wrote ezo.read_failed, one every few seconds for as long as it lasted.
    with capture_logs() as logs:
        rtd_rig.emulator.garbage(100_000)
        start = rtd_rig.clock.monotonic()
        await rtd_rig.until(
            lambda: rtd_rig.clock.monotonic() > start + 120.0, within_s=130.0, what="2 minutes"
        )
        assert rtd_rig.emulator.pending_garbage > 0  # it kept garbling throughout
    events = _events(logs)
    assert events.count("ezo.read_failed") == 1, events
    assert events.count("ezo.garbage") == 1, events


async def test_unplug_reads_bad_and_replug_reconnects_and_reads_again(rtd_rig: RtdRig) -> None:
    with capture_logs() as logs:
        rtd_rig.port.unplug()
        await rtd_rig.until(
            lambda: "device_lost" in (rtd_rig.driver.latest().why or ""),
            within_s=30.0,
            what="device lost",
        )
        # A port that will not open is not a silent circuit: the reading says which.
        assert "(its limit 15 s): port not open (" in (rtd_rig.driver.latest().why or "")
        rtd_rig.port.replug()
        await _fresh_reading(rtd_rig, after=rtd_rig.clock.monotonic(), within_s=40.0)
    events = _events(logs)
    assert events.index("ezo.port_lost") < events.index("ezo.reconnected")
    assert rtd_rig.sent("C,0")[1:], "the circuit is set up again after reconnecting"


async def test_brownout_reinitialises_the_circuit_and_reading_goes_on(rtd_rig: RtdRig) -> None:
    generation = rtd_rig.driver.link.generation
    rtd_rig.emulator.brownout()
    await rtd_rig.until(
        lambda: rtd_rig.driver.link.generation > generation, within_s=30.0, what="re-initialised"
    )
    assert not rtd_rig.emulator.continuous
    assert len(rtd_rig.sent("C,0")) == 2
    await _fresh_reading(rtd_rig, after=rtd_rig.clock.monotonic())


async def test_an_unannounced_reboot_is_found_by_status(rtd_rig: RtdRig) -> None:
    generation = rtd_rig.driver.link.generation
    rtd_rig.emulator.brownout(announce=False)
    status = await rtd_rig.driver.call(rtd_rig.driver.link.status, timeout_s=30.0)
    assert status.restart_reason == "B"
    await rtd_rig.until(
        lambda: rtd_rig.driver.link.generation > generation, within_s=30.0, what="re-initialised"
    )
    assert not rtd_rig.emulator.continuous


async def test_open_circuit_probe_reports_what_the_circuit_sends(rtd_rig: RtdRig) -> None:
    rtd_rig.unit.rtd.open_circuit = True
    await rtd_rig.until(
        lambda: rtd_rig.driver.latest().value == RTD_OPEN_CIRCUIT_C,
        within_s=30.0,
        what="-1023 from the circuit",
    )


async def test_a_stopped_driver_closes_its_port_and_says_nothing_when_the_circuit_goes(
    rtd_rig: RtdRig,
) -> None:
    await _fresh_reading(rtd_rig, after=rtd_rig.clock.monotonic())
    assert rtd_rig.driver.link.connected
    task = rtd_rig.tasks.pop()  # the driver's
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not rtd_rig.driver.link.connected
    with capture_logs() as logs:
        await rtd_rig.emulator.stop()  # a stopped unit's instruments go away: no news
        await rtd_rig.clock.sleep(1.0)
    assert "ezo.port_lost" not in _events(logs)


async def test_an_unplugged_port_is_closed_once_with_no_stray_task_error(rtd_rig: RtdRig) -> None:
    # The transport closed itself on the read error; aborting it again scheduled a second
    # connection_lost on a protocol already gone ("Task exception was never retrieved").
    loop = asyncio.get_running_loop()
    errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: errors.append(context))
    try:
        rtd_rig.port.unplug()
        await rtd_rig.until(
            lambda: "device_lost" in (rtd_rig.driver.latest().why or ""),
            within_s=30.0,
            what="device lost",
        )
        for _ in range(5):  # let the closing tasks finish, then collect what failed
            await asyncio.sleep(0)
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert errors == []


async def test_a_ph_circuit_on_the_rtd_port_is_never_read_as_a_temperature(tmp_path: Path) -> None:
    # Ports swapped: the pH circuit's 7.0 was shown as a good 7.0 °C, and manual mode and the
    # interlocks used it. The circuit's `i` says what it is; the commissioning survey checked
    # it, the daemon did not.
    from tests.serial.conftest import _ph_emulator, ezo_rig, make_rtd

    async with ezo_rig(tmp_path, "usb-ezo-ph-on-rtd", _ph_emulator, make_rtd) as rig:
        await rig.until(
            lambda: rig.driver.latest().reason is BadReason.DEVICE_LOST,
            within_s=60.0,
            what="the device judged lost",
        )
        assert "answers as EZO-pH, the config says EZO-RTD: wrong port?" in (
            rig.driver.latest().detail or ""
        )
        assert not rig.sent("R")  # never read as what it is not


async def test_a_circuit_left_in_fahrenheit_is_set_back_to_celsius(rtd_rig: RtdRig) -> None:
    # The scale survives power-off: a circuit set to °F read a 20 °C reactor as "68 °C".
    rtd_rig.emulator.scale = "f"
    value = _freeze(rtd_rig)
    rtd_rig.emulator.brownout()  # started up again, as after any restart
    with capture_logs() as logs:
        await rtd_rig.until(
            lambda: rtd_rig.emulator.scale == "c", within_s=30.0, what="the scale set to °C"
        )
        await _fresh_reading(rtd_rig, after=rtd_rig.clock.monotonic())
    assert rtd_rig.driver.latest().value == pytest.approx(value, abs=1e-9)
    assert [e["was"] for e in logs if e["event"] == "ezo.rtd_scale_set"] == ["F"]


async def test_a_scale_query_unanswered_after_a_restart_is_asked_again_before_any_reading(
    rtd_rig: RtdRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by a controls engineer: the set-up after a restart was marked done before it ran;
    # one timeout on S,? and a circuit left at °F was read as °C, flagged good, for good.
    from hal.sim.emulators.ezo import EzoRtdEmulator

    answer = EzoRtdEmulator._handle
    swallowed: list[str] = []

    async def once_silent(self: EzoRtdEmulator, text: str) -> list[str]:
        if text.upper() == "S,?" and not swallowed:
            swallowed.append(text)
            self.silent(True)  # this reply is lost; the circuit answers again a little later

            async def back() -> None:
                await self.clock.sleep(3.0)
                self.silent(False)

            asyncio.get_running_loop().create_task(back())
            return []
        return await answer(self, text)

    monkeypatch.setattr(EzoRtdEmulator, "_handle", once_silent)
    rtd_rig.emulator.scale = "f"
    value = _freeze(rtd_rig)
    rtd_rig.emulator.brownout()
    seen: set[float] = set()

    def set_to_celsius() -> bool:
        latest = rtd_rig.driver.latest()
        if latest.good and latest.value is not None:
            seen.add(round(latest.value, 3))
        return rtd_rig.emulator.scale == "c"

    await rtd_rig.until(set_to_celsius, within_s=60.0, what="the scale set to °C")
    await _fresh_reading(rtd_rig, after=rtd_rig.clock.monotonic())
    assert swallowed
    assert rtd_rig.driver.latest().value == pytest.approx(value, abs=1e-9)
    assert seen <= {round(value, 3)}  # never a °F number taken as °C


async def test_commission_warns_of_a_circuit_not_in_celsius(tmp_path: Path) -> None:
    from tests.serial.conftest import _rtd_emulator, ezo_rig, make_rtd
    from unit_controller.commissioning.survey import _ezo
    from unit_controller.config import load_config

    config = load_config()
    async with ezo_rig(tmp_path, "usb-ezo-rtd-f", _rtd_emulator, make_rtd, start=False) as rig:
        rig.emulator.scale = "f"
        wiring = config.wiring.rtd().model_copy(update={"port": rig.port.path})
        report = await _ezo("TT-101", "RTD", wiring, config, rig.clock, None, tmp_path)
    assert report.found
    assert report.warnings[0].startswith("reads in F, not °C: the controller sets it to °C")
    assert report.reading is not None
    assert report.reading.endswith(" F")


async def test_commission_names_a_port_another_process_holds(tmp_path: Path) -> None:
    # With the daemon running, every circuit was "NOT FOUND ... no answer within 8 s": the
    # port's lock, the reason, was never said.
    import serial  # type: ignore[import-untyped]

    from tests.serial.conftest import _rtd_emulator, ezo_rig, make_rtd
    from unit_controller.commissioning.survey import _ezo
    from unit_controller.config import load_config

    config = load_config()
    async with ezo_rig(tmp_path, "usb-ezo-rtd-held", _rtd_emulator, make_rtd, start=False) as rig:
        holder = serial.Serial(rig.port.path, exclusive=True)
        try:
            wiring = config.wiring.rtd().model_copy(update={"port": rig.port.path})
            report = await _ezo("TT-101", "RTD", wiring, config, rig.clock, None, tmp_path)
        finally:
            holder.close()
    assert not report.found
    assert report.problems[0].startswith(f"cannot open {rig.port.path}: ")
    assert "lock" in report.problems[0]
    assert "is the unit-controller service running?" in report.problems[0]


async def test_a_firmware_that_refuses_the_scale_query_still_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # *ER to S,? must not fail every start-up: such a circuit reads °C, its default.
    from hal.sim.emulators.ezo import EzoRtdEmulator
    from hal.sim.emulators.ezo_circuit import Refuse
    from tests.serial.conftest import _rtd_emulator, ezo_rig, make_rtd

    answer = EzoRtdEmulator._handle

    async def no_scale(self: EzoRtdEmulator, text: str) -> list[str]:
        if text.upper().startswith("S,"):
            raise Refuse
        return await answer(self, text)

    monkeypatch.setattr(EzoRtdEmulator, "_handle", no_scale)
    async with ezo_rig(tmp_path, "usb-ezo-rtd-old", _rtd_emulator, make_rtd) as rig:
        with capture_logs() as logs:
            await rig.until(lambda: rig.driver.latest().good, within_s=30.0, what="a reading")
    assert "ezo.rtd_scale_unknown" in _events(logs)


async def test_a_circuit_refusing_its_start_up_is_lost_saying_so_not_silent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Found by a controls engineer: *ER to *OK,1 at every start-up read "no response".
    from hal.sim.emulators.ezo import EzoRtdEmulator
    from hal.sim.emulators.ezo_circuit import Refuse
    from tests.serial.conftest import _rtd_emulator, ezo_rig, make_rtd

    answer = EzoRtdEmulator._handle

    async def refuse_start_up(self: EzoRtdEmulator, text: str) -> list[str]:
        if text.upper() == "*OK,1":
            raise Refuse
        return await answer(self, text)

    monkeypatch.setattr(EzoRtdEmulator, "_handle", refuse_start_up)
    async with ezo_rig(tmp_path, "usb-ezo-rtd-er", _rtd_emulator, make_rtd) as rig:
        await rig.until(
            lambda: "refused its start-up" in (rig.driver.latest().why or ""),
            within_s=60.0,
            what="lost, saying why",
        )
