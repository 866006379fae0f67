"""Validated models for what the unit reads from people (config, recipes, commands): the part of
pydantic's API this project uses, with pydantic's error types, locations and messages.

Why not pydantic itself: it cost the daemon 12.8 MB of its 44 MB and about a third of its
start-up (bench/RESULTS.md). Never imports `unit_controller`; never raises for bad input
anything but ValidationError.
"""

from hal.schema.errors import (
    CustomError,
    ErrorDetails,
    InitErrorDetails,
    ValidationError,
)
from hal.schema.model import (
    BaseModel,
    ConfigDict,
    Field,
    FieldInfo,
    PrivateAttr,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from hal.schema.types import (
    AfterValidator,
    Strict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

__all__ = [
    "AfterValidator",
    "BaseModel",
    "ConfigDict",
    "CustomError",
    "ErrorDetails",
    "Field",
    "FieldInfo",
    "InitErrorDetails",
    "PrivateAttr",
    "Strict",
    "StrictBool",
    "StrictFloat",
    "StrictInt",
    "StrictStr",
    "TypeAdapter",
    "ValidationError",
    "ValidationInfo",
    "field_validator",
    "model_validator",
]
