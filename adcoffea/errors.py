"""Exceptions for user-facing errors.

The CLI prints these as one clear message (no traceback); anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


class AdcoffeaError(Exception):
    """Base class for errors caused by user input (files, configs, options)."""


class ConfigError(AdcoffeaError):
    """A configuration file or option is invalid; the message names the key."""


class InputFileError(AdcoffeaError):
    """An input file is missing, unreadable, or lacks a required branch.

    Attributes:
        path: the offending file.
        reason: a short human-readable reason.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self):
        # process pools and dask pickle exceptions: rebuild from (path, reason), not args
        return (type(self), (self.path, self.reason))


class ModelBundleError(AdcoffeaError):
    """A model bundle is missing, tampered with, or does not match the inputs."""
