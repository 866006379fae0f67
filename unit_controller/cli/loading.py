"""The config as the command line asks for it: the file, its overrides and plant values;
every problem printed, None returned."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from unit_controller.cli.exits import EXIT_BAD_INPUT
from unit_controller.config import (
    UnitConfig,
    load_config,
    with_overrides,
    with_plant,
)
from unit_controller.errors import ConfigError


def check_config(path: Path) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.problems)} problem(s)")
        for problem in exc.problems:
            print(f"  {problem}")
        return EXIT_BAD_INPUT
    print("ok")
    notes = (
        _state_dir_unused(config, path),
        _certificate_names_another(config),
        _tls_without_client_certificate(config),
        _ports_unused(config),
        _users_unknown(config),
    )
    for note in notes:
        if note is not None:
            print(f"note: {note}", file=sys.stderr)
    return 0


def _ports_unused(config: UnitConfig) -> str | None:
    """Why the serial ports set are not used (the simulator runs), or None."""
    if config.hal.backend != "mock":
        return None
    ported = [tag for tag, device in config.wiring.devices.items() if device.port]
    if config.hal.serial.relay_board_port:
        ported.append("the relay board")
    if not ported:
        return None
    return (
        f'[hal] backend = "mock" runs the simulated plant: the ports set for '
        f"{', '.join(ported)} are not opened; a unit on its instruments needs "
        'backend = "serial"'
    )


def _users_unknown(config: UnitConfig) -> str | None:
    """The `[console] users` no account on this machine has (a typo locks the tech out)."""
    import pwd

    unknown = []
    for user in config.console.users:
        try:
            pwd.getpwnam(user)
        except KeyError:
            unknown.append(user)
    if not unknown:
        return None
    return (
        f"[console] users: no such user on this machine: {', '.join(map(repr, unknown))} "
        "(they may be made later, e.g. by the installer)"
    )


def _tls_without_client_certificate(config: UnitConfig) -> str | None:
    """Why a TLS link with no client certificate will not get in at the site broker, or None."""
    mqtt = config.mqtt
    if not mqtt.enabled or not mqtt.address.tls or mqtt.cert_file is not None:
        return None
    return (
        "[mqtt] url is TLS (mqtts) but no cert_file/key_file is set: the site broker "
        "(deploy/mosquitto, require_certificate) refuses a client without a certificate, and "
        "the link then only reports timeouts; give the unit its certificate"
    )


def _certificate_names_another(config: UnitConfig) -> str | None:
    """Why the client certificate will speak for another unit on the site broker, or None."""
    from unit_controller.mqtt.settings import certificate_name

    cert_file = config.mqtt.cert_file
    if cert_file is None:
        return None
    name = certificate_name(cert_file)
    if name is None or name == config.unit.id:
        return None
    return (
        f"[mqtt] cert_file {cert_file} is issued to {name!r}, not to this unit "
        f"({config.unit.id!r}): the site broker (deploy/mosquitto) takes a certificate's name "
        f"as the client's, so this unit would throw {name!r} off the broker at each connect "
        "and be refused its own topics; issue it a certificate of its own"
    )


def _state_dir_unused(config: UnitConfig, path: Path) -> str | None:
    """Why `[unit] state_dir` is not where this unit's service keeps its state, or None."""
    from unit_controller.cli.site import INSTALLED_CONFIG_DIR, INSTALLED_STATE_DIR

    own = config.unit.state_dir
    systemd = os.environ.get("STATE_DIRECTORY")
    if own is None or not (systemd or path.resolve().parent == INSTALLED_CONFIG_DIR):
        return None
    service = Path(systemd.split(":")[0]) if systemd else INSTALLED_STATE_DIR
    if Path(own) == service:
        return None
    return (
        f"[unit] state_dir = {str(own)!r} is not used on an installed unit: the service keeps "
        f"its journal and outbox in {service} (StateDirectory=), as do `journal`, `report` "
        "and `commission` at a shell; remove the setting (to move the state, mount the other "
        "disk there)"
    )


def print_config_error(exc: ConfigError) -> None:
    """A config that cannot be used, on stderr: its file, then each problem on a line."""
    print(f"error: config {exc.source}:", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def check_recipe(ref: str, *, config: Path | None, recipes_dir: Path | None) -> int:
    """`check-recipe`: 'ok', or every problem of the recipe on this unit; the exit code."""
    from unit_controller.daemon.dirs import resolve_directories
    from unit_controller.errors import RecipeError
    from unit_controller.recipes.loader import RECIPES_DIR, load_recipe

    config_file = resolve_directories(config=config, state_dir=None, runtime_dir=None).config_file
    try:
        unit = load_config(config_file)
    except ConfigError as exc:
        print(f"error: config {exc.source}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    path = Path(ref)
    if path.is_file() or ref.endswith(".toml"):
        # Judged as the daemon will take it: from a recipes directory, named as its file.
        recipes_dir = path.parent
    try:
        loaded = load_recipe(ref, config=unit, recipes_dir=recipes_dir or RECIPES_DIR)
    except RecipeError as exc:
        print(f"{exc.source}: {len(exc.problems)} problem(s) on {config_file}")
        for problem in exc.problems:
            print(f"  {problem}")
        return EXIT_BAD_INPUT
    print(f"ok: {loaded.recipe.name}, {len(loaded.recipe.phases)} phase(s), on {config_file}")
    return 0


def list_offered(*, config: Path | None, recipes_dir: Path) -> int:
    """`recipes`: the name of each recipe the daemon would run on this unit, a line each on
    stdout; each file it would refuse is named on stderr with why. The exit code."""
    from unit_controller.daemon.dirs import resolve_directories
    from unit_controller.errors import RecipeError
    from unit_controller.recipes.loader import list_recipes, load_recipe, misnamed_recipes

    config_file = resolve_directories(config=config, state_dir=None, runtime_dir=None).config_file
    for path in misnamed_recipes(recipes_dir):
        print(
            f"{path.name}: not offered: a recipe's file name is its name, 1-40 of a-z, 0-9, "
            f"'_' and '-' (e.g. {_suggested(path.stem)}.toml)",
            file=sys.stderr,
        )
    if not list_recipes(recipes_dir):
        # Nothing on stdout is right for a script; a person is told why.
        print(
            f"(no recipes in {recipes_dir}: the daemon offers each NAME.toml file there)",
            file=sys.stderr,
        )
        return 0
    try:
        unit = load_config(config_file)
    except ConfigError as exc:
        # The names are still worth having: listed unchecked, and said so.
        print(
            f"(not checked against a unit: config {exc.source}: {'; '.join(exc.problems)})",
            file=sys.stderr,
        )
        for name in list_recipes(recipes_dir):
            print(name)
        return 0
    for name in list_recipes(recipes_dir):
        try:
            load_recipe(name, config=unit, recipes_dir=recipes_dir)
        except RecipeError as exc:
            print(f"{name}: not offered: {'; '.join(exc.problems)}", file=sys.stderr)
            continue
        print(name)
    return 0


def _suggested(stem: str) -> str:
    """A recipe name close to `stem`: lower case, other characters as '_'."""
    name = "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in stem.lower())
    return name[:40] or "recipe"


def config_from_args(
    args: argparse.Namespace, *, path: Path | None, state_dir: Path | None
) -> UnitConfig | None:
    """The config file with the command line's settings, or None after printing every problem."""
    try:
        return with_overrides(
            load_config(path), unit_id=args.unit_id, mqtt_url=args.mqtt, state_dir=state_dir
        )
    except ConfigError as exc:
        print_config_error(exc)
        return None


def with_plant_values(config: UnitConfig, values: list[tuple[str, float]]) -> UnitConfig | None:
    try:
        return with_plant(config, dict(values))
    except ConfigError as exc:
        print("error: --plant:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None
