"""Exception and warning types users can catch.

Every file the toolkit cannot use at all raises :class:`UnusableFileError`; the command line
prints its message without a traceback and exits with status 2. Problems with single rows
never raise: those rows go to the quarantine table with a reason.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "ForecastError",
    "UnusableFileError",
    "IdentifyingDataError",
    "CubeError",
    "DataQualityWarning",
]


class ForecastError(Exception):
    """Base class of the toolkit's own errors."""


class UnusableFileError(ForecastError, ValueError):
    """A file cannot be used at all: wrong format, empty, binary, or a required column missing.

    Parameters
    ----------
    path : str or Path
        The file at fault; the message starts with it.
    problem : str
        What is wrong, in words a user can act on.
    hint : str, optional
        How to fix it.
    """

    def __init__(self, path: str | Path, problem: str, hint: str | None = None):
        self.path = str(path)
        self.problem = problem
        self.hint = hint
        message = f"{self.path}: {problem}"
        if hint:
            message += f"\n  hint: {hint}"
        super().__init__(message)


class IdentifyingDataError(UnusableFileError):
    """A file has columns that identify people (names, phone numbers, IDs, household GPS).

    The toolkit refuses such files unless the user explicitly drops those columns, so that no
    personal data ever enters a cube, an MLflow run or a report.
    """

    def __init__(self, path: str | Path, columns: dict[str, str]):
        self.columns = dict(columns)
        listed = ", ".join(f"'{c}' ({why})" for c, why in self.columns.items())
        flags = " ".join(f"--drop-column '{c}'" for c in self.columns)
        super().__init__(
            path,
            f"refused: column(s) that identify people: {listed}",
            hint=f"remove them from the file, or drop them explicitly on ingest: {flags} "
            "(Python: drop_columns=[...]); the manifest records what was dropped",
        )


class CubeError(ForecastError, ValueError):
    """Inputs that are each valid cannot be combined into one cube (e.g. overlapping sources)."""


class DataQualityWarning(UserWarning):
    """Something in the data deserves a look but did not stop the run."""
