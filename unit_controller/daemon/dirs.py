"""Where the daemon keeps its files, as systemd hands them out (StateDirectory= and friends).

Pure look-ups of flags and environment; creates nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from unit_controller.config import DEFAULT_CONFIG

CONFIG_FILE = "unit.toml"
SOCKET_FILE = "control.sock"
# A Unix socket's path fits sockaddr_un's sun_path: 108 bytes on Linux, its NUL included.
MAX_SOCKET_PATH_BYTES = 107
# Without systemd, a user-run daemon falls back to places a user may write.
FALLBACK_RUNTIME = Path("/run/unit-controller")


def _first(value: str | None) -> Path | None:
    # systemd lists several directories separated by ':' when a unit names several.
    return Path(value.split(":")[0]) if value else None


@dataclass(frozen=True, slots=True)
class Directories:
    """The daemon's config file, state directory and runtime directory (control socket)."""

    config_file: Path
    state: Path | None  # None: resolved from the config ([unit] state_dir or the default)
    runtime: Path

    @property
    def socket(self) -> Path:
        """The control socket."""
        return self.runtime / SOCKET_FILE

    def socket_problem(self) -> str | None:
        """Why the control socket cannot be made where it would go, or None."""
        length = len(os.fsencode(self.socket))
        if length <= MAX_SOCKET_PATH_BYTES:
            return None
        return (
            f"the control socket {self.socket} would be {length} bytes long; a Unix socket's "
            f"path takes at most {MAX_SOCKET_PATH_BYTES}: choose a shorter --runtime-dir"
        )


def resolve_directories(
    *,
    config: Path | None,
    state_dir: Path | None,
    runtime_dir: Path | None,
    environ: Mapping[str, str] | None = None,
) -> Directories:
    """Flags first, then systemd's environment, then defaults."""
    env = os.environ if environ is None else environ
    config_dir = _first(env.get("CONFIGURATION_DIRECTORY"))
    if config is None:
        config = config_dir / CONFIG_FILE if config_dir else DEFAULT_CONFIG
    runtime = runtime_dir or _first(env.get("RUNTIME_DIRECTORY"))
    if runtime is None:
        xdg = env.get("XDG_RUNTIME_DIR")
        runtime = Path(xdg) / "unit-controller" if xdg else FALLBACK_RUNTIME
    return Directories(
        config_file=config,
        state=state_dir or _first(env.get("STATE_DIRECTORY")),
        runtime=runtime,
    )
