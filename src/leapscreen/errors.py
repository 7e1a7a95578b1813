"""Errors that reach users: each names the file, the problem and the fix."""

from __future__ import annotations

from pathlib import Path


class LeapscreenError(Exception):
    """Base class of every error leapscreen raises on purpose."""


class InputError(LeapscreenError, ValueError):
    """Bad user input: says which file (and column), what is wrong, and what to do.

    Parameters
    ----------
    problem : str
        What is wrong, in one sentence.
    path : str or Path, optional
        The file (or directory) the problem was found in.
    column : str, optional
        The column concerned, where there is one.
    fix : str, optional
        What the user can do about it.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | Path | None = None,
        column: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.path = None if path is None else str(path)
        self.column = column
        self.fix = fix
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.path is not None:
            where.append(f"file '{self.path}'")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        head = (", ".join(where) + ": ") if where else ""
        text = head + self.problem
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


class ModelFormatError(LeapscreenError, ValueError):
    """A model directory that is damaged, foreign, or of an unknown format version."""
