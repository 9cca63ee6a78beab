"""The exceptions of campfire (reference: "Error handling").

Every exception derives from :class:`CampfireError` and from the builtin that
describes its kind, so ``except ValueError`` also catches bad parameters.
"""
from __future__ import annotations

__all__ = [
    "CampfireError",
    "AuthenticationError",
    "NotFoundError",
    "DownloadError",
    "ValidationError",
    "APIError",
    "FileFormatError",
    "ImagingError",
    "CampfireWarning",
    "StackRangeWarning",
    "PartialFailureWarning",
]


class CampfireError(Exception):
    """Base class of every campfire error."""


class AuthenticationError(CampfireError, PermissionError):
    """Invalid or expired credentials. The message says how to log in again."""


class NotFoundError(CampfireError, LookupError):
    """An object, spectrum or file that does not exist (or is not visible to you)."""


class DownloadError(CampfireError, OSError):
    """A file could not be downloaded or written; nothing half-written is left."""


class ValidationError(CampfireError, ValueError):
    """Invalid parameters. The message names the parameter and what is allowed."""


class APIError(CampfireError, RuntimeError):
    """The server answered with an unexpected error (after retries)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class FileFormatError(CampfireError, ValueError):
    """A file that is not a readable spectrum in a supported format (names what was expected)."""


class ImagingError(CampfireError, OSError):
    """An archive's imaging cannot be read: a corrupt index or shutters file, or an object
    store that cannot be reached. The message names the file or URL."""


class CampfireWarning(UserWarning):
    """Base class of campfire's warnings: something worked, but not quite as you may think."""


class StackRangeWarning(CampfireWarning):
    """A stack's grid leaves out wavelengths its inputs cover (the message names them and
    how to keep them: ``wavelength_grid='union'``)."""


class PartialFailureWarning(CampfireWarning):
    """Some spectra failed and were left out; the rest of the result is complete.

    Issued when a lazy collection computed with ``errors='record'`` (the default) had
    failures. The message counts them and names the first few with their step and
    reason; the result holds a :class:`~campfire.tasks.batch.Failure` in place of each
    failed element, and a population stack lists them in ``meta['excluded']``.
    """
