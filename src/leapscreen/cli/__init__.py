"""The `leapscreen` command line: data, simulate, fit, predict, evaluate, explain, inspect, demo."""

from __future__ import annotations

import os
import sys

# torch/OpenMP threads spin-wait by default and stall badly when another process shares the cores;
# passive waiting must be chosen before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer
import typer.core
from rich.markup import escape

from leapscreen._version import __version__
from leapscreen.cli._common import err_console
from leapscreen.cli.data import app as data_app
from leapscreen.cli.evaluate import evaluate_command
from leapscreen.cli.explain import explain_command
from leapscreen.cli.inspect import inspect_command
from leapscreen.cli.model import demo_command, fit_command, predict_command
from leapscreen.cli.simulate import simulate_command
from leapscreen.errors import LeapscreenError

_display_type_rich = typer.core.TyperOption.display_type_rich


def _no_flag_metavar(self: typer.core.TyperOption, ctx: object) -> str | None:
    """Flags (``--overwrite``, ``--quiet``, ``--help``) take no value: show no ``<bool>`` in help."""
    if getattr(self, "is_flag", False):
        return None
    return _display_type_rich(self, ctx)


typer.core.TyperOption.display_type_rich = _no_flag_metavar  # type: ignore[method-assign]

app = typer.Typer(
    name="leapscreen",
    help="Predict how unscreened cancer models respond to gene knock-outs and drugs, with LEAP.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"leapscreen {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """leapscreen: LEAP (Layered Ensemble of Autoencoders and Predictors) for perturbation screens."""


app.add_typer(data_app, name="data", help="Inspect screen data files.")
app.command("simulate")(simulate_command)
app.command("fit")(fit_command)
app.command("predict")(predict_command)
app.command("evaluate")(evaluate_command)
app.command("explain")(explain_command)
app.command("inspect")(inspect_command)
app.command("demo")(demo_command)


def main() -> None:
    """Console-script entry point: leapscreen's own errors never show a traceback."""
    try:
        app()
    except LeapscreenError as exc:
        err_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)
