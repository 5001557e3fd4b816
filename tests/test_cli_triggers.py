"""`forecast backtest --triggers`, `forecast train --triggers` and `forecast prioritize`."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from forecast.cli import app
from forecast.cube import save_cube
from forecast.datasets import make_panel

from _pipeline import SPEC, TRIGGERS  # the tiny spec and trigger the MLflow tests share

N_AREAS = 12


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli_triggers")
    save_cube(make_panel(N_AREAS, 48, seed=9, with_flows=True), root / "cube.nc")
    (root / "spec.yaml").write_text(SPEC)
    (root / "triggers.yaml").write_text(TRIGGERS)
    return root


def _run(args, cwd, monkeypatch):
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    return CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def backtest_run(files, tmp_path_factory):
    where = tmp_path_factory.mktemp("bt")
    with pytest.MonkeyPatch.context() as mp:
        res = _run(["backtest", "--cube", str(files / "cube.nc"), "--spec", str(files / "spec.yaml"),
                    "--origins", "6", "--calibration-origins", "8", "--min-train", "12",
                    "--triggers", str(files / "triggers.yaml"), "--route", "forecast", "--route", "logistic",
                    "--mitigate", "region"], where, mp)
    assert res.exit_code == 0, res.output
    run_id = re.search(r"MLflow run ([0-9a-f]{32})", res.output).group(1)
    return res.output, MlflowClient(tracking_uri=f"sqlite:///{where / 'mlflow.db'}").get_run(run_id), where


def test_backtest_with_triggers_prints_trigger_scores_and_fairness(backtest_run):
    output, _, _ = backtest_run
    assert "trigger signals on the scored origins" in output
    for word in ("hit rate", "false alarms", "prec@5", "Brier", "return period"):
        assert word in output
    assert re.search(r"fairness, forecast route: (passed|FAILED|cannot judge)", output)
    assert "fairness, logistic route" in output
    assert "group-aware thresholds by region" in output


def test_backtest_with_triggers_logs_metrics_tables_and_plots_to_the_run(backtest_run):
    _, run, where = backtest_run
    client = MlflowClient(tracking_uri=f"sqlite:///{where / 'mlflow.db'}")
    for lead in (1, 3):
        for route in ("forecast", "logistic"):
            for metric in ("hit_rate", "false_alarm_ratio", "brier", "precision_at_5", "activations"):
                key = f"{metric}_l{lead}_{route}_spike"
                assert key in run.data.metrics or metric == "hit_rate", key  # no event: no hit rate
    assert run.data.tags["fairness_passed"] in {"yes", "no", "cannot judge"}
    assert run.data.params["trigger.spike"].startswith("at or above the area's own 80th percentile")
    names = {f.path for f in client.list_artifacts(run.info.run_id, "triggers")}
    assert {"triggers/metrics.csv", "triggers/reliability.csv", "triggers/drift.csv",
            "triggers/signals.parquet", "triggers/reliability_spike.png",
            "triggers/timeline_spike_lead3_logistic.png"} <= names
    fairness = {f.path for f in client.list_artifacts(run.info.run_id, "fairness/forecast")}
    assert {"fairness/forecast/fairness_by_group.csv", "fairness/forecast/fairness_disparities.csv",
            "fairness/forecast/summary.txt", "fairness/forecast/hit_rate_spike_lead3.png"} <= fairness
    assert "fairness/mitigation_region.csv" in {f.path for f in client.list_artifacts(run.info.run_id, "fairness")}
    local = client.download_artifacts(run.info.run_id, "triggers/metrics.csv", str(where))
    metrics = pd.read_csv(local)
    assert set(zip(metrics["lead"], metrics["route"])) == {(1, "forecast"), (1, "logistic"),
                                                           (3, "forecast"), (3, "logistic")}


def test_train_with_triggers_then_prioritize_ranks_every_area(files, tmp_path, monkeypatch):
    res = _run(["train", "--cube", str(files / "cube.nc"), "--spec", str(files / "spec.yaml"),
                "--triggers", str(files / "triggers.yaml")], tmp_path, monkeypatch)
    assert res.exit_code == 0, res.output
    run_id = re.search(r"MLflow run ([0-9a-f]{32})", res.output).group(1)
    assert f"forecast prioritize --run {run_id}" in res.output
    res = _run(["prioritize", "--run", run_id, "--top", "5", "--lead", "3"], tmp_path, monkeypatch)
    assert res.exit_code == 0, res.output
    assert "areas to act on first: spike" in res.output and "within 3 month(s)" in res.output
    saved = tmp_path / "out" / "prioritize" / f"prioritize_{run_id[:8]}_spike_lead3.csv"
    ranking = pd.read_csv(saved)
    assert len(ranking) == N_AREAS  # every area listed, ranked or with the reason it is not
    ranked = ranking[ranking["rank"].notna()]
    assert ranked["rank"].is_monotonic_increasing and ranked["rank"].iloc[0] == 1
    assert ranking["status"].notna().all()
    assert (ranked["score"].diff().dropna() <= 1e-9).all()  # rank follows the score
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert [f.path for f in client.list_artifacts(run_id, "prioritize")] == [f"prioritize/{saved.name}"]


def test_prioritize_refuses_a_backtest_run_with_a_clear_message(backtest_run, monkeypatch):
    _, run, where = backtest_run
    res = _run(["prioritize", "--run", run.info.run_id], where, monkeypatch)
    assert res.exit_code == 2
    assert "is a backtest run; prioritize needs a run of `forecast train --triggers" in res.output
    assert "Traceback" not in res.output


def test_prioritize_with_an_unknown_run_exits_2(tmp_path, monkeypatch):
    res = _run(["prioritize", "--run", "0123456789abcdef0123456789abcdef"], tmp_path, monkeypatch)
    assert res.exit_code == 2 and "no MLflow train run '0123456789abcdef0123456789abcdef'" in res.output


def test_prioritize_of_a_model_trained_without_triggers_says_how_to_train_it(files, tmp_path, monkeypatch):
    res = _run(["train", "--cube", str(files / "cube.nc"), "--spec", str(files / "spec.yaml")],
               tmp_path, monkeypatch)
    run_id = re.search(r"MLflow run ([0-9a-f]{32})", res.output).group(1)
    res = _run(["prioritize", "--run", run_id], tmp_path, monkeypatch)
    assert res.exit_code == 2 and "trained without triggers" in res.output


def test_backtest_with_a_bad_trigger_file_exits_2_naming_it(files, tmp_path, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("triggers:\n  - name: x\n    kind: percentile\n    value: 150\n")
    res = _run(["backtest", "--cube", str(files / "cube.nc"), "--spec", str(files / "spec.yaml"),
                "--origins", "3", "--calibration-origins", "8", "--min-train", "12",
                "--triggers", str(bad)], tmp_path, monkeypatch)
    assert res.exit_code == 2
    assert f"{bad}: trigger 'x'" in res.output and "Traceback" not in res.output


def test_backtest_refuses_trigger_options_without_triggers_and_unknown_routes(files, tmp_path, monkeypatch):
    base = ["backtest", "--cube", str(files / "cube.nc"), "--spec", str(files / "spec.yaml")]
    res = _run([*base, "--mitigate", "region"], tmp_path, monkeypatch)
    assert res.exit_code == 2 and "add --triggers" in res.output
    res = _run([*base, "--triggers", str(files / "triggers.yaml"), "--route", "xgboost"], tmp_path, monkeypatch)
    assert res.exit_code == 2 and "unknown --route xgboost; known: forecast, lightgbm, logistic" in res.output
