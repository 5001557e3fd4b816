"""Logging backtests to MLflow: one parent run per backtest, one child run per model.

The spec as parameters, ``<metric>_h<h>`` metrics, lineage tags (cube hash, spec hash, git
commit, data sensitivity) and artifacts: forecasts as Parquet (small cells suppressed under the
policy's publication rule), the metrics table, fan charts for sample areas, feature importance,
each scored forecast's contributions by driver family (``explanations/contributions.parquet``, models
that have them) and the manifest. Never the cube itself.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from forecast._version import __version__
from forecast.backtest import BacktestResult, fan_chart, importance_chart, metrics_by_horizon
from forecast.io import owner_only_process, write_csv
from forecast.policy import manifest_sensitivity, publishable, small_cell_k
from forecast.tracking._charts import Charts
from forecast.tracking._runs import DEFAULT_EXPERIMENT, git_commit, start_run, use_store
from forecast.tracking._transport import check_transport

__all__ = ["log_backtest", "TRIGGER_METRICS"]


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
    small_cell: int | None = None,
    triggers=None,
    fairness=None,
    mitigation: pd.DataFrame | None = None,
    levels=None,
    level_triggers: pd.DataFrame | None = None,
) -> str:
    """Log a backtest to MLflow and return the parent run's id.

    Cut short (an error, Ctrl-C, SIGTERM), the parent run and every child run opened end
    FAILED (:func:`~forecast.tracking.start_run`), and no evidence reader takes them.

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
        Counts and forecasts of people below this (and above zero) are blanked in the forecasts
        artifact (:func:`forecast.policy.publishable`: a naive forecast is an observation);
        default: the policy's small-cell threshold (:func:`forecast.policy.small_cell_k`).
    triggers : TriggerEvaluation, optional
        Logged to the parent run: ``<metric>_l<lead>_<route>_<trigger>`` metrics (hit_rate,
        false_alarm_ratio, precision_at_k, brier, return_period, ...) and ``triggers/`` tables
        and plots (reliability diagram, hit/miss timeline); ``triggers/regional.csv`` scores
        the triggers with a geographic condition per region.
    fairness : dict of str to FairnessReport, optional
        One report per trigger route; logged to the parent run under ``fairness/<route>/``
        (tables and plots), with tags ``fairness_passed_<route>`` and ``fairness_passed``
        (every route's verdict: yes, no or cannot judge).
    mitigation : DataFrame, optional
        :func:`forecast.fairness.mitigation_tradeoff` output, logged as
        ``fairness/mitigation_<group column>.csv``.
    levels : LevelsResult, optional
        :func:`forecast.backtest.backtest_levels` output: ``levels/metrics.csv`` (per level,
        base and reconciled), ``levels/forecasts.parquet`` and the tag ``reconciliation``.
    level_triggers : DataFrame, optional
        :func:`forecast.triggers.level_trigger_metrics` output, logged as ``levels/triggers.csv``
        (with ``levels``).
    """
    import mlflow

    small_cell = small_cell_k() if small_cell is None else small_cell
    with use_store(tracking_uri):
        scores = result.scores()
        sensitivity = manifest_sensitivity(manifest) or "unknown"
        tags = {"cube_hash": result.cube_hash, "git_commit": git_commit(), "sensitivity": sensitivity,
                "forecast_version": __version__, "target": result.target,
                **check_transport(None, sensitivity)}  # high/severe: a server needs auth and TLS
        folds = result.folds
        # high/severe: a local store's database and artifacts are made owner-only (umask 077)
        charts = Charts()  # drawn side by side in worker processes, each logged to its run at the end
        with (owner_only_process(sensitivity), start_run(experiment, run_name or f"backtest-{result.target}") as parent,
              charts):
            mlflow.set_tags({**tags, "kind": "backtest"})
            mlflow.log_params({"target": result.target, "models": ",".join(result.models),
                               "n_origins": folds.n_origins, "step": folds.step,
                               "calibration_origins": folds.calibration_origins,
                               "min_train": folds.min_train, "refit_every": folds.refit_every,
                               # what served the calibration origins (refit_every unless set apart)
                               "calibration_refit_every": folds.calibration_refit_every or folds.refit_every})
            if result.skipped:  # the specs the cube could not serve, with why
                mlflow.set_tag("skipped_models", ",".join(result.skipped))
                mlflow.log_dict(dict(result.skipped), "skipped_models.json")
            if result.notes:  # origins where a model could not forecast and naive stood in
                mlflow.log_dict(dict(result.notes), "backtest_notes.json")
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                write_csv(scores, tmp / "metrics.csv", index=False)
                write_csv(result.summary(), tmp / "summary.csv")
                mlflow.log_artifact(str(tmp / "metrics.csv"))
                mlflow.log_artifact(str(tmp / "summary.csv"))
                if "size_bin" in result.forecasts:  # coverage in the tails: per size bin and horizon
                    write_csv(result.scores(by=("model", "horizon", "size_bin")), tmp / "metrics_by_size.csv",
                              index=False)
                    mlflow.log_artifact(str(tmp / "metrics_by_size.csv"))
                if manifest:
                    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
                    mlflow.log_artifact(str(tmp / "manifest.json"))
            if triggers is not None:
                _log_triggers(triggers, small_cell, charts)
            if fairness is not None:
                _log_fairness(fairness, charts)
            if levels is not None:
                _log_levels(levels, result.target, small_cell, level_triggers)
            if mitigation is not None:
                column = mitigation["group_column"].iloc[0] if len(mitigation) else "groups"
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / f"mitigation_{column}.csv"
                    write_csv(mitigation, path, index=False)
                    mlflow.log_artifact(str(path), "fairness")
            for spec in result.specs:
                _log_model_run(result, spec, scores, tags, sample_areas, small_cell, charts)
            charts.log()
            return parent.info.run_id


def _log_levels(levels, target: str, small_cell: int, triggers: pd.DataFrame | None = None) -> None:
    """The spec at every admin level, reconciled: ``levels/metrics.csv`` (per level, base and
    reconciled; ``metrics_by_size.csv`` per size bin too), ``levels/forecasts.parquet`` (small cells withheld), ``levels/triggers.csv``
    (each trigger's scores per level, when given), tag ``reconciliation``."""
    import mlflow

    mlflow.set_tags({"reconciliation": levels.method, "reconciled_model": levels.spec.name})
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_csv(levels.scores(), tmp / "metrics.csv", index=False)
        publishable(levels.forecasts, k=small_cell, target=target).to_parquet(tmp / "forecasts.parquet", index=False)
        mlflow.log_artifact(str(tmp / "metrics.csv"), "levels")
        if "size_bin" in levels.forecasts:
            write_csv(levels.scores(by=("horizon", "size_bin")), tmp / "metrics_by_size.csv", index=False)
            mlflow.log_artifact(str(tmp / "metrics_by_size.csv"), "levels")
        mlflow.log_artifact(str(tmp / "forecasts.parquet"), "levels")
        if triggers is not None:
            write_csv(triggers, tmp / "triggers.csv", index=False)
            mlflow.log_artifact(str(tmp / "triggers.csv"), "levels")


TRIGGER_METRICS = ("hit_rate", "false_alarm_ratio", "brier", "brier_skill", "activations",
                   "return_period", "event_return_period")


def _log_triggers(evaluation, small_cell: int, charts: Charts) -> None:
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
        write_csv(metrics, tmp / "metrics.csv", index=False)
        write_csv(evaluation.reliability(), tmp / "reliability.csv", index=False)
        write_csv(evaluation.drift(), tmp / "drift.csv", index=False)
        # expected arrivals and their bounds are forecasts of people: 1 to k-1 withheld
        publishable(evaluation.signals, k=small_cell).to_parquet(tmp / "signals.parquet", index=False)
        names = ["metrics.csv", "reliability.csv", "drift.csv", "signals.parquet"]
        regional = evaluation.regional()  # triggers with a geographic condition (region:) only
        if not regional.empty:
            write_csv(regional, tmp / "regional.csv", index=False)
            names.append("regional.csv")
        for name in names:
            mlflow.log_artifact(str(tmp / name), "triggers")
    for t in evaluation.triggers:
        charts.add(evaluation.plot_reliability(t.name), f"triggers/reliability_{t.name}.png")
        for lead in t.leads:
            for route in evaluation.signals["route"].unique():
                charts.add(evaluation.plot_timeline(t.name, lead, route),
                           f"triggers/timeline_{t.name}_lead{lead}_{route}.png")


def _log_fairness(reports, charts: Charts) -> None:
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
                write_csv(table, tmp / f"{name}.csv", index=False)
                mlflow.log_artifact(str(tmp / f"{name}.csv"), f"fairness/{route}")
            (tmp / "summary.txt").write_text(report.summary() + "\n", encoding="utf-8")
            mlflow.log_artifact(str(tmp / "summary.txt"), f"fairness/{route}")
        combos = report.by_group[["trigger", "lead"]].drop_duplicates().itertuples(index=False)
        for trigger, lead in combos:
            for metric in ("hit_rate", "false_alarm_ratio", "mase"):
                charts.add(report.plot(metric, trigger=trigger, lead=lead),
                           f"fairness/{route}/{metric}_{trigger}_lead{lead}.png")


def _log_model_run(result, spec, scores, tags, sample_areas, small_cell, charts: Charts) -> None:
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
            publishable(rows, k=small_cell, target=result.target).to_parquet(tmp / "forecasts.parquet", index=False)
            write_csv(scores[scores["model"] == spec.name], tmp / "metrics.csv", index=False)
            mlflow.log_artifact(str(tmp / "forecasts.parquet"))
            mlflow.log_artifact(str(tmp / "metrics.csv"))
            for area in _sample_areas(result, sample_areas):
                fig = fan_chart(result.forecasts, area, spec.name)
                charts.add(fig, f"fan_charts/{area}.png")
            explained = result.contributions[result.contributions["model"] == spec.name]
            if not explained.empty:  # model-made numbers (no observed counts): nothing to suppress
                (tmp / "explanations").mkdir()
                explained.to_parquet(tmp / "explanations" / "contributions.parquet", index=False)
                mlflow.log_artifact(str(tmp / "explanations" / "contributions.parquet"), "explanations")
            if spec.name in result.importance:
                imp = result.importance[spec.name]
                write_csv(imp.rename("gain_share"), tmp / "feature_importance.csv", index_label="feature")
                mlflow.log_artifact(str(tmp / "feature_importance.csv"))
                charts.add(importance_chart(imp, title=f"{spec.name}: feature importance"),
                           "feature_importance.png")


def _sample_areas(result: BacktestResult, n: int) -> list[str]:
    scored = result.scored
    if scored.empty or n <= 0:
        return []
    totals = scored[scored["model"] == result.models[0]].groupby("area")["actual"].sum()
    return list(totals.sort_values(ascending=False).head(n).index)
