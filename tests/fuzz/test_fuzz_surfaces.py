"""The fuzz surfaces at a small scale (the long run is `scripts/fuzz`): hostile inputs on every
surface are accepted or refused with a reason; none crashes, no refusal changes the unit."""

from __future__ import annotations

import pytest

from tests.fuzz.run import main
from tests.fuzz.surfaces import SURFACES, fuzz_all


async def test_every_surface_refuses_hostile_inputs_without_a_crash_or_a_state_change() -> None:
    tallies = await fuzz_all(seed=7, per_surface=80)
    assert set(tallies) == set(SURFACES)
    for name, tally in tallies.items():
        assert tally.tried == 80, name
        assert tally.crashed == 0, (name, tally.crashes)
        assert tally.changed_by_refusal == 0, name
        assert tally.refused > 0, name  # the inputs are hostile enough to be refused
        assert tally.accepted + tally.refused == tally.tried, name


def test_the_long_run_prints_its_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--inputs", "25", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "surface" in out
    assert "crashed" in out
    assert "25 inputs in" in out
    assert "no crash, no state changed by a refusal" in out
