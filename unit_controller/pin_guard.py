"""Guessing the console PIN, made slow for everyone together: one check at a time, a delay per
wrong PIN, and a lockout after a run of wrong ones.

Per-session penalties do not stop an attacker who opens fifty sessions; this guard is shared
by all of them. Pure bookkeeping on a monotonic clock it is given: the caller raises the alarm.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from unit_controller.pin import verify_pin

# A wrong PIN costs this long, and no other check runs meanwhile: a typo costs a second.
WRONG_PIN_DELAY_S = 1.0


@dataclass(frozen=True, slots=True)
class PinVerdict:
    """The outcome of one PIN check."""

    ok: bool
    locked_for_s: float = 0.0  # > 0: refused unchecked (or this wrong PIN began a lockout)
    began_lockout: bool = False
    wrong_in_a_row: int = 0


class PinGuard:
    """Checks PINs against the stored hash, one at a time, with a shared lockout."""

    def __init__(
        self,
        *,
        attempts: int,
        lockout_s: float,
        monotonic: Callable[[], float],
        wrong_delay_s: float = WRONG_PIN_DELAY_S,
    ) -> None:
        self._attempts = attempts
        self._lockout_s = lockout_s
        self._monotonic = monotonic
        self._wrong_delay_s = wrong_delay_s
        self._lock = asyncio.Lock()
        self._wrong = 0
        self._locked_until = float("-inf")

    def locked_for_s(self) -> float:
        """Seconds of lockout left (0: the PIN may be tried)."""
        return max(0.0, self._locked_until - self._monotonic())

    async def check(self, pin: str, stored: str) -> PinVerdict:
        """Whether `pin` matches; refused without checking while locked out."""
        async with self._lock:
            left = self.locked_for_s()
            if left > 0.0:
                return PinVerdict(ok=False, locked_for_s=left, wrong_in_a_row=self._wrong)
            # PBKDF2 is slow on purpose: off the event loop.
            if await asyncio.to_thread(verify_pin, pin, stored):
                self._wrong = 0
                return PinVerdict(ok=True)
            self._wrong += 1
            if self._wrong >= self._attempts:
                self._locked_until = self._monotonic() + self._lockout_s
                wrong, self._wrong = self._wrong, 0
                return PinVerdict(
                    ok=False, locked_for_s=self._lockout_s, began_lockout=True, wrong_in_a_row=wrong
                )
            # Held inside the lock: every session waits behind a wrong PIN.
            await asyncio.sleep(self._wrong_delay_s)
            return PinVerdict(ok=False, wrong_in_a_row=self._wrong)
