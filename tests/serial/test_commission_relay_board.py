"""`commission` on a relay board that answers nothing says how it asked: a wrong Modbus address
or speed looks exactly like a silent board."""

from __future__ import annotations

import os
from pathlib import Path

from hal.clock import SystemClock
from unit_controller.commissioning.survey import _relay_board
from unit_controller.config import load_config
from unit_controller.shipped import EXAMPLE_CONFIG


async def test_a_board_that_answers_nothing_is_reported_with_the_slave_and_baud_asked(
    tmp_path: Path,
) -> None:
    # Found by an installer: relay_board_slave = 2 against a board at 1 said only "no answer".
    text = EXAMPLE_CONFIG.read_text(encoding="utf-8")
    controller, device = os.openpty()  # a port nobody answers on
    try:
        port = os.ttyname(device)
        text = text.replace(
            'backend = "mock"',
            f'backend = "mock"\n[hal.serial]\nrelay_board_port = "{port}"\nrelay_board_slave = 2',
        )
        path = tmp_path / "unit.toml"
        path.write_text(text, encoding="utf-8")
        config = load_config(path)
        (board,) = await _relay_board(config, SystemClock(), None)
    finally:
        os.close(controller)
        os.close(device)
    assert not board.found
    assert "asked as Modbus slave 2 at 9600 baud" in board.problems[0]
