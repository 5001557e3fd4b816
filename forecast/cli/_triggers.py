"""``forecast prioritize``: areas ranked for anticipatory action by a trained model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecast.cli import _console as console
from forecast.cli._app import app, fail
from forecast.errors import ForecastError


@app.command()
def prioritize(
    run: Annotated[str, typer.Option("--run", help="MLflow run id of `forecast train --triggers ...`.")],
    top: Annotated[int, typer.Option(help="Print this many ranked areas (all are saved).")] = 10,
    trigger: Annotated[str | None, typer.Option(help="Trigger name (default: the model's first).")] = None,
    lead: Annotated[int | None, typer.Option(help="Lead time in months (default: the trigger's first).")] = None,
    cube: Annotated[Path | None, typer.Option("--cube", help="Data to forecast from (default: the cube the model was trained on).")] = None,
    weight: Annotated[str | None, typer.Option(help="Area attribute to weight the score by, e.g. population.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the ranked list (CSV).")] = Path("out/prioritize"),
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI.")] = None,
) -> None:
    """Rank areas for anticipatory action: probability of crossing the trigger x expected arrivals.

    Forecasts from the cube's last month with the run's model, prints the top areas with the
    probability, expected arrivals and interval, the trigger threshold and how recent each
    area's data is, saves every area (unassessed ones flagged, never ranked as safe) to
    OUT/prioritize_<run>_<trigger>_lead<lead>.csv and logs it to the run.
    """
    from forecast.cube import cube_hash, load_cube
    from forecast.io import make_folder, write_csv
    from forecast.policy import publishable
    from forecast.tracking import get_run, load_trained, log_artifact

    try:
        _, info = get_run(run, kind="train", tracking_uri=tracking_uri, purpose="prioritize needs a run of "
                          "`forecast train --triggers models/triggers.yaml`")
        path = cube or info.data.tags.get("cube_path")
        if not path:
            raise ForecastError(f"run {run} does not say which cube it was trained on; pass --cube")
        data = load_cube(path)
        trained, _ = load_trained(run, tracking_uri=tracking_uri)
        ranking = trained.prioritize(data, trigger, lead, weight=weight)
        status = console.release_label(run, tracking_uri)
    except ForecastError as error:
        fail(error)
    ranking.insert(0, "release_status", status)  # travels with every row of the file
    console.print_watermark(status)
    name, lead = ranking["trigger"].iloc[0], int(ranking["lead"].iloc[0])
    spec = next(t for t in trained.triggers if t.name == name)
    level = data.attrs.get("sensitivity")  # as its manifest records it: high and severe files are owner-only
    make_folder(out_dir, level)
    target = out_dir / f"prioritize_{run[:8]}_{name}_lead{lead}.csv"
    # expected arrivals of 1 to k-1 withheld
    write_csv(publishable(ranking), target, index=False, sensitivity=level)
    log_artifact(run, target, "prioritize", tracking_uri=tracking_uri)
    console.print_ranking(ranking, spec, str(data["time"].values[-1])[:7], top)
    if cube_hash(data) != info.data.tags.get("cube_hash"):
        console.out.print("note: this cube differs from the one the model was trained on (newer data is expected; "
                  "retrain if the areas or variables changed)", soft_wrap=True)
    console.out.print(f"ranking: {target}", soft_wrap=True)
