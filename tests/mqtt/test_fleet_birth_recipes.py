"""The birth offers the fleet what the unit would run: each recipe that loads and fits the unit,
as the files are when the birth goes out."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.mqtt.broker import Mosquitto
from tests.mqtt.fleet import fleet_config
from tests.mqtt.recorder import Received, Recorder
from tests.rig import Rig
from unit_controller.config import UnitConfig
from unit_controller.mqtt.service import FleetService
from unit_controller.recipes.loader import offered_recipes
from unit_controller.shipped import SHIPPED_RECIPES

WAIT_S = 30.0


def _birth_with(count: int) -> Callable[[Received], bool]:
    def holds(r: Received) -> bool:
        return r.topic.endswith("/birth") and len(r.json()["recipes"]) == count

    return holds


def _service(mosquitto: Mosquitto, tmp_path: Path, recipes: Path, *, unit_id: str) -> FleetService:
    """A unit's fleet service offering what `recipes` holds."""
    rig = Rig(config=fleet_config(mosquitto, tmp_path / "state", unit_id=unit_id))
    return FleetService(
        config=rig.config,
        controller=rig.controller,
        clock=rig.clock,
        state_dir=tmp_path / "state",
        recipes_dir=recipes,
    )


def _nth_birth(n: int) -> Callable[[Received], bool]:
    seen = 0

    def holds(r: Received) -> bool:
        nonlocal seen
        seen += r.topic.endswith("/birth")
        return seen == n

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
    service = _service(mosquitto, tmp_path, recipes, unit_id="unit-rec")
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


async def test_a_recipe_added_while_the_list_is_being_read_is_offered_after(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    shutil.copy(SHIPPED_RECIPES / "smoke.toml", recipes)
    calls = 0
    read_passed = threading.Event()
    release = threading.Event()

    def slow_read(config: UnitConfig, recipes_dir: Path) -> list[str]:
        # The read the first birth starts sees the folder, then takes its time (a loaded host).
        nonlocal calls
        calls += 1
        found = offered_recipes(config, recipes_dir)
        if calls == 2:
            read_passed.set()
            release.wait(WAIT_S)
        return found

    monkeypatch.setattr("unit_controller.mqtt.service.offered_recipes", slow_read)
    service = _service(mosquitto, tmp_path, recipes, unit_id="unit-rec2")
    async with Recorder(mosquitto) as rec:
        await service.start()
        try:
            await rec.wait_for(_birth_with(1), timeout=WAIT_S)
            await asyncio.to_thread(read_passed.wait, WAIT_S)
            shutil.copy(SHIPPED_RECIPES / "leach.toml", recipes)
            service.link.rebirth()
            births = sum(1 for r in rec.received if r.topic.endswith("/birth"))
            # Its birth goes out while the first read is still running, offering the old list.
            await rec.wait_for(_nth_birth(births + 1), timeout=WAIT_S)
            release.set()
            later = await rec.wait_for(_birth_with(2), timeout=WAIT_S)
            assert later.json()["recipes"] == ["leach", "smoke"]
        finally:
            release.set()
            await service.stop()


async def test_a_recipe_added_or_broken_between_births_is_born_again_at_the_next_look(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    shutil.copy(SHIPPED_RECIPES / "smoke.toml", recipes)
    service = _service(mosquitto, tmp_path, recipes, unit_id="unit-rec3")
    async with Recorder(mosquitto) as rec:
        await service.start()
        try:
            await rec.wait_for(_birth_with(1), timeout=WAIT_S)
            births = sum(1 for r in rec.received if r.topic.endswith("/birth"))
            await service.check_recipes()  # nothing changed: no birth
            shutil.copy(SHIPPED_RECIPES / "leach.toml", recipes)
            await service.check_recipes()  # the service's monitor looks every few seconds
            added = await rec.wait_for(_birth_with(2), timeout=WAIT_S)
            assert added.json()["recipes"] == ["leach", "smoke"]
            assert sum(1 for r in rec.received if r.topic.endswith("/birth")) == births + 1
            smoke = recipes / "smoke.toml"
            smoke.write_text(smoke.read_text(encoding="utf-8") + "\n[[bogus\n", encoding="utf-8")
            await service.check_recipes()
            await rec.wait_for(
                lambda r: r.topic.endswith("/birth") and r.json()["recipes"] == ["leach"],
                timeout=WAIT_S,
            )
        finally:
            await service.stop()
