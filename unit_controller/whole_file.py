"""Write a file whole or not at all, through a symlink, and never over a device or a FIFO."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path


def write_whole(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace the file at `path` (or the one its symlink points to) with `data` in one rename;
    a reader sees the old file or the new one. Raises OSError, with `strerror` for people."""
    # A rename onto the path itself would put a plain file where the link, a FIFO or a device
    # node was (as root, /dev/null).
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file():
        raise OSError(errno.EINVAL, "it is not a regular file")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
