"""``forecast scenario``: what if the last season had failed, with the same trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecast.cli import _console as console
from forecast.cli._app import app, fail
from forecast.errors import ForecastError


@app.command()
def scenario(
    run: Annotated[str, typer.Option("--run", help="MLflow run id of `forecast train` (its model and cube).")],
    shocks: Annotated[list[str], typer.Option("--set", help="A covariate's change (repeatable): rainfall=-50% "
                                              "(relative), conflict_incidents=x2 (multiply), maize_price=+10 (add), rainfall=p10 "
                                              "(each area's 10th percentile of the same month in earlier years).")],
    areas: Annotated[str | None, typer.Option("--areas", help="P-codes to change, comma-separated (default: all).")] = None,
    region: Annotated[str | None, typer.Option("--region", help="Change every area of this region (admin1 name).")] = None,
    months: Annotated[str | None, typer.Option("--months", help="Months to change, FIRST..LAST, up to the cube's "
                                               "last month, e.g. 2023-10..2023-12 (default: the last 3).")] = None,
    trigger: Annotated[str | None, typer.Option(help="Trigger name (default: the model's first).")] = None,
    lead: Annotated[int | None, typer.Option(help="Lead time in months (default: the trigger's first).")] = None,
    name: Annotated[str | None, typer.Option(help="The scenario's name (default: from the changes, e.g. rainfall-50pct).")] = None,
    cube: Annotated[Path | None, typer.Option("--cube", help="Data to forecast from (default: the cube the model was trained on).")] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="CSV to write (default: out/scenario/scenario_<run>_<name>.csv).")] = None,
    top: Annotated[int, typer.Option(help="Print this many districts, largest rise in probability first (all are saved).")] = 20,
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI.")] = None,
) -> None:
    """Forecast again with covariates changed over the last months, beside the unchanged forecast.

    Rewrites the named covariates over --months (up to the cube's last month) in --areas or
    --region, rebuilds the features and forecasts with the run's model; prints per district the
    expected arrivals and 80% interval, the trigger probability and their change, writes the
    table (small cells withheld) and logs it as an MLflow run nested under the train run.
    """
    from forecast.cube import cube_hash, load_cube
    from forecast.io import make_folder, write_csv
    from forecast.pipeline import run_scenario
    from forecast.tracking import get_run, load_trained, log_scenario

    try:
        _, info = get_run(run, kind="train", tracking_uri=tracking_uri,
                          purpose="a scenario needs a run of `forecast train`")
        path = cube or info.data.tags.get("cube_path")
        if not path:
            raise ForecastError(f"run {run} does not say which cube it was trained on; pass --cube")
        data = load_cube(path)
        trained, _ = load_trained(run, tracking_uri=tracking_uri)
        result = run_scenario(trained, data, shocks, areas=areas, region=region, months=months,
                              trigger=trigger, lead=lead, name=name)
        status = console.release_label(run, tracking_uri)
        table = result.published()
        table.insert(0, "release_status", status)  # travels with every row of the file
        target = out_path or Path("out/scenario") / f"scenario_{run[:8]}_{result.name}.csv"
        level = data.attrs.get("sensitivity")  # as its manifest records it: high and severe files are owner-only
        make_folder(target.parent, level)
        write_csv(table, target, index=False, sensitivity=level)
        scenario_run = log_scenario(run, result, tracking_uri=tracking_uri)
    except ForecastError as error:
        fail(error)
    console.print_watermark(status)
    console.print_scenario(result, top)
    for note in result.notes:
        console.out.print(f"note: {note}", soft_wrap=True, highlight=False, markup=False)
    if cube_hash(data) != info.data.tags.get("cube_hash"):
        console.out.print("note: this cube differs from the one the model was trained on", soft_wrap=True)
    console.out.print(f"table: {target}", soft_wrap=True)
    console.out.print(f"MLflow run {scenario_run} (scenario {result.name!r}, under train run {run})", soft_wrap=True)
