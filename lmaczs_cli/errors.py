"""Exceptions that the CLI turns into one-line messages and exit codes."""

from __future__ import annotations


class LmaczsError(Exception):
    """Base class for errors reported to the user without a traceback."""

    exit_code = 1


class UsageError(LmaczsError):
    """Bad flag, missing checkpoint, unreadable data root: exit code 2."""

    exit_code = 2


class AudioError(LmaczsError):
    """An audio input could not be used; the message names the file and the reason."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class RandomWeightsWarning(UserWarning):
    """A model was built with random weights (Python callers see this; the CLI reports it as one line)."""
