"""The recursive strategy: one one-month-ahead model whose forecasts are fed back as the target."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.backtest import RollingOrigin, backtest
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.features import build_features
from forecast.features._recursive import RecursiveRows
from forecast.models import ModelSpec

SMALL = dict(n_estimators=30, learning_rate=0.1, num_leaves=7, min_child_samples=5, max_bin=31)
FAMILIES = ["lags", "rolling", "season"]
PARAMS = {"lags": (0, 1, 2, 5, 11), "windows": (3, 12)}
FOLDS = RollingOrigin(n_origins=4, calibration_origins=4, min_train=18)


@pytest.fixture(scope="module")
def panel():
    return make_panel(16, 48, seed=11)


def _spec(strategy, **kw):
    return ModelSpec(name=f"lgbm_{strategy}", estimator="lightgbm", params=SMALL, horizons=[1, 2, 3, 4],
                     features=FAMILIES, feature_params=PARAMS, strategy=strategy, **kw)


@pytest.mark.parametrize("missing", ["zero", "skip"])  # skip: unrecorded months stay NaN (6% here)
@settings(max_examples=25, deadline=None)
@given(o=st.integers(14, 40), steps=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_rebuilt_rows_equal_the_full_build_on_the_extended_target(panel, missing, o, steps, seed):
    """Reference check: rows rebuilt from the last months equal build_features run on a cube
    whose target after the origin is the forecasts."""
    fm = build_features(panel, "arrivals", families=FAMILIES, params=PARAMS, missing_target=missing)
    rows = RecursiveRows(fm, PARAMS, o, steps)
    forecasts = np.random.default_rng(seed).gamma(2.0, 300.0, size=(len(fm.panel.areas), steps))
    extended = panel.isel(time=slice(0, o + 1 + steps)).copy(deep=True)
    y = fm.panel.y[:, : o + 1 + steps].copy()
    for k in range(1, steps + 1):
        rows.push(k, forecasts[:, k - 1])
        y[:, o + k] = forecasts[:, k - 1]
    extended["arrivals"] = (("area", "time"), y)
    extended["arrivals_observed"] = (("area", "time"), np.isfinite(y))
    reference = build_features(extended, "arrivals", families=FAMILIES, params=PARAMS, missing_target=missing)
    for t in range(o + 1, o + steps):
        np.testing.assert_allclose(rows.rows(t), reference.X.to_numpy()[reference.rows_at(t)], rtol=2e-5, atol=1e-3)


def test_one_month_ahead_the_recursive_model_is_the_direct_horizon_1_model(panel):
    direct, recursive = _spec("direct"), _spec("recursive")
    result = backtest(panel, [direct, recursive], folds=FOLDS, baselines=False)
    f = result.forecasts.set_index(["model", "origin", "horizon", "area"])["point"]
    h1 = f.xs(1, level="horizon")
    np.testing.assert_array_equal(h1.xs(direct.name).to_numpy(), h1.xs(recursive.name).to_numpy())
    later = f.xs(3, level="horizon")
    assert not np.allclose(later.xs(direct.name).to_numpy(), later.xs(recursive.name).to_numpy())


def test_recursive_forecasts_at_an_origin_do_not_change_when_later_data_changes(panel):
    spec = _spec("recursive")
    result = backtest(panel, [spec], folds=FOLDS, baselines=False)
    cut = sorted(result.forecasts["origin"].unique())[4]
    poisoned = panel.copy(deep=True)
    later = poisoned["time"] > cut
    poisoned["arrivals"] = poisoned["arrivals"].where(~later, poisoned["arrivals"] * 7 + 1000)
    again = backtest(poisoned, [spec], folds=FOLDS, baselines=False)
    cols = ["point", "q0.1", "q0.5", "q0.9"]
    a = result.forecasts[result.forecasts["origin"] <= cut][cols].to_numpy()
    b = again.forecasts[again.forecasts["origin"] <= cut][cols].to_numpy()
    np.testing.assert_allclose(a, b)
    assert not np.allclose(result.forecasts[result.forecasts["origin"] > cut]["point"],
                           again.forecasts[again.forecasts["origin"] > cut]["point"])


def test_recursive_backtest_runs_origins_side_by_side_with_the_sequential_result(panel, monkeypatch):
    import importlib

    threads = importlib.import_module("forecast.models._threads")  # where the pool is sized

    spec = _spec("recursive")
    parallel = backtest(panel, [spec], folds=FOLDS, baselines=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 1)  # one thread: the blocks one after another
    sequential = backtest(panel, [spec], folds=FOLDS, baselines=False)
    pd.testing.assert_frame_equal(parallel.forecasts, sequential.forecasts)


@pytest.mark.parametrize("kw, message", [
    ({"features": "all"}, "strategy recursive feeds the model's own forecasts back as the target, so it can rebuild "
                          "only target and calendar features (lags, rolling, season), not since_large, covariates"),
    ({"features": ["lags", "spatial"]}, "not spatial; set features: [lags, rolling, season] or use strategy direct"),
])
def test_recursive_specs_refuse_features_a_forecast_cannot_rebuild(kw, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        ModelSpec(name="r", estimator="lightgbm", strategy="recursive", **kw)
    with pytest.raises(ValueError, match="strategy recursive is for global models"):
        ModelSpec(name="r", estimator="naive", strategy="recursive")


def test_a_trained_recursive_model_forecasts_every_horizon_from_the_last_month(panel):
    from forecast.pipeline._train import train

    trained = train(panel, _spec("recursive"), calibration=RollingOrigin(n_origins=4, calibration_origins=0))
    frame = trained.predict(panel)
    assert sorted(frame["horizon"].unique()) == [1, 2, 3, 4]
    assert frame[["point", "q0.1", "q0.9"]].notna().all().all()
    with pytest.raises(ForecastError):
        from forecast.features._recursive import check_recursive

        check_recursive(["covariates"])


def test_exclude_features_leaves_columns_out_of_fitting_and_of_the_recursive_rows(panel):
    drop = ["y_last", "y_age", "y_max3", "y_max12", "y_mean_all", "month_sin", "month_cos"]
    spec = _spec("recursive", exclude_features=drop)
    fm = spec.feature_matrix(panel)
    assert list(fm.X.columns) == ["y_lag0", "y_lag1", "y_lag2", "y_lag5", "y_lag11", "y_mean3", "y_std3",
                                  "y_mean12", "y_std12", "month"]
    assert RecursiveRows(fm, PARAMS, 30, 3).rows(31).shape == (len(fm.panel.areas), 10)
    result = backtest(panel, [spec], folds=FOLDS, baselines=False)
    assert result.importance[spec.name].index.tolist().count("y_max3") == 0
    with pytest.raises(ForecastError, match=r"exclude_features names columns the features do not have: \['y_max6'\]"):
        _spec("direct", exclude_features=["y_max6"]).feature_matrix(panel)
