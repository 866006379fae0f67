"""Who may operate the unit: `local` (only someone at the unit) or `remote` (the fleet too).

The console sets it. A crash, a power loss or an abort cause (the E-stop) puts the unit in
`local`: someone at the unit looks at the reactor before anyone restarts it (DESIGN §5).
The mode survives a clean restart in a small file in the state directory.
"""

from __future__ import annotations

import contextlib
import os
from enum import StrEnum
from pathlib import Path

from hal.log import get_logger
from unit_controller.errors import CommandRefused

log = get_logger(__name__)

AUTHORITY_FILE = "authority"


class Authority(StrEnum):
    """Where operating commands may come from."""

    LOCAL = "local"
    REMOTE = "remote"


def parse_authority(value: object) -> Authority:
    """`value` as an Authority; CommandRefused naming the choices."""
    try:
        return Authority(str(value).strip().lower())
    except ValueError:
        raise CommandRefused(
            f"unknown mode {value!r}; it is local (only the console operates the unit) or "
            "remote (the fleet may too)"
        ) from None


def refuse_remote(authority: Authority) -> None:
    """Raise CommandRefused for a remote operating command while the unit is local."""
    if authority is Authority.LOCAL:
        raise CommandRefused(
            "the unit is in local mode: remote commands are refused until someone at the unit "
            "sets it to remote (console: mode remote)"
        )


def stored_authority(state_dir: Path, *, clean: bool) -> Authority:
    """The mode to start in: what was stored if the last stop was clean, else local."""
    if not clean:
        return Authority.LOCAL
    try:
        text = (state_dir / AUTHORITY_FILE).read_text(encoding="ascii").strip()
        return Authority(text)
    except (OSError, UnicodeDecodeError, ValueError):
        return Authority.LOCAL  # a new unit, or a file nobody can trust: local


def store_authority(state_dir: Path, authority: Authority) -> None:
    """Keep the mode for the next clean start (atomically, never readable by others)."""
    path = state_dir / AUTHORITY_FILE
    temporary = path.with_name(f".{AUTHORITY_FILE}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
        try:
            os.fchmod(fd, 0o640)
            os.write(fd, f"{authority.value}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError as exc:
        # Not kept: the next start must be local, the safe side, not the older mode still in
        # the file. Both go (a full disk left the half-made one empty beside the state).
        log.error("authority.store_failed", path=str(path), error=str(exc))
        for stale in (temporary, path):
            with contextlib.suppress(OSError):
                stale.unlink()
