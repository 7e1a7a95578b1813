"""What every command shares: consoles, error handling (no tracebacks for bad input), progress."""

from __future__ import annotations

import functools
import logging
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


def setup_logging(quiet: bool) -> None:
    level = logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
    logging.getLogger("leapscreen").setLevel(level)


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

        def advance(message: str = "", done: int | None = None, total_: int | None = None) -> None:
            if total_ is not None:
                progress.update(task, total=total_)
            if done is None:
                progress.advance(task)
            else:
                progress.update(task, completed=done)
            progress.update(task, info=message)

        yield advance
