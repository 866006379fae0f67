"""Where an installed unit keeps its files, for the commands a tech runs at a shell on it.

systemd hands the daemon $CONFIGURATION_DIRECTORY and $STATE_DIRECTORY; a root shell has
neither, so these fall back to where deploy/install.sh and the service unit put them.
"""

from __future__ import annotations

import os
from pathlib import Path

from unit_controller.config import UnitConfig, resolve_state_dir

# Where deploy/install.sh puts the unit's config and recipes.
INSTALLED_CONFIG_DIR = Path("/etc/unit-controller")
# The service's StateDirectory=unit-controller.
INSTALLED_STATE_DIR = Path("/var/lib/unit-controller")


def site_dir(*, installed: bool) -> Path | None:
    """systemd's $CONFIGURATION_DIRECTORY; with `installed`, else the installer's directory
    when it exists (a tech's shell on the unit has no $CONFIGURATION_DIRECTORY)."""
    configured = os.environ.get("CONFIGURATION_DIRECTORY")
    if configured:
        return Path(configured.split(":")[0])
    return INSTALLED_CONFIG_DIR if installed and INSTALLED_CONFIG_DIR.is_dir() else None


def site_recipes(*, installed: bool = False) -> Path | None:
    """`recipes/` of the unit's configuration directory when it exists."""
    site = site_dir(installed=installed)
    candidate = None if site is None else site / "recipes"
    return candidate if candidate is not None and candidate.is_dir() else None


def site_config(config: Path | None) -> Path | None:
    """`--config`, else the unit's installed config when there is one (None: the default)."""
    if config is not None:
        return config
    site = site_dir(installed=True)
    candidate = None if site is None else site / "unit.toml"
    return candidate if candidate is not None and candidate.exists() else None


def installed_state_refused() -> str | None:
    """Why this user may not run the unit's daemon by hand on the service's state directory
    (root would leave files there the service's user cannot open), or None."""
    try:
        owner = INSTALLED_STATE_DIR.stat().st_uid
    except OSError:
        return None  # not made yet, or not ours to look at: opening it says what is wrong
    if os.geteuid() != 0 or owner == 0:
        return None
    try:
        import pwd

        name = pwd.getpwuid(owner).pw_name
    except (KeyError, ImportError):
        name = str(owner)
    return (
        f"as root, this run would leave files in {INSTALLED_STATE_DIR} (the journal, the "
        f"outbox, their lock) that the service's user {name!r} cannot open afterwards: run it "
        f"as that user (sudo -u {name} unit-controller run ...), or start the service "
        "(systemctl start unit-controller)"
    )


def unit_state_dir(config: UnitConfig, flag: Path | None, config_file: Path | None) -> Path:
    """The state directory as the daemon on this unit uses it: `--state-dir`, else
    $STATE_DIRECTORY; for the installed config, else the service's (whatever its
    `[unit] state_dir` says: the service never uses that); else the config's."""
    if (
        flag is None
        and not os.environ.get("STATE_DIRECTORY")
        and config_file is not None
        and config_file.absolute().parent == INSTALLED_CONFIG_DIR  # as `run` judges it
    ):
        return INSTALLED_STATE_DIR
    return resolve_state_dir(config, flag)
