"""Requests of the field tech at the console: manual mode (jog, heater), the unit mode, local or
remote authority, and work outside a batch (calibration)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from hal.log import get_logger
from hal.wiring import LevelPoint
from unit_controller.authority import Authority, parse_authority
from unit_controller.controller.core import ControllerCore
from unit_controller.controller.snapshot import ABORT_ONLY
from unit_controller.errors import CommandRefused
from unit_controller.machine import UnitMode
from unit_controller.manual import refuse_during_batch
from unit_controller.permissives import blocking_trips

log = get_logger(__name__)


class ManualRequests(ControllerCore):
    """Manual mode, the unit modes and console work outside a batch (calibration)."""

    # --- manual mode (console only; DESIGN §9 field techs) --------------------------------
    # Manual outputs are computed whole each scan like the recipe's and go through the same
    # safety filter. A trip that forces a manual output off cancels that action (nothing
    # resumes by itself, as a held batch needs an unhold); an abort or a stop cancels all of
    # them. Manual mode itself stays on, so the console shows why, until `manual off`.

    @property
    def manual(self) -> bool:
        """True while manual mode is on."""
        return self._manual.on

    def manual_running(self) -> list[str]:
        """A line for each manual action running now (a jog, a heater run)."""
        return self._manual.running()

    def manual_cylinder_pumps(self) -> frozenset[str]:
        """Pumps jogging into a measuring cylinder now, not into the reactor."""
        return self._manual.cylinder_pumps()

    def cylinder_run_ml(self, tag: str) -> float | None:
        """mL the pump's last run delivered when that was a whole jog into a measuring
        cylinder not yet calibrated against, else None."""
        return self._manual.cylinder_runs.get(tag)

    def calibrated_against(self, tag: str) -> None:
        """The pump's cylinder run has been calibrated against: not again."""
        self._manual.cylinder_runs.pop(tag, None)

    def manual_last_stop(self) -> str | None:
        """Why the last manual action ended early (a trip, a lost permissive), or None."""
        return self._manual.last_stop

    def manual_status(self) -> dict[str, object]:
        """Manual mode for the console: on/off, each action's progress, the last early stop."""
        return self._manual.status(now=self.clock.monotonic())

    async def set_manual(self, on: bool, *, source: str) -> list[str]:
        """Turn manual mode on (only with no batch under way) or off (always: stops everything);
        off returns the unit to the mode it leaves for: production. Returns what it stopped."""
        stopped: list[str] = []
        async with self._turn():
            if on == self._manual.on:
                return stopped
            if on:
                refuse_during_batch(self.machine.state, what="go to manual")
                self._modes.change(UnitMode.MANUAL, state=self.machine.state)
                log.info("manual.on", source=source, state=str(self.machine.state))
                self._emit_console("manual", "manual on", source, on=True)
            else:
                stopped = self._modes.change(UnitMode.PRODUCTION, state=self.machine.state)
                log.info("manual.off", source=source, stopped=stopped)
                self._emit_console("manual", "manual off", source, on=False, stopped=tuple(stopped))
            self._flush_events()
        return stopped

    @property
    def authority(self) -> Authority:
        """Where operating commands may come from now: local (the console) or remote too."""
        return self._authority

    async def set_authority(self, mode: Authority | str, *, source: str) -> Authority:
        """Set local or remote (someone at the unit does this, at the console)."""
        wanted = parse_authority(mode)
        async with self._turn():
            aborts = blocking_trips(self._trips, actions=ABORT_ONLY)
            if wanted is Authority.REMOTE and aborts:
                # An E-stop still pressed (a cause of an abort still there): handing the unit
                # to the fleet now would let it reset and restart what someone stopped at the
                # unit (DESIGN §5).
                raise CommandRefused(
                    f"remote is refused while {', '.join(aborts)} stands: the cause of an abort "
                    "is still there (set remote once it is gone)"
                )
            self._change_authority(wanted, source=source)
            self._flush_events()
            return wanted

    @property
    def unit_mode(self) -> UnitMode:
        """The PackML unit mode now."""
        return self._modes.mode

    async def set_unit_mode(self, mode: UnitMode | str, *, source: str) -> UnitMode:
        """Go to a unit mode; out of production only with no batch under way. Leaving Manual
        stops every manual action."""
        try:
            wanted = UnitMode(str(mode).strip().lower())
        except ValueError:
            raise CommandRefused(
                f"unknown unit mode {mode!r}; modes are {', '.join(m.value for m in UnitMode)}"
            ) from None
        async with self._turn():
            old = self._modes.mode
            stopped = self._modes.change(wanted, state=self.machine.state)
            self.mode_change_stopped = list(stopped)
            if wanted is not old:
                log.info("unit_mode.changed", old=str(old), new=str(wanted), source=source)
                self._emit_console(
                    "unitmode",
                    f"unit mode {old} -> {wanted}",
                    source,
                    old=str(old),
                    new=str(wanted),
                    stopped=tuple(stopped),
                )
                self._flush_events()
            return wanted

    async def jog_pump(
        self, tag: str, ml: float, *, source: str, cylinder: bool = False
    ) -> dict[str, float | str]:
        """Dose `ml` mL on pump `tag` at its full rate (manual only); it stops by itself.
        Into the reactor it needs liquid over the low switch and runs the agitator; with
        `cylinder` it doses out of the reactor into a measuring cylinder (pump calibration)."""
        async with self._turn():
            image = self.snapshot.image if self.snapshot is not None else None
            jog = self._manual.jog(
                tag,
                ml,
                trips=self.alarms.in_effect(),
                low_level_wet=image.wet(LevelPoint.LOW) if image is not None else None,
                cylinder=cylinder,
            )
            seconds = jog.ml / jog.max_ml_min * 60.0
            log.info("manual.jog", source=source, pump=jog.tag, ml=jog.ml, s=round(seconds, 1))
            where = "" if jog.into_reactor else " into a cylinder"
            self._emit_console(
                "jog", f"jog {jog.tag} {jog.ml:g} mL{where}", source, pump=jog.tag, ml=jog.ml
            )
            self._flush_events()
            result: dict[str, float | str] = {
                "pump": jog.tag,
                "ml": jog.ml,
                "ml_min": jog.max_ml_min,
                "seconds": seconds,
            }
            # A trip that aborts but forces no pump (a high-high) lets the jog run: taken
            # knowingly, so the tech is told it stands.
            standing = blocking_trips(self.alarms.in_effect(), actions=ABORT_ONLY)
            if standing:
                result["standing"] = ", ".join(standing)
            return result

    async def manual_heater(
        self, percent: float, seconds: float, *, source: str
    ) -> dict[str, float]:
        """Heater at `percent` duty for `seconds` (manual only; 0 % stops it); still interlocked."""
        async with self._turn():
            image = self.snapshot.image if self.snapshot is not None else None
            temperature = image.temperature if image is not None else None
            run = self._manual.run_heater(
                percent,
                seconds,
                now=self.clock.monotonic(),
                trips=self.alarms.in_effect(),
                temperature_c=temperature.value if temperature and temperature.good else None,
                wet=[p for p in LevelPoint if image is not None and image.wet(p)],
            )
            seconds = run.seconds if run is not None else 0.0
            log.info("manual.heater", source=source, percent=percent, s=seconds)
            text = f"heater {percent:g} % for {seconds:g} s" if run else "heater off"
            self._emit_console("heater", text, source, percent=percent, seconds=seconds)
            self._flush_events()
            return {"percent": percent, "seconds": seconds}

    async def manual_drain(self, seconds: float, *, source: str) -> dict[str, float]:
        """Drain valve open for `seconds` (manual only; 0 closes it): to empty the reactor after
        an abort or a test. Still interlocked."""
        async with self._turn():
            run = self._manual.open_drain(
                seconds, now=self.clock.monotonic(), trips=self.alarms.in_effect()
            )
            seconds = run.seconds if run is not None else 0.0
            log.info("manual.drain", source=source, s=seconds)
            text = f"drain open for {seconds:g} s" if run else "drain closed"
            self._emit_console("drain", text, source, seconds=seconds)
            self._flush_events()
            return {"seconds": seconds}

    async def take_probe_out(self, who: str | None) -> None:
        """The pH probe goes into a buffer for a guided calibration by `who` (starts are
        refused until it is back), or, with None, it is back."""
        async with self._turn():
            if who is not None:
                refuse_during_batch(
                    self.machine.state, what=f"calibrate the pH probe {self.board.ph.tag}"
                )
            self._probe_out = who

    @property
    def probe_out(self) -> str | None:
        """Who has the pH probe out for a guided calibration, or None."""
        return self._probe_out

    @contextlib.asynccontextmanager
    async def outside_batch(self, what: str) -> AsyncIterator[None]:
        """Run `what` (a calibration) with no batch under way; PackML commands but stop and abort
        are refused until it is done.

        The lock is not held while `what` runs (a device may take seconds): scans go on.
        """
        async with self._turn():
            refuse_during_batch(self.machine.state, what=what)
            if self._busy is not None:
                raise CommandRefused(f"cannot {what}: {self._busy} is in progress")
            self._busy = what
        try:
            yield
        finally:
            self._busy = None
