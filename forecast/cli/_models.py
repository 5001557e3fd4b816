"""``forecast backtest``, ``train`` and ``predict``: thin shells over the library."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from forecast.cli import _console as console
from forecast.cli._app import app, fail
from forecast.errors import ForecastError

CubeOpt = Annotated[Path, typer.Option("--cube", help="A cube.nc written by `forecast ingest` "
                                        "(the sample: forecast/datasets/data/somalia/somalia.nc).")]
SpecOpt = Annotated[list[Path], typer.Option("--spec", help="A shipped spec by name (lightgbm_median, ets, lightgbm, "
                                              "sarimax, ...) or a spec YAML of your own (repeatable).")]
TrackOpt = Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here).")]
ExpOpt = Annotated[str, typer.Option("--experiment", help="MLflow experiment name.")]
TriggersOpt = Annotated[Path | None, typer.Option("--triggers", help="'default' (the shipped surge trigger) or a "
                                                  "trigger YAML of your own.")]


def _manifest_for(cube_path: Path) -> dict | None:
    for candidate in (cube_path.parent / "manifest.json", cube_path.with_name(f"{cube_path.stem}_manifest.json")):
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8"))
    return None


def _logged(log, *args, **kwargs):
    """``log(*args, **kwargs)``, an MLflow logging call; stopped by Ctrl-C or SIGTERM, it first
    says what became of the runs, so that no one takes a half-logged run for evidence."""
    try:
        return log(*args, **kwargs)
    except (KeyboardInterrupt, SystemExit):
        console.err.print("stopped while logging to MLflow: every run it had opened is marked FAILED, and no "
                          "card, gate or report takes a FAILED run as evidence; run the command again",
                          highlight=False, soft_wrap=True)
        raise


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
    calibration_refit_every: Annotated[int | None, typer.Option(
        help="Refit every N calibration origins (default: --refit-every). Their forecasts only set the intervals: 2 "
             "saves a quarter of the fits and leaves every scored point forecast as it was; the intervals move a "
             "little.",
        show_default=False)] = None,
    baselines: Annotated[bool, typer.Option(help="Run the baselines beside the specs.")] = True,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Also write metrics.csv and forecasts.parquet here.")] = None,
    triggers: TriggersOpt = None,
    routes: Annotated[list[str] | None, typer.Option("--route", help="Trigger probability routes (repeatable): forecast, lightgbm, logistic. Default: all three.")] = None,
    k: Annotated[int, typer.Option("--k", help="Areas acted on per origin, for precision@k and recall@k.")] = 5,
    reconcile: Annotated[str | None, typer.Option("--reconcile", help="Also backtest the first spec at every coarser "
                                                  "admin level (regions, national) and reconcile the levels so that "
                                                  "districts add up: mint_shrink, wls_struct, ols or bottom_up. "
                                                  "With --triggers, also scores the triggers at every level. "
                                                  "Logged under levels/.", show_default=False)] = None,
    policy: Annotated[Path | None, typer.Option(help="Fairness policy YAML (default: ethics/policy.yaml).")] = None,
    mitigate: Annotated[str | None, typer.Option(help="With --triggers: also try group-aware thresholds for this group column (e.g. region) and report the trade-off.")] = None,
    dask: Annotated[str | None, typer.Option("--dask", help="Run the fits as Dask tasks: 'local' (a LocalCluster "
                                             "of processes here) or a scheduler address, e.g. tcp://10.0.0.5:8786. "
                                             "Same forecasts as without.")] = None,
    explain: Annotated[bool, typer.Option(help="Keep each LightGBM forecast's drivers (TreeSHAP) for the driver "
                                          "charts and MLflow; --no-explain skips them (at scale they cost more "
                                          "than the fits).")] = True,
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
    from forecast.backtest import METHODS, RollingOrigin, backtest_levels
    from forecast.backtest import backtest as run_backtest
    from forecast.cube import load_cube
    from forecast.models import load_spec
    from forecast.tracking import log_backtest

    try:
        horizons = list(range(1, horizon + 1)) if horizon else None
        specs = [load_spec(p, target=target, horizons=horizons) for p in spec]
        folds = RollingOrigin(n_origins=origins, step=step, calibration_origins=calibration_origins,
                              min_train=min_train, refit_every=refit_every,
                              calibration_refit_every=calibration_refit_every)
        data = load_cube(cube)
        if triggers:  # a bad trigger or policy file fails now, not after minutes of backtest
            from forecast.policy import load_policy
            from forecast.triggers import load_triggers

            trigger_specs, policy = load_triggers(triggers), load_policy(policy)
            from forecast.triggers import CLASSIFIERS

            unknown = [r for r in routes or () if r != "forecast" and r not in CLASSIFIERS]
            if unknown:
                raise ForecastError(f"unknown --route {', '.join(unknown)}; known: forecast, {', '.join(CLASSIFIERS)}")
        elif mitigate or routes:
            raise ForecastError("--mitigate and --route apply to trigger signals: add --triggers models/triggers.yaml")
        if reconcile is not None and reconcile not in METHODS:
            raise ForecastError(f"unknown --reconcile {reconcile!r}; choose one of {', '.join(METHODS)}")
        with console.bar() as bar:
            result = run_backtest(data, specs, folds=folds, baselines=baselines, progress=console.tracker(bar), dask=dask,
                                  explain=explain)
            levels = None if reconcile is None else backtest_levels(
                data, specs[0], folds=folds, method=reconcile, bottom=result,
                progress=console.tracker(bar))
            evaluation = fairness = tradeoff = level_triggers = None
            if triggers:
                from forecast.pipeline import assess

                evaluation, fairness, tradeoff = assess(result, data, trigger_specs, routes, k, policy,
                                                          console.tracker(bar), mitigate)
                if levels is not None:  # each trigger at every level: the regions' and the country's crossings
                    from forecast.triggers import level_trigger_metrics

                    level_triggers = level_trigger_metrics(levels, data, trigger_specs, k=k)
        run_id = _logged(log_backtest, result, manifest=_manifest_for(cube), experiment=experiment,
                         tracking_uri=tracking_uri, triggers=evaluation, fairness=fairness, mitigation=tradeoff,
                         levels=levels, level_triggers=level_triggers)
    except ForecastError as error:
        fail(error)
    console.print_backtest(result)
    if levels is not None:
        console.print_levels(levels, level_triggers)
    if evaluation is not None:
        console.print_triggers(evaluation)
        console.print_fairness(fairness)
        console.print_tradeoff(tradeoff)
    if out_dir:
        from forecast.io import make_folder, reserve_file, secure_file, write_csv
        from forecast.policy import publishable

        level = data.attrs.get("sensitivity")  # the manifest's: high and severe files are owner-only
        make_folder(out_dir, level)
        write_csv(result.scores(), out_dir / "metrics.csv", index=False, sensitivity=level)
        forecasts = reserve_file(out_dir / "forecasts.parquet", level)
        publishable(result.forecasts, target=result.target).to_parquet(forecasts, index=False)
        secure_file(forecasts, level)
        console.out.print(f"metrics:   {out_dir / 'metrics.csv'}\nforecasts: {out_dir / 'forecasts.parquet'}", soft_wrap=True)
    from forecast.tracking import store_uri

    console.out.print(f"MLflow run {run_id} (experiment {experiment!r}, tracking URI {store_uri(tracking_uri)})",
              soft_wrap=True)


@app.command()
def train(
    cube: CubeOpt,
    spec: Annotated[Path, typer.Option("--spec", help="A shipped spec by name (lightgbm_median, ...) or a spec YAML "
                                       "of your own.")],
    target: Annotated[str | None, typer.Option(help="Override the spec's target.")] = None,
    triggers: TriggersOpt = None,
    experiment: ExpOpt = "displacement-forecast",
    tracking_uri: TrackOpt = None,
) -> None:
    """Fit a model on all data (intervals calibrated on its last 12 origins); log it as an MLflow model.

    Prints the model URI for `forecast predict --model URI` and mlflow.pyfunc.load_model(URI).
    With --triggers, the model can rank areas: `forecast prioritize --run RUN_ID`.
    """
    from forecast.pipeline import train as run_train
    from forecast.cube import load_cube
    from forecast.models import load_spec
    from forecast.tracking import log_trained

    try:
        model_spec = load_spec(spec, target=target)
        from forecast.triggers import load_triggers

        trigger_specs = load_triggers(triggers) if triggers else []
        data = load_cube(cube)
        with console.bar() as bar:
            trained = run_train(data, model_spec, triggers=trigger_specs, progress=console.tracker(bar))
        run_id, uri = _logged(log_trained, trained, data, manifest=_manifest_for(cube), experiment=experiment,
                              tracking_uri=tracking_uri, cube_path=cube)
    except ForecastError as error:
        fail(error)
    console.out.print(f"trained {model_spec.name} on {data.sizes['area']} areas x {data.sizes['time']} months")
    console.out.print(f"MLflow run {run_id}\nmodel URI  {uri}", soft_wrap=True)
    if trigger_specs:
        console.out.print(f"rank areas: forecast prioritize --run {run_id} --top 10", soft_wrap=True)


@app.command()
def predict(
    model: Annotated[str, typer.Option("--model", help="MLflow model URI printed by `forecast train` (models:/... or runs:/...).")],
    cube: CubeOpt,
    out_path: Annotated[Path | None, typer.Option("--out", help="Write the forecasts as CSV here.")] = None,
    top: Annotated[int, typer.Option(help="Print this many areas with the highest 1-month forecast.")] = 10,
    explain: Annotated[bool, typer.Option("--explain", help="Also print what drives each of those forecasts "
                                          "(the largest contributions by driver family) and, with --out, write "
                                          "them to <out stem>_explanations.csv.")] = False,
    tracking_uri: TrackOpt = None,
) -> None:
    """Forecast every area and horizon from the cube's last month with a trained model."""
    from forecast.cube import load_cube
    from forecast.tracking import load_trained

    try:
        data = load_cube(cube)
        trained, source = load_trained(model, tracking_uri=tracking_uri)
        frames = trained.predict(data)
        explanation = trained.explain(data) if explain else None
        status = console.release_label(source, tracking_uri)
    except ForecastError as error:
        fail(error)
    frames.insert(0, "release_status", status)  # travels with every row of the file
    console.print_watermark(status)
    if out_path:
        from forecast.io import make_folder, write_csv

        level = data.attrs.get("sensitivity")  # the manifest's: high and severe files are owner-only
        make_folder(out_path.parent, level)
        write_csv(frames, out_path, index=False, sensitivity=level)
        console.out.print(f"forecasts: {out_path}", soft_wrap=True)
        if explanation is not None:
            explained = out_path.with_name(f"{out_path.stem}_explanations.csv")
            explanation.insert(0, "release_status", status)
            write_csv(explanation, explained, index=False, sensitivity=level)
            console.out.print(f"explanations: {explained}", soft_wrap=True)
    first = frames[frames["horizon"] == frames["horizon"].min()].nlargest(top, "point")
    qcols = [c for c in frames.columns if c.startswith("q")]
    names = (dict(zip(data["area"].values.astype(str), data["area_name"].values.astype(str)))
             if "area_name" in data.coords else {})
    table = Table("area", "name", "month", "forecast", *qcols, title=f"highest {len(first)} forecasts, "
                  f"{int(frames['horizon'].min())} month(s) ahead")
    for _, r in first.iterrows():
        table.add_row(r["area"], names.get(r["area"], ""), str(r["time"])[:7], f"{r['point']:,.0f}",
                      *[f"{r[c]:,.0f}" for c in qcols])
    console.out.print(table)
    if explanation is not None:
        console.out.print(_drivers_table(explanation, first, names))


def _drivers_table(explanation, first, names, n_drivers: int = 3) -> Table:
    """The largest signed driver contributions of each forecast in ``first``."""
    from forecast.backtest import CONTRIBUTION_KEYS

    drivers = [c for c in explanation.columns if c not in (*CONTRIBUTION_KEYS, "release_status")]
    scale = str(explanation["scale"].iloc[0]) if len(explanation) else "identity"
    unit = {"log": "on log(forecast)", "log1p": "on log(1 + forecast)"}.get(scale, "in people")
    table = Table("area", "name", "month", "base", *[f"driver {k + 1}" for k in range(n_drivers)],
                  title=f"what drives those forecasts: largest contributions {unit} (+ up, - down)")
    rows = explanation.set_index(["area", "horizon"])
    for _, r in first.iterrows():
        key = (r["area"], r["horizon"])
        if key not in rows.index:  # an area whose model fell back to a simple rule: nothing to split
            table.add_row(r["area"], names.get(r["area"], ""), str(r["time"])[:7], "-", "no breakdown")
            continue
        row = rows.loc[key]
        largest = sorted(drivers, key=lambda d: -abs(float(row[d])))[:n_drivers]
        digits = 0 if scale == "identity" else 2
        table.add_row(r["area"], names.get(r["area"], ""), str(r["time"])[:7], f"{float(row['base']):,.{digits}f}",
                      *[f"{float(row[d]):+,.{digits}f} {d}" for d in largest])
    return table


