"""Trained models in MLflow: logged as a pyfunc model, loaded back as the trained forecaster."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from forecast._version import __version__
from forecast.errors import ForecastError
from forecast.cube import cube_from_table, cube_table
from forecast.models import has_contributions
from forecast.io import owner_only_process
from forecast.tracking._quiet import quiet_warnings
from forecast.policy import manifest_sensitivity
from forecast.tracking._log import _flat
from forecast.tracking._runs import DEFAULT_EXPERIMENT, FINISHED, git_commit, start_run, store_lock, use_store
from forecast.tracking._transport import check_transport

__all__ = ["log_trained", "load_trained"]


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
            return self.trained.predict(cube_from_table(pd.DataFrame(model_input)))

    return ForecastModel


#: The packages a logged model's pickle refers to, pinned as installed here. Left to MLflow, the
#: list is inferred by loading the model in a new Python process (4-5 s of every train log), and
#: what it found depended on what else the environment held: dask and tblib, not lightgbm.
PINNED = ("mlflow", "cloudpickle", "lightgbm", "scikit-learn", "statsmodels", "numpy", "pandas", "scipy",
          "xarray", "pydantic")


def model_requirements() -> list[str]:
    """The pip requirements logged with a model: this toolkit's version and :data:`PINNED` as installed."""
    from importlib.metadata import PackageNotFoundError, version

    pins = [f"displacement-forecast=={__version__}"]
    for name in PINNED:
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:  # an optional one absent here is not the model's
            continue
    return pins


def log_trained(trained, cube, *, manifest: Mapping | None = None, experiment: str = DEFAULT_EXPERIMENT,
                tracking_uri: str | None = None, cube_path: str | Path | None = None,
                previous_run: str | None = None) -> tuple[str, str]:
    """Log a :class:`~forecast.pipeline.TrainedModel` as an MLflow pyfunc model.

    The run records its lineage: tag ``data_month`` (the cube's last month) and tag
    ``previous_run``, the train run this one succeeds: ``previous_run`` when given, else the
    run of the same model in the experiment with the latest data month before this one's (the
    last logged among equals). The next forecast report compares with the reports of that line.

    With it go the triggers, the manifest and, for a model with contributions (LightGBM, SARIMAX
    with covariates), the driver contributions of its forecast from the cube's last month
    (``explanations/contributions.parquet``, :meth:`TrainedModel.explain`).

    Returns
    -------
    (run_id, model_uri)
        ``mlflow.pyfunc.load_model(model_uri).predict(cube_table(cube))`` forecasts every area.
    """
    import mlflow
    from mlflow.models import infer_signature

    with use_store(tracking_uri):
        spec = trained.spec
        sensitivity = manifest_sensitivity(manifest) or "unknown"
        transport = check_transport(None, sensitivity)  # high/severe: a server needs auth and TLS
        example = cube_table(cube, areas=cube["area"].values[:3], months=24)
        model = _pyfunc_class()(trained)
        output = model.predict(None, example)
        data_month = f"{pd.Timestamp(cube['time'].values[-1]):%Y-%m}"
        # high/severe: a local store's database and artifacts are made owner-only (umask 077)
        with owner_only_process(sensitivity):
            predecessor = previous_run or _predecessor(experiment, spec.name, data_month, tracking_uri)
            with start_run(experiment, spec.name) as run:
                if predecessor:
                    mlflow.set_tag("previous_run", predecessor)
                mlflow.set_tags({"kind": "train", "model": spec.name, "spec_hash": spec.hash(),
                                 "data_month": data_month,
                                 "cube_hash": trained.cube_hash, "git_commit": git_commit(),
                                 "sensitivity": sensitivity, "forecast_version": __version__,
                                 "target": spec.target, **transport})
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
                explanation = _final_explanation(trained, cube)
                if explanation is not None:
                    with tempfile.TemporaryDirectory() as tmp:
                        path = Path(tmp) / "contributions.parquet"
                        explanation.to_parquet(path, index=False)
                        mlflow.log_artifact(str(path), "explanations")
                with quiet_warnings():  # MLflow's schema hints are not the user's to act on
                    info = mlflow.pyfunc.log_model(name="model", python_model=model, input_example=_shape_only(example),
                                                   signature=infer_signature(example, output),
                                                   pip_requirements=model_requirements())
                if manifest:
                    mlflow.log_dict(dict(manifest), "manifest.json")
                return run.info.run_id, info.model_uri


def _shape_only(example: pd.DataFrame) -> pd.DataFrame:
    """The example MLflow keeps beside the model (``input_example.json``): the columns, areas and
    months of real rows with every number 0. The data's own rows are never published with a
    model (the gate reads the example like any other table)."""
    out = example.copy()
    numbers = out.select_dtypes("number").columns
    out[numbers] = 0.0
    return out


def _predecessor(experiment: str, model: str, data_month: str, tracking_uri: str | None) -> str | None:
    """The FINISHED train run of ``model`` in ``experiment`` with the latest data month before
    ``data_month`` (a run cut short may lack its model: no line continues from it)."""
    import mlflow

    with store_lock(tracking_uri):  # the first look at a new sqlite store makes its schema
        client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        found = client.get_experiment_by_name(experiment)
    if found is None:
        return None
    runs = client.search_runs([found.experiment_id], filter_string=f"tags.kind = 'train' and tags.model = '{model}' "
                                                                   f"and attributes.status = '{FINISHED}'")
    earlier = [(r.data.tags.get("data_month", ""), r.info.start_time, r.info.run_id) for r in runs
               if "" < r.data.tags.get("data_month", "") < data_month]
    return max(earlier)[2] if earlier else None


def _final_explanation(trained, cube) -> pd.DataFrame | None:
    """The driver contributions of the forecast from the cube's last month; None for a model
    without contributions (ETS, SARIMAX without covariates, HistGradientBoosting, baselines)."""
    return trained.explain(cube) if has_contributions(trained.fitted) else None


def load_trained(model: str, *, tracking_uri: str | None = None):
    """The trained forecaster (:class:`~forecast.pipeline.TrainedModel`) behind an MLflow model.

    Parameters
    ----------
    model : str
        A train run id, or a model URI (``runs:/RUN/model``, ``models:/NAME@ALIAS``,
        ``models:/NAME/VERSION``).
    tracking_uri : str, optional
        The store to read; the caller's own tracking URI is given back afterwards.

    Returns
    -------
    (trained, run_id)
        ``run_id`` is the train run behind the model: the run of a ``runs:/`` URI, the run of a
        registered version, else the run the model's files name.

    Raises
    ------
    ForecastError
        The URI or run cannot be loaded (the message says why).
    """
    import mlflow

    uri = model if ":/" in model else f"runs:/{model}/model"
    with use_store(tracking_uri), tempfile.TemporaryDirectory() as copy:
        try:  # from a copy: on a local store MLflow writes registered_model_meta into the folder it
            # loads, which would change the released model's files (and void its review as a tamper)
            loaded = mlflow.pyfunc.load_model(uri, dst_path=copy)
        except Exception as error:  # MLflow raises several types for a bad URI or a run without a model
            raise ForecastError(f"cannot load model {model!r}: {error}") from None
        return loaded.unwrap_python_model().trained, _source_run(uri, loaded, tracking_uri)


def _source_run(uri: str, loaded, tracking_uri: str | None) -> str | None:
    if found := re.match(r"runs:/([^/]+)/", uri):
        return found.group(1)
    if found := re.match(r"models:/([^/@]+)(?:@([^/]+)|/(\d+))/?$", uri):
        import mlflow

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
