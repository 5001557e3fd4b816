"""LightGBM fits on a matrix binned once (SharedBins): what the backtest does at every origin."""

from __future__ import annotations

import numpy as np
import pytest

from forecast.backtest import RollingOrigin, backtest
from forecast.datasets import make_panel
from forecast.models import LightGBMForecaster, ModelSpec

SMALL = dict(n_estimators=30, learning_rate=0.1, num_leaves=7, min_child_samples=5, max_bin=31)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.gamma(2.0, 50.0, size=(3000, 6)).astype(np.float32)
    X[rng.random(X.shape) < 0.05] = np.nan  # unobserved features stay NaN
    y = np.maximum(0, X[:, 0] * 2 + rng.normal(0, 20, len(X)))
    return X, np.nan_to_num(y)


def test_a_fit_on_shared_bins_equals_a_plain_fit_when_the_edges_come_from_its_rows(data):
    X, y = data
    model = LightGBMForecaster(**SMALL, point="median")
    bins = model.shared_bins(X, slice(0, 2000))
    rows = np.arange(2000)
    shared = LightGBMForecaster(**SMALL, point="median").fit_binned(bins, rows, y[rows])
    plain = LightGBMForecaster(**SMALL, point="median").fit(X[:2000], y[:2000])
    np.testing.assert_array_equal(shared.predict(X), plain.predict(X))
    np.testing.assert_array_equal(shared.predict_quantiles(X), plain.predict_quantiles(X))


def test_rows_after_the_reference_rows_never_change_the_edges(data):
    """The edges come from the reference rows only: a fit on early rows is the same whatever the
    later rows hold (the backtest's reference rows are those known at its first origin)."""
    X, y = data
    poisoned = X.copy()
    poisoned[2000:] = poisoned[2000:] * 50 + 1e6
    rows = np.arange(0, 1500, 2)
    fits = [LightGBMForecaster(**SMALL).fit_binned(LightGBMForecaster(**SMALL).shared_bins(m, slice(0, 2000)),
                                                   rows, y[rows]) for m in (X, poisoned)]
    np.testing.assert_array_equal(fits[0].predict(X[:2000]), fits[1].predict(X[:2000]))


def test_predict_with_quantiles_runs_the_median_model_once_and_agrees_with_both_calls(data):
    X, y = data
    model = LightGBMForecaster(**SMALL, point="median", quantiles=(0.1, 0.5, 0.9)).fit(X, y)
    point, quantiles = model.predict_with_quantiles(X[:50])
    np.testing.assert_array_equal(point, model.predict(X[:50]))
    np.testing.assert_array_equal(quantiles, model.predict_quantiles(X[:50]))


@pytest.mark.parametrize("rows, message", [
    (np.array([5, 3, 9]), "increasing"),
    (np.array([1, 2, 99999]), "increasing row numbers"),
    (np.array([4]), "at least 2"),
])
def test_fit_binned_refuses_rows_it_cannot_take(data, rows, message):
    X, y = data
    bins = LightGBMForecaster(**SMALL).shared_bins(X, slice(0, 1000))
    with pytest.raises(ValueError, match=message):
        LightGBMForecaster(**SMALL).fit_binned(bins, rows, np.ones(len(rows)))


def test_fit_binned_refuses_bins_made_with_other_binning_parameters(data):
    X, y = data
    bins = LightGBMForecaster(**{**SMALL, "max_bin": 15}).shared_bins(X, slice(0, 1000))
    with pytest.raises(ValueError, match="other binning parameters"):
        LightGBMForecaster(**SMALL).fit_binned(bins, np.arange(100), y[:100])


def test_backtest_forecasts_at_the_first_origin_ignore_every_later_month():
    """The backtest's bins come from the rows known at its first origin: poisoning every month
    after it leaves that origin's forecasts exactly as they were."""
    panel = make_panel(12, 40, seed=5)
    folds = RollingOrigin(n_origins=3, calibration_origins=0, min_train=18)
    spec = ModelSpec(name="lgbm", estimator="lightgbm", params=SMALL, horizons=[1, 2, 3],
                     features=["lags", "rolling", "season"], strategy="recursive")
    result = backtest(panel, [spec], folds=folds, baselines=False)
    first = result.forecasts["origin"].min()
    poisoned = panel.copy(deep=True)
    later = poisoned["time"] > first
    poisoned["arrivals"] = poisoned["arrivals"].where(~later, poisoned["arrivals"] * 9 + 5000)
    again = backtest(poisoned, [spec], folds=folds, baselines=False)
    a = result.forecasts[result.forecasts["origin"] == first]
    b = again.forecasts[again.forecasts["origin"] == first]
    np.testing.assert_array_equal(a[["point", "q0.1", "q0.5", "q0.9"]].to_numpy(),
                                  b[["point", "q0.1", "q0.5", "q0.9"]].to_numpy())


def test_fit_binned_checks_its_inputs_as_fit_does(data):
    X, y = data
    bins = LightGBMForecaster(**SMALL).shared_bins(X, slice(0, 1000))
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        LightGBMForecaster(**SMALL, quantiles=(0.0, 0.5)).fit_binned(bins, np.arange(100), y[:100])
    with pytest.raises(ValueError, match="non-negative targets"):
        LightGBMForecaster(**SMALL).fit_binned(bins, np.arange(100), -np.ones(100))


def test_the_outer_quantile_models_can_take_fewer_rounds_than_the_point_model(data):
    """quantile_n_estimators: the 0.1 and 0.9 models stop early, the median (the point) does not,
    so the point forecast is exactly the full model's; on shared bins and on a plain fit alike."""
    X, y = data
    full = LightGBMForecaster(**SMALL, point="median").fit(X, y)
    short = LightGBMForecaster(**SMALL, point="median", quantile_n_estimators=5).fit(X, y)
    assert [m.booster.num_trees() for m in short.quantile_models_] == [5, 30, 5]
    assert [m.booster.num_trees() for m in full.quantile_models_] == [30, 30, 30]
    np.testing.assert_array_equal(short.predict(X), full.predict(X))
    assert not np.array_equal(short.predict_quantiles(X)[:, 0], full.predict_quantiles(X)[:, 0])
    bins = short.shared_bins(X, slice(0, 2000))
    binned = LightGBMForecaster(**SMALL, point="median", quantile_n_estimators=5).fit_binned(bins, np.arange(2000), y[:2000])
    assert [m.booster.num_trees() for m in binned.quantile_models_] == [5, 30, 5]
    # a Poisson point keeps its rounds, and so does its median: the median spec's intervals, exactly
    mean = LightGBMForecaster(**SMALL, quantile_n_estimators=5).fit(X, y)
    assert mean.model_.booster.num_trees() == 30 and [m.booster.num_trees() for m in mean.quantile_models_] == [5, 30, 5]
    np.testing.assert_array_equal(mean.predict_quantiles(X), short.predict_quantiles(X))
    with pytest.raises(ValueError, match="quantile_n_estimators must be at least 1, got 0"):
        LightGBMForecaster(**SMALL, quantile_n_estimators=0).fit(X, y)


def test_hist_gradient_boosting_outer_quantile_models_can_take_fewer_iterations(data):
    """quantile_max_iter, as quantile_n_estimators: the 0.1 and 0.9 models stop early; the point
    (Poisson) and the median keep every iteration, so the point forecast is the full model's."""
    from forecast.models import HistGBForecaster

    X, y = data
    X, y = X[:1500], y[:1500]
    full = HistGBForecaster(max_iter=20).fit(X, y)
    short = HistGBForecaster(max_iter=20, quantile_max_iter=4).fit(X, y)
    assert short.model_.n_iter_ == 20 and [m.n_iter_ for m in short.quantile_models_] == [4, 20, 4]
    np.testing.assert_array_equal(short.predict(X), full.predict(X))
    np.testing.assert_array_equal(short.quantile_models_[1].predict(X), full.quantile_models_[1].predict(X))
    assert not np.array_equal(short.quantile_models_[0].predict(X), full.quantile_models_[0].predict(X))
    with pytest.raises(ValueError, match="quantile_max_iter must be at least 1, got 0"):
        HistGBForecaster(max_iter=20, quantile_max_iter=0).fit(X, y)
