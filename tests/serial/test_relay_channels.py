"""A relay channel's write timing: a refusal holds back retries of that kind of write only."""

from __future__ import annotations

import math

from hal.serial.relay_channels import RelayChannel
from hal.wiring import CoilFunction

RENEW_S = 3.0


def _due(channel: RelayChannel, now: float) -> tuple[bool, bool]:
    on = channel.on_due(now, renew_after_s=RENEW_S, heater_tolerance_s=0.2)
    return channel.off_due(now), on


def test_a_refused_renewal_does_not_hold_back_the_off_a_trip_wants() -> None:
    contactor = RelayChannel(output=CoilFunction.CONTACTOR, relay=1, tag="K-101", lease_s=10.0)
    contactor.want_until = math.inf
    contactor.hw_until = 105.0  # on from an earlier flash-on, still running
    # The board refused the renewal at t=100: on-writes wait for the hold-off ...
    contactor.refused_until, contactor.refused_on = 100.0 + RENEW_S, True
    assert _due(contactor, 101.0) == (False, False)
    # ... but the trip's off goes out on the next cycle, not three seconds later.
    contactor.want_until = -math.inf
    assert _due(contactor, 100.1) == (True, False)


def test_a_refused_off_is_retried_after_its_hold_off_and_an_on_is_not_held_by_it() -> None:
    agitator = RelayChannel(output=CoilFunction.AGITATOR, relay=2, tag="M-101", lease_s=10.0)
    agitator.refused_until, agitator.refused_on = 100.0 + RENEW_S, False
    assert _due(agitator, 101.0) == (False, False)  # not hammered
    assert _due(agitator, 103.0) == (True, False)  # tried again once the hold-off has passed
    agitator.want_until = math.inf
    assert _due(agitator, 101.0) == (False, True)
