"""``forecast export``: a trained model's forecasts and ranking as files people can publish (HXL, CSV, GeoJSON)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from forecast.cli import _console as console
from forecast.cli._app import app, fail
from forecast.errors import ForecastError


class ExportFormat(str, Enum):
    hxl = "hxl"
    csv = "csv"
    geojson = "geojson"


@app.command("export")
def export_command(
    run: Annotated[str, typer.Option("--run", help="MLflow run id of `forecast train --triggers ...`.")],
    fmt: Annotated[ExportFormat, typer.Option("--format", help="hxl (HXL hashtags on row 2; the forecasts ingest "
                                              "back with `forecast ingest --format hxl`), csv (the same without "
                                              "them) or geojson (the ranking drawn from --boundaries).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the files and metadata.json.")],
    trigger: Annotated[str | None, typer.Option(help="Trigger name (default: the model's first).")] = None,
    lead: Annotated[int | None, typer.Option(help="Lead time in months (default: 3 when the trigger has it).")] = None,
    boundaries: Annotated[Path | None, typer.Option("--boundaries", help="COD GeoJSON of the areas (needed for "
                                                    "--format geojson).")] = None,
    cube: Annotated[Path | None, typer.Option("--cube", help="Data to forecast from (default: the cube the "
                                              "model was trained on).")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy for small cells and admin levels "
                                                "(default: ethics/policy.yaml).")] = None,
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI.")] = None,
) -> None:
    """Write a trained model's forecasts and ranking from the data's last month, for publication.

    The forecasts: one row per area and forecast month (P-codes and names at each admin
    level, median, 80% interval, the month's probability of reaching the trigger's threshold,
    the threshold). The ranking: one row per area (rank, the window's probability, signal,
    expected over the window with its interval, status). Beside them metadata.json: the source
    datasets by name and hash, the model, run, release status, sensitivity, the policy, and the
    fields of an HDX resource. Counts of 1 to k-1 people are withheld; data finer than the
    sensitivity allows are refused; an unreleased model's files say NOT-RELEASED in their
    names and on every row.
    """
    from rich.status import Status

    from forecast.pipeline import export_run
    from forecast.policy import load_policy
    from forecast.report import NOT_RELEASED_MARK

    try:
        with Status("exporting...", console=console.err) as status:
            paths = export_run(run, fmt.value, out_dir, cube=cube, trigger=trigger, lead=lead, boundaries=boundaries,
                               policy=None if policy is None else load_policy(policy), tracking_uri=tracking_uri,
                               progress=lambda text: status.update(f"export: {text}..."))
    except ForecastError as error:
        fail(error)
    screen = console.out
    if any(NOT_RELEASED_MARK in p.name for p in paths):
        screen.print("[bold red]NOT RELEASED[/]: every file name and row says so; the model has not passed the "
                     "release gate", soft_wrap=True)
    for path in paths:
        screen.print(f"wrote {path}", soft_wrap=True, highlight=False, markup=False)
