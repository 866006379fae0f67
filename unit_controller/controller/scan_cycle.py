"""One scan of the six steps (DESIGN §2): snapshot, interlocks, machine, controllers, safety
filter, apply. The scan never waits on I/O."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from types import MappingProxyType

from hal.log import get_logger
from hal.outputs import Outputs
from hal.wiring import LevelPoint
from unit_controller.alarms import AlarmEvent, AlarmEventKind
from unit_controller.authority import Authority
from unit_controller.batch.phase_runner import IDLE_TARGETS, PhaseTargets
from unit_controller.batch.record import BatchRecord
from unit_controller.controller.core import ControllerCore
from unit_controller.controller.snapshot import (
    ABORT_ONLY,
    PAUSED_STATES,
    PH_OVERSHOOT,
    PHASE_TIMEOUT,
    PROCESS_STATES,
    SCAN_FAILED,
    Snapshot,
)
from unit_controller.events import AlarmTransition, PhaseStarted, PromptRaised
from unit_controller.interlocks import InterlockContext, Priority, Trip, TripAction
from unit_controller.interlocks.effects import Output, forcing
from unit_controller.interlocks.interlocks import dosing_blocker
from unit_controller.machine import Command, State
from unit_controller.manual import MANUAL_STATES
from unit_controller.permissives import blocking_trips
from unit_controller.process_image import ProcessImage
from unit_controller.recipes.model import Overshoot

log = get_logger(__name__)

# Where a trip that aborts (E-stop, high-high) takes the unit to Aborted (DESIGN §3: Abort from
# any state but Aborting/Aborted): any such trip in effect, or only one raised this scan.
_ABORTED_BY_ANY_CAUSE = PROCESS_STATES | {State.STARTING, State.COMPLETING, State.STOPPING}
_ABORTED_BY_A_NEW_CAUSE = frozenset({State.IDLE, State.RESETTING, State.COMPLETE, State.CLEARING})


class ScanCycle(ControllerCore):
    """One scan of the six steps (DESIGN §2); if anything fails, every output is written safe."""

    # --- the scan ------------------------------------------------------------------------
    async def scan(self) -> Snapshot:
        """One scan: snapshot, interlocks, machine, controllers, safety filter, apply, publish."""
        self._scanning_task = asyncio.current_task()
        try:
            async with self._lock:
                await self._apply_requests()
                snapshot = await self._scan()
        except Exception as exc:
            log.exception("scan.failed")
            self._applied = self._into_reactor = self.safe_outputs()
            self.board.apply(self._applied)
            try:
                # A tech's jog or heater run forced off here never resumes by itself at the
                # next good scan: ended, and said (a manual_stopped event).
                self._manual.cancel(SCAN_FAILED)
            except Exception:
                log.exception("scan.manual_cancel_failed")
            # Not only a log line: the unit's people see it (journal, console, fleet).
            self.alarms.raise_alarm(
                alarm_id=SCAN_FAILED,
                tag="controller",
                priority=Priority.HIGH,
                now=self.clock.monotonic(),
                message=f"a scan failed ({type(exc).__name__}: {exc}); outputs forced safe",
            )
            raise
        self.alarms.clear(SCAN_FAILED, "controller", now=snapshot.at)
        self._flush_events()
        for watcher in self._watchers:
            try:
                watcher(snapshot)
            except Exception:
                log.exception("controller.watcher_failed")
        return snapshot

    def _permitted(
        self, targets: PhaseTargets, judged: PhaseTargets, image: ProcessImage, trips: list[Trip]
    ) -> PhaseTargets:
        """`targets`, dosing nothing while a trip in effect forces the pumps off, or if they
        are new this scan (a phase, a resume, a dose that begins) and the dosing permissive
        fails for them or a cap is reached: step 2 judged the targets before, and its trip
        holds the batch only from the next scan."""
        if targets.holding or not (targets.pumps or targets.ph):
            return targets
        if forcing(trips, Output.DOSING_PUMPS):
            # The safety filter stops every pump this scan (a quiet force, ph_response_wait,
            # leaves the batch in Execute): the pH loop must not count doses that never went in.
            return replace(targets, pumps=MappingProxyType({}), holding=True)
        if targets is judged:
            return targets
        dosed = self._dosed_phase
        capped = any(dosed.get(tag, 0.0) >= cap for tag, cap in targets.caps_ml.items())
        if not capped and (
            dosing_blocker(
                image, low_tag=self._low_tag, agitator_wanted=targets.agitator, trips=trips
            )
            is None
        ):
            return targets
        # Held for this scan: the pH loop keeps what it learned and counts no dose.
        return replace(targets, pumps=MappingProxyType({}), holding=True)

    def safe_outputs(self) -> Outputs:
        """Every output at its own safe state, by the trips last in effect: the purge open on a
        charged reactor, cooling open while its high-high trip is in effect (DESIGN §5). What a
        failed scan writes, and the daemon as it starts and stops."""
        purge_open = self._purge_holds and self._charge.charged
        try:
            return self.safety.apply(
                Outputs.safe(),
                trips=self.alarms.in_effect(),
                allow_process_outputs=False,
                purge_open=purge_open,
            )
        except Exception:
            log.exception("scan.safe_outputs_failed")
            # Cooling as it was: open if a trip had it open, closed otherwise.
            return replace(
                Outputs.safe(), purge_valve=purge_open, cooling_valve=self._applied.cooling_valve
            )

    async def _scan(self) -> Snapshot:
        now = self.clock.monotonic()
        dt = 0.0 if self._last_now is None else max(0.0, now - self._last_now)
        self._last_now = now
        was_executing = self.machine.state is State.EXECUTE

        # 1 snapshot inputs
        # What went into the reactor: a jog into a measuring cylinder adds no heat of dilution
        # (the weld watch, the reaction heat), no dose and no reagent to it.
        into_reactor = self._into_reactor
        image = self._qualifier.snapshot(self.board, now=now, applied=into_reactor)
        if self.batch is not None and self.batch.end_s is None:
            self.batch.observe(
                image=image,
                targets=self._targets,
                applied=into_reactor,
                dt=dt,
                executing=was_executing,
            )
        for tag, rate in into_reactor.pumps.items():
            self._dosed_phase[tag] = self._dosed_phase.get(tag, 0.0) + rate * dt / 60.0
        self._manual.account(applied=self._applied, dt=dt, now=now)

        # 2 interlocks -> alarms (latched) -> trips in effect -> PackML
        self._trips = self.interlocks.evaluate(image, self._context())
        raised = self._record_alarms(self.alarms.update(self._trips, now))
        await self._act_on_trips(self.alarms.in_effect(), raised=raised)

        # 3 machine and recipe
        judged = self._targets  # what step 2's interlocks judged (permissives, caps)
        await self._step_machine(image, dt, was_executing=was_executing)
        state = self.machine.state
        if state is not State.EXECUTE:
            # Held (or stopped) while a prompt waited: nobody can confirm it now, and what was
            # shown is gone. Back in Execute it is asked again, not waited on unannounced.
            self._prompted = None
        if self.runner is not None and state in PROCESS_STATES:
            self._targets = self.runner.targets(holding=state in PAUSED_STATES)
        else:
            self._targets = IDLE_TARGETS

        # 4 controllers (in manual mode: the tech's jogs and heater run, nothing else)
        in_effect = self.alarms.in_effect()
        manual = self._manual.on and state in MANUAL_STATES
        purge_open = self._purge_holds and self._charge.charged
        if manual and self._manual.active and raised:
            # A new abort-class trip at rest ends the tech's jogs and heater run as it ends a
            # batch: a high-high left an H2O2 jog dosing at full rate (the trip forces only
            # the heater). The tech may start them again, knowingly.
            aborts = blocking_trips([t for t in in_effect if t.key in raised], actions=ABORT_ONLY)
            if aborts:
                self._manual.cancel(", ".join(aborts))
        if manual:
            self._manual.hold_permissives(
                low_level_wet=image.wet(LevelPoint.LOW),
                agitation_forced=forcing(in_effect, Output.AGITATOR),
            )
            self._manual.limit_heater(
                image.temperature.value if image.temperature.good else None,
                [p for p in LevelPoint if image.wet(p)],
            )
            desired = self._controllers.compute_manual(
                heater_duty=self._manual.heater_duty,
                pumps=self._manual.pump_rates(),
                now=now,
                temperature_c=image.temperature.value if image.temperature.good else None,
                agitator=self._manual.agitator_wanted,
                drain=self._manual.drain_open,
            )
            # Manual work on a charged reactor keeps its blanket.
            desired = replace(desired, purge_valve=purge_open)
        else:
            if self._manual.active:  # a trip's abort took the unit out of rest
                aborts = blocking_trips(in_effect, actions=ABORT_ONLY)
                self._manual.cancel(f"{state}" + (f": {', '.join(aborts)}" if aborts else ""))
            desired = self._controllers.compute(
                self._permitted(self._targets, judged, image, in_effect), image
            )
            if purge_open and self._charge.blanket_kept and not desired.purge_valve:
                # A reactor charged before its batch started keeps its blanket whatever the
                # recipe asks (DESIGN §5): a purify started on what a stopped leach left (acid
                # over aluminium) heated it unblanketed. A recipe's own liquor is the recipe's.
                desired = replace(desired, purge_valve=True)

        # 5 safety filter: the one place outputs are forced safe
        outputs = self.safety.apply(
            desired,
            trips=in_effect,
            allow_process_outputs=state in PROCESS_STATES or manual,
            purge_open=purge_open,
            cylinder_pumps=self._manual.cylinder_pumps() if manual else frozenset(),
        )
        if manual:
            self._manual.cancel_forced(desired=desired, applied=outputs, trips=in_effect)

        # 6 apply
        self.board.apply(outputs)
        if image.temperature.good and image.temperature.value is not None:
            self.board.ph.compensate(image.temperature.value)
        self._applied = outputs
        into_cylinder = self._manual.cylinder_pumps() if manual else frozenset()
        self._into_reactor = _into_reactor(outputs, into_cylinder)
        self._charge.update(
            applied=outputs,
            image=image,
            in_process=state in PROCESS_STATES,
            into_cylinder=into_cylinder,
        )

        # 7 publish (listeners and watchers run after the return, in `scan`)
        self.snapshot = Snapshot(
            at=now,
            state=state,
            state_no=self.machine.number,
            phase=self._targets.phase,
            recipe=self.recipe.recipe.name if self.recipe else None,
            image=image,
            targets=self._targets,
            outputs=outputs,
            heater_duty=self._controllers.duty,
            awaiting_confirmation=self.awaiting_confirmation,
            manual=self._manual.on,
            unit_mode=self._modes.mode,
            authority=self._authority,
            progress=self.runner.progress()
            if self.runner is not None and state in PROCESS_STATES
            else None,
        )
        return self.snapshot

    def _context(self) -> InterlockContext:
        targets = self._targets
        ph = targets.ph_active
        # A manual heater run has no setpoint: the verifier judges it heating toward the
        # high-high limit, so a heater driven hard that does not heat still trips.
        manual_heat = self._manual.heater is not None
        return InterlockContext(
            # A batch under way, held or not: its inputs matter and their trips alarm.
            executing=self.machine.state in PROCESS_STATES,
            temperature_setpoint_c=(
                self.config.interlocks.temperature_high_high_c
                if manual_heat
                else targets.temperature_c
            ),
            heat_wanted=targets.temperature_c is not None or manual_heat,
            agitator_wanted=targets.agitator or self._manual.agitator_wanted,
            ph_setpoint=ph.setpoint if ph else None,
            ph_pump=ph.pump if ph else None,
            ph_raises=ph.raises if ph else True,
            dosed_this_phase_ml=dict(self._dosed_phase),
            cap_ml=targets.caps_ml,  # read-only already: the phase's, for every scan of it
            dosing=any(rate > 0 for rate in self._into_reactor.pumps.values()),
            # A small phase cap means a small expected dose: judge the response on half of it.
            ph_not_responding_ml=(
                min(self.config.interlocks.ph_not_responding_ml, ph.cap_ml / 2) if ph else None
            ),
            ph_tolerance=ph.tolerance if ph else 0.05,
            ph_counter=ph is not None and ph.counter_pump is not None,
            ph_overshoot_holds=ph is None or ph.on_overshoot is Overshoot.HOLD,
            reactor_dose_wanted=bool(targets.pumps) or ph is not None,
            manual_jogs=bool(self._manual.jogs),
            temperature_tolerance_c=(
                targets.tolerance_c
                if targets.temperature_c is not None and not targets.holding and not manual_heat
                else None
            ),
            phase=targets.phase,
        )

    def _record_alarms(self, events: list[AlarmEvent]) -> set[tuple[str, str]]:
        """Report alarm transitions; returns the keys raised this scan."""
        raised = set()
        for event in events:
            if event.kind is AlarmEventKind.RAISED:
                raised.add((event.alarm_id, event.tag))
                if self.batch is not None and self.batch.end_s is None:
                    self.batch.alarm_raised(
                        alarm_id=event.alarm_id,
                        tag=event.tag,
                        priority=str(event.priority),
                        now=event.at,
                        message=event.message,
                    )
            self._post(
                AlarmTransition(
                    at=self.clock.monotonic(),
                    alarm_id=event.alarm_id,
                    tag=event.tag,
                    transition=str(event.kind),
                    priority=str(event.priority),
                    state=str(event.state),
                    first_out=event.first_out,
                    message=event.message,
                )
            )
        return raised

    async def _act_on_trips(self, in_effect: list[Trip], *, raised: set[tuple[str, str]]) -> None:
        """A trip in effect takes the batch out of Execute: Abort, or Hold (DESIGN §5)."""
        aborts = [t for t in in_effect if t.action is TripAction.ABORT]
        holds = [t for t in in_effect if t.action is TripAction.HOLD]
        machine = self.machine
        state = machine.state
        if aborts and (
            state in _ABORTED_BY_ANY_CAUSE
            or (state in _ABORTED_BY_A_NEW_CAUSE and any(t.key in raised for t in aborts))
        ):
            # A new abort cause (an E-stop) aborts a unit that is running, winding down (the
            # batch ends aborted, not stopped), or ready or getting ready to run (pressed while
            # resetting, it would otherwise end up Idle). A Stopped unit has everything off and
            # keeps the latched alarm: Reset is refused while the cause stands.
            await machine.command(Command.ABORT, reason=aborts[0].alarm_id)
        if any(t.key in raised for t in aborts):
            # Someone at the unit looks at the reactor before anyone restarts it.
            self._change_authority(Authority.LOCAL, source=f"trip:{aborts[0].alarm_id}")
        elif holds and machine.allowed(Command.HOLD):
            if state is State.STARTING:
                # Held while getting under way (OPC 30050): the batch exists, waiting to go on.
                self.get_under_way(self.clock.monotonic())
            await machine.command(Command.HOLD, reason=holds[0].alarm_id)

    async def _step_machine(self, image: ProcessImage, dt: float, *, was_executing: bool) -> None:
        machine = self.machine
        state = machine.state
        runner = self.runner
        if state is State.STARTING:
            self._begin_batch(image.now)
            await machine.state_complete()
            self._phase_entered(image.now)
            return
        if state is State.EXECUTE and runner is not None:
            overshot = any(t.alarm_id == PH_OVERSHOOT for t in self._trips)
            if was_executing and runner.advance(
                image, dt=dt, applied_ml_min=self._applied.pumps, overshot=overshot
            ):
                self._clear_phase_timeout(image.now)
                if runner.done:
                    await machine.finish()
                    return
                self._phase_entered(image.now)
            self._prompt_if_needed()
            if runner.timed_out() and runner.phase is not None:
                name = runner.phase.name
                self.alarms.raise_alarm(
                    alarm_id=PHASE_TIMEOUT,
                    tag=name,
                    now=image.now,
                    priority=Priority.MEDIUM,
                    message=f"phase {name} did not finish within its timeout",
                )
                await machine.command(Command.HOLD, reason=PHASE_TIMEOUT)
            return
        if state is State.UNHOLDING and runner is not None and runner.timed_out():
            # The operator chose to go on: the phase gets another full timeout.
            runner.extend_timeout()
            self._clear_phase_timeout(image.now)
        if state in (State.COMPLETING, State.STOPPING, State.ABORTING) and self.batch is not None:
            self.batch.finish(now=image.now)
            self._clear_phase_timeout(image.now)
        if machine.is_acting:
            await machine.state_complete()

    def get_under_way(self, now: float) -> None:
        """Starting's work done at once, for a batch held before its first scan in Starting:
        the batch and its first phase exist, waiting to go on."""
        self._begin_batch(now)
        self._phase_entered(now)

    def _begin_batch(self, now: float) -> None:
        """Starting's work: the recipe's first phase, fresh controllers, a batch record."""
        assert self.runner is not None
        assert self.recipe is not None
        self.runner.begin()
        self._controllers.begin_batch()
        # A prompt asked in the last batch (stopped while it waited) is asked again in this one.
        self._prompted = None
        self.batch = BatchRecord(recipe=self.recipe.recipe.name, start_s=now)

    def _clear_phase_timeout(self, now: float) -> None:
        for alarm in self.alarms.active():
            if alarm.alarm_id == PHASE_TIMEOUT:
                self.alarms.clear(PHASE_TIMEOUT, alarm.tag, now=now)

    def _phase_entered(self, now: float) -> None:
        assert self.runner is not None
        self._dosed_phase = {}
        phase = self.runner.phase
        if phase is None:
            return
        if self.batch is not None:
            self.batch.phase_started(name=phase.name, now=now, targets=self.runner.targets())
        index = self.runner.phase_index
        assert index is not None  # a phase is under way
        self._post(PhaseStarted(at=now, phase=phase.name, index=index))

    def _prompt_if_needed(self) -> None:
        # By phase too: two phases in a row may ask the same ("Sample taken"), and the
        # second asks again.
        prompt = self.awaiting_confirmation
        if prompt is None or self.runner is None:
            self._prompted = None
            return
        asked = (self.runner.phase_index, prompt)
        if asked != self._prompted:
            self._post(PromptRaised(at=self.clock.monotonic(), prompt=prompt))
        self._prompted = asked


def _into_reactor(outputs: Outputs, into_cylinder: frozenset[str]) -> Outputs:
    """`outputs` as the reactor sees them: without the pumps dosing into a measuring cylinder."""
    if not into_cylinder or not any(tag in outputs.pumps for tag in into_cylinder):
        return outputs
    pumps = {tag: rate for tag, rate in outputs.pumps.items() if tag not in into_cylinder}
    return replace(outputs, pumps=MappingProxyType(pumps))
