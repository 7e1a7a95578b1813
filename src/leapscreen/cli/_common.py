"""What every command shares: consoles, error handling (no tracebacks for bad input), progress."""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from leapscreen.errors import LeapscreenError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Turn leapscreen's own errors into a clear message on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LeapscreenError as exc:
            err_console.print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    """Python warnings as one clean line on stderr: no file name, no source line."""
    text = " ".join(str(message).split())
    err_console.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)


def setup_logging(quiet: bool, verbose: bool = False) -> None:
    """Warnings only by default (also with ``quiet``, which hides progress); INFO with ``verbose``.

    Python warnings are shown once each, as one line without the source line.
    """
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", force=True)
    logging.getLogger("leapscreen").setLevel(level)
    logging.captureWarnings(False)
    warnings.showwarning = _show_warning


@contextmanager
def progress_bar(quiet: bool, description: str, total: int) -> Iterator[Callable[..., None]]:
    """A rich progress bar; yields ``advance(message, done, total)``; silent when quiet."""
    if quiet:
        yield lambda *args, **kwargs: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=total, info="")
        columns: list[Any] = []  # the task of the heads' per-perturbation progress, once shown

        def inner(message: str, done: int, total_: int) -> None:
            """Per-perturbation progress of a head (PS-LightGBM, ...): a second bar."""
            if not columns:
                columns.append(progress.add_task("  perturbations", total=total_, info=""))
            progress.update(columns[0], total=total_, completed=done, info=message)

        def advance(message: str = "", done: int | None = None, total_: int | None = None) -> None:
            if total_ is not None:
                progress.update(task, total=total_)
            if done is None:
                progress.advance(task)
            else:
                progress.update(task, completed=done)
            progress.update(task, info=message)

        from leapscreen.heads._parallel import progress_callback

        with progress_callback(inner):
            yield advance
