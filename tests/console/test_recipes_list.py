"""The recipes a unit offers, as the console lists them: one that cannot run here says every
reason, in full, within 80 columns."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.rig import Rig
from unit_controller.console.render import render_recipes
from unit_controller.console.text import WIDTH, Style
from unit_controller.control_socket.ops import Session
from unit_controller.control_socket.protocol import Request
from unit_controller.recipes.loader import RECIPES_DIR

PLAIN = Style(colour=False, utf8=True)


async def _recipes(recipes_dir: Path) -> list[dict[str, object]]:
    ops = Rig(recipes_dir=recipes_dir).operations()
    response = await ops.handle(Session(user="tech"), Request(id=1, op="recipes"))
    assert response.ok, response
    assert response.result is not None
    recipes = response.result["recipes"]
    assert isinstance(recipes, list)
    return recipes


async def test_a_recipe_that_cannot_run_here_is_listed_with_every_reason_in_full(
    tmp_path: Path,
) -> None:
    shutil.copy(RECIPES_DIR / "smoke.toml", tmp_path / "smoke.toml")
    text = (RECIPES_DIR / "coprecipitation.toml").read_text(encoding="utf-8")
    (tmp_path / "coprecipitation.toml").write_text(
        text.replace('"P-205"', '"P-299"'), encoding="utf-8"
    )
    recipes = {r["name"]: r for r in await _recipes(tmp_path)}
    assert "problems" not in recipes["smoke"]
    problems = recipes["coprecipitation"]["problems"]
    assert isinstance(problems, list)
    assert problems
    assert all("P-299" in p and "not on this unit" in p for p in problems), problems

    lines = render_recipes(list(recipes.values()), PLAIN)
    assert all(len(line) <= WIDTH for line in lines), lines
    # (a description may be cut to its line; a reason is never cut)
    assert not any(line.endswith("...") for line in lines if not line.startswith("smoke")), lines
    shown = " ".join(" ".join(lines).split())
    for problem in problems:
        assert " ".join(str(problem).split()) in shown, (problem, lines)
    assert lines[0].startswith("coprecipitation  cannot run here:")
    assert any(line.startswith("smoke ") for line in lines)
