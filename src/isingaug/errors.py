"""Errors a user can act on: the CLI prints the message and exits non-zero, with no traceback."""


class IsingaugError(Exception):
    """Base of the errors that are the user's to fix (bad config, bad data)."""


class ConfigError(IsingaugError, ValueError):
    """A config value is outside what is allowed; the message names the key and what is allowed."""


class DataError(IsingaugError, ValueError):
    """An input file is missing, unreadable or holds values that are not spin patterns."""
