"""What hal.schema promises beyond pydantic's messages (test_schema_parity.py checks those):
frozen models, private attributes, copies, dumps, and validation that waits for first use."""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path
from typing import Annotated

import pytest

from hal.schema import (
    BaseModel,
    ConfigDict,
    CustomError,
    Field,
    InitErrorDetails,
    PrivateAttr,
    StrictStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Probe(BaseModel):
    model_config = STRICT
    stale_s: float = Field(default=5.0, gt=0, le=60)
    port: Path | None = Field(default=None, strict=False)


class Unit(BaseModel):
    model_config = STRICT
    id: str = Field(pattern=r"^[a-z]+$")
    probe: Probe = Probe()
    later: Later | None = None  # declared below: models resolve their annotations on first use
    _cache: dict[str, int] = PrivateAttr(default_factory=dict)


class Later(BaseModel):
    model_config = STRICT
    n: int = 0


def test_a_valid_document_becomes_a_frozen_model_with_its_private_state() -> None:
    unit = Unit.model_validate({"id": "abc", "probe": {"port": "/dev/ttyUSB0"}, "later": {}})
    assert unit.probe.port == Path("/dev/ttyUSB0")
    assert unit.later == Later(n=0)
    with pytest.raises(ValidationError, match="Instance is frozen"):
        unit.id = "other"
    unit._cache["k"] = 1  # private state is the model's own to keep
    assert Unit.model_validate({"id": "abc"})._cache == {}


def test_every_problem_is_reported_at_its_location_in_one_error() -> None:
    with pytest.raises(ValidationError) as caught:
        Unit.model_validate({"id": "ABC", "probe": {"stale_s": 0, "x": 1}, "later": {"n": "2"}})
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [
        (("id",), "string_pattern_mismatch"),
        (("probe", "stale_s"), "greater_than"),
        (("probe", "x"), "extra_forbidden"),
        (("later", "n"), "int_type"),
    ]
    assert str(caught.value).startswith("4 validation errors for Unit\nid\n  String should match")


def test_a_copy_with_updates_counts_them_as_set_and_dumps_only_what_was_set() -> None:
    unit = Unit.model_validate({"id": "abc"})
    copy = unit.model_copy(update={"later": Later(n=3)})
    assert copy.later == Later(n=3)
    assert unit.later is None
    assert copy.model_dump(exclude_unset=True) == {"id": "abc", "later": {"n": 3}}
    assert unit.model_dump(mode="json")["probe"] == {"stale_s": 5.0, "port": None}
    assert Unit.model_validate(copy.model_dump()) == copy
    assert hash(copy) == hash(Unit.model_validate(copy.model_dump()))


def test_a_model_built_by_keywords_is_validated_too() -> None:
    assert Probe(stale_s=2).stale_s == 2.0
    with pytest.raises(ValidationError, match="less than or equal to 60"):
        Probe(stale_s=61)


def test_a_type_outside_any_model_and_problems_found_by_hand() -> None:
    name: TypeAdapter[str] = TypeAdapter(Annotated[StrictStr, Field(min_length=1, max_length=3)])
    assert name.validate_python("ab") == "ab"
    with pytest.raises(ValidationError, match="at most 3 characters"):
        name.validate_python("abcd")
    error = ValidationError.from_exception_data(
        "Recipe",
        [InitErrorDetails(type=CustomError("recipe", "{what} twice", {"what": "f"}), loc=("a",))],
    )
    assert error.errors()[0]["msg"] == "f twice"
    assert error.errors()[0]["type"] == "recipe"


def test_a_document_that_is_not_a_table_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="valid dictionary or instance of Unit"):
        Unit.model_validate(["id", "abc"])


def test_a_lone_surrogate_is_refused_in_any_string() -> None:
    # JSON may carry "\ud800"; no journal, log or topic can hold it. pydantic refuses it only
    # where a length or pattern applies; here every string does.
    class Named(BaseModel):
        name: str = ""

    with pytest.raises(ValidationError, match="unable to parse raw data as a unicode string"):
        Named.model_validate({"name": "a\ud800"})


def test_a_frozen_model_takes_no_new_attribute_and_loses_none() -> None:
    probe = Probe()
    with pytest.raises(ValidationError, match="Instance is frozen"):
        probe.spare = 1  # type: ignore[attr-defined]
    with pytest.raises(ValidationError, match="Instance is frozen"):
        del probe.stale_s
    assert probe.stale_s == 5.0


def test_a_subclass_validator_of_the_same_name_replaces_its_parents() -> None:
    calls: list[str] = []

    class Base(BaseModel):
        n: int = 0

        @field_validator("n")
        @classmethod
        def _n(cls, n: int) -> int:
            calls.append("base")
            return n

    class Derived(Base):
        @field_validator("n")
        @classmethod
        def _n(cls, n: int) -> int:
            calls.append("derived")
            return n + 1

    assert Derived.model_validate({"n": 1}).n == 2
    assert calls == ["derived"]


def _every_model() -> list[type[BaseModel]]:
    root = Path(__file__).resolve().parents[2]
    for package in ("hal", "unit_controller"):
        for path in sorted((root / package).rglob("*.py")):
            if "from hal.schema import" in path.read_text(encoding="utf-8"):
                module = ".".join(path.relative_to(root).with_suffix("").parts)
                importlib.import_module(module)
    found: list[type[BaseModel]] = []
    pending = list(BaseModel.__subclasses__())
    while pending:
        model = pending.pop()
        found.append(model)
        pending.extend(model.__subclasses__())
    return [m for m in found if m.__module__.startswith(("hal.", "unit_controller."))]


def test_every_model_the_unit_declares_builds_its_validators() -> None:
    # Validators are built on first use: a declaration they cannot apply would otherwise fail
    # the first time a unit reads that model, not here.
    models = _every_model()
    assert len(models) > 50
    for model in models:
        model.model_rebuild()


def test_a_declaration_that_would_check_nothing_is_refused_when_built() -> None:
    class Misspelt(BaseModel):
        count: int = 0

        @field_validator("cuont")
        @classmethod
        def _count(cls, count: int) -> int:
            return count

    class NoSuchBound(BaseModel):
        on: bool = Field(default=False, ge=0)

    class TableBounds(BaseModel):
        caps: dict[str, float] = Field(default_factory=dict, max_length=3)

    for model in (Misspelt, NoSuchBound, TableBounds):
        with pytest.raises(TypeError):
            model.model_rebuild()


def test_defaults_as_pydantic_takes_them() -> None:
    class Base(BaseModel):
        needed: int = Field(..., ge=0)
        table: dict[str, int] = {}  # noqa: RUF012 - as a model default it is copied, not shared
        level: int = 1
        _cache: dict[str, int] = PrivateAttr(default_factory=dict)
        _unset: int = PrivateAttr()

    class Child(Base):
        level = 2

    with pytest.raises(ValidationError, match="Field required"):
        Base.model_validate({})
    first, second = Child(needed=1), Child(needed=2)
    assert first.level == 2
    assert first.table is not second.table
    assert not hasattr(first, "_unset")


def test_an_error_is_picklable_and_its_text_stays_short() -> None:
    class Needs(BaseModel):
        need: int

    document = {f"key{i}": i for i in range(10_000)}  # the input of its one `missing` problem
    with pytest.raises(ValidationError) as caught:
        Needs.model_validate(document)
    text = str(caught.value)
    assert len(text) < 2_000
    again = pickle.loads(pickle.dumps(caught.value))
    assert again.errors() == caught.value.errors()
    assert CustomError("x", "use {braces} for {what}", {"what": "sets"}).message() == (
        "use {braces} for sets"
    )


def test_validators_written_as_pydantic_allows() -> None:
    class Loose(BaseModel):
        a: int = 0
        b: int = 0

        @field_validator("a")
        def _a(cls, a: int) -> int:  # a classmethod without saying so, as pydantic allows
            return a * 10

        @field_validator("b", mode="before")
        @classmethod
        def _b(cls, b: object, info: ValidationInfo) -> object:
            return info.data["a"] if b == "same" else b

    assert Loose.model_validate({"a": 1, "b": "same"}).b == 10
    with pytest.raises(ValidationError, match="at least 1 item"):
        TypeAdapter(Annotated[tuple[int, ...], Field(min_length=1)]).validate_python(())
