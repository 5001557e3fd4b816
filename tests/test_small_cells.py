"""Small cells never leave the pipeline, whatever made the number: observed counts, a baseline's
forecast that copies them, a ranking's expected arrivals, or the example rows a model carries.

The rule is one (:func:`forecast.policy.publishable`), applied by every writer of published
tables and judged again by the release gate over every table and the model's example.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from forecast.backtest import RollingOrigin, backtest
from forecast.datasets import make_panel
from forecast.ethics import judge_gate
from forecast.models import load_spec
from forecast.policy import load_policy, people_columns, publishable
from forecast.tracking import log_backtest

from _pipeline import hand_made_evidence, policy_file

K = 5


def _small_cube():
    """A synthetic panel whose first area sees 1-4 arrivals a month: the kind of district a
    handful of families could be picked out in."""
    cube = make_panel(6, 40, seed=3)
    small = np.array([3.0, 1.0, 4.0, 2.0] * 10)
    cube["arrivals"].loc[{"area": cube["area"].values[0]}] = small
    return cube


def _spec(tmp_path):
    (tmp_path / "spec.yaml").write_text("name: tiny_lgbm\nestimator: lightgbm\nhorizons: [1, 2]\n"
                                        "params: {n_estimators: 10, num_leaves: 5, min_child_samples: 5}\n")
    return load_spec(tmp_path / "spec.yaml")


def test_people_columns_are_counts_forecasts_and_their_bounds_never_rates():
    forecasts = ["model", "origin", "area", "actual", "point", "scale", "q0.1", "q0.5", "raw_q0.9", "coverage80"]
    assert people_columns(forecasts) == ["actual", "point", "q0.1", "q0.5", "raw_q0.9"]
    headline = ["rank", "probability", "expected", "lower", "upper", "threshold", "month_probability",
                "month_expected", "month_lower", "month_upper"]
    assert people_columns(headline) == ["expected", "lower", "upper", "month_expected", "month_lower", "month_upper"]
    # a reliability table's bounds are frequencies, its "observed" a rate
    assert people_columns(["bin", "n", "predicted", "observed", "lower", "upper"]) == []
    assert people_columns(["area", "idp_stock", "conflict_events"], target="idp_stock") == ["idp_stock"]
    # the flags publishable() adds are not numbers of people (True is not one person)
    assert people_columns(["expected", "expected_suppressed", "q0.1_suppressed"]) == ["expected"]


def test_publishable_blanks_every_column_of_people_in_one_to_k_and_flags_it():
    frame = pd.DataFrame({"area": ["A", "B", "C"], "point": [3.0, 0.0, 120.0], "q0.9": [4.9, 1.0, 200.0],
                          "mase": [1.2, 3.0, 0.4]})
    out = publishable(frame, k=K)
    assert publishable(out, k=K).equals(out)  # published twice, nothing more to withhold
    assert out["point"].isna().tolist() == [True, False, False]
    assert out["q0.9"].isna().tolist() == [True, True, False]
    assert out["point_suppressed"].tolist() == [True, False, False]
    assert out["mase"].tolist() == [1.2, 3.0, 0.4]  # a score is not people


def test_the_naive_forecast_logged_to_mlflow_gives_back_no_withheld_count(tmp_path):
    """The naive baseline's forecast is the last observation: published, it gave back the 1-4
    arrivals the actual column withholds (SO2306 at origin 2022-02 on the sample)."""
    cube = _small_cube()
    result = backtest(cube, [_spec(tmp_path)], folds=RollingOrigin(n_origins=3, calibration_origins=4, min_train=12))
    naive = result.forecasts[result.forecasts["model"] == "naive"]
    assert ((naive["point"] > 0) & (naive["point"] < K)).any()  # the leak is there to be withheld
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    parent = log_backtest(result, tracking_uri=uri, sample_areas=0, small_cell=K)
    client = MlflowClient(tracking_uri=uri)
    children = client.search_runs([client.get_run(parent).info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{parent}'")
    assert {c.data.tags["model"] for c in children} >= {"naive", "seasonal_naive", "tiny_lgbm"}
    for child in children:
        local = client.download_artifacts(child.info.run_id, "forecasts.parquet", str(tmp_path / child.info.run_id))
        table = pd.read_parquet(local)
        for column in people_columns(table.columns, "arrivals"):
            values = table[column].to_numpy(float)
            small = (values > 0) & (values < K)
            assert not small.any(), f"{child.data.tags['model']}: {column} publishes {values[small][:3]}"
        if child.data.tags["model"] == "naive":
            assert table["point_suppressed"].any()  # withheld and flagged, not dropped


def test_backtest_out_writes_the_same_publishable_forecasts(tmp_path):
    cube = _small_cube()
    path = tmp_path / "cube.nc"
    cube.to_netcdf(path)
    (tmp_path / "spec.yaml").write_text("name: tiny_lgbm\nestimator: lightgbm\nhorizons: [1, 2]\n"
                                        "params: {n_estimators: 10, num_leaves: 5, min_child_samples: 5}\n")
    from typer.testing import CliRunner

    from forecast.cli import app

    result = CliRunner().invoke(app, ["backtest", "--cube", str(path), "--spec", str(tmp_path / "spec.yaml"),
                                      "--origins", "3", "--calibration-origins", "4", "--min-train", "12",
                                      "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(tmp_path / "out" / "forecasts.parquet")
    for column in people_columns(table.columns, "arrivals"):
        values = table[column].to_numpy(float)
        assert not ((values > 0) & (values < load_policy().release.small_cell.k)).any(), column


def _judge(evidence, tmp_path):
    policy = load_policy(policy_file(tmp_path / "policy.yaml"))
    report = judge_gate(evidence, reviews_dir=tmp_path / "reviews", log=tmp_path / "log.jsonl", policy=policy)
    return {c.check: c for c in report.conditions}


@pytest.mark.parametrize("table", [
    pd.DataFrame({"model": ["naive"], "area": ["A"], "point": [3.0], "q0.5": [3.0]}),
    pd.DataFrame({"rank": [1], "area": ["A"], "probability": [0.4], "expected": [250.0], "lower": [2.0],
                  "upper": [900.0]}),
], ids=["a naive forecast", "a ranking's lower bound"])
def test_the_gate_finds_a_small_forecast_in_any_published_table(tmp_path, table):
    evidence = hand_made_evidence(extra_tables={"forecasts.parquet": table})
    small = _judge(evidence, tmp_path)[f"small cells (k={K}) withheld"]
    assert small.verdict == "fail" and "forecasts.parquet" in small.measured


def test_the_gate_reads_the_models_example_rows(tmp_path):
    """MLflow keeps an input example beside the model; raw cube rows there are published data."""
    evidence = hand_made_evidence()
    example = {"columns": ["area", "time", "arrivals", "rainfall"], "data": [["A", "2019-01-01", 3.0, 12.5]]}
    documents = {**evidence.train.documents, "model/input_example.json": json.dumps(example).encode()}
    train = replace(evidence.train, documents=documents, files=(*evidence.train.files, "model/input_example.json"))
    small = _judge(replace(evidence, train=train), tmp_path)[f"small cells (k={K}) withheld"]
    assert small.verdict == "fail" and "model/input_example.json column 'arrivals'" in small.measured
    # the serving form of the same example is read too
    serving = {"dataframe_split": example}
    documents = {**evidence.train.documents, "model/serving_input_example.json": json.dumps(serving).encode()}
    train = replace(evidence.train, documents=documents,
                    files=(*evidence.train.files, "model/serving_input_example.json"))
    small = _judge(replace(evidence, train=train), tmp_path)[f"small cells (k={K}) withheld"]
    assert small.verdict == "fail" and "serving_input_example.json" in small.measured
