"""A validator for each annotation a model may use: numbers, strings, booleans, literals, enums,
paths, optionals, tuples, dicts, nested models and unions tagged by a field.

Each validator takes (value, location, errors) and returns the value or FAIL, having appended
its problems; none raises for bad input.
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from hal.schema.errors import ErrorDetails, Loc, bound, error, from_exception, one_of

FAIL: Any = object()
"""What a validator returns for a value it refused (its problems are in `errors`)."""

Validator = Callable[[Any, Loc, list[ErrorDetails]], Any]

# An integer as pydantic reads one from text: ASCII digits, `_` between them, a `.0` tail.
_INT_TEXT = re.compile(r"([+-]?[0-9]+(?:_[0-9]+)*)(?:\.0+)?")
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


# Plain classes, not dataclasses: a dataclass costs its module a compiled method or five at
# import, and this module is on every start-up.
class Strict:
    """`Annotated[T, Strict()]`: no conversion for T (`Strict(False)`: lax for T)."""

    __slots__ = ("strict",)

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict


class AfterValidator:
    """`Annotated[T, AfterValidator(f)]`: `f(value)` once T is valid; ValueError refuses it."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self.func = func


StrictInt = typing.Annotated[int, Strict()]
StrictFloat = typing.Annotated[float, Strict()]
StrictStr = typing.Annotated[str, Strict()]
StrictBool = typing.Annotated[bool, Strict()]


class Constraints:
    """What a field's `Field(...)` and annotations ask of its value."""

    __slots__ = (
        "discriminator",
        "finite",
        "ge",
        "gt",
        "item_strict",
        "le",
        "lt",
        "max_length",
        "min_length",
        "pattern",
        "strict",
    )

    def __init__(
        self,
        *,
        strict: bool = False,
        item_strict: bool = False,
        finite: bool = True,
        ge: float | None = None,
        gt: float | None = None,
        le: float | None = None,
        lt: float | None = None,
        min_length: int | None = None,
        max_length: int | None = None,
        pattern: str | None = None,
        discriminator: str | None = None,
    ) -> None:
        self.strict = strict
        # A field's own strictness is its outer type's; the items of a tuple or dict keep the
        # model's (pydantic's rule: `Field(strict=False)` lets a TOML array be a tuple, not
        # "1" an int).
        self.item_strict = item_strict
        self.finite = finite
        self.ge = ge
        self.gt = gt
        self.le = le
        self.lt = lt
        self.min_length = min_length
        self.max_length = max_length
        self.pattern = pattern
        self.discriminator = discriminator

    def but(self, **changes: Any) -> Constraints:
        """These constraints with `changes` in place."""
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return Constraints(**values)


def build(tp: Any, rules: Constraints) -> Validator:
    """The validator for annotation `tp` under `rules`; TypeError for an annotation or a bound
    this package does not apply (a bound that silently did nothing would let a value through)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _annotated(tp, rules)
    if origin in (typing.Union, types.UnionType):
        return _union(tp, rules)
    if origin is tuple:
        _applies(rules, tp, _LENGTHS)
        return _tuple(typing.get_args(tp), rules)
    if tp in (int, float):
        _applies(rules, tp, _NUMBER_BOUNDS)
        if tp is int:
            return _bounded(_int(rules.strict), rules)
        return _bounded(_float(rules.strict, rules.finite), rules)
    if tp is str:
        _applies(rules, tp, (*_LENGTHS, "pattern"))
        return _string(rules)
    _applies(rules, tp, ())
    if tp is Any or tp is object:
        return _passthrough
    if origin is Literal:
        return _literal(typing.get_args(tp))
    if origin is dict:
        key, value = typing.get_args(tp)
        return _dict(build(key, _inner(rules)), build(value, _inner(rules)))
    if isinstance(tp, type):
        if hasattr(tp, "__schema_validate__"):
            return _model(tp)
        if issubclass(tp, Enum):
            return _enum(tp, rules.strict)
        if tp is bool:
            return _bool(rules.strict)
        if issubclass(tp, Path):
            return _path(rules.strict)
    raise TypeError(f"no validator for the annotation {tp!r}")


_NUMBER_BOUNDS = ("ge", "gt", "le", "lt")
_LENGTHS = ("min_length", "max_length")
_BOUNDS = (*_NUMBER_BOUNDS, *_LENGTHS, "pattern", "discriminator")


def _applies(rules: Constraints, tp: Any, allowed: tuple[str, ...]) -> None:
    for name in _BOUNDS:
        if name not in allowed and getattr(rules, name) is not None:
            raise TypeError(f"{name} does not apply to {tp!r}")


def _refuse(
    errors: list[ErrorDetails], kind: str, loc: Loc, msg: str, value: Any, **ctx: Any
) -> Any:
    """Record one problem and refuse the value."""
    errors.append(error(kind, loc, msg, value, **ctx))
    return FAIL


def _inner(rules: Constraints) -> Constraints:
    # A container's bounds are its own; its items keep only strictness.
    return Constraints(strict=rules.item_strict, item_strict=rules.item_strict, finite=rules.finite)


def _passthrough(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
    return value


def _annotated(tp: Any, rules: Constraints) -> Validator:
    base, *metadata = typing.get_args(tp)
    after: list[Callable[[Any], Any]] = []
    for item in metadata:
        if isinstance(item, Strict):
            rules = rules.but(strict=item.strict)
        elif isinstance(item, AfterValidator):
            after.append(item.func)
        elif hasattr(item, "constraints"):  # a FieldInfo
            rules = item.constraints(rules)
    inner = build(base, rules)
    if not after:
        return inner

    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        result = inner(value, loc, errors)
        if result is FAIL:
            return FAIL
        for func in after:
            try:
                result = func(result)
            except (ValueError, AssertionError) as exc:
                errors.extend(from_exception(exc, loc, value))
                return FAIL
        return result

    return validate


def _union(tp: Any, rules: Constraints) -> Validator:
    members = [m for m in typing.get_args(tp) if m is not type(None)]
    nullable = len(members) < len(typing.get_args(tp))
    if len(members) == 1 and nullable and _has_after(members[0]) and _has_length(rules):
        # pydantic bounds the length of `Optional[Annotated[T, AfterValidator]]` after the
        # validator, in its generic words ("Value should have at most ... items")
        inner = _sized(build(members[0], rules.but(min_length=None, max_length=None)), rules)
    elif len(members) == 1:
        inner = build(members[0], rules)
    elif rules.discriminator is not None:
        _applies(rules, tp, ("discriminator",))
        inner = _tagged(members, rules.discriminator)
    else:
        inner = _smart(members, rules)
    if not nullable:
        return inner

    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        return None if value is None else inner(value, loc, errors)

    return validate


def _has_after(tp: Any) -> bool:
    return typing.get_origin(tp) is typing.Annotated and any(
        isinstance(m, AfterValidator) for m in typing.get_args(tp)[1:]
    )


def _has_length(rules: Constraints) -> bool:
    return rules.min_length is not None or rules.max_length is not None


def _sized(inner: Validator, rules: Constraints) -> Validator:
    low, high = rules.min_length, rules.max_length

    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        result = inner(value, loc, errors)
        if result is FAIL:
            return FAIL
        size = len(result)
        if low is not None and size < low:
            errors.append(_length_error("too_short", "at least", low, size, loc, value))
            return FAIL
        if high is not None and size > high:
            errors.append(_length_error("too_long", "at most", high, size, loc, value))
            return FAIL
        return result

    return validate


def _length_error(
    kind: str, words: str, limit: int, size: int, loc: Loc, value: Any
) -> ErrorDetails:
    bound_key = "min_length" if kind == "too_short" else "max_length"
    return error(
        kind,
        loc,
        f"Value should have {words} {limit} item{'s' if limit != 1 else ''} after validation, "
        f"not {size}",
        value,
        field_type="Value",
        **{bound_key: limit},
        actual_length=size,
    )


def _smart(members: list[Any], rules: Constraints) -> Validator:
    # The first member that takes the value as it is; the problems of each, named by member.
    choices = [(_label(m), build(m, rules)) for m in members]

    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        found: list[ErrorDetails] = []
        for label, check in choices:
            attempt: list[ErrorDetails] = []
            result = check(value, (*loc, label), attempt)
            if result is not FAIL:
                return result
            found.extend(attempt)
        errors.extend(found)
        return FAIL

    return validate


def _label(member: Any) -> str:
    while typing.get_origin(member) is typing.Annotated:
        member = typing.get_args(member)[0]
    return str(getattr(member, "__name__", member))


def _tagged(members: list[Any], field: str) -> Validator:
    by_tag: dict[Any, tuple[type, Validator]] = {}
    for member in members:
        (tag,) = typing.get_args(member.__schema_annotation__(field))
        by_tag[tag] = (member, _model(member))
    expected = ", ".join(repr(t) for t in by_tag)
    kinds = tuple(m for m, _ in by_tag.values())

    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        if isinstance(value, kinds):
            return value
        if not isinstance(value, dict):
            return _refuse(
                errors,
                "model_attributes_type",
                loc,
                "Input should be a valid dictionary or object to extract fields from",
                value,
            )
        if field not in value:
            return _refuse(
                errors,
                "union_tag_not_found",
                loc,
                f"Unable to extract tag using discriminator '{field}'",
                value,
                discriminator=f"'{field}'",
            )
        tag = value[field]
        found = by_tag.get(tag) if isinstance(tag, str) else None
        if found is None:
            return _refuse(
                errors,
                "union_tag_invalid",
                loc,
                f"Input tag '{tag}' found using '{field}' does not match any of the "
                f"expected tags: {expected}",
                value,
                discriminator=f"'{field}'",
                tag=str(tag),
                expected_tags=expected,
            )
        return found[1](value, (*loc, tag), errors)

    return validate


def _too_big(errors: list[ErrorDetails], loc: Loc, value: Any) -> Any:
    # pydantic's words for an integer beyond 64 bits, whatever the input's type.
    return _refuse(
        errors,
        "int_parsing_size",
        loc,
        "Unable to parse input string as an integer, exceeded maximum size",
        value,
    )


def _literal(options: tuple[Any, ...]) -> Validator:
    expected = one_of(options)
    numbers = any(type(o) is int for o in options)

    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        if numbers and type(value) is int and not -(2**63) <= value < 2**63:
            return _too_big(errors, loc, value)
        for option in options:
            if type(value) is type(option) and value == option:
                return option
            if isinstance(option, str) and isinstance(value, str) and value == option:
                return option
            if type(option) is int and type(value) is float and value == option:
                return option
        return _refuse(
            errors,
            "literal_error",
            loc,
            f"Input should be {expected}",
            value,
            expected=expected,
        )

    return validate


def _enum(kind: type[Enum], strict: bool) -> Validator:
    by_value = {m.value: m for m in kind}
    expected = one_of([m.value for m in kind])

    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        if isinstance(value, kind):
            return value
        if strict:
            return _refuse(
                errors,
                "is_instance_of",
                loc,
                f"Input should be an instance of {kind.__name__}",
                value,
                class_name=kind.__name__,
            )
        member = by_value.get(value) if isinstance(value, str | int) else None
        if member is None or type(value) is bool:
            return _refuse(
                errors,
                "enum",
                loc,
                f"Input should be {expected}",
                value,
                expected=expected,
            )
        return member

    return validate


def _bool(strict: bool) -> Validator:
    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        if type(value) is bool:
            return value
        if not strict:
            text = _bool_text(value)
            if text is not None:
                if text in _TRUE:
                    return True
                if text in _FALSE:
                    return False
                return _refuse(
                    errors,
                    "bool_parsing",
                    loc,
                    "Input should be a valid boolean, unable to interpret input",
                    value,
                )
        return _refuse(errors, "bool_type", loc, "Input should be a valid boolean", value)

    return validate


def _bool_text(value: Any) -> str | None:
    # What a lax boolean reads as words: text, bytes, and whole numbers within 64 bits.
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if type(value) is float and value.is_integer():
        value = int(value)
    if isinstance(value, str) or (type(value) is int and abs(value) < 2**63):
        return str(value).lower()
    return None


def _int(strict: bool) -> Validator:
    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        if type(value) is int:
            return value
        if not strict:
            if type(value) is bool:
                return int(value)
            if isinstance(value, float):
                if value.is_integer() and abs(value) < 2**63:
                    return int(value)
                if value.is_integer():
                    return _too_big(errors, loc, value)
                return _refuse(
                    errors,
                    "int_from_float",
                    loc,
                    "Input should be a valid integer, got a number with a fractional part",
                    value,
                )
            if isinstance(value, str):
                found = _INT_TEXT.fullmatch(value.strip())
                try:
                    if found is None:
                        raise ValueError(value)
                    return int(found.group(1))
                except ValueError:
                    return _refuse(
                        errors,
                        "int_parsing",
                        loc,
                        "Input should be a valid integer, unable to parse string as an integer",
                        value,
                    )
        return _refuse(errors, "int_type", loc, "Input should be a valid integer", value)

    return validate


def _float(strict: bool, finite: bool) -> Validator:
    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        kind = type(value)
        if kind is float:
            number = value
        elif kind is int or (not strict and kind is bool):
            try:
                number = float(value)
            except OverflowError:  # TOML integers have no size limit
                return _refuse(errors, "float_type", loc, "Input should be a valid number", value)
        elif not strict and isinstance(value, str):
            try:
                text = value.strip()
                if not text.isascii():  # Python reads other scripts' digits; pydantic does not
                    raise ValueError(value)
                number = float(text)
            except ValueError:
                return _refuse(
                    errors,
                    "float_parsing",
                    loc,
                    "Input should be a valid number, unable to parse string as a number",
                    value,
                )
        else:
            return _refuse(errors, "float_type", loc, "Input should be a valid number", value)
        if finite and not math.isfinite(number):
            return _refuse(errors, "finite_number", loc, "Input should be a finite number", value)
        return number

    return validate


def _bounded(inner: Validator, rules: Constraints) -> Validator:
    checks: list[tuple[str, float, Callable[[float, float], bool], str]] = []
    if rules.gt is not None:
        checks.append(("greater_than", rules.gt, lambda v, b: v > b, "greater than"))
    if rules.ge is not None:
        checks.append(
            (
                "greater_than_equal",
                rules.ge,
                lambda v, b: v >= b,
                "greater than or equal to",
            )
        )
    if rules.lt is not None:
        checks.append(("less_than", rules.lt, lambda v, b: v < b, "less than"))
    if rules.le is not None:
        checks.append(("less_than_equal", rules.le, lambda v, b: v <= b, "less than or equal to"))
    if not checks:
        return inner
    keys = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt"}

    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        number = inner(value, loc, errors)
        if number is FAIL:
            return FAIL
        for kind, limit, holds, words in checks:
            if not holds(number, limit):
                return _refuse(
                    errors,
                    kind,
                    loc,
                    f"Input should be {words} {bound(limit)}",
                    value,
                    **{keys.get(kind, "le"): limit},
                )
        return number

    return validate


def _string(rules: Constraints) -> Validator:
    strict = rules.strict
    low, high = rules.min_length, rules.max_length
    pattern = _compiled(rules.pattern) if rules.pattern is not None else None
    declared = rules.pattern

    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        if isinstance(value, str) and not isinstance(value, Enum):
            text = str(value)
        elif isinstance(value, str) and not strict:
            text = str(value.value) if isinstance(value, Enum) else value
        elif not strict and isinstance(value, bytes | bytearray):
            try:
                text = bytes(value).decode()
            except UnicodeDecodeError:
                return _refuse(
                    errors,
                    "string_unicode",
                    loc,
                    "Input should be a valid string, unable to parse raw data as a unicode string",
                    value,
                )
        else:
            return _refuse(errors, "string_type", loc, "Input should be a valid string", value)
        if not text.isascii():
            try:
                text.encode()
            except UnicodeEncodeError:  # a lone surrogate (JSON's "\ud800")
                return _refuse(
                    errors,
                    "string_unicode",
                    loc,
                    "Input should be a valid string, unable to parse raw data as a unicode string",
                    value,
                )
        if low is not None and len(text) < low:
            return _refuse(
                errors,
                "string_too_short",
                loc,
                f"String should have at least {low} character{'s' if low != 1 else ''}",
                value,
                min_length=low,
            )
        if high is not None and len(text) > high:
            return _refuse(
                errors,
                "string_too_long",
                loc,
                f"String should have at most {high} character{'s' if high != 1 else ''}",
                value,
                max_length=high,
            )
        if pattern is not None and pattern.search(text) is None:
            return _refuse(
                errors,
                "string_pattern_mismatch",
                loc,
                f"String should match pattern '{declared}'",
                value,
                pattern=declared,
            )
        return text

    return validate


def _compiled(pattern: str) -> re.Pattern[str]:
    # pydantic matches with Rust's regex, where `$` is the very end; Python's `$` also matches
    # before a final newline, which would let "unit-01\n" through `^[a-z0-9-]+$` into topics
    # and logs.
    body = pattern[:-1]
    escapes = len(body) - len(body.rstrip("\\"))
    if pattern.endswith("$") and escapes % 2 == 0:  # `$` and `\\$` end; `\$` is a dollar
        pattern = body + "\\Z"
    return re.compile(pattern)


def _path(strict: bool) -> Validator:
    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        if isinstance(value, Path):
            return value
        if not strict and isinstance(value, str):
            return Path(value)
        return _refuse(
            errors,
            "path_type",
            loc,
            "Input is not a valid path for <class 'pathlib.Path'>",
            value,
        )

    return validate


def _tuple(args: tuple[Any, ...], rules: Constraints) -> Validator:
    strict, high, low = rules.strict, rules.max_length, rules.min_length or 0
    if len(args) == 2 and args[1] is Ellipsis:
        item = build(args[0], _inner(rules))
        fixed: list[Validator] | None = None
    else:
        item = _passthrough
        fixed = [build(a, _inner(rules)) for a in args]

    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        if not (isinstance(value, tuple) or (not strict and isinstance(value, list))):
            return _refuse(errors, "tuple_type", loc, "Input should be a valid tuple", value)
        limit = high if fixed is None else len(fixed)
        before = len(errors)
        # pydantic's order: a fixed tuple's length before its items; a variable one stops at
        # its first valid item past the limit (so a huge array is never validated whole).
        if fixed is not None and len(value) > len(fixed):
            errors.append(_too_long(loc, value, len(fixed)))
            return FAIL
        found: list[ErrorDetails] = []
        out = []
        for index, element in enumerate(value):
            check = item if fixed is None else fixed[index]
            result = check(element, (*loc, index), found)
            if result is not FAIL:
                out.append(result)
                if limit is not None and len(out) > limit:
                    errors.append(_too_long(loc, value, limit))
                    return FAIL
        errors.extend(found)
        if fixed is not None:
            errors.extend(
                error("missing", (*loc, index), "Field required", value)
                for index in range(len(value), len(fixed))
            )
        if len(errors) == before and len(out) < low:
            return _refuse(
                errors,
                "too_short",
                loc,
                f"Tuple should have at least {low} item{'s' if low != 1 else ''} after "
                f"validation, not {len(out)}",
                value,
                field_type="Tuple",
                min_length=low,
                actual_length=len(out),
            )
        return FAIL if len(errors) > before else tuple(out)

    return validate


def _too_long(loc: Loc, value: Any, limit: int) -> ErrorDetails:
    return error(
        "too_long",
        loc,
        f"Tuple should have at most {limit} item{'s' if limit != 1 else ''} after validation, "
        f"not {len(value)}",
        value,
        field_type="Tuple",
        max_length=limit,
        actual_length=len(value),
    )


def _dict(key: Validator, item: Validator) -> Validator:
    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        if not isinstance(value, dict):
            return _refuse(errors, "dict_type", loc, "Input should be a valid dictionary", value)
        before = len(errors)
        out = {}
        for k, v in value.items():
            checked_key = key(k, (*loc, k, "[key]"), errors)
            out[checked_key] = item(v, (*loc, k), errors)
        return FAIL if len(errors) > before else out

    return validate


def _model(kind: Any) -> Validator:
    def validate(value: Any, loc: Loc, errors: list[ErrorDetails]) -> Any:
        return kind.__schema_validate__(value, loc, errors)

    return validate
