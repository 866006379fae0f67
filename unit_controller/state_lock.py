"""One process at a time in a unit's state directory: the daemon, or a simulated batch.

Holds `<state dir>/lock` (flock) with the holder's pid in it; released when the process ends,
however it ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCK_FILE = "lock"
# Files in the state directory (journal, outbox, lock) are the unit's record, never readable by
# others, also when started by hand under a lax umask (systemd's unit sets UMask=0027 too).
PRIVATE_UMASK = 0o027


class AlreadyRunning(OSError):
    """Another process holds this unit's state directory."""


class StateDirUnusable(OSError):
    """The state directory cannot be made or locked; the message names it and why."""


@contextlib.contextmanager
def hold_state_dir(state_dir: Path, *, what: str = "unit-controller") -> Iterator[None]:
    """Hold the state directory's lock while the block runs; AlreadyRunning names the holder."""
    path = state_dir / LOCK_FILE
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StateDirUnusable(
            f"cannot use the state directory {state_dir}: {exc.strerror or exc}"
        ) from exc
    try:
        opened = path.open("a+")
    except OSError as exc:
        raise StateDirUnusable(
            f"cannot use the state directory {state_dir}: its lock file {path}: "
            f"{exc.strerror or exc}{_owned_by_another(path, state_dir)}"
        ) from exc
    with opened as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            raise AlreadyRunning(
                f"another {what} (pid {holder}) is running on {state_dir}"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield


def _owned_by_another(path: Path, state_dir: Path) -> str:
    """Why a file in the state directory may be refused: another user's (a run as root left
    it), said with the fix; "" when that is not it."""
    try:
        owner, folder = path.stat().st_uid, state_dir.stat().st_uid
    except OSError:
        return ""
    if owner == os.geteuid() or owner == folder:
        return ""
    return (
        f" (it belongs to uid {owner}, the folder to uid {folder}: a run as another user left "
        f"it; give the folder's files back to its owner: chown -R {folder} {state_dir})"
    )


def held(state_dir: Path) -> bool:
    """Whether a live process (daemon or sim) holds the state directory now; never takes it."""
    try:
        fd = os.open(state_dir / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # and with it the lock we may have taken
    return False


def holder(state_dir: Path) -> str:
    """The pid the lock file names (`?` when it cannot be read): for a message, never a check."""
    try:
        return (state_dir / LOCK_FILE).read_text(encoding="ascii").strip()[:16] or "?"
    except (OSError, UnicodeDecodeError):
        return "?"
