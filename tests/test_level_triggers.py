"""A trigger scored at every admin level (issue 20 §4): each level's crossings are its own summed
series against thresholds known at the origin, its probabilities come from its forecasts (base or
reconciled), and hit rate and false alarms are those of the districts' trigger_metrics."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast.backtest import RollingOrigin, backtest_levels
from forecast.cli import app
from forecast.cube import save_cube
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.models import ModelSpec
from forecast.policy import small_cell_k
from forecast.triggers import (
    TriggerSpec,
    exceedance_probability,
    level_trigger_metrics,
    level_trigger_signals,
    trigger_metrics,
    trigger_signals,
)

SPEC = ModelSpec(name="tiny", estimator="lightgbm", horizons=[1, 2, 3],
                 params={"n_estimators": 20, "num_leaves": 7, "min_child_samples": 5})
FOLDS = RollingOrigin(n_origins=8, calibration_origins=8, min_train=12)
SURGE = TriggerSpec(name="surge", kind="percentile", value=80, floor=0, min_history=6, leads=[1, 3])


@pytest.fixture(scope="module")
def cube():
    return make_panel(12, 60, seed=5)


@pytest.fixture(scope="module")
def levels(cube):
    return backtest_levels(cube, SPEC, folds=FOLDS, progress=False)


@pytest.fixture(scope="module")
def signals(levels, cube):
    return level_trigger_signals(levels, cube, SURGE)


def _national(cube) -> np.ndarray:
    """The country's arrivals: the districts' observed ones summed, NaN where none was observed."""
    return cube["arrivals"].sum("area", min_count=1).to_numpy()


def test_the_districts_base_scores_are_those_of_trigger_metrics(levels, cube):
    got = level_trigger_metrics(levels, cube, SURGE)
    mine = got[(got["level"] == 2) & (got["forecast"] == "base")].drop(columns=["level", "forecast"])
    expected = trigger_metrics(trigger_signals(levels.base[2], cube, [SURGE], routes=("forecast",)))
    pd.testing.assert_frame_equal(mine.reset_index(drop=True),
                                  expected.drop(columns="route")[mine.columns].reset_index(drop=True))
    assert set(zip(got["level"], got["forecast"], got["lead"])) == {
        (level, kind, lead) for level in (0, 1, 2) for kind in ("base", "mint_shrink") for lead in (1, 3)}


def test_the_country_is_judged_on_its_summed_arrivals_against_its_own_percentile_so_far(signals, cube):
    national = _national(cube)
    time = pd.DatetimeIndex(cube["time"].values)
    rows = signals[(signals["level"] == 0) & (signals["forecast"] == "mint_shrink") & (signals["lead"] == 3)]
    assert len(rows) == 16 and set(rows["area"]) == {"XY"}
    for _, r in rows.iterrows():
        o = time.get_loc(r["origin"])
        assert r["threshold"] == pytest.approx(np.nanpercentile(national[: o + 1], 80))  # months up to the origin
        window = national[o + 1: o + 4]
        expected = np.nan if len(window) < 3 else float(window.max() >= r["threshold"])
        assert r["event"] == pytest.approx(expected, nan_ok=True)


def test_the_reconciled_probability_is_read_off_the_reconciled_quantiles(levels, signals):
    rows = signals[(signals["level"] == 1) & (signals["forecast"] == "mint_shrink") & (signals["lead"] == 1)]
    table = levels.forecasts
    own = table[(table["level"] == 1) & (table["horizon"] == 1)].set_index(["origin", "area"])
    own = own.loc[pd.MultiIndex.from_frame(rows[["origin", "area"]])]
    expected = exceedance_probability(own[["q0.1", "q0.5", "q0.9"]].to_numpy(), [0.1, 0.5, 0.9],
                                      rows["threshold"].to_numpy())
    np.testing.assert_allclose(rows["probability_raw"].to_numpy(), expected)
    assert rows.loc[rows["role"] == "scored", "probability_raw"].notna().all()
    # the country's own model has no interval (one series: too few earlier errors): no probability
    base = signals[(signals["level"] == 0) & (signals["forecast"] == "base")]
    assert base["probability"].isna().all()


def test_hits_and_false_alarms_count_signals_and_crossings_of_each_level(levels, cube, signals):
    got = level_trigger_metrics(levels, cube, SURGE, leads=3).set_index(["level", "forecast"])
    assert set(got["lead"]) == {3}
    for (level, kind), part in signals[(signals["lead"] == 3) & (signals["role"] == "scored")].groupby(
            ["level", "forecast"]):
        judged = part[part["event"].notna() & part["probability"].notna()]
        signal, event = judged["signal"].astype(bool), judged["event"] == 1
        row = got.loc[(level, kind)]
        assert (row["events"], row["signals"], row["hits"]) == (event.sum(), signal.sum(), (signal & event).sum())
        if event.any():
            assert row["hit_rate"] == pytest.approx((signal & event).sum() / event.sum())
        if signal.any():
            assert row["false_alarm_ratio"] == pytest.approx((signal & ~event).sum() / signal.sum())
    national = got.loc[(0, "base")]
    assert national["n"] == 0 and np.isnan(national["hit_rate"])  # nothing to judge, nothing made up


def test_no_level_reads_an_outcome_after_the_origin(levels, cube, signals):
    origin = pd.Timestamp(sorted(signals["origin"].unique())[10])
    later = cube["time"] > np.datetime64(origin)
    rng = np.random.default_rng(0)
    changed = cube.copy()
    changed["arrivals"] = cube["arrivals"].where(~later, rng.uniform(0, 1e6, cube["arrivals"].shape))
    again = level_trigger_signals(levels, changed, SURGE)
    columns = ["level", "forecast", "lead", "area", "threshold", "probability_raw", "probability", "signal"]
    pick = lambda frame: frame.loc[frame["origin"] == origin, columns].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(pick(again), pick(signals))
    # the check can fail: the crossings themselves are outcomes after the origin
    assert not np.array_equal(again.loc[again["origin"] == origin, "event"].to_numpy(),
                              signals.loc[signals["origin"] == origin, "event"].to_numpy(), equal_nan=True)


def test_level_triggers_refuse_what_they_cannot_score(levels, cube):
    with pytest.raises(ForecastError, match="LevelsResult"):
        level_trigger_metrics(levels.base[2], cube, SURGE)
    with pytest.raises(ForecastError, match=r"leads must be whole months of at least 1, got \[0\]"):
        level_trigger_metrics(levels, cube, SURGE, leads=0)
    with pytest.raises(ForecastError, match=r"lead 6, which needs forecasts 1..6"):
        level_trigger_metrics(levels, cube, SURGE, leads=6)
    with pytest.raises(ForecastError, match="TriggerSpec"):
        level_trigger_metrics(levels, cube, ["surge"])


def test_backtest_reconciled_with_triggers_prints_and_logs_them_per_level(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    save_cube(make_panel(10, 40, seed=9, with_flows=True), tmp_path / "cube.nc")
    (tmp_path / "spec.yaml").write_text("name: tiny_lgbm\nestimator: lightgbm\nhorizons: [1, 2, 3]\n"
                                        "params: {n_estimators: 20, num_leaves: 7, min_child_samples: 5}\n")
    (tmp_path / "triggers.yaml").write_text("name: spike\nkind: percentile\nvalue: 80\nmin_history: 6\nleads: [1, 3]\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    res = CliRunner().invoke(app, ["backtest", "--cube", "cube.nc", "--spec", "spec.yaml", "--no-baselines",
                                   "--origins", "3", "--calibration-origins", "8", "--min-train", "12",
                                   "--reconcile", "bottom_up", "--triggers", "triggers.yaml", "--route", "forecast"])
    assert res.exit_code == 0, res.output
    assert "triggers at every admin level (forecast route, bottom_up)" in res.output
    assert re.search(r"national\s*│\s*bottom_up\s*│\s*spike\s*│\s*3", res.output)
    run_id = re.search(r"MLflow run ([0-9a-f]{32})", res.output).group(1)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    logged = pd.read_csv(client.download_artifacts(run_id, "levels/triggers.csv", str(tmp_path)))
    assert set(zip(logged["level"], logged["forecast"], logged["lead"])) == {
        (level, kind, lead) for level in (0, 1, 2) for kind in ("base", "bottom_up") for lead in (1, 3)}
    assert {"hit_rate", "false_alarm_ratio", "events", "signals"} <= set(logged.columns)
    # the published forecasts withhold small numbers of people, the means as well as the points
    published = pd.read_parquet(client.download_artifacts(run_id, "levels/forecasts.parquet", str(tmp_path)))
    k = small_cell_k()
    for column in ("point", "base_point", "mean", "base_mean", "q0.1", "raw_q0.1"):
        assert f"{column}_suppressed" in published, column
        values = published[column].to_numpy(float)
        assert not ((values > 0) & (values < k)).any(), column
