"""User-facing error types.

Errors that derive from :class:`IsoepsError` are the fault of an input (a config value, a
file, a flag). The CLI prints them as one line naming the culprit and exits with code 2,
never with a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class IsoepsError(Exception):
    """Base class for errors caused by bad input rather than by a bug."""


class ConfigError(IsoepsError, ValueError):
    """A suite, method config or CLI value is invalid. The message names the field."""


class DataError(IsoepsError, ValueError):
    """A dataset file, folder or field is missing or malformed. The message names it."""


class MissingWeightsError(IsoepsError, FileNotFoundError):
    """Model weights that must be local were not found. The message lists where we looked."""


class PrivacyError(IsoepsError, RuntimeError):
    """A privacy rule would be broken (e.g. a cell whose epsilon exceeds its target)."""


class UnknownNameError(ConfigError, KeyError):
    """A registry lookup failed. The message lists the known names."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""
