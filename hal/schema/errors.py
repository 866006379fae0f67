"""Validation errors as pydantic reports them: a type, a location, a message, the input.

Kept to pydantic's types and wording so that what a person reads (check-config, a refused
recipe or command) does not depend on which of the two validated it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

Loc = tuple[str | int, ...]
_SHOWN = 100  # characters of an input's repr in the text of an error


if TYPE_CHECKING:
    # Types for the checker only: a TypedDict costs every start-up a compile per key.

    class ErrorDetails(TypedDict, total=False):
        """One problem: `type`, `loc`, `msg` and `input` always; `ctx` where the message has
        facts."""

        type: str
        loc: Loc
        msg: str
        input: Any
        ctx: dict[str, Any]

    class InitErrorDetails(TypedDict, total=False):
        """A problem a validator found itself, for `ValidationError.from_exception_data`."""

        type: CustomError | str
        loc: Loc
        input: Any
        ctx: dict[str, Any]

else:
    ErrorDetails = dict
    InitErrorDetails = dict


class CustomError(ValueError):
    """A validator's refusal with an error type of its own and a message template over `ctx`."""

    def __init__(
        self, error_type: str, message_template: str, context: dict[str, Any] | None = None
    ) -> None:
        self.type = error_type
        self.message_template = message_template
        self.context = context
        super().__init__(self.message())

    def message(self) -> str:
        """The message with the context filled in (a brace the context does not fill stays)."""
        return self.message_template.format_map(_Keep(self.context or {}))


class _Keep(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


class ValidationError(ValueError):
    """Every problem found in one document, each at its location (pydantic's ValidationError)."""

    def __init__(self, title: str, line_errors: Sequence[ErrorDetails]) -> None:
        self.title = title
        self._errors = list(line_errors)
        super().__init__(title)

    def __reduce__(self) -> tuple[type[ValidationError], tuple[str, list[ErrorDetails]]]:
        # Picklable (a process pool hands errors back) and copyable, as pydantic's is.
        return (type(self), (self.title, self._errors))

    def __str__(self) -> str:
        return self._render()

    @classmethod
    def from_exception_data(
        cls, title: str, line_errors: Sequence[InitErrorDetails]
    ) -> ValidationError:
        """Problems found by hand, each a CustomError (or an error type) at a location."""
        errors: list[ErrorDetails] = []
        for line in line_errors:
            kind = line["type"]
            error: ErrorDetails = {"loc": tuple(line.get("loc", ())), "input": line.get("input")}
            if isinstance(kind, CustomError):
                error["type"] = kind.type
                error["msg"] = kind.message()
                if kind.context is not None:
                    error["ctx"] = kind.context
            else:
                error["type"] = kind
                error["msg"] = kind
            errors.append(error)
        return cls(title, errors)

    def errors(
        self, *, include_url: bool = False, include_input: bool = True
    ) -> list[ErrorDetails]:
        """The problems, in the order found (fields in declaration order, extras last)."""
        del include_url  # no documentation links: the message is the whole story
        if include_input:
            return [dict(e) for e in self._errors]  # type: ignore[misc]
        return [{k: v for k, v in e.items() if k != "input"} for e in self._errors]  # type: ignore[misc]

    def error_count(self) -> int:
        """How many problems."""
        return len(self._errors)

    def _render(self) -> str:
        count = len(self._errors)
        lines = [f"{count} validation error{'s' if count != 1 else ''} for {self.title}"]
        for e in self._errors:
            value = e.get("input")
            shown = repr(value)
            if len(shown) > _SHOWN:  # a whole document is the input of a missing field
                shown = shown[: _SHOWN // 2] + "..." + shown[-_SHOWN // 2 :]
            lines.append(".".join(str(p) for p in e["loc"]) or "(top level)")
            lines.append(
                f"  {e['msg']} [type={e['type']}, input_value={shown}, "
                f"input_type={type(value).__name__}]"
            )
        return "\n".join(lines)


def error(kind: str, loc: Loc, msg: str, value: Any, **ctx: Any) -> ErrorDetails:
    """One problem, with its context when there is any."""
    out: ErrorDetails = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx:
        out["ctx"] = ctx
    return out


def from_exception(exc: Exception, loc: Loc, value: Any) -> list[ErrorDetails]:
    """What a validator function raised, as problems at `loc` (pydantic's wording)."""
    if isinstance(exc, ValidationError):
        return [{**e, "loc": loc + tuple(e["loc"])} for e in exc.errors()]
    if isinstance(exc, CustomError):
        out = error(exc.type, loc, exc.message(), value)
        if exc.context is not None:
            out["ctx"] = exc.context
        return [out]
    if isinstance(exc, AssertionError):
        return [error("assertion_error", loc, f"Assertion failed, {exc}", value, error=exc)]
    return [error("value_error", loc, f"Value error, {exc}", value, error=exc)]


def bound(value: float) -> str:
    """A limit as pydantic writes it: 1.0 as `1`, 0.02 as `0.02`."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def one_of(options: Sequence[Any]) -> str:
    """`'a', 'b' or 'c'`: the expected values of a literal or an enum."""
    shown = [repr(o) for o in options]
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + " or " + shown[-1]
