# The models subclass a library passed in as a value: mypy cannot see their base.
# mypy: disable-error-code="misc, untyped-decorator"
"""hal.schema against pydantic, the library it stands in for on the unit: the same declarations
validate the same documents to the same values, or refuse them with the same problems (type,
location, message). pydantic is a test dependency only: the oracle.

No `from __future__ import annotations` here: the models are declared inside a function, once
per library, and their annotations must be evaluated where they are written.
"""

import math
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hal.schema


class Function(StrEnum):
    CONTACTOR = "contactor"
    AGITATOR = "agitator"


def one_line(text: str) -> str:
    if "\n" in text:
        raise ValueError("must be one line")
    return text


def declare(lib: Any) -> tuple[Any, Any]:
    """The same models, written against `lib` (pydantic or hal.schema)."""
    strict = lib.ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)
    lax = lib.ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    class Probe(lib.BaseModel):
        model_config = strict
        kind: Literal["probe"]
        stale_s: float = lib.Field(default=5.0, gt=0, le=60)
        port: str | None = lib.Field(default=None, min_length=1)

    class Coil(lib.BaseModel):
        model_config = strict
        kind: Literal["coil"]
        function: Function = lib.Field(strict=False)
        relay: int = lib.Field(default=0, ge=0, le=255)

        @lib.model_validator(mode="after")
        def _relay_for_agitator(self) -> "Coil":
            if self.function is Function.AGITATOR and self.relay == 0:
                raise ValueError("an agitator needs a relay other than 0")
            return self

    class Unit(lib.BaseModel):
        model_config = strict
        name: str = lib.Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=8)
        ratio: float = lib.Field(default=0.5, gt=0, le=1)
        count: int = lib.Field(default=1, ge=1, le=100)
        on: bool = False
        mode: Literal["mock", "serial"] = "mock"
        baud: Literal[9600, 19200] = 9600
        path: Path | None = lib.Field(default=None, strict=False)
        tags: tuple[str, ...] = lib.Field(default=(), strict=False, max_length=3)
        pair: tuple[float, float] = lib.Field(default=(0.0, 1.0), strict=False)
        maybe: float | None = lib.Field(default=None, ge=0)
        devices: dict[
            Annotated[str, lib.Field(pattern=r"^[A-Z]+-[0-9]{2}$")],
            Annotated[Probe | Coil, lib.Field(discriminator="kind")],
        ] = lib.Field(default_factory=dict)
        limits: dict[str, Annotated[float, lib.Field(gt=0, le=10)]] = lib.Field(
            default_factory=dict
        )
        note: Annotated[str, lib.AfterValidator(one_line)] | None = lib.Field(
            default=None, min_length=1, max_length=5
        )

        @lib.field_validator("count")
        @classmethod
        def _not_thirteen(cls, count: int, info: Any) -> int:
            if count == 13 and info.data.get("ratio") == 0.5:
                raise ValueError("13 at the default ratio")
            return count

    class Step(lib.BaseModel):
        model_config = lax
        x: float = lib.Field(strict=True, gt=0)
        n: int = 1
        b: bool = False
        s: str = lib.Field(default="", max_length=5)
        e: Function | None = None

    class Recipe(lib.BaseModel):
        model_config = lax
        name: str
        steps: tuple[Step, ...] = lib.Field(default=(), max_length=4)
        ident: Annotated[int, lib.Strict()] | Annotated[str, lib.Strict()] | None = None

    return Unit, Recipe


# Deterministic in the suite; a longer sweep: SCHEMA_PARITY_EXAMPLES=20000 .venv/bin/pytest
# tests/hal/test_schema_parity.py (the same examples for the same count).
SWEEP = settings(
    max_examples=int(os.environ.get("SCHEMA_PARITY_EXAMPLES", "400")),
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PYDANTIC = declare(pydantic)
SCHEMA = declare(hal.schema)

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-300, max_value=300),
    st.sampled_from([0, 1, 2, 13, 60, 61, 255, 256, 9600, 19200]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 0.5, 1.0, 1.5, 60.0, 60.5, -0.0, math.inf, math.nan]),
    st.text(max_size=10),
    st.sampled_from(["", "ab", "a-1", "Ab", "mock", "serial", "yes", "off", "1", "2.5", "x1"]),
    st.sampled_from(["ab\n", "TT-01\n", "mock\n", " 1", "1_000", "0x1", "1.0", "1.", "1e3"]),
    st.sampled_from(["\u0663", "Infinity", "-0", "1__0", " true ", "TRUE", "on"]),
    # Not lone surrogates ("\ud800"): hal.schema refuses them in every string, pydantic only
    # where a length or a pattern applies (test_schema.py).
    st.sampled_from(["\u00a05", "5\u2003", "ab\ncd", "abcdef"]),
    st.sampled_from([10**400, -(10**30), 9600.0, 19200.0, 2.0**63, 1e300]),
    st.sampled_from(["contactor", "agitator", "probe", "coil", "TT-01", "/dev/tty"]),
)


def _nested(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(["kind", "stale_s", "port", "function", "relay", "x", "zz", "TT-01"])
    return st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=4))


VALUES = st.recursive(SCALARS, _nested, max_leaves=12)
DEVICE = st.fixed_dictionaries(
    {"kind": st.sampled_from(["probe", "coil", "valve"])},
    optional={
        "stale_s": SCALARS,
        "port": SCALARS,
        "function": SCALARS,
        "relay": SCALARS,
        "spare": SCALARS,
    },
)
UNIT_DOC = st.dictionaries(
    st.sampled_from(
        [
            "name",
            "ratio",
            "count",
            "on",
            "mode",
            "baud",
            "path",
            "tags",
            "pair",
            "maybe",
            "devices",
            "limits",
            "note",
            "unknown",
        ]
    ),
    st.one_of(
        VALUES,
        st.dictionaries(st.sampled_from(["TT-01", "XV-02", "bad", "A-1"]), DEVICE, max_size=3),
    ),
    max_size=8,
)
STEP = st.dictionaries(st.sampled_from(["x", "n", "b", "s", "e", "zz"]), SCALARS, max_size=5)
RECIPE_DOC = st.dictionaries(
    st.sampled_from(["name", "steps", "ident", "other"]),
    st.one_of(SCALARS, st.lists(st.one_of(STEP, SCALARS), max_size=6)),
    max_size=4,
)


def outcome(model: Any, error_type: type[Exception], document: Any) -> Any:
    """The dumped model, or each problem as (type, location, message)."""
    try:
        return ("valid", _normal(model.model_validate(document).model_dump()))
    except error_type as exc:
        found = exc.errors(include_url=False)  # type: ignore[attr-defined]
        return ("refused", [(e["type"], e["loc"], e["msg"], repr(e["input"])) for e in found])


def _normal(value: Any) -> Any:
    # NaN is never equal to itself; both libraries refuse it here, so it only shows in inputs.
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return type(value)(_normal(v) for v in value)
    return value


@SWEEP
@given(UNIT_DOC)
def test_a_strict_closed_model_agrees_with_pydantic(document: dict[str, Any]) -> None:
    ours = outcome(SCHEMA[0], hal.schema.ValidationError, document)
    theirs = outcome(PYDANTIC[0], pydantic.ValidationError, document)
    assert ours == theirs


@SWEEP
@given(RECIPE_DOC)
def test_a_lax_model_of_nested_models_agrees_with_pydantic(document: dict[str, Any]) -> None:
    ours = outcome(SCHEMA[1], hal.schema.ValidationError, document)
    theirs = outcome(PYDANTIC[1], pydantic.ValidationError, document)
    assert ours == theirs


@pytest.mark.parametrize(
    "document",
    [
        {"name": "u1", "count": 13},
        {"name": "u1", "devices": {"XV-02": {"kind": "coil", "function": "agitator"}}},
        {"name": "u1", "devices": {"XV-02": {"kind": "coil", "function": "valve"}, "x": 3}},
        {"name": "u1", "tags": ["a", "b", "c", "d"], "pair": [1]},
        {"name": "u1", "pair": [1, 2, 3], "ratio": "0.5", "on": 1},
        {"name": "toolongname", "maybe": -1, "limits": {"a": 11, "b": 0}},
        {"name": "u1\n", "devices": {"TT-01\n": {"kind": "probe"}}},
    ],
)
def test_the_problems_people_make_read_as_pydantic_reads_them(document: dict[str, Any]) -> None:
    ours = outcome(SCHEMA[0], hal.schema.ValidationError, document)
    theirs = outcome(PYDANTIC[0], pydantic.ValidationError, document)
    assert ours == theirs
    assert ours[0] == "refused"
