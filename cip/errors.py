"""Errors meant for the user: each says what is wrong and how to fix it."""

from __future__ import annotations


class CipError(Exception):
    """An error the CLI prints as a one-line message (no traceback) and exits non-zero."""

    exit_code = 2

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(message if not fix else f"{message}\n  fix: {fix}")


class SourceFileError(CipError):
    """A whole source file cannot be ingested (unreadable, missing required column, ...)."""

    def __init__(self, path: object, problem: str, *, fix: str | None = None) -> None:
        super().__init__(f"{path}: {problem}", fix=fix)


class MissingInputError(CipError):
    """A stage's input does not exist yet (e.g. profiles before identity)."""


class LakeBusyError(CipError):
    """Another process is writing to the same lake."""


class UnknownNameError(CipError, KeyError):
    """A name that is not one of the known ones (a FeatureService, a model…); the message lists
    them. Also a ``KeyError``, for callers that look names up."""

    def __str__(self) -> str:  # not KeyError's quoted repr
        return Exception.__str__(self)
