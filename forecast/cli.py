"""The ``forecast`` command: a thin shell over the library (see ``forecast --help``)."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from forecast._version import __version__
from forecast.errors import ForecastError

app = typer.Typer(
    name="forecast",
    help="Forecast internal displacement per sub-national area from DTM-style data.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
# MLflow draws a progress bar per downloaded artifact; the gate and the card read dozens
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
out = Console()
err = Console(stderr=True)
if not out.is_terminal:  # piped (make demo, CI logs): rich assumes 80 columns, too few for tables
    out.width = max(out.width, 140)


class Format(str, Enum):
    dtm = "dtm"
    hxl = "hxl"
    flows = "flows"
    acled = "acled"
    table = "table"


class Level(str, Enum):
    low = "low"
    moderate = "moderate"
    high = "high"
    severe = "severe"


def _version(value: bool) -> None:
    if value:
        out.print(f"displacement-forecast {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Forecast internal displacement per sub-national area from DTM-style data.

    Verbs: `ingest` reads raw files into a validated cube; `info` summarises a cube;
    `backtest` compares models against baselines on rolling origins (logged to MLflow);
    `train` fits a model on all data and logs it; `predict` forecasts with a trained model.
    """


def _fail(error: ForecastError) -> None:
    err.print(f"[bold red]error:[/] {error}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Input files (CSV, XLSX or JSON).", show_default=False)],
    format: Annotated[list[Format], typer.Option("--format", "-f", help=(
        "Layout of the files: dtm (DTM baseline/mobility tracking), hxl (HXL-tagged DTM), "
        "flows (flow monitoring, e.g. PRMN), acled (conflict events), table (area-month "
        "covariates). Give it once for all files or once per file, in order."))],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for cube.nc, manifest.json and quarantine.csv.")],
    areas: Annotated[Path | None, typer.Option(help="Gazetteer: CSV (pcode,name,admin_level,parent_pcode) or COD boundary GeoJSON. Without it, areas are keyed by name.")] = None,
    aliases: Annotated[Path | None, typer.Option(help="CSV of spelling variants (alias,pcode).")] = None,
    attributes: Annotated[Path | None, typer.Option(help="Table of per-area attributes keyed by pcode or name (region, access, settlement, population, ...); each column becomes a coordinate on the cube's areas, usable as fairness groups.")] = None,
    columns: Annotated[Path | None, typer.Option(help="YAML extending the known column names (layout of forecast/io/columns.yaml).")] = None,
    drop_column: Annotated[list[str] | None, typer.Option("--drop-column", help="Drop this column before reading (repeatable); needed to ingest a file with identifying columns.")] = None,
    sensitivity: Annotated[Level | None, typer.Option(help="Override the assessed sensitivity level (needs --sensitivity-reason).")] = None,
    sensitivity_reason: Annotated[str | None, typer.Option(help="Why the sensitivity level is overridden; recorded in the manifest.")] = None,
    sheet: Annotated[str | None, typer.Option(help="Sheet to read in XLSX workbooks that have several.")] = None,
    lenient_hierarchy: Annotated[bool, typer.Option("--lenient-hierarchy", help="Keep rows whose admin2 lies outside the admin1 they name (default: quarantine them).")] = False,
) -> None:
    """Read raw files into a validated cube; every row is kept or quarantined with a reason.

    Writes OUT/cube.nc (NetCDF), OUT/manifest.json (lineage, row counts, sensitivity) and
    OUT/quarantine.csv (file, row, field, value, reason of every rejected row).
    Exit status 0 on success, 2 when a file cannot be used (the message names it).
    """
    from forecast.pipeline._ingest import ingest as run_ingest

    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                      TimeRemainingColumn(), console=err, transient=True) as bar:
            tasks: dict[str, int] = {}

            def progress(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(f"reading {name}", total=total)
                bar.update(tasks[name], completed=done)

            result = run_ingest(
                files, [f.value for f in format], areas=areas, aliases=aliases, attributes=attributes, columns=columns,
                drop_columns=drop_column or (), sensitivity=sensitivity.value if sensitivity else None,
                sensitivity_reason=sensitivity_reason, strict_hierarchy=not lenient_hierarchy, sheet=sheet,
                progress=progress,
            )
        paths = result.write(out_dir)
    except ForecastError as error:
        _fail(error)
    _summary(result.cube, result.manifest)
    out.print(f"cube:       {paths['cube']}\nmanifest:   {paths['manifest']}\nquarantine: {paths['quarantine']}",
              soft_wrap=True)  # paths stay whole, to copy


@app.command()
def info(cube_path: Annotated[Path, typer.Argument(help="A cube.nc written by `forecast ingest`.")]) -> None:
    """Summarise a cube (areas, months, variables, coverage) and its manifest when beside it."""
    from forecast.io._manifest import Manifest
    from forecast.cube import load_cube

    manifest_path = cube_path.parent / "manifest.json"
    try:
        cube = load_cube(cube_path)
        manifest = Manifest.read(manifest_path) if manifest_path.is_file() else None
    except ForecastError as error:
        _fail(error)
    _summary(cube, manifest)


def _summary(cube, manifest) -> None:
    from forecast._names import OBSERVED_SUFFIX

    times = cube["time"].values
    out.print(f"[bold]cube[/] {cube.sizes['area']} areas (admin{cube.attrs.get('admin_level')}, keyed by "
              f"{cube.attrs.get('area_key')}) x {cube.sizes['time']} months "
              f"({str(times[0])[:7]} to {str(times[-1])[:7]}); sensitivity [bold]{cube.attrs.get('sensitivity')}[/]")
    table = Table("variable", "dims", "observed cells", "total", title="variables")
    for name, var in cube.data_vars.items():
        if name.endswith(OBSERVED_SUFFIX):
            continue
        observed = float(var.notnull().mean()) if var.size else 0.0
        table.add_row(name, " x ".join(var.dims), f"{observed:.0%}", f"{float(var.sum()):,.0f}")
    out.print(table)
    if manifest is None:
        return
    rows = Table("file", "format", "rows_in", "rows_kept", "rows_quarantined", "top reasons", title="rows")
    for f in manifest.files:
        reasons = ", ".join(f"{k} ({v})" for k, v in list(f.quarantine_reasons.items())[:3])
        rows.add_row(Path(f.path).name, f.format, f"{f.rows_in:,}", f"{f.rows_kept:,}", f"{f.rows_quarantined:,}", reasons or "-")
    out.print(rows)
    out.print(f"sensitivity: {manifest.sensitivity.level} ({'; '.join(manifest.sensitivity.reasons)})"
              + (f" - overridden from {manifest.sensitivity.assessed}: {manifest.sensitivity.override_reason}"
                 if manifest.sensitivity.override_reason else ""))
    out.print(f"cube hash:   {manifest.cube_hash}")


from forecast import _cli_models  # noqa: E402,F401  (registers backtest, train, predict)
from forecast import _cli_triggers  # noqa: E402,F401  (registers prioritize)
from forecast import _cli_card  # noqa: E402,F401  (registers card)
from forecast import _cli_audit  # noqa: E402,F401  (registers audit)
from forecast import _cli_review  # noqa: E402,F401  (registers review)
from forecast import _cli_release  # noqa: E402,F401  (registers release)
from forecast import _cli_report  # noqa: E402,F401  (registers report)

if __name__ == "__main__":  # `python -m forecast.cli`: run the app the commands registered on
    from forecast.cli import app as registered

    registered()
