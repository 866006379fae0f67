"""The birth offers the fleet what the unit would run: each recipe that loads and fits the unit,
as the files are when the birth goes out."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from tests.mqtt.broker import Mosquitto
from tests.mqtt.fleet import fleet_config
from tests.mqtt.recorder import Received, Recorder
from tests.rig import Rig
from unit_controller.mqtt.service import FleetService
from unit_controller.shipped import SHIPPED_RECIPES

WAIT_S = 30.0


def _birth_with(count: int) -> Callable[[Received], bool]:
    def holds(r: Received) -> bool:
        return r.topic.endswith("/birth") and len(r.json()["recipes"]) == count

    return holds


async def test_a_refused_recipe_is_not_offered_and_a_new_one_is_at_the_next_birth(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    shutil.copy(SHIPPED_RECIPES / "smoke.toml", recipes)
    # It was offered, then refused when the fleet started it.
    text = (SHIPPED_RECIPES / "smoke.toml").read_text(encoding="utf-8")
    (recipes / "broken.toml").write_text(
        text.replace('name = "smoke"', 'name = "broken"').replace("30.0", "nan"), encoding="utf-8"
    )
    rig = Rig(config=fleet_config(mosquitto, tmp_path / "state", unit_id="unit-rec"))
    service = FleetService(
        config=rig.config,
        controller=rig.controller,
        clock=rig.clock,
        state_dir=tmp_path / "state",
        recipes_dir=recipes,
    )
    async with Recorder(mosquitto) as rec:
        await service.start()
        try:
            first = await rec.wait_for(_birth_with(1), timeout=WAIT_S)
            assert first.json()["recipes"] == ["smoke"]
            shutil.copy(SHIPPED_RECIPES / "leach.toml", recipes)
            service.link.rebirth()
            second = await rec.wait_for(_birth_with(2), timeout=WAIT_S)
            assert second.json()["recipes"] == ["leach", "smoke"]
        finally:
            await service.stop()
