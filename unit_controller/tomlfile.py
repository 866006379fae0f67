"""Reading TOML files into models (hal.schema) with errors that name the TOML location.

Never raises anything but the caller's error type for a bad file.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hal.schema import ValidationError
from hal.wiring import OWN_LOCATION

# A unit's config or recipe is a few KiB; a file far larger is a mistake (or padding), and
# parsing it would take the daemon's memory.
MAX_TOML_BYTES = 1024 * 1024


def file_problem(path: Path) -> str | None:
    """Why `path` is not a file to read a config or recipe from (missing, a directory, a FIFO
    or device with no end to read to, too large), or None."""
    try:
        if path.is_dir():
            return f"{path}: is a directory, not a file"
        if not path.exists():
            return f"{path}: no such file"
        if not path.is_file():
            return f"{path}: not a regular file"
        size = path.stat().st_size
    except OSError as exc:
        return f"{path}: cannot read ({exc})"
    if size > MAX_TOML_BYTES:
        return f"{path}: too large ({size:,} bytes; at most {MAX_TOML_BYTES:,})"
    return None


def read_bounded(path: Path) -> bytes:
    """The file's bytes, at most MAX_TOML_BYTES + 1 of them; OSError for anything but a regular
    file (opened without blocking: a FIFO swapped in after `file_problem` has no writer)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: not a regular file")
        return file.read(MAX_TOML_BYTES + 1)


def read_toml(path: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The parsed document, or None and the problems (unreadable file, too large, syntax
    error, nested too deeply)."""
    problem = file_problem(path)
    if problem is not None:
        return None, [problem]
    try:
        data = read_bounded(path)  # should it have grown or changed since
        if len(data) > MAX_TOML_BYTES:
            return None, [f"{path}: too large (more than {MAX_TOML_BYTES:,} bytes)"]
        text = data.decode("utf-8-sig")  # a byte-order mark (Windows editors) is no syntax error
    except FileNotFoundError:
        return None, [f"{path}: no such file"]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [f"{path}: cannot read ({exc})"]
    try:
        return tomllib.loads(text), []
    except tomllib.TOMLDecodeError as exc:
        return None, [f"{path}: not valid TOML ({exc})"]
    except RecursionError:
        return None, [f"{path}: not valid TOML (arrays or tables nested too deeply)"]


def location(loc: Sequence[int | str]) -> str:
    """A validation error location as a TOML path: `devices.TT-101.stale_s`, `phases[2].name`."""
    out = ""
    for index, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            # the marker for a problem with a table's key (e.g. a device tag), not a key
            continue
        else:
            # validation adds the kind of a device (a discriminated union member) after its tag;
            # it is not a TOML key
            if index == 2 and loc[0] == "devices" and part in _UNION_TAGS:
                continue
            key = part if all(c.isalnum() or c in "-_" for c in part) else f'"{part}"'
            out += f".{key}" if out else key
    return out or "(top level)"


_UNION_TAGS = {
    "rtd",
    "ph_probe",
    "heater",
    "coil",
    "level_switch",
    "estop",
    "dosing_pump",
}


_USERINFO = re.compile(r"//[^/@\s]*@")


def validation_problems(exc: ValidationError) -> list[str]:
    """Each validation error as 'location: message (got value)'."""
    problems: list[str] = []
    for err in exc.errors(include_url=False):
        where = location(err["loc"])
        if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
            # the discriminator (a device's `kind`) is what is wrong or missing
            where += "." + str(err.get("ctx", {}).get("discriminator", "kind")).strip("'")
        message = err["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if err["type"] not in ("missing", "model_type") and "input" in err:
            # Credentials in a URL are never echoed back (into logs, journals, terminals).
            shown = _USERINFO.sub("//***@", repr(err["input"]))
            if len(shown) <= 60 and not isinstance(err["input"], dict):
                message += f" (got {shown})"
        # A cross-check may find several problems at once, one a line; one that lies elsewhere
        # (the relay board's port, found with the devices) names its own location.
        problems.extend(
            line.removeprefix(OWN_LOCATION) if line.startswith(OWN_LOCATION) else f"{where}: {line}"
            for line in message.split("\n")
        )
    return problems
