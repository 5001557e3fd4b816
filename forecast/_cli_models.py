"""``forecast backtest``, ``train`` and ``predict``: thin shells over the library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from forecast.cli import _fail, app, err, out
from forecast.errors import ForecastError

CubeOpt = Annotated[Path, typer.Option("--cube", help="A cube.nc written by `forecast ingest` "
                                        "(the sample: forecast/datasets/data/somalia/somalia.nc).")]
SpecOpt = Annotated[list[Path], typer.Option("--spec", help="Model spec YAML (repeatable), e.g. models/lightgbm.yaml.")]
TrackOpt = Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here).")]
ExpOpt = Annotated[str, typer.Option("--experiment", help="MLflow experiment name.")]
TriggersOpt = Annotated[Path | None, typer.Option("--triggers", help="Trigger YAML, e.g. models/triggers.yaml.")]


def _manifest_for(cube_path: Path) -> dict | None:
    for candidate in (cube_path.parent / "manifest.json", cube_path.with_name(f"{cube_path.stem}_manifest.json")):
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    return None


def _bar():
    return Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True)


def _tracker(bar):
    tasks: dict[str, int] = {}

    def progress(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = bar.add_task(name, total=total)
        bar.update(tasks[name], completed=done)
    return progress


@app.command()
def backtest(
    cube: CubeOpt,
    spec: SpecOpt,
    target: Annotated[str | None, typer.Option(help="Override the specs' target (arrivals, idp_stock, ...).")] = None,
    origins: Annotated[int, typer.Option(help="Scored rolling origins.")] = 12,
    horizon: Annotated[int | None, typer.Option(help="Forecast 1..HORIZON months ahead (default: the specs' horizons).")] = None,
    step: Annotated[int, typer.Option(help="Months between origins.")] = 1,
    calibration_origins: Annotated[int, typer.Option(help="Earlier origins whose errors calibrate the intervals.")] = 12,
    min_train: Annotated[int, typer.Option(help="Months of history the first origin needs.")] = 24,
    refit_every: Annotated[int, typer.Option(help="Refit every N origins.")] = 1,
    baselines: Annotated[bool, typer.Option(help="Run the baselines beside the specs.")] = True,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Also write metrics.csv and forecasts.parquet here.")] = None,
    triggers: TriggersOpt = None,
    routes: Annotated[list[str] | None, typer.Option("--route", help="Trigger probability routes (repeatable): forecast, lightgbm, logistic. Default: all three.")] = None,
    k: Annotated[int, typer.Option("--k", help="Areas acted on per origin, for precision@k and recall@k.")] = 5,
    policy: Annotated[Path | None, typer.Option(help="Fairness policy YAML (default: ethics/policy.yaml).")] = None,
    mitigate: Annotated[str | None, typer.Option(help="With --triggers: also try group-aware thresholds for this group column (e.g. region) and report the trade-off.")] = None,
    dask: Annotated[str | None, typer.Option("--dask", help="Run the fits as Dask tasks: 'local' (a LocalCluster "
                                             "of processes here) or a scheduler address, e.g. tcp://10.0.0.5:8786. "
                                             "Same forecasts as without.")] = None,
    experiment: ExpOpt = "displacement-forecast",
    tracking_uri: TrackOpt = None,
) -> None:
    """Rolling-origin backtest of model specs beside the baselines, logged to MLflow.

    Prints every model against the baselines at horizons 1, 3 and 6 (MASE, RMSLE, CRPS, 80%
    interval coverage) and the MLflow run id; metrics are logged as mase_h1, crps_h3, ...
    With --triggers, also evaluates the triggers (hit rate, false-alarm ratio, precision@k,
    Brier, return period per lead and route) and the fairness of forecasts and signals across
    groups of areas, logged to the same run.
    """
    from forecast.backtest import RollingOrigin
    from forecast.backtest import backtest as run_backtest
    from forecast.cube import load_cube
    from forecast.models._spec import load_spec
    from forecast.tracking import log_backtest

    try:
        horizons = list(range(1, horizon + 1)) if horizon else None
        specs = [load_spec(p, target=target, horizons=horizons) for p in spec]
        folds = RollingOrigin(n_origins=origins, step=step, calibration_origins=calibration_origins,
                              min_train=min_train, refit_every=refit_every)
        data = load_cube(cube)
        if triggers:  # a bad trigger or policy file fails now, not after minutes of backtest
            from forecast.fairness import load_policy
            from forecast.triggers import load_triggers

            trigger_specs, policy = load_triggers(triggers), load_policy(policy)
            from forecast.triggers import CLASSIFIERS

            unknown = [r for r in routes or () if r != "forecast" and r not in CLASSIFIERS]
            if unknown:
                raise ForecastError(f"unknown --route {', '.join(unknown)}; known: forecast, {', '.join(CLASSIFIERS)}")
        elif mitigate or routes:
            raise ForecastError("--mitigate and --route apply to trigger signals: add --triggers models/triggers.yaml")
        with _bar() as bar:
            result = run_backtest(data, specs, folds=folds, baselines=baselines, progress=_tracker(bar), dask=dask)
            evaluation = fairness = tradeoff = None
            if triggers:
                from forecast.pipeline._assess import assess

                evaluation, fairness, tradeoff = assess(result, data, trigger_specs, routes, k, policy,
                                                          _tracker(bar), mitigate)
        run_id = log_backtest(result, manifest=_manifest_for(cube), experiment=experiment,
                              tracking_uri=tracking_uri, triggers=evaluation, fairness=fairness,
                              mitigation=tradeoff)
    except ForecastError as error:
        _fail(error)
    _print_summary(result)
    if evaluation is not None:
        from forecast._cli_triggers import print_fairness, print_tradeoff, print_triggers

        print_triggers(evaluation)
        print_fairness(fairness)
        print_tradeoff(tradeoff)
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        result.scores().to_csv(out_dir / "metrics.csv", index=False)
        from forecast.policy import suppress_small_cells

        suppress_small_cells(result.forecasts).to_parquet(out_dir / "forecasts.parquet", index=False)
        out.print(f"metrics:   {out_dir / 'metrics.csv'}\nforecasts: {out_dir / 'forecasts.parquet'}", soft_wrap=True)
    import mlflow

    out.print(f"MLflow run {run_id} (experiment {experiment!r}, tracking URI {mlflow.get_tracking_uri()})",
              soft_wrap=True)


def _print_summary(result) -> None:
    scores = result.scores()
    horizons = [h for h in (1, 3, 6) if h in set(scores["horizon"])] or sorted(set(scores["horizon"]))[:3]
    metrics = [m for m in ("mase", "rmsle", "crps", "coverage80") if m in scores]
    table = Table("model", *[f"{m} h{h}" for m in metrics for h in horizons],
                  title=f"backtest of {result.target}: {result.folds.n_origins} origins "
                        f"(lower is better; coverage80 should be near 0.80)")
    best = {(m, h): scores[scores["horizon"] == h][m].min() for m in metrics for h in horizons}
    for name in result.models:
        row = scores[scores["model"] == name].set_index("horizon")
        cells = []
        for m in metrics:
            for h in horizons:
                v = row[m].get(h, float("nan"))
                text = "-" if v != v else f"{v:,.3f}" if m != "crps" else f"{v:,.0f}"
                cells.append(f"[bold]{text}[/]" if m != "coverage80" and v == best[(m, h)] else text)
        table.add_row(name, *cells)
    if not out.is_terminal:  # piped or captured output is 80 columns to rich: too narrow here
        out.width = max(out.width, 160)
    out.print(table)


@app.command()
def train(
    cube: CubeOpt,
    spec: Annotated[Path, typer.Option("--spec", help="Model spec YAML, e.g. models/lightgbm.yaml.")],
    target: Annotated[str | None, typer.Option(help="Override the spec's target.")] = None,
    triggers: TriggersOpt = None,
    experiment: ExpOpt = "displacement-forecast",
    tracking_uri: TrackOpt = None,
) -> None:
    """Fit a model on all data (intervals calibrated on its last 12 origins); log it as an MLflow model.

    Prints the model URI for `forecast predict --model URI` and mlflow.pyfunc.load_model(URI).
    With --triggers, the model can rank areas: `forecast prioritize --run RUN_ID`.
    """
    from forecast.pipeline._train import train as run_train
    from forecast.cube import load_cube
    from forecast.models._spec import load_spec
    from forecast.tracking import log_trained

    try:
        model_spec = load_spec(spec, target=target)
        from forecast.triggers import load_triggers

        trigger_specs = load_triggers(triggers) if triggers else []
        data = load_cube(cube)
        with _bar() as bar:
            trained = run_train(data, model_spec, triggers=trigger_specs, progress=_tracker(bar))
        run_id, uri = log_trained(trained, data, manifest=_manifest_for(cube), experiment=experiment,
                                  tracking_uri=tracking_uri, cube_path=cube)
    except ForecastError as error:
        _fail(error)
    out.print(f"trained {model_spec.name} on {data.sizes['area']} areas x {data.sizes['time']} months")
    out.print(f"MLflow run {run_id}\nmodel URI  {uri}", soft_wrap=True)
    if trigger_specs:
        out.print(f"rank areas: forecast prioritize --run {run_id} --top 10", soft_wrap=True)


@app.command()
def predict(
    model: Annotated[str, typer.Option("--model", help="MLflow model URI printed by `forecast train` (models:/... or runs:/...).")],
    cube: CubeOpt,
    out_path: Annotated[Path | None, typer.Option("--out", help="Write the forecasts as CSV here.")] = None,
    top: Annotated[int, typer.Option(help="Print this many areas with the highest 1-month forecast.")] = 10,
    tracking_uri: TrackOpt = None,
) -> None:
    """Forecast every area and horizon from the cube's last month with a trained model."""
    import mlflow

    from forecast.cube import load_cube

    try:
        if tracking_uri:
            mlflow.set_tracking_uri(tracking_uri)
        data = load_cube(cube)
        try:
            loaded = mlflow.pyfunc.load_model(model)
        except Exception as error:  # MLflow raises several types for a bad URI
            raise ForecastError(f"cannot load model {model!r}: {error}") from None
        frames = loaded.unwrap_python_model().trained.predict(data)
        status = _release_label(_source_run(model, loaded, tracking_uri), tracking_uri)
    except ForecastError as error:
        _fail(error)
    frames.insert(0, "release_status", status)  # travels with every row of the file
    _watermark(status)
    if out_path:
        frames.to_csv(out_path, index=False)
        out.print(f"forecasts: {out_path}", soft_wrap=True)
    first = frames[frames["horizon"] == frames["horizon"].min()].nlargest(top, "point")
    qcols = [c for c in frames.columns if c.startswith("q")]
    names = (dict(zip(data["area"].values.astype(str), data["area_name"].values.astype(str)))
             if "area_name" in data.coords else {})
    table = Table("area", "name", "month", "forecast", *qcols, title=f"highest {len(first)} forecasts, "
                  f"{int(frames['horizon'].min())} month(s) ahead")
    for _, r in first.iterrows():
        table.add_row(r["area"], names.get(r["area"], ""), str(r["time"])[:7], f"{r['point']:,.0f}",
                      *[f"{r[c]:,.0f}" for c in qcols])
    out.print(table)


def _source_run(uri: str, loaded, tracking_uri: str | None) -> str | None:
    """The train run behind a model URI: ``runs:/RUN/...``, a registry version's run for
    ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``, else the run the model files name."""
    import re

    import mlflow

    if found := re.match(r"runs:/([^/]+)/", uri):
        return found.group(1)
    if found := re.match(r"models:/([^/@]+)(?:@([^/]+)|/(\d+))/?$", uri):
        client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        name, alias, number = found.groups()
        try:
            version = (client.get_model_version_by_alias(name, alias) if alias
                       else client.get_model_version(name, number))
        except Exception:  # a logged model's id (models:/m-...) is not a registered name
            version = None
        if version is not None:
            return version.run_id
    return loaded.metadata.run_id


def _release_label(run_id: str | None, tracking_uri: str | None) -> str:
    """``released: NAME version V`` or the NOT RELEASED watermark for the model of ``run_id``."""
    from forecast.ethics._gate import NOT_RELEASED, release_status

    if not run_id:
        return NOT_RELEASED
    return release_status(run_id, tracking_uri=tracking_uri).label


def _watermark(status: str) -> None:
    """Say loudly, before any number, that a model has not passed the release gate."""
    from forecast.ethics._gate import NOT_RELEASED

    if status == NOT_RELEASED:
        out.print(f"[bold red]{NOT_RELEASED}[/]: this model has not passed `forecast release`; its numbers are "
                  "not for operational decisions", soft_wrap=True)
    else:
        out.print(status, soft_wrap=True, highlight=False, markup=False)

