"""Error types that carry what a person needs to act on them."""

from __future__ import annotations


class UnitControllerError(Exception):
    """Base of the controller's own errors."""


class ConfigError(UnitControllerError):
    """The config file cannot be used; `problems` lists each as 'location: message'."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class RecipeError(UnitControllerError):
    """A recipe cannot be run on this unit; `problems` lists each as 'location: message'."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class CommandRefused(UnitControllerError):
    """A command is not allowed now; the message says why."""
