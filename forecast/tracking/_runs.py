"""Runs in the MLflow store: which store, finding a run and checking its kind, starting one."""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path

from forecast.errors import ForecastError

__all__ = ["DEFAULT_EXPERIMENT", "git_commit", "get_run", "use_store", "start_run", "store_uri", "prepare_store", "log_artifact"]

DEFAULT_EXPERIMENT = "displacement-forecast"


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


def get_run(run_id: str, *, kind: str | None = None, purpose: str = "", tracking_uri: str | None = None,
            client=None):
    """``(client, run)`` for an MLflow run id, refused with a clear message when unknown or not
    of ``kind`` (``train``, ``backtest``); ``purpose`` ends that message (what the run is for)."""
    import mlflow

    client = client or mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        run = client.get_run(run_id)
    except Exception as error:  # MLflow raises several types for an unknown id
        raise ForecastError(f"no MLflow {kind + ' ' if kind else ''}run {run_id!r} at {client.tracking_uri} "
                            f"({_first_line(error)}); runs of another store: pass --tracking-uri URI (in Python "
                            "tracking_uri=URI) or set MLFLOW_TRACKING_URI, e.g. sqlite:///out/mlflow.db for "
                            "make demo's") from None
    actual = run.data.tags.get("kind", "non-forecast")
    if kind is not None and actual != kind:
        raise ForecastError(f"run {run_id} is a {actual} run; {purpose or f'a {kind} run is needed'}")
    return client, run


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


@contextmanager
def use_store(tracking_uri: str | None):
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


def start_run(experiment: str, run_name: str):
    """A new run in ``experiment``; under `mlflow run`, the run that command opened."""
    import mlflow

    if os.environ.get("MLFLOW_RUN_ID"):  # an MLproject entry point: its run and experiment are set
        return mlflow.start_run()
    mlflow.set_experiment(experiment)
    return mlflow.start_run(run_name=run_name)


def store_uri(tracking_uri: str | None = None) -> str:
    """The tracking URI a call with ``tracking_uri`` writes to (MLflow's current one when None)."""
    import mlflow

    return tracking_uri or mlflow.get_tracking_uri()


def prepare_store(tracking_uri: str, experiment: str, artifacts: str | Path | None = None) -> None:
    """Make ``tracking_uri`` this process's store and ``experiment`` its experiment.

    A new experiment keeps its artifacts in the folder ``artifacts`` (default: MLflow's own
    choice, ``./mlruns`` beside a sqlite store), so that a demo or a project keeps the database
    and the files it logs together.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        location = Path(artifacts).resolve().as_uri() if artifacts is not None else None
        mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)


def log_artifact(run_id: str, path: str | Path, folder: str | None = None, *, tracking_uri: str | None = None) -> None:
    """Add the file ``path`` to run ``run_id`` (under ``folder``)."""
    import mlflow

    mlflow.MlflowClient(tracking_uri=tracking_uri).log_artifact(run_id, str(path), folder)
