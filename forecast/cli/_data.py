"""``forecast ingest`` and ``info``: raw files into a validated cube, and what a cube holds."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from forecast.cli import _console as console
from forecast.cli._app import app, fail
from forecast.errors import ForecastError

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
    sensitivity: Annotated[Level | None, typer.Option(help="Override the assessed sensitivity level (needs --sensitivity-reason; a lower level also needs --approval).")] = None,
    sensitivity_reason: Annotated[str | None, typer.Option(help="Why the sensitivity level is overridden; recorded in the manifest.")] = None,
    approval: Annotated[str | None, typer.Option(help="A level below the assessed one: the hash of the sensitivity.lower entry an ethics reviewer signed for these files (`forecast review lower-sensitivity`).")] = None,
    audit_log: Annotated[str | None, typer.Option("--audit-log", help="The audit log holding --approval: a file, or mlflow:audit (the shared log on the tracking server) [default: mlflow:audit when MLFLOW_TRACKING_URI is a server, else ethics/audit.log.jsonl].")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="The policy pinning the keyring that --approval is checked against [default: ethics/policy.yaml].")] = None,
    sheet: Annotated[str | None, typer.Option(help="Sheet to read in XLSX workbooks that have several.")] = None,
    rules: Annotated[Path | None, typer.Option(help="YAML of value rules for area-month tables (min, max, positive, jump per variable): implausible values are withheld, listed in OUT/withheld.csv with their reasons; the row is kept.")] = None,
    lenient_hierarchy: Annotated[bool, typer.Option("--lenient-hierarchy", help="Keep rows whose admin2 lies outside the admin1 they name (default: quarantine them).")] = False,
    limit: Annotated[list[str] | None, typer.Option("--limit", metavar="NAME=VALUE", help=(
        "Change one plausibility rule or resource bound (repeatable): first_month, future_months, "
        "forecast_months, max_count, max_months, max_flow_cells, max_unpacked_bytes, max_cell_chars, today. "
        "See the README's 'Limits'."))] = None,
) -> None:
    """Read raw files into a validated cube; every row is kept or quarantined with a reason.

    Writes OUT/cube.nc (NetCDF), OUT/manifest.json (lineage, row counts, sensitivity) and
    OUT/quarantine.csv (file, row, field, value, reason of every rejected row).
    High and severe data are written owner-only (files 0600, OUT 0700); severe data are
    encrypted at rest when FORECAST_DATA_KEY (or FORECAST_DATA_KEY_FILE) holds a key.
    Exit status 0 on success, 2 when a file cannot be used (the message names it).
    """
    from forecast.io import at_rest_notice
    from forecast.pipeline import ingest as run_ingest

    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                      TimeRemainingColumn(), console=console.err, transient=True) as bar:
            tasks: dict[str, int] = {}

            def progress(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(f"reading {name}", total=total)
                bar.update(tasks[name], completed=done)

            result = run_ingest(
                files, [f.value for f in format], areas=areas, aliases=aliases, attributes=attributes, columns=columns,
                drop_columns=drop_column or (), sensitivity=sensitivity.value if sensitivity else None,
                sensitivity_reason=sensitivity_reason, approval=approval, audit_log=audit_log, policy=policy,
                strict_hierarchy=not lenient_hierarchy, sheet=sheet,
                rules=rules, progress=progress, limits=limit or None,
            )
        paths = result.write(out_dir)
    except ForecastError as error:
        fail(error)
    console.print_cube(result.cube, result.manifest)
    console.out.print(f"cube:       {paths['cube']}\nmanifest:   {paths['manifest']}\nquarantine: {paths['quarantine']}",
              soft_wrap=True)  # paths stay whole, to copy
    if "withheld" in paths:
        console.out.print(f"withheld:   {paths['withheld']}", soft_wrap=True)
    notice = at_rest_notice(result.manifest.sensitivity.level)  # severe data and no FORECAST_DATA_KEY
    if notice:
        console.out.print(notice, soft_wrap=True, highlight=False, markup=False)


@app.command()
def info(cube_path: Annotated[Path, typer.Argument(help="A cube.nc written by `forecast ingest`.")]) -> None:
    """Summarise a cube (areas, months, variables, coverage) and its manifest when beside it."""
    from forecast.io import Manifest
    from forecast.cube import load_cube

    manifest_path = cube_path.parent / "manifest.json"
    try:
        cube = load_cube(cube_path)
        manifest = Manifest.read(manifest_path) if manifest_path.is_file() else None
    except ForecastError as error:
        fail(error)
    console.print_cube(cube, manifest)
