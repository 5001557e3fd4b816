"""MLflow: parent and child runs, metric names, lineage tags, artifacts, the pyfunc model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from forecast.pipeline._train import train
from forecast.backtest import RollingOrigin, backtest
from forecast.datasets import make_panel
from forecast.models import ModelSpec
from forecast.cube import cube_table
from forecast.policy import small_cell_k, suppress_small_cells
from forecast.tracking import log_backtest, log_trained

from _server import mlflow_server

SMALL = dict(n_estimators=20, learning_rate=0.1, num_leaves=7, min_child_samples=5, max_bin=31)
FOLDS = RollingOrigin(n_origins=3, calibration_origins=8, min_train=18)
MANIFEST = {"sensitivity": {"level": "high"}, "cube_hash": "abc", "files": []}


@pytest.fixture(scope="module")
def cube():
    return make_panel(12, 40, seed=8, with_flows=True)


@pytest.fixture(scope="module")
def spec():
    return ModelSpec(name="lightgbm", estimator="lightgbm", params=SMALL, horizons=[1, 2, 3])


@pytest.fixture(scope="module")
def result(cube, spec):
    return backtest(cube, [spec], folds=FOLDS)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield tmp_path
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def logged(result, tmp_path_factory):
    """One backtest logged to a sqlite store of its own: (client, parent run id)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    try:
        run_id = log_backtest(result, manifest=MANIFEST, experiment="t", tracking_uri=uri)
    finally:
        mlflow.set_tracking_uri(None)
    return MlflowClient(tracking_uri=uri), run_id


def test_default_store_is_mlflow_db_in_the_working_folder(store, cube):
    run_id = log_backtest(backtest(cube, [], folds=FOLDS), experiment="t", sample_areas=0)
    assert (store / "mlflow.db").is_file()
    assert MlflowClient().get_run(run_id).data.tags["kind"] == "backtest"


def test_backtest_logs_one_parent_and_one_child_per_model(logged, result):
    client, run_id = logged
    parent = client.get_run(run_id)
    assert parent.data.tags["cube_hash"] == result.cube_hash
    assert parent.data.tags["sensitivity"] == "high"
    assert parent.data.tags["git_commit"]
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{run_id}'")
    names = sorted(r.info.run_name for r in children)
    assert names == sorted(result.models)
    lgbm = next(r for r in children if r.info.run_name == "lightgbm")
    for metric in ("mase_h1", "crps_h3", "coverage80_h2", "rmsle_h1", "level_ratio_h3",
                   "skill_mase_vs_seasonal_naive_h1"):
        assert metric in lgbm.data.metrics, metric
    expected = result.scores().set_index(["model", "horizon"]).loc[("lightgbm", 1), "mase"]
    assert lgbm.data.metrics["mase_h1"] == pytest.approx(expected)
    assert lgbm.data.tags["spec_hash"] == result.specs[-1].hash()
    assert lgbm.data.params["params.n_estimators"] == "20"
    artifacts = {a.path for a in client.list_artifacts(lgbm.info.run_id)}
    assert {"forecasts.parquet", "metrics.csv", "feature_importance.csv", "feature_importance.png",
            "fan_charts"} <= artifacts
    assert len(client.list_artifacts(lgbm.info.run_id, "fan_charts")) == 3
    assert "manifest.json" in {a.path for a in client.list_artifacts(run_id)}


def test_logged_charts_are_the_pictures_matplotlib_saves(logged, result, tmp_path):
    """Charts are laid out once before logging (faster): the PNG must be what saving the chart
    with its constrained layout gives, pixel for pixel, not a chart without that layout."""
    import io

    import matplotlib.image as mpimg

    from forecast.backtest import fan_chart

    client, run_id = logged
    child = client.search_runs([client.get_run(run_id).info.experiment_id],
                               f"tags.mlflow.parentRunId = '{run_id}' and tags.model = 'lightgbm'")[0]
    logged_chart = client.list_artifacts(child.info.run_id, "fan_charts")[0].path
    area = Path(logged_chart).stem
    path = mlflow.artifacts.download_artifacts(run_id=child.info.run_id, artifact_path=logged_chart,
                                               dst_path=str(tmp_path), tracking_uri=client.tracking_uri)
    buffer = io.BytesIO()
    fan_chart(result.forecasts, area, "lightgbm").savefig(buffer, format="png")
    buffer.seek(0)
    expected, got = mpimg.imread(buffer), mpimg.imread(path)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)
    unlaid = fan_chart(result.forecasts, area, "lightgbm")
    unlaid.set_layout_engine("none")
    buffer = io.BytesIO()
    unlaid.savefig(buffer, format="png")
    buffer.seek(0)
    assert not np.array_equal(mpimg.imread(buffer), got)  # the layout is in the picture


def test_forecast_artifact_withholds_small_observed_counts(logged, result, tmp_path):
    client, run_id = logged
    child = client.search_runs([client.get_run(run_id).info.experiment_id],
                               f"tags.mlflow.parentRunId = '{run_id}' and tags.model = 'naive'")[0]
    path = mlflow.artifacts.download_artifacts(run_id=child.info.run_id, artifact_path="forecasts.parquet",
                                               dst_path=str(tmp_path), tracking_uri=client.tracking_uri)
    table = pd.read_parquet(path)
    actual = table["actual"].dropna()
    assert not ((actual > 0) & (actual < small_cell_k())).any()
    original = result.forecasts[result.forecasts["model"] == "naive"]["actual"]
    assert table["actual_suppressed"].sum() == ((original > 0) & (original < small_cell_k())).sum()


def test_suppress_small_cells_keeps_zero_and_large_counts():
    frame = pd.DataFrame({"actual": [0.0, 1.0, 4.0, 5.0, np.nan, 900.0]})
    out = suppress_small_cells(frame, k=5)
    assert out["actual"].tolist()[:1] == [0.0] and out["actual"].tolist()[3] == 5.0
    assert out["actual_suppressed"].tolist() == [False, True, True, False, False, False]


def test_tracking_uri_from_the_environment_is_respected(tmp_path, monkeypatch, cube):
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    try:
        log_backtest(backtest(cube, [], folds=FOLDS), experiment="env", sample_areas=0)
        assert (tmp_path / "elsewhere.db").is_file() and not (tmp_path / "mlflow.db").exists()
    finally:
        mlflow.set_tracking_uri(None)


def test_trained_model_loads_as_pyfunc_and_forecasts_every_area_and_horizon(store, cube, spec, tmp_path):
    trained = train(cube, spec, calibration=RollingOrigin(n_origins=6, calibration_origins=0, min_train=18))
    run_id, uri = log_trained(trained, cube, manifest=MANIFEST, experiment="t")
    model = mlflow.pyfunc.load_model(uri)
    table = cube_table(cube, months=30)
    out = model.predict(table)
    assert len(out) == cube.sizes["area"] * 3
    assert set(out["horizon"]) == {1, 2, 3}
    assert (out["time"] > pd.Timestamp(cube["time"].values[-1])).all()
    q = out[["q0.1", "q0.5", "q0.9"]].to_numpy()
    assert np.isfinite(q).all() and (np.diff(q, axis=1) >= 0).all()
    assert model.metadata.signature is not None
    run = MlflowClient().get_run(run_id)
    assert run.data.tags["kind"] == "train" and run.data.tags["cube_hash"] == trained.cube_hash
    # the full cube (with flows) gives the same columns through the unwrapped model
    direct = model.unwrap_python_model().trained.predict(cube)
    assert list(direct.columns) == list(out.columns)
    # what the pickle needs, pinned as installed (not inferred from whatever else the env holds)
    from importlib.metadata import version

    from forecast import __version__

    pins = Path(mlflow.pyfunc.get_model_dependencies(uri)).read_text().split()
    assert f"displacement-forecast=={__version__}" in pins
    for name in ("lightgbm", "scikit-learn", "pandas", "numpy", "mlflow", "cloudpickle"):
        assert f"{name}=={version(name)}" in pins
    assert not any(pin.startswith(("dask", "tblib")) for pin in pins)
    # the evidence reader finds a run's own files in its store and the model's files with the model
    from forecast.tracking import Artifacts

    client = MlflowClient()
    reader = Artifacts(client, tmp_path / "read")
    for path in ("manifest.json", "model/MLmodel"):
        expected = Path(client.download_artifacts(run_id, path, str(tmp_path)))
        assert reader.local(run_id, path).read_bytes() == expected.read_bytes()
    assert reader.read(run_id, "no/such/file.csv") is None


@pytest.fixture
def server(tmp_path):
    with mlflow_server(tmp_path, timeout=120) as uri:
        yield uri


def test_backtest_logs_to_an_mlflow_server_on_localhost(server, result, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # moderate data: high and severe data need a server with credentials (tests/test_remote_tracking.py)
    manifest = {**MANIFEST, "sensitivity": {"level": "moderate"}}
    run_id = log_backtest(result, manifest=manifest, experiment="server", tracking_uri=server)
    client = MlflowClient(tracking_uri=server)
    parent = client.get_run(run_id)
    assert parent.data.tags["cube_hash"] == result.cube_hash
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    assert len(children) == len(result.models)
    assert not Path(tmp_path / "mlflow.db").exists()


def test_an_unknown_run_names_the_store_it_looked_in_and_how_to_point_elsewhere(tmp_path):
    from forecast.errors import ForecastError
    from forecast.tracking import get_run

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(ForecastError) as info:
        get_run("0" * 32, tracking_uri=uri)
    text = str(info.value)
    assert f"no MLflow run {'0' * 32!r} at {uri}" in text
    assert "--tracking-uri" in text and "MLFLOW_TRACKING_URI" in text


def test_mlflow_setup_chatter_is_not_shown_once_the_toolkit_tracks(tmp_path):
    body = ("import mlflow; mlflow.set_tracking_uri('sqlite:///{db}'); mlflow.set_experiment('x'); "
            "mlflow.start_run(); mlflow.end_run()")
    said = {}
    for name, head in (("mlflow alone", ""), ("toolkit", "import forecast.tracking; ")):
        code = head + body.format(db=tmp_path / f"{len(said)}.db")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        said[name] = done.stderr
    # MLflow alone prints its database setup (the check is not blind); through the toolkit it does not
    assert "Creating initial MLflow database tables" in said["mlflow alone"]
    assert "Creating initial MLflow database tables" not in said["toolkit"]
    assert "Creating a new experiment" not in said["toolkit"]
