"""MLflow tracking: the one module that imports mlflow.

One parent run per backtest, one child run per model (named after it), with the spec as
parameters, ``<metric>_h<h>`` metrics, lineage tags (cube hash, spec hash, git commit, data
sensitivity) and artifacts: forecasts as Parquet (small cells suppressed), the metrics table,
fan charts for sample areas, feature importance and the manifest. Never the cube itself.

The tracking store is MLflow's own default (``sqlite:///mlflow.db`` in the working folder)
unless ``MLFLOW_TRACKING_URI`` or an explicit ``tracking_uri`` says otherwise.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from forecast._version import __version__
from forecast.errors import ForecastError
from forecast.backtest import BacktestResult, metrics_by_horizon
from forecast.backtest._plots import fan_chart, importance_chart

__all__ = ["log_backtest", "git_commit", "suppress_small_cells", "get_run", "DEFAULT_EXPERIMENT", "SMALL_CELL"]

DEFAULT_EXPERIMENT = "displacement-forecast"
#: Observed counts from 1 to SMALL_CELL - 1 people are withheld from published artifacts: a
#: handful of people arriving in a district in a month could be identified.
SMALL_CELL = 5


def git_commit() -> str:
    """The commit of the code that ran (``unknown`` outside a git checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def suppress_small_cells(frame: pd.DataFrame, columns=("actual",), k: int = SMALL_CELL) -> pd.DataFrame:
    """Blank observed counts in [1, k) and flag them in ``<column>_suppressed``."""
    out = frame.copy()
    for col in columns:
        values = out[col].to_numpy(float)
        small = (values > 0) & (values < k)
        out[col] = np.where(small, np.nan, values)
        out[f"{col}_suppressed"] = small
    return out


def get_run(run_id: str, *, kind: str | None = None, purpose: str = "", tracking_uri: str | None = None,
            client=None):
    """``(client, run)`` for an MLflow run id, refused with a clear message when unknown or not
    of ``kind`` (``train``, ``backtest``); ``purpose`` ends that message (what the run is for)."""
    import mlflow

    client = client or mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        run = client.get_run(run_id)
    except Exception as error:  # MLflow raises several types for an unknown id
        raise ForecastError(f"no MLflow {kind + ' ' if kind else ''}run {run_id!r} at {client.tracking_uri}: "
                            f"{error}") from None
    actual = run.data.tags.get("kind", "non-forecast")
    if kind is not None and actual != kind:
        raise ForecastError(f"run {run_id} is a {actual} run; {purpose or f'a {kind} run is needed'}")
    return client, run


@contextmanager
def _store(tracking_uri: str | None):
    """Use ``tracking_uri`` while logging, then give the caller back its own tracking URI
    (a library call must not move every later MLflow call of the session to another store)."""
    import mlflow

    if not tracking_uri:
        yield
        return
    from mlflow.tracking._tracking_service import utils

    before = utils._tracking_uri  # None: the caller had set none, MLflow's default applies
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)


def _start_run(experiment: str, run_name: str):
    """A new run in ``experiment``; under `mlflow run`, the run that command opened."""
    import os

    import mlflow

    if os.environ.get("MLFLOW_RUN_ID"):  # an MLproject entry point: its run and experiment are set
        return mlflow.start_run()
    mlflow.set_experiment(experiment)
    return mlflow.start_run(run_name=run_name)


def _flat(prefix: str, value, out: dict) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = json.dumps(value) if isinstance(value, list | tuple) else value


def log_backtest(
    result: BacktestResult,
    *,
    manifest: Mapping | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    tracking_uri: str | None = None,
    run_name: str | None = None,
    sample_areas: int = 3,
    small_cell: int = SMALL_CELL,
    triggers=None,
    fairness=None,
    mitigation: pd.DataFrame | None = None,
) -> str:
    """Log a backtest to MLflow and return the parent run's id.

    Parameters
    ----------
    result : BacktestResult
    manifest : mapping, optional
        The cube's manifest (``Manifest.model_dump()`` or the JSON); logged as an artifact and
        its sensitivity as a tag.
    experiment : str
    tracking_uri : str, optional
        Default: ``MLFLOW_TRACKING_URI``, else MLflow's default.
    run_name : str, optional
        Default ``backtest-<target>``.
    sample_areas : int
        Fan charts for this many areas (those with the most arrivals).
    small_cell : int
        Observed counts below this (and above zero) are blanked in the forecasts artifact.
    triggers : TriggerEvaluation, optional
        Logged to the parent run: ``<metric>_l<lead>_<route>_<trigger>`` metrics (hit_rate,
        false_alarm_ratio, precision_at_k, brier, return_period, ...) and ``triggers/`` tables
        and plots (reliability diagram, hit/miss timeline).
    fairness : dict of str to FairnessReport, optional
        One report per trigger route; logged to the parent run under ``fairness/<route>/``
        (tables and plots), with tags ``fairness_passed_<route>`` and ``fairness_passed``
        (every route's verdict: yes, no or cannot judge).
    mitigation : DataFrame, optional
        :func:`forecast.fairness.mitigation_tradeoff` output, logged as
        ``fairness/mitigation_<group column>.csv``.
    """
    import mlflow

    with _store(tracking_uri):
        scores = result.scores()
        sensitivity = (manifest or {}).get("sensitivity", {}).get("level", "unknown") if manifest else "unknown"
        tags = {"cube_hash": result.cube_hash, "git_commit": git_commit(), "sensitivity": sensitivity,
                "forecast_version": __version__, "target": result.target}
        folds = result.folds
        with _start_run(experiment, run_name or f"backtest-{result.target}") as parent:
            mlflow.set_tags({**tags, "kind": "backtest"})
            mlflow.log_params({"target": result.target, "models": ",".join(result.models),
                               "n_origins": folds.n_origins, "step": folds.step,
                               "calibration_origins": folds.calibration_origins,
                               "min_train": folds.min_train, "refit_every": folds.refit_every})
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                scores.to_csv(tmp / "metrics.csv", index=False)
                result.summary().to_csv(tmp / "summary.csv")
                mlflow.log_artifact(str(tmp / "metrics.csv"))
                mlflow.log_artifact(str(tmp / "summary.csv"))
                if manifest:
                    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
                    mlflow.log_artifact(str(tmp / "manifest.json"))
            if triggers is not None:
                _log_triggers(triggers)
            if fairness is not None:
                _log_fairness(fairness)
            if mitigation is not None:
                column = mitigation["group_column"].iloc[0] if len(mitigation) else "groups"
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / f"mitigation_{column}.csv"
                    mitigation.to_csv(path, index=False)
                    mlflow.log_artifact(str(path), "fairness")
            for spec in result.specs:
                _log_model_run(result, spec, scores, tags, sample_areas, small_cell)
            return parent.info.run_id


TRIGGER_METRICS = ("hit_rate", "false_alarm_ratio", "brier", "brier_skill", "activations",
                   "return_period", "event_return_period")


def _log_triggers(evaluation) -> None:
    import mlflow

    metrics = evaluation.metrics()
    at_k = [c for c in metrics if c.startswith(("precision_at_", "recall_at_"))]
    values = {}
    for _, r in metrics.iterrows():
        for m in (*TRIGGER_METRICS, *at_k):
            v = float(r[m])
            if np.isfinite(v):  # an infinite return period (never activated) is in the table
                values[f"{m}_l{r['lead']}_{r['route']}_{r['trigger']}"] = v
    mlflow.log_metrics(values)
    mlflow.log_params({f"trigger.{t.name}": t.describe() for t in evaluation.triggers})
    mlflow.log_dict({"triggers": [t.model_dump() for t in evaluation.triggers]}, "triggers/triggers.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        metrics.to_csv(tmp / "metrics.csv", index=False)
        evaluation.reliability().to_csv(tmp / "reliability.csv", index=False)
        evaluation.drift().to_csv(tmp / "drift.csv", index=False)
        evaluation.signals.to_parquet(tmp / "signals.parquet", index=False)
        for name in ("metrics.csv", "reliability.csv", "drift.csv", "signals.parquet"):
            mlflow.log_artifact(str(tmp / name), "triggers")
    for t in evaluation.triggers:
        mlflow.log_figure(evaluation.plot_reliability(t.name), f"triggers/reliability_{t.name}.png")
        for lead in t.leads:
            for route in evaluation.signals["route"].unique():
                mlflow.log_figure(evaluation.plot_timeline(t.name, lead, route),
                                  f"triggers/timeline_{t.name}_lead{lead}_{route}.png")


def _log_fairness(reports) -> None:
    import mlflow

    words = {True: "yes", False: "no", None: "cannot judge"}
    verdicts = {route: report.passed for route, report in reports.items()}
    overall = False if False in verdicts.values() else (True if True in verdicts.values() else None)
    mlflow.set_tags({"fairness_passed": words[overall],
                     **{f"fairness_passed_{route}": words[v] for route, v in verdicts.items()}})
    for route, report in reports.items():
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            for name, table in report.tables().items():
                table.to_csv(tmp / f"{name}.csv", index=False)
                mlflow.log_artifact(str(tmp / f"{name}.csv"), f"fairness/{route}")
            (tmp / "summary.txt").write_text(report.summary() + "\n", encoding="utf-8")
            mlflow.log_artifact(str(tmp / "summary.txt"), f"fairness/{route}")
        combos = report.by_group[["trigger", "lead"]].drop_duplicates().itertuples(index=False)
        for trigger, lead in combos:
            for metric in ("hit_rate", "false_alarm_ratio", "mase"):
                mlflow.log_figure(report.plot(metric, trigger=trigger, lead=lead),
                                  f"fairness/{route}/{metric}_{trigger}_lead{lead}.png")


def _log_model_run(result, spec, scores, tags, sample_areas, small_cell) -> None:
    import mlflow

    with mlflow.start_run(run_name=spec.name, nested=True):
        params: dict = {}
        _flat("", spec.model_dump(mode="json"), params)
        mlflow.log_params({k: v for k, v in params.items() if k != "description"})
        mlflow.set_tags({**tags, "kind": "model", "model": spec.name, "spec_hash": spec.hash(),
                         "estimator": spec.estimator})
        mlflow.log_metrics(metrics_by_horizon(scores, spec.name))
        rows = result.forecasts[result.forecasts["model"] == spec.name]
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            suppress_small_cells(rows, k=small_cell).to_parquet(tmp / "forecasts.parquet", index=False)
            scores[scores["model"] == spec.name].to_csv(tmp / "metrics.csv", index=False)
            mlflow.log_artifact(str(tmp / "forecasts.parquet"))
            mlflow.log_artifact(str(tmp / "metrics.csv"))
            for area in _sample_areas(result, sample_areas):
                fig = fan_chart(result.forecasts, area, spec.name)
                mlflow.log_figure(fig, f"fan_charts/{area}.png")
            if spec.name in result.importance:
                imp = result.importance[spec.name]
                imp.rename("gain_share").to_csv(tmp / "feature_importance.csv", index_label="feature")
                mlflow.log_artifact(str(tmp / "feature_importance.csv"))
                mlflow.log_figure(importance_chart(imp, title=f"{spec.name}: feature importance"),
                                  "feature_importance.png")


def _sample_areas(result: BacktestResult, n: int) -> list[str]:
    scored = result.scored
    if scored.empty or n <= 0:
        return []
    totals = scored[scored["model"] == result.models[0]].groupby("area")["actual"].sum()
    return list(totals.sort_values(ascending=False).head(n).index)


def _pyfunc_class():
    import mlflow.pyfunc

    class ForecastModel(mlflow.pyfunc.PythonModel):
        """A trained forecaster as an MLflow pyfunc.

        Input: a long area-month table (``area``, ``time`` and one column per cube variable,
        e.g. ``arrivals``, ``conflict_events``). Output: one row per area and horizon from the
        table's last month, with the point forecast and calibrated quantiles. Features that
        need flows (origin × destination) are missing from a table; use
        ``unwrap_python_model().trained.predict(cube)`` on a full cube to have them.
        """

        def __init__(self, trained):
            self.trained = trained

        def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
            from forecast._train import cube_from_table

            return self.trained.predict(cube_from_table(pd.DataFrame(model_input)))

    return ForecastModel


def cube_table(cube, *, areas=None, months: int | None = None) -> pd.DataFrame:
    """The area × month variables of a cube as the long table the pyfunc model reads."""
    from forecast._names import AREA, OBSERVED_SUFFIX, TIME

    names = [v for v, da in cube.data_vars.items()
             if da.dims == (AREA, TIME) and not v.endswith(OBSERVED_SUFFIX)]
    part = cube[names]
    if areas is not None:
        part = part.sel({AREA: list(areas)})
    if months is not None:
        part = part.isel({TIME: slice(-months, None)})
    part = part.drop_vars([c for c in part.coords if c not in (AREA, TIME)])
    return part.to_dataframe().reset_index()


def log_trained(trained, cube, *, manifest: Mapping | None = None, experiment: str = DEFAULT_EXPERIMENT,
                tracking_uri: str | None = None, cube_path: str | Path | None = None) -> tuple[str, str]:
    """Log a :class:`~forecast._train.TrainedModel` as an MLflow pyfunc model.

    Returns
    -------
    (run_id, model_uri)
        ``mlflow.pyfunc.load_model(model_uri).predict(cube_table(cube))`` forecasts every area.
    """
    import mlflow
    from mlflow.models import infer_signature

    with _store(tracking_uri):
        spec = trained.spec
        sensitivity = (manifest or {}).get("sensitivity", {}).get("level", "unknown") if manifest else "unknown"
        example = cube_table(cube, areas=cube["area"].values[:3], months=24)
        model = _pyfunc_class()(trained)
        output = model.predict(None, example)
        with _start_run(experiment, spec.name) as run:
            mlflow.set_tags({"kind": "train", "model": spec.name, "spec_hash": spec.hash(),
                             "cube_hash": trained.cube_hash, "git_commit": git_commit(),
                             "sensitivity": sensitivity, "forecast_version": __version__,
                             "target": spec.target})
            params: dict = {}
            _flat("", spec.model_dump(mode="json"), params)
            mlflow.log_params({k: v for k, v in params.items() if k != "description"})
            mlflow.log_metrics({f"n_calibration_h{h}": n for h, n in trained.n_calibration.items()})
            if cube_path is not None:  # where `forecast prioritize --run` finds the data by default
                mlflow.set_tag("cube_path", str(Path(cube_path).resolve()))
            if trained.triggers:
                mlflow.log_params({f"trigger.{t.name}": t.describe() for t in trained.triggers})
                mlflow.log_dict({"triggers": [t.model_dump() for t in trained.triggers]}, "triggers.yaml")
                mlflow.log_metrics({f"trigger_calibration_events_l{lead}_{name}": cal.n_events_
                                    for (name, lead), cal in trained.trigger_calibration.items()})
            info = mlflow.pyfunc.log_model(name="model", python_model=model, input_example=example,
                                           signature=infer_signature(example, output))
            if manifest:
                mlflow.log_dict(dict(manifest), "manifest.json")
            return run.info.run_id, info.model_uri
