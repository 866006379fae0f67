"""What one scan saw and did, and the states that matter to the command model."""

from __future__ import annotations

from dataclasses import dataclass

from hal.outputs import Outputs
from unit_controller.authority import Authority
from unit_controller.batch.phase_runner import PhaseProgress, PhaseTargets
from unit_controller.interlocks import TripAction
from unit_controller.machine import State, UnitMode
from unit_controller.process_image import ProcessImage

SCAN_FAILED = "scan_failed"

# States in which a batch is under way and the process may have outputs on; everywhere else
# the safety filter forces all off.
PROCESS_STATES = frozenset(
    {
        State.EXECUTE,
        State.HOLDING,
        State.HELD,
        State.UNHOLDING,
        State.SUSPENDING,
        State.SUSPENDED,
        State.UNSUSPENDING,
    }
)
# States in which the phase pauses: keep temperature safe, stop dosing, feeds, fill and drain.
PAUSED_STATES = PROCESS_STATES - {State.EXECUTE}
HOLD_OR_ABORT = frozenset({TripAction.HOLD, TripAction.ABORT})
ABORT_ONLY = frozenset({TripAction.ABORT})
PHASE_TIMEOUT = "phase_timeout"
PH_OVERSHOOT = "ph_overshoot"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one scan saw and did: for progress, telemetry and console watchers."""

    at: float
    state: State
    state_no: int
    phase: str | None
    recipe: str | None
    image: ProcessImage
    targets: PhaseTargets
    outputs: Outputs
    heater_duty: float
    awaiting_confirmation: str | None
    manual: bool = False
    unit_mode: UnitMode = UnitMode.PRODUCTION
    authority: Authority = Authority.LOCAL
    progress: PhaseProgress | None = None  # within a batch under way
