"""Errors a user can act on: the CLI prints the message and exits non-zero, with no traceback."""

from __future__ import annotations

import numbers
from collections.abc import Iterable


class IsingaugError(Exception):
    """Base of the errors that are the user's to fix (bad config, bad data)."""


class ConfigError(IsingaugError, ValueError):
    """A config value is outside what is allowed; the message names the key and what is allowed."""


class DataError(IsingaugError, ValueError):
    """An input file is missing, unreadable or holds values that are not spin patterns."""


class DivergenceError(IsingaugError):
    """A learned generator's loss, gradients or samples became NaN or infinite: its settings
    (usually the learning rate) are the user's to change. The CLI prints it and exits 2; in a
    sweep the job writes error.json and the sweep goes on."""


def is_int(value: object) -> bool:
    """An integer config value (numpy's included), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """A real-number config value (numpy's included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def option_error(key: str, allowed: str, value: object, context: str | None = None) -> ConfigError:
    """The one shape of a bad-option message: '[context: ]key must be allowed; got value'."""
    prefix = f"{context}: " if context else ""
    return ConfigError(f"{prefix}{key} must be {allowed}; got {value!r}")


def check_options(checks: Iterable[tuple[str, object, bool, str]],
                  context: str | None = None) -> None:
    """Raise for the first (key, value, ok, allowed) whose check failed."""
    for key, value, ok, allowed in checks:
        if not ok:
            raise option_error(key, allowed, value, context)
