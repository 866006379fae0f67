"""Each command loads what it runs, and nothing else: the daemon starts no slower and holds no
more memory for the console, the report, the simulator's batch runner, MQTT or signing it does not
use. Checked in a fresh interpreter each, as a start on a unit is.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Never on the daemon's start-up with the example config (mock backend, no broker).
NOT_IN_RUN = (
    # 12.8 MB and a third of a start-up: the unit's models are hal.schema's.
    "pydantic",
    "pydantic_core",
    "importlib.metadata",
    # ~20 ms of a start (with uuid and platform): the first message worth writing loads it.
    "structlog",
    "aiomqtt",
    "paho",
    "cryptography",
    "serial",
    "pymodbus",
    "hal.serial",
    "hal.sim.emulator_set",
    "unit_controller.console",
    "unit_controller.report",
    "unit_controller.commissioning",
    "unit_controller.sim",
    "unit_controller.mqtt.service",
    "unit_controller.mqtt.commands",
    "unit_controller.mqtt.signing",
    "unit_controller.cli.simulate",
    "unit_controller.cli.operator",
    "unit_controller.cli.records",
    # The control socket listens from READY; what answers a request loads with the first session.
    "unit_controller.control_socket.connection",
    "unit_controller.control_socket.ops",
    "unit_controller.control_socket.args",
    "unit_controller.control_socket.pin_desk",
    "unit_controller.control_socket.status",
)


def _loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    script = textwrap.dedent(code) + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def _under(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in packages))


def test_building_the_command_line_imports_no_subcommand() -> None:
    loaded = _loaded_after(
        """
        from unit_controller.cli import build_parser
        build_parser().parse_args(["run", "--speed", "2"])
        """
    )
    # hal.log (no imports of its own) is how every command's logging is set up.
    loaded -= {"hal", "hal.log"}
    assert _under(loaded, ("hal", "unit_controller.config", *NOT_IN_RUN)) == []


def test_the_daemon_starts_without_console_report_simulator_runner_mqtt_or_signing() -> None:
    loaded = _loaded_after(
        """
        from unit_controller.daemon.daemon import Daemon
        from unit_controller.config import load_config
        load_config()
        """
    )
    assert "unit_controller.daemon.daemon" in loaded
    assert _under(loaded, NOT_IN_RUN) == []


def test_the_simulator_is_loaded_only_by_the_mock_backend() -> None:
    loaded = _loaded_after("import unit_controller.daemon.daemon, unit_controller.backend")
    assert _under(loaded, ("hal.mock", "hal.sim.plant", "hal.serial")) == []


def test_a_unit_without_operator_keys_never_loads_the_signing_library(tmp_path: Path) -> None:
    loaded = _loaded_after(
        """
        from unit_controller.config import load_config, with_overrides
        with_overrides(load_config(), mqtt_url="mqtt://127.0.0.1:1883")
        import unit_controller.mqtt.service
        """
    )
    assert "unit_controller.mqtt.service" in loaded
    assert _under(loaded, ("cryptography",)) == []


def test_keygen_still_loads_the_signing_library_when_it_runs(tmp_path: Path) -> None:
    key = tmp_path / "op.key"
    loaded = _loaded_after(
        f"""
        import contextlib, io
        from unit_controller.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["keygen", {str(key)!r}, "--name", "ann"]) == 0
        """
    )
    assert "cryptography" in loaded
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")


def test_nothing_a_unit_validates_loads_pydantic() -> None:
    # Config, a recipe checked for the unit, control-socket requests and MQTT commands: the
    # models of all of them are hal.schema's, so a running daemon never holds pydantic.
    loaded = _loaded_after(
        """
        from unit_controller.config import load_config
        from unit_controller.recipes.loader import load_recipe
        from unit_controller.control_socket import args, protocol, ops, connection
        from unit_controller.mqtt import commands
        config = load_config()
        for name in ("smoke", "leach", "purify", "coprecipitation"):
            load_recipe(name, config=config)
        protocol.Request.model_validate({"id": 1, "op": "status"})
        args.JogArgs.model_validate({"pump": "P-201", "ml": 5})
        """
    )
    assert "unit_controller.mqtt.commands" in loaded
    assert _under(loaded, ("pydantic", "pydantic_core")) == []
