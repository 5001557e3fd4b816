"""`forecast backtest`, `train` and `predict` from the command line."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.cube import save_cube
from forecast.datasets import make_panel

SPEC = """\
name: tiny_lgbm
estimator: lightgbm
horizons: [1, 2, 3]
params: {n_estimators: 20, num_leaves: 7, min_child_samples: 5, max_bin: 31}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    save_cube(make_panel(10, 40, seed=9, with_flows=True), root / "cube.nc")
    (root / "spec.yaml").write_text(SPEC)
    (root / "triggers.yaml").write_text("name: spike\nkind: percentile\nvalue: 80\nmin_history: 6\nleads: [1]\n")
    return root


def _run(args, cwd, monkeypatch):
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps tables to the terminal's width
    result = CliRunner().invoke(app, args)
    return result


def test_backtest_prints_models_against_baselines_and_the_run(files, tmp_path, monkeypatch):
    res = _run(["backtest", "--cube", str(files / "cube.nc"), "--spec", str(files / "spec.yaml"),
                "--origins", "3", "--calibration-origins", "8", "--min-train", "12",
                "--out", str(tmp_path / "bt")], tmp_path, monkeypatch)
    assert res.exit_code == 0, res.output
    for name in ("naive", "seasonal_naive", "moving_average", "ewm", "historical_mean", "tiny_lgbm"):
        assert name in res.output
    assert "mase h1" in res.output and "coverage80 h3" in res.output
    assert re.search(r"MLflow run [0-9a-f]{32}", res.output)
    assert (tmp_path / "mlflow.db").is_file()
    metrics = pd.read_csv(tmp_path / "bt" / "metrics.csv")
    assert set(metrics["model"]) >= {"tiny_lgbm", "seasonal_naive"}


def test_backtest_refits_the_calibration_origins_on_their_own_cycle_and_logs_it(files, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    def run(*extra):
        out = tmp_path / f"bt{len(extra)}"
        res = _run(["backtest", "--cube", str(files / "cube.nc"), "--spec", str(files / "spec.yaml"), "--no-baselines",
                    "--origins", "3", "--calibration-origins", "8", "--min-train", "12", "--out", str(out), *extra],
                   tmp_path, monkeypatch)
        assert res.exit_code == 0, res.output
        run_id = re.search(r"MLflow run ([0-9a-f]{32})", res.output).group(1)
        client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
        return client.get_run(run_id).data.params, pd.read_parquet(out / "forecasts.parquet")

    params, every = run()
    assert params["calibration_refit_every"] == "1" == params["refit_every"]
    params, pairs = run("--calibration-refit-every", "2")
    assert params["calibration_refit_every"] == "2" and params["refit_every"] == "1"
    keys = ["origin", "horizon", "area"]
    scored = [f[f["role"] == "scored"].sort_values(keys)["point"].to_numpy() for f in (every, pairs)]
    assert (scored[0] == scored[1]).all()


def test_backtest_reconciled_across_levels_prints_and_logs_every_level(files, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    res = _run(["backtest", "--cube", str(files / "cube.nc"), "--spec", str(files / "spec.yaml"), "--no-baselines",
                "--origins", "3", "--calibration-origins", "8", "--min-train", "12", "--reconcile", "mint_shrink"],
               tmp_path, monkeypatch)
    assert res.exit_code == 0, res.output
    assert "tiny_lgbm at every admin level, reconciled by mint_shrink" in res.output
    assert re.search(r"national\s*│\s*mint_shrink", res.output) and re.search(r"admin1\s*│\s*base", res.output)
    run_id = re.search(r"MLflow run ([0-9a-f]{32})", res.output).group(1)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.get_run(run_id).data.tags["reconciliation"] == "mint_shrink"
    metrics = pd.read_csv(client.download_artifacts(run_id, "levels/metrics.csv", str(tmp_path)))
    assert set(zip(metrics["level"], metrics["forecast"])) == {(lv, kind) for lv in (0, 1, 2)
                                                               for kind in ("base", "mint_shrink")}
    bad = _run(["backtest", "--cube", str(files / "cube.nc"), "--spec", str(files / "spec.yaml"), "--reconcile",
                "mint"], tmp_path, monkeypatch)
    assert bad.exit_code == 2 and "choose one of bottom_up, ols, wls_struct, mint_shrink" in bad.output


def test_backtest_of_a_stock_file_runs_the_specs_it_can_and_names_the_one_it_skipped(tmp_path, monkeypatch):
    stocks = make_panel(10, 40, seed=4, round_every=(2, 3), with_flows=False)[["idp_stock", "idp_stock_observed"]]
    save_cube(stocks, tmp_path / "stocks.nc")
    (tmp_path / "stock.yaml").write_text("name: tiny_stock\nestimator: lightgbm\ntarget: idp_stock\nhorizons: [1, 2]\n"
                                         "params: {point: median, n_estimators: 20, num_leaves: 7, min_child_samples: 5}\n")
    (tmp_path / "needs.yaml").write_text("name: needs_conflict\nestimator: sarimax\ntarget: idp_stock\n"
                                         "horizons: [1, 2]\nparams: {exog: [conflict_incidents], min_length: 4}\n")
    res = _run(["backtest", "--cube", str(tmp_path / "stocks.nc"), "--spec", str(tmp_path / "stock.yaml"),
                "--spec", str(tmp_path / "needs.yaml"), "--origins", "3", "--calibration-origins", "6",
                "--min-train", "12"], tmp_path, monkeypatch)
    assert res.exit_code == 0, res.output
    assert "backtest of idp_stock" in res.output and "tiny_stock" in res.output
    assert re.search(r"needs_conflict\s+skipped: its covariate\(s\) conflict_incidents \(params.exog\) are not in "
                     r"the cube", res.output)
    # too few earlier errors for intervals: one line for every model it applies to
    line = next(text for text in res.output.splitlines() if "earlier errors" in text)
    assert line.startswith("naive, seasonal_naive, moving_average, ewm, historical_mean, tiny_stock: no interval")


def test_backtest_with_a_bad_spec_exits_2_naming_the_file(files, tmp_path, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("estimator: lightgbn\n")
    res = _run(["backtest", "--cube", str(files / "cube.nc"), "--spec", str(bad)], tmp_path, monkeypatch)
    assert res.exit_code == 2
    assert f"{bad}: invalid model spec" in res.output and "Traceback" not in res.output


def test_backtest_on_a_cube_too_short_exits_2_with_the_months_needed(files, tmp_path, monkeypatch):
    res = _run(["backtest", "--cube", str(files / "cube.nc"), "--spec", str(files / "spec.yaml"),
                "--origins", "30"], tmp_path, monkeypatch)
    assert res.exit_code == 2 and "the backtest needs" in res.output


def test_train_then_predict_forecasts_every_area(files, tmp_path, monkeypatch):
    res = _run(["train", "--cube", str(files / "cube.nc"), "--spec", str(files / "spec.yaml")],
               tmp_path, monkeypatch)
    assert res.exit_code == 0, res.output
    uri = re.search(r"model URI\s+(\S+)", res.output).group(1)
    out = tmp_path / "pred.csv"
    res = _run(["predict", "--model", uri, "--cube", str(files / "cube.nc"), "--out", str(out)],
               tmp_path, monkeypatch)
    assert res.exit_code == 0, res.output
    pred = pd.read_csv(out)
    assert len(pred) == 10 * 3 and {"point", "q0.1", "q0.9"} <= set(pred.columns)
    assert "highest" in res.output


def test_predict_with_an_unknown_model_exits_2(files, tmp_path, monkeypatch):
    res = _run(["predict", "--model", "runs:/0123456789abcdef/model", "--cube", str(files / "cube.nc")],
               tmp_path, monkeypatch)
    assert res.exit_code == 2 and "cannot load model" in res.output


def test_mlflow_run_backtest_entry_point_works_with_the_local_env(files, tmp_path):
    """`mlflow run . -e backtest --env-manager local`, as the README says, on a small spec."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    root = Path(__file__).resolve().parents[1]
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    forecast_cli = Path(sys.executable).with_name("forecast")
    if not forecast_cli.exists() or not mlflow_cli.exists():
        pytest.skip("the forecast and mlflow commands are not installed beside this Python")
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env = {**env, "MLFLOW_TRACKING_URI": uri,
           "PATH": f"{forecast_cli.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run(
        [str(mlflow_cli), "run", str(root), "-e", "backtest", "--env-manager", "local",
         "-P", f"cube={files / 'cube.nc'}", "-P", f"spec={files / 'spec.yaml'}",
         "-P", "origins=2", "-P", "calibration_origins=8", "-P", "horizon=3",
         "-P", f"triggers={files / 'triggers.yaml'}",
         "--experiment-name", "mlproject"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("mlproject").experiment_id])
    assert {"tiny_lgbm", "naive"} <= {r.info.run_name for r in runs}
    parent = next(r for r in runs if r.data.tags.get("kind") == "backtest")
    assert "brier_l1_forecast_spike" in parent.data.metrics  # the entry point evaluates the trigger
    shutil.rmtree(tmp_path / "mlruns", ignore_errors=True)
