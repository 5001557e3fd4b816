"""Scenarios in MLflow: each a run nested under the train run of its model.

A scenario run sits in the train run's experiment with the tag ``mlflow.parentRunId`` set to
the train run, so the MLflow UI shows it under the model. Its parameters are the scenario
(one ``shock.<variable>`` per shock, ``months``, ``areas`` or ``region``, ``trigger``,
``lead``, ``name``), its metrics the headline numbers, and its artifacts the table
(``scenario/<name>.csv``, small cells withheld) and what the table needs to be read
(``scenario/<name>.json``: shocks, months, areas, notes).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from forecast._names import AREA
from forecast._version import __version__
from forecast.errors import ForecastError
from forecast.io import write_csv
from forecast.tracking._runs import get_run, git_commit

__all__ = ["log_scenario", "scenario_runs", "read_scenario", "SCENARIO_KIND"]

#: The ``kind`` tag of a scenario run.
SCENARIO_KIND = "scenario"
_PURPOSE = "a scenario belongs to the train run of its model (`forecast train`)"
_MAX_PARAM = 500  # MLflow stores longer parameter values only in newer stores; the JSON has them all


def _params(result) -> dict[str, str]:
    params = {"name": result.name, "months": result.months_label, "origin": result.origin, "model": result.model,
              "n_areas": str(len(result.areas))}
    params.update({f"shock.{s.variable}": s.change for s in result.shocks})
    if result.region:
        params["region"] = result.region
    areas = "all" if result.all_areas else ",".join(result.areas)
    params["areas"] = areas if len(areas) <= _MAX_PARAM else areas[: _MAX_PARAM - 4] + " ..."
    if result.trigger is not None:
        params["trigger"] = result.trigger
    if result.lead is not None:
        params["lead"] = str(result.lead)
    return params


def log_scenario(train_run_id: str, result, *, small_cell: int | None = None,
                 tracking_uri: str | None = None) -> str:
    """Log a :class:`~forecast.pipeline.ScenarioResult` as a run nested under its train run.

    Parameters
    ----------
    train_run_id : str
        The train run of the model the scenario used.
    result : ScenarioResult
    small_cell : int, optional
        Expected arrivals from 1 to ``small_cell - 1`` are withheld from the table (default:
        the policy's threshold, :func:`forecast.policy.small_cell_k`).
    tracking_uri : str, optional

    Returns
    -------
    str
        The scenario run's id.
    """
    from mlflow.entities import Metric, Param, RunStatus

    client, train = get_run(train_run_id, kind="train", purpose=_PURPOSE, tracking_uri=tracking_uri)
    tags = {"mlflow.parentRunId": train_run_id, "kind": SCENARIO_KIND, "scenario": result.name,
            "model": train.data.tags.get("model", result.model), "git_commit": git_commit(),
            "forecast_version": __version__}
    run = client.create_run(train.info.experiment_id, tags=tags, run_name=f"scenario {result.name}")
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in result.summary().items() if pd.notna(v)]
        client.log_batch(run_id, metrics=metrics, params=[Param(k, v) for k, v in _params(result).items()])
        with tempfile.TemporaryDirectory() as tmp:
            table = Path(tmp) / f"{result.name}.csv"
            write_csv(result.published(small_cell), table, index=False)
            client.log_artifact(run_id, str(table), "scenario")
        client.log_dict(run_id, _meta(result), f"scenario/{result.name}.json")
    except Exception:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run_id)
    return run_id


def _meta(result) -> dict:
    return {"name": result.name, "shocks": [str(s) for s in result.shocks], "months": result.months,
            "areas": result.areas, "region": result.region, "origin": result.origin, "model": result.model,
            "trigger": result.trigger, "lead": result.lead, "trigger_probability": result.trigger_probability,
            "interval": list(result.interval), "notes": list(result.notes), "describe": result.describe()}


def scenario_runs(train_run_id: str, *, tracking_uri: str | None = None) -> dict[str, str]:
    """The scenarios logged under a train run: name to run id (the latest run of a name)."""
    client, train = get_run(train_run_id, kind="train", purpose=_PURPOSE, tracking_uri=tracking_uri)
    runs = client.search_runs([train.info.experiment_id],
                              filter_string=f"tags.`mlflow.parentRunId` = '{train_run_id}' "
                                            f"and tags.kind = '{SCENARIO_KIND}' and attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time ASC"])
    return {run.data.tags["scenario"]: run.info.run_id for run in runs if "scenario" in run.data.tags}


def read_scenario(train_run_id: str, name: str, *, tracking_uri: str | None = None) -> pd.DataFrame:
    """The table of scenario ``name`` of a train run, as logged (small cells withheld).

    ``table.attrs["scenario"]`` holds its shocks, months, areas, notes and description, and
    ``table.attrs["run_id"]`` the scenario run.

    Raises
    ------
    ForecastError
        The train run has no scenario of that name (the message lists those it has).
    """
    runs = scenario_runs(train_run_id, tracking_uri=tracking_uri)
    if name not in runs:
        known = ", ".join(sorted(runs)) or "none yet (forecast scenario --run RUN --set rainfall=-50%)"
        raise ForecastError(f"train run {train_run_id} has no scenario {name!r}; its scenarios: {known}")
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(client.download_artifacts(runs[name], "scenario", tmp))
        table = pd.read_csv(folder / f"{name}.csv", dtype={AREA: str})
        meta = folder / f"{name}.json"
        table.attrs["scenario"] = json.loads(meta.read_text(encoding="utf-8")) if meta.is_file() else {}
    table.attrs["run_id"] = runs[name]
    return table
