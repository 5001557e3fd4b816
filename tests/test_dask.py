"""The Dask path of the backtest: a real distributed.LocalCluster of two worker processes."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast.backtest import RollingOrigin, backtest
from forecast.cli import app
from forecast.cube import load_cube, save_cube
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.models._spec import load_spec

distributed = pytest.importorskip("distributed")

LGBM = "name: tiny\nestimator: lightgbm\nhorizons: [1, 2, 3]\nparams: {n_estimators: 20, num_leaves: 7, " \
       "min_child_samples: 5, max_bin: 31}\n"
ETS = "name: ets\nestimator: ets\nhorizons: [1, 2, 3]\nparams: {trend: add, damped_trend: true, transform: log1p, " \
      "point: median, min_length: 12}\n"


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as c:
            yield c


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("specs")
    (folder / "tiny.yaml").write_text(LGBM)
    (folder / "ets.yaml").write_text(ETS)
    return [load_spec(folder / "tiny.yaml"), load_spec(folder / "ets.yaml")]


@pytest.fixture(scope="module")
def cube():
    return make_panel(12, 48, seed=9, with_flows=True)


@pytest.mark.parametrize("refit_every", [1, 3])
def test_backtest_on_a_two_worker_cluster_gives_exactly_the_local_forecasts(client, specs, cube, refit_every):
    folds = RollingOrigin(n_origins=4, calibration_origins=4, min_train=12, refit_every=refit_every)
    local = backtest(cube, specs, folds=folds)
    seen = []
    remote = backtest(cube, specs, folds=folds, dask=client, progress=lambda *a: seen.append(a))
    pd.testing.assert_frame_equal(local.forecasts, remote.forecasts)
    assert set(local.importance) == set(remote.importance) == {"tiny"}
    pd.testing.assert_series_equal(local.importance["tiny"], remote.importance["tiny"])
    assert len(client.scheduler_info()["workers"]) == 2
    assert ("tiny", 8, 8) in seen and ("ets", 8, 8) in seen  # progress reaches every origin


def test_series_models_forecast_from_every_origin_even_between_refits(specs, cube):
    """With refit_every=3 a series model still forecasts from each origin's own last month."""
    result = backtest(cube, [], folds=RollingOrigin(n_origins=6, calibration_origins=0, min_train=12, refit_every=3))
    naive = result.forecasts[(result.forecasts["model"] == "naive") & (result.forecasts["horizon"] == 1)]
    y = cube["arrivals"].transpose("area", "time").to_pandas()
    for row in naive.sample(20, random_state=0).itertuples():
        history = y.loc[row.area, :row.origin].dropna()
        assert row.point == pytest.approx(history.iloc[-1])


def test_a_cube_opened_in_dask_chunks_backtests_like_a_loaded_one(specs, cube, tmp_path):
    path = tmp_path / "cube.nc"
    save_cube(cube, path)
    folds = RollingOrigin(n_origins=2, calibration_origins=2, min_train=12)
    chunked = load_cube(path, chunks={})  # dask arrays in the chunks the file stores
    assert chunked["arrivals"].chunks is not None
    pd.testing.assert_frame_equal(backtest(load_cube(path), specs[:1], folds=folds).forecasts,
                                  backtest(chunked, specs[:1], folds=folds).forecasts)


def test_an_error_on_a_worker_reaches_the_caller_with_its_message(client, specs, cube):
    broken = cube.copy(deep=True)
    broken["arrivals"][0, 5] = -3.0  # ETS on log1p refuses a negative count, on the worker
    with pytest.raises(ForecastError, match="transform='log1p' needs non-negative counts"):
        backtest(broken, specs[1:], folds=RollingOrigin(n_origins=2, calibration_origins=0, min_train=12),
                 baselines=False, dask=client)


def test_a_worker_that_lacks_training_rows_says_so_as_a_local_run_does(client, specs):
    sparse = make_panel(3, 16, seed=1)
    folds = RollingOrigin(n_origins=2, calibration_origins=0, min_train=6)
    remote = backtest(sparse, specs[:1], folds=folds, baselines=False, dask=client)
    local = backtest(sparse, specs[:1], folds=folds, baselines=False)
    assert remote.notes == local.notes and "training rows, fewer than the 50" in remote.notes["tiny"][0]
    pd.testing.assert_frame_equal(local.forecasts, remote.forecasts)


def test_cli_backtest_with_dask_local_logs_the_same_metrics(specs, cube, tmp_path):
    path = tmp_path / "cube.nc"
    save_cube(cube, path)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(LGBM)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["backtest", "--cube", str(path), "--spec", str(spec), "--origins", "2", "--calibration-origins", "2",
            "--min-train", "12", "--tracking-uri", uri]
    runs = []
    for extra in ([], ["--dask", "local"]):
        result = CliRunner().invoke(app, [*args, *extra])
        assert result.exit_code == 0, result.output
        runs.append(result.output)
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    children = client.search_runs(["1"], filter_string="tags.model = 'tiny'")
    assert len(children) == 2
    a, b = (c.data.metrics for c in children)
    assert a == b


def test_cli_backtest_with_an_unreachable_scheduler_says_so(specs, cube, tmp_path):
    path = tmp_path / "cube.nc"
    save_cube(cube, path)
    spec = tmp_path / "tiny.yaml"
    spec.write_text(LGBM)
    result = CliRunner().invoke(app, ["backtest", "--cube", str(path), "--spec", str(spec), "--origins", "2",
                                      "--dask", "tcp://127.0.0.1:9", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"])
    assert result.exit_code == 2, result.output
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in " ".join(result.output.split())
