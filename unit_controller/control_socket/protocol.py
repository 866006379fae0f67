"""The control socket's wire format: one JSON object a line, requests, responses, stream lines.

Pure data and encoding; never touches the controller or a socket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hal.schema import BaseModel, ConfigDict, Field, StrictInt, StrictStr

MAX_LINE_BYTES = 65536


class ErrorCode(StrEnum):
    """Why a request failed, for programs (people read `error`)."""

    BAD_REQUEST = "bad_request"
    UNKNOWN_OP = "unknown_op"
    REFUSED = "refused"
    PIN_REQUIRED = "pin_required"
    INTERNAL = "internal"


class Request(BaseModel):
    """`{"id": 7, "op": "status", "args": {}}`."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    id: StrictInt | StrictStr | None = None
    op: StrictStr = Field(min_length=1, max_length=32)
    args: dict[str, Any] = Field(default_factory=dict)


class OpError(Exception):
    """A request that cannot be carried out: its code and one line for people."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Response:
    """The one answer to one request."""

    id: int | str | None
    ok: bool
    error: str | None = None
    code: ErrorCode | None = None
    result: dict[str, Any] | None = None

    def line(self) -> bytes:
        """The response as one JSON line."""
        return encode_line(
            {
                "id": self.id,
                "ok": self.ok,
                "error": self.error,
                "code": None if self.code is None else self.code.value,
                "result": self.result,
            }
        )


def encode_line(payload: dict[str, Any]) -> bytes:
    """One compact JSON line (anything not JSON is written as text)."""
    return json.dumps(payload, separators=(",", ":"), default=str).encode() + b"\n"
