"""Every exception adcoffea raises on purpose, in one module.

Two families, told apart by what the command line does with them:

* :class:`AdcoffeaError` and its subclasses are *expected* failures: bad user input (a
  config key, a file, an option) or a result the input does not allow (a limit that cannot
  be bracketed). The CLI prints their message, which names the file/key, without a
  traceback.
* :class:`InternalError` (a ``RuntimeError``) is a broken invariant of adcoffea itself, i.e.
  a bug: it is never caught and keeps its traceback.

Example:
    >>> err = InputFileError("data.root", "no tree 'Events'")
    >>> str(err), isinstance(err, AdcoffeaError)
    ("data.root: no tree 'Events'", True)
    >>> issubclass(InternalError, AdcoffeaError), issubclass(InternalError, RuntimeError)
    (False, True)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AdcoffeaError",
    "BumpHunterError",
    "ChunkReadError",
    "ConfigError",
    "InputFileError",
    "InputTimeoutError",
    "InternalError",
    "LimitError",
    "ModelBundleError",
]


class AdcoffeaError(Exception):
    """Base class of the expected failures, reported by the CLI as one message.

    Raised (as a subclass) when user input is invalid or does not allow the requested
    result; never for a bug in adcoffea (that is :class:`InternalError`).
    """


class ConfigError(AdcoffeaError):
    """Raised when a configuration file or option is invalid; the message names the key."""


class InputFileError(AdcoffeaError):
    """Raised when an input file is missing, unreadable, or lacks a required branch.

    Attributes:
        path: the offending file.
        reason: a short human-readable reason.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        # process pools and dask pickle exceptions: rebuild from (path, reason), not args
        return (type(self), (self.path, self.reason))


class ChunkReadError(InputFileError):
    """Raised when an entry range of a file cannot be read (strict mode stops the run).

    Picklable (see :class:`InputFileError`), so it crosses process pools and dask.
    """


class ModelBundleError(AdcoffeaError):
    """Raised when a model bundle is missing, tampered with, or does not match the inputs."""


class InputTimeoutError(InputFileError):
    """Raised when opening an input file takes longer than the pre-flight timeout
    (an unreachable host?)."""


class BumpHunterError(AdcoffeaError, ValueError):
    """Raised on invalid BumpHunter input: mismatched shapes or edges, bad widths, empty
    background."""


class LimitError(AdcoffeaError):
    """Raised when a CLs upper limit cannot be computed from a workspace.

    CLs does not cross the requested level inside the allowed signal-strength range, or the
    scan fails inside it. The statistics stage records the failure per signal point and
    carries on with the others.

    Attributes:
        result: what the computation reached before failing (e.g. the bracket in mu), or
            ``None``.
    """

    def __init__(self, message: str, *, result: Any = None) -> None:
        super().__init__(message)
        self.result = result

    def __reduce__(self) -> tuple[Any, ...]:
        return (_limit_error, (str(self), self.result))


def _limit_error(message: str, result: Any) -> LimitError:
    return LimitError(message, result=result)


class InternalError(RuntimeError):
    """Raised when an internal invariant of adcoffea is broken (a bug, not bad input).

    For example the event accounting of a run does not close. Never caught by the CLI, so
    the traceback is kept.
    """
