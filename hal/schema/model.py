"""`BaseModel`: fields declared as annotations with `Field(...)` bounds, validated from a mapping
(TOML, JSON) with every problem reported at once; frozen, strict and closed as configured.

Class creation only records the declarations; each class builds its validators the first time
it validates (at import for a model whose default instance another class body makes).
`model_rebuild()` builds them at once: the suite does so for every model, so a declaration
this package cannot apply fails there, not on a unit.
"""

from __future__ import annotations

import copy
import sys
import typing
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Literal,
    TypedDict,
    TypeVar,
    dataclass_transform,
)

from hal.schema.errors import ErrorDetails, Loc, ValidationError, error, from_exception
from hal.schema.types import FAIL, Constraints, Validator, build

_T = TypeVar("_T")
_F = TypeVar("_F", bound=Callable[..., Any])
_MISSING: Any = object()
# Where a class keeps its validator declarations (the method itself stays under its own name).
_CHECK = "__schema_check_"


if TYPE_CHECKING:
    # For the checker only: a TypedDict costs every start-up a compile per key.

    class ConfigDict(TypedDict, total=False):
        """A model's settings: unknown keys refused (`extra="forbid"`), frozen, strict,
        finite."""

        extra: Literal["forbid", "ignore"]
        frozen: bool
        strict: bool
        allow_inf_nan: bool
        defer_build: bool  # accepted for pydantic's sake; every model here builds on first use

else:
    ConfigDict = dict


class FieldInfo:
    """A field's default and what its value must satisfy."""

    __slots__ = ("bounds", "default", "default_factory", "description", "strict")

    def __init__(
        self,
        default: Any,
        default_factory: Callable[[], Any] | None,
        strict: bool | None,
        description: str | None,
        bounds: dict[str, Any],
    ) -> None:
        self.default = default
        self.default_factory = default_factory
        self.strict = strict
        self.description = description
        self.bounds = bounds

    def constraints(self, rules: Constraints) -> Constraints:
        """`rules` with this field's bounds and strictness in place."""
        if self.strict is not None:
            rules = rules.but(strict=self.strict)
        return rules.but(**self.bounds) if self.bounds else rules

    def has_default(self) -> bool:
        """Whether the field may be left out."""
        return self.default is not _MISSING or self.default_factory is not None

    def make_default(self) -> Any:
        """The value of a field left out."""
        if self.default_factory is not None:
            return self.default_factory()
        if isinstance(self.default, dict | list | set):
            return copy.deepcopy(self.default)  # never one table shared by every model
        return self.default


def Field(
    default: Any = _MISSING,
    *,
    default_factory: Callable[[], Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
    strict: bool | None = None,
    allow_inf_nan: bool | None = None,
    discriminator: str | None = None,
    description: str | None = None,
) -> Any:
    """A field's default (`...` or none: required), bounds and strictness (on a field or inside
    `Annotated`)."""
    if default is Ellipsis:
        default = _MISSING
    given = {
        "ge": ge,
        "gt": gt,
        "le": le,
        "lt": lt,
        "min_length": min_length,
        "max_length": max_length,
        "pattern": pattern,
        "discriminator": discriminator,
        "finite": None if allow_inf_nan is None else not allow_inf_nan,
    }
    bounds = {k: v for k, v in given.items() if v is not None}
    return FieldInfo(default, default_factory, strict, description, bounds)


class _Private:
    __slots__ = ("default", "default_factory")

    def __init__(self, default: Any, default_factory: Callable[[], Any] | None) -> None:
        self.default = default
        self.default_factory = default_factory

    def make(self) -> Any:
        if self.default_factory is not None:
            return self.default_factory()
        return copy.deepcopy(self.default)  # never one mutable default shared by every model

    @property
    def has_default(self) -> bool:
        return self.default is not _MISSING or self.default_factory is not None


def PrivateAttr(
    default: Any = _MISSING,
    *,
    default_factory: Callable[[], Any] | None = None,
    init: Literal[False] = False,
) -> Any:
    """An underscore attribute that is not a field: not validated, settable on a frozen model;
    without a default it is absent until set."""
    del init  # never an __init__ argument; declared so type checkers leave it out
    return _Private(default, default_factory)


class ValidationInfo:
    """What a field validator sees of the model: the fields validated before its own."""

    __slots__ = ("data", "field_name")

    def __init__(self, data: dict[str, Any], field_name: str) -> None:
        self.data = data
        self.field_name = field_name


class _FieldCheck:
    __slots__ = ("fields", "func", "mode")

    def __init__(self, func: Any, fields: tuple[str, ...], mode: str) -> None:
        self.func = func
        self.fields = fields
        self.mode = mode


class _ModelCheck:
    __slots__ = ("func",)

    def __init__(self, func: Any) -> None:
        self.func = func


def field_validator(*fields: str, mode: Literal["before", "after"] = "after") -> Callable[[_F], _F]:
    """A classmethod `(cls, value[, info])` that checks (and may replace) these fields' values;
    a ValueError refuses the value with its message."""
    if mode not in ("before", "after"):
        raise TypeError(f"field_validator: mode is 'before' or 'after', not {mode!r}")

    def mark(func: _F) -> _F:
        return _FieldCheck(func, fields, mode)  # type: ignore[return-value]

    return mark


def model_validator(*, mode: Literal["after"]) -> Callable[[_F], _F]:
    """A method run on the whole model once every field is valid; a ValueError refuses it
    (what it returns is not used: it checks, it does not replace)."""
    if mode != "after":  # a model's checks across fields see valid fields, or none run
        raise TypeError(f"model_validator: only mode='after' is supported, not {mode!r}")

    def mark(func: _F) -> _F:
        return _ModelCheck(func)  # type: ignore[return-value]

    return mark


class _Plan:
    """A model class's validators, built on first use."""

    __slots__ = ("after", "before", "checks", "extra_ok", "fields", "names")

    def __init__(self, cls: type[BaseModel]) -> None:
        config = cls.model_config
        strict = config.get("strict", False)
        rules = Constraints(
            strict=strict, item_strict=strict, finite=not config.get("allow_inf_nan", True)
        )
        self.fields: dict[str, tuple[FieldInfo, Validator]] = {}
        for name, info in cls.__schema_fields__.items():
            self.fields[name] = (info, build(annotation(cls, name), info.constraints(rules)))
        self.names = frozenset(self.fields)
        self.extra_ok = config.get("extra", "ignore") != "forbid"
        self.before: dict[str, list[tuple[Callable[..., Any], bool]]] = {}
        self.after: dict[str, list[tuple[Callable[..., Any], bool]]] = {}
        self.checks: list[Callable[[Any], Any]] = []
        # By name, base class first: a subclass's validator of the same name replaces its
        # parent's (as a method would) and keeps the parent's place in the order.
        declared: dict[str, _FieldCheck | _ModelCheck] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, _FieldCheck | _ModelCheck):
                    declared[attr.removeprefix(_CHECK)] = value
        for name, check in declared.items():
            method = getattr(cls, name)
            if isinstance(check, _ModelCheck):
                self.checks.append(method)
                continue
            unknown = sorted(set(check.fields) - self.names)
            if unknown:  # a misspelt name would leave its field unchecked
                raise TypeError(f"{cls.__name__}.{name} validates no field called {unknown}")
            takes_info = _arity(check.func) > 2
            for field in check.fields:
                chosen = self.before if check.mode == "before" else self.after
                chosen.setdefault(field, []).append((method, takes_info))


# Annotations are text (`from __future__ import annotations`); most are a handful of strings
# ("float", "bool") met hundreds of times, so each is compiled once.
_COMPILED: dict[str, Any] = {}


def annotation(cls: type, name: str) -> Any:
    """The type field `name` of `cls` is declared with, evaluated where it was written."""
    for klass in cls.__mro__:
        written = vars(klass).get("__annotations__", {}).get(name)  # text, or a type
        if written is None:
            continue
        if not isinstance(written, str):
            return written
        code = _COMPILED.get(written)
        if code is None:
            code = _COMPILED[written] = compile(written, "<annotation>", "eval")
        return eval(code, vars(sys.modules[klass.__module__]), dict(vars(klass)))
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def _arity(func: Any) -> int:
    inner = getattr(func, "__func__", func)
    return int(inner.__code__.co_argcount)


@dataclass_transform(kw_only_default=True, field_specifiers=(Field, PrivateAttr))
class BaseModel:
    """A validated record: declare fields as annotations; `model_validate(mapping)` checks them
    all and raises one ValidationError listing every problem at its location."""

    model_config: ClassVar[ConfigDict] = ConfigDict()
    __schema_fields__: ClassVar[dict[str, FieldInfo]] = {}
    __schema_private__: ClassVar[dict[str, _Private]] = {}
    __schema_plan__: ClassVar[_Plan | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__
        config = ConfigDict()
        for klass in reversed(cls.__mro__[1:]):
            config.update(vars(klass).get("model_config", {}))
        config.update(own.get("model_config", {}))
        cls.model_config = config
        fields = dict(cls.__schema_fields__)
        private = dict(cls.__schema_private__)
        annotations = own.get("__annotations__", {})
        for name, written in annotations.items():
            if name.startswith("__") or "ClassVar" in str(written):
                continue
            value = own.get(name, _MISSING)
            if name.startswith("_"):
                private[name] = value if isinstance(value, _Private) else _Private(value, None)
                if value is not _MISSING:
                    delattr(cls, name)
                continue
            if isinstance(value, FieldInfo):
                fields[name] = value
                delattr(cls, name)
            else:
                fields[name] = FieldInfo(value, None, None, None, {})
        for name, value in list(own.items()):
            if name in annotations:
                continue
            if isinstance(value, _Private):  # `_cache = PrivateAttr(...)` without a type
                private[name] = value
                delattr(cls, name)
            elif name in fields:  # a parent's field given a new default without its type again
                parent = fields[name]
                fields[name] = FieldInfo(
                    value, None, parent.strict, parent.description, dict(parent.bounds)
                )
            elif isinstance(value, _FieldCheck | _ModelCheck):
                func = value.func
                if isinstance(value, _FieldCheck) and not isinstance(func, classmethod):
                    func = value.func = classmethod(func)  # as pydantic: a classmethod either way
                setattr(cls, name, func)
                setattr(cls, f"{_CHECK}{name}", value)
        cls.__schema_fields__ = fields
        cls.__schema_private__ = private
        cls.__schema_plan__ = None

    def __init__(self, **data: Any) -> None:
        errors: list[ErrorDetails] = []
        type(self).__schema_validate__(data, (), errors, into=self)
        if errors:
            raise ValidationError(type(self).__name__, errors)

    @classmethod
    def model_rebuild(cls) -> None:
        """Build the validators now (TypeError for a declaration that cannot be applied)."""
        cls.__schema_plan__ = _Plan(cls)

    @classmethod
    def __schema_annotation__(cls, name: str) -> Any:
        return annotation(cls, name)

    @classmethod
    def __schema_validate__(
        cls, data: Any, loc: Loc, errors: list[ErrorDetails], into: Any = None
    ) -> Any:
        if isinstance(data, cls) and into is None:
            return data
        if not isinstance(data, Mapping):
            errors.append(
                error(
                    "model_type",
                    loc,
                    f"Input should be a valid dictionary or instance of {cls.__name__}",
                    data,
                    class_name=cls.__name__,
                )
            )
            return FAIL
        plan = cls.__dict__.get("__schema_plan__")
        if plan is None:
            plan = _Plan(cls)
            cls.__schema_plan__ = plan
        before = len(errors)
        values: dict[str, Any] = {}
        for name, (info, validate) in plan.fields.items():
            if name not in data:
                if info.has_default():
                    values[name] = info.make_default()
                else:
                    errors.append(error("missing", (*loc, name), "Field required", data))
                continue
            raw = data[name]
            where = (*loc, name)
            try:
                for check, takes_info in plan.before.get(name, ()):
                    raw = check(raw, ValidationInfo(values, name)) if takes_info else check(raw)
            except (ValueError, AssertionError) as exc:
                errors.extend(from_exception(exc, where, raw))
                continue
            value = validate(raw, where, errors)
            if value is FAIL:
                continue
            try:
                for check, takes_info in plan.after.get(name, ()):
                    value = (
                        check(value, ValidationInfo(values, name)) if takes_info else check(value)
                    )
            except (ValueError, AssertionError) as exc:
                errors.extend(from_exception(exc, where, raw))  # what the document said
                continue
            values[name] = value
        if not plan.extra_ok:
            errors.extend(
                error("extra_forbidden", (*loc, k), "Extra inputs are not permitted", v)
                for k, v in data.items()
                if k not in plan.names
            )
        if len(errors) > before:
            return FAIL
        model = object.__new__(cls) if into is None else into
        model.__dict__.update(values)
        model.__dict__["__schema_set__"] = frozenset(k for k in data if k in plan.names)
        for name, attr in cls.__schema_private__.items():
            if attr.has_default:
                model.__dict__[name] = attr.make()
        for check in plan.checks:
            try:
                check(model)
            except (ValueError, AssertionError) as exc:
                errors.extend(from_exception(exc, loc, data))
                return FAIL
        return model

    @classmethod
    def model_validate(cls: type[_T], obj: Any) -> _T:
        """`obj` (a mapping, or already one of these) as a valid model; ValidationError lists
        every problem."""
        errors: list[ErrorDetails] = []
        model = cls.__schema_validate__(obj, (), errors)  # type: ignore[attr-defined]
        if errors:
            raise ValidationError(cls.__name__, errors)
        return model  # type: ignore[no-any-return]

    @property
    def model_fields_set(self) -> frozenset[str]:
        """The fields the document gave (the rest took their defaults)."""
        fields_set: frozenset[str] = self.__dict__.get("__schema_set__", frozenset())
        return fields_set

    def model_dump(
        self, *, mode: Literal["python", "json"] = "python", exclude_unset: bool = False
    ) -> dict[str, Any]:
        """The fields as plain data (nested models as dicts); `json` makes paths and enums text
        and tuples lists."""
        names = self.model_fields_set if exclude_unset else type(self).__schema_fields__
        return {
            n: _dump(self.__dict__[n], mode, exclude_unset)
            for n in type(self).__schema_fields__
            if n in names
        }

    def model_copy(self: _T, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> _T:
        """A copy with `update`'s fields in place (not validated: the caller's values are)."""
        model = object.__new__(type(self))
        state = copy.deepcopy(self.__dict__) if deep else dict(self.__dict__)
        if update:
            state.update(update)
            given: frozenset[str] = state.get("__schema_set__", frozenset())
            state["__schema_set__"] = given | frozenset(update)
        model.__dict__.update(state)
        return model

    if not TYPE_CHECKING:
        # Hidden from the checker, which would otherwise allow any attribute to be set.

        def __setattr__(self, name: str, value: Any) -> None:
            # Private attributes (`_wiring`) stay the model's own to set, as in pydantic.
            if type(self).model_config.get("frozen") and not name.startswith("_"):
                raise ValidationError(
                    type(self).__name__,
                    [error("frozen_instance", (name,), "Instance is frozen", value)],
                )
            object.__setattr__(self, name, value)

        def __delattr__(self, name: str) -> None:
            if type(self).model_config.get("frozen") and not name.startswith("_"):
                raise ValidationError(
                    type(self).__name__,
                    [error("frozen_instance", (name,), "Instance is frozen", None)],
                )
            object.__delattr__(self, name)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        fields = type(self).__schema_fields__
        return all(self.__dict__[n] == other.__dict__[n] for n in fields)

    def __hash__(self) -> int:
        if not type(self).model_config.get("frozen"):
            raise TypeError(f"unhashable type: {type(self).__name__!r}")
        return hash(
            (type(self), *(_hashable(self.__dict__[n]) for n in type(self).__schema_fields__))
        )

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={self.__dict__[n]!r}" for n in type(self).__schema_fields__)
        return f"{type(self).__name__}({shown})"

    def __copy__(self: _T) -> _T:
        return self.model_copy()  # type: ignore[attr-defined, no-any-return]


def _hashable(value: Any) -> Any:
    # A dict field (a device table) cannot be hashed; equal models still hash alike without it.
    try:
        hash(value)
    except TypeError:
        return type(value).__name__
    return value


def _dump(value: Any, mode: str, exclude_unset: bool) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode=mode, exclude_unset=exclude_unset)  # type: ignore[arg-type]
    if isinstance(value, dict):
        return {_dump(k, mode, False): _dump(v, mode, exclude_unset) for k, v in value.items()}
    if isinstance(value, tuple | list):
        items = [_dump(v, mode, exclude_unset) for v in value]
        return items if mode == "json" or isinstance(value, list) else tuple(items)
    if mode == "json":
        if isinstance(value, Enum):
            return value.value
        if isinstance(value, Path):
            return str(value)
    return value


class TypeAdapter(typing.Generic[_T]):
    """Validation of a value of type `T` outside any model."""

    def __init__(self, tp: Any) -> None:
        self._tp = tp
        self._validate: Validator | None = None

    def validate_python(self, value: Any) -> _T:
        """`value` as a valid T; ValidationError otherwise."""
        if self._validate is None:
            self._validate = build(self._tp, Constraints(finite=False))
        errors: list[ErrorDetails] = []
        result = self._validate(value, (), errors)
        if errors:
            raise ValidationError(str(self._tp), errors)
        return result  # type: ignore[no-any-return]
