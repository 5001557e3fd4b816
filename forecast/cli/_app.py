"""The ``forecast`` typer app and its one error exit; command modules register on it."""

from __future__ import annotations

import errno
import os
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from forecast._version import __version__
from forecast.cli import _console as console
from forecast.errors import ForecastError

class _Commands(TyperGroup):
    """Every command's last line of defence: an operating-system error (a file where a folder
    should be, no permission, a full disk) or a toolkit error no command caught ends in one
    line and exit status 2, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ForecastError as error:
            fail(error)
        except OSError as error:
            fail(ForecastError(_os_message(error)))


def _os_message(error: OSError) -> str:
    where = " -> ".join(str(f) for f in (error.filename, error.filename2) if f)
    what = error.strerror or str(error) or type(error).__name__
    if error.errno == errno.ENOSPC:
        what += "; nothing was left half-written where the toolkit could prevent it: free space and run again"
    elif isinstance(error, FileExistsError | NotADirectoryError):
        what += " (a file stands where a folder is needed: give another --out, or remove the file)"
    return f"{where}: {what}" if where else what


app = typer.Typer(
    cls=_Commands,
    name="forecast",
    help="Forecast internal displacement per sub-national area from DTM-style data.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
# MLflow draws a progress bar per downloaded artifact; the gate and the card read dozens
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _version(value: bool) -> None:
    if value:
        console.out.print(f"displacement-forecast {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Forecast internal displacement per sub-national area from DTM-style data.

    Verbs: `ingest` reads raw files into a validated cube; `info` summarises a cube;
    `backtest` compares models against baselines on rolling origins (logged to MLflow);
    `train` fits a model on all data and logs it; `predict` forecasts with a trained model;
    `demo` runs the whole pipeline on the shipped Somalia sample.
    """


def command_group(name: str, help: str) -> typer.Typer:
    """A group of subcommands (``forecast audit ...``), shown as the main app shows its commands."""
    return typer.Typer(name=name, help=help, no_args_is_help=True, add_completion=False, rich_markup_mode=None)


LogOpt = Annotated[str | None, typer.Option(
    "--log", help="The audit log: a JSON Lines file, or mlflow:audit for the team's shared log on the tracking "
                  "server [default: mlflow:audit when the tracking URI is a server, else ethics/audit.log.jsonl].",
    show_default=False)]
TrackingOpt = Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI (default: "
                                                 "MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here).")]


def open_log(log: str | None, tracking_uri: str | None = None, **options):
    """The :class:`~forecast.ethics.AuditLog` that ``--log`` names (see ``LogOpt``)."""
    from forecast.tracking import open_audit_log

    return open_audit_log(log, tracking_uri=tracking_uri, **options)


def fail(error: ForecastError) -> None:
    """Print a toolkit error without a traceback and exit with status 2."""
    console.err.print(f"[bold red]error:[/] {error}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)
