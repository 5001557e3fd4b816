"""ETS between refits: parameters estimated once, the filter run over the new months."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.tsa.exponential_smoothing.ets import ETSModel

from forecast.features._panel import Panel
from forecast.backtest import RollingOrigin, backtest
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.models import ModelSpec
from forecast.models._local import ETS

local = importlib.import_module("forecast.models._local")
FORMS = [(None, False), ("add", False), ("add", True)]


@pytest.fixture(scope="module")
def series():
    rng = np.random.default_rng(1)
    return np.log1p(rng.poisson(200 + 80 * np.sin(np.arange(80) / 3), size=80).astype(float))


@pytest.mark.parametrize("trend, damped", FORMS)
def test_closed_form_forecasts_equal_statsmodels_after_a_fit_and_after_a_filter(series, trend, damped):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ETSModel(pd.Series(series[:70]), error="add", trend=trend, damped_trend=damped)
        fitted = model.fit(disp=False)
        longer = ETSModel(pd.Series(series[:76]), error="add", trend=trend, damped_trend=damped)
        smoothed = longer.smooth(fitted.params)
    cases = [(local._ETSFit.from_raw(model, fitted.params, fitted.fittedvalues, fitted.states), fitted, 70),
             (local._ETSFit.from_raw(longer, fitted.params, *longer.smooth(fitted.params, return_raw=True)),
              smoothed, 76)]
    for fast, reference, n in cases:
        mean, var = fast.predict(6)
        expected = reference.get_prediction(start=n, end=n + 5)
        np.testing.assert_allclose(mean, np.asarray(expected.predicted_mean), rtol=1e-12)
        np.testing.assert_allclose(var, np.asarray(expected.var_pred_mean), rtol=1e-12)


def _panel(y):
    return Panel(y=y, areas=pd.Index([f"A{i}" for i in range(len(y))]),
                 time=pd.date_range("2016-01-01", periods=y.shape[1], freq="MS"))


def test_update_forecasts_with_the_parameters_of_the_fit_and_the_new_months(series):
    y = np.vstack([np.expm1(series), np.expm1(series[::-1])])
    model = ETS(trend="add", damped_trend=True, point="median", min_length=24).fit(_panel(y[:, :60]))
    later = model.update(_panel(y[:, :66]))
    for i in range(2):
        np.testing.assert_array_equal(later.results_[i].params, model.results_[i].params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ETSModel(pd.Series(series[:66]), error="add", trend="add", damped_trend=True).smooth(
            model.results_[0].params)
    expected = np.expm1(np.asarray(ref.get_prediction(start=66, end=68).predicted_mean))
    np.testing.assert_allclose(later.forecast([1, 2, 3]).point[0], expected, rtol=1e-9)


def test_update_fits_an_area_that_was_too_short_at_fit_time_and_refuses_other_areas(series):
    y = np.vstack([np.expm1(series), np.expm1(series)])
    y[1, :40] = np.nan  # 20 months at the first fit: below min_length
    model = ETS(min_length=24).fit(_panel(y[:, :60]))
    assert "A1" in model.fallback_areas_
    later = model.update(_panel(y[:, :70]))
    assert "A1" not in later.fallback_areas_ and later.results_[1] is not None
    with pytest.raises(ForecastError, match="update needs the areas the model was fitted on"):
        model.update(Panel(y=y[:, :70], areas=pd.Index(["B0", "B1"]), time=_panel(y[:, :70]).time))


def test_a_backtest_with_refit_every_estimates_at_block_starts_and_filters_in_between():
    cube = make_panel(8, 60, seed=2)
    params = dict(trend="add", damped_trend=True, transform="log1p", point="median", min_length=24)
    every = ModelSpec(name="e1", estimator="ets", params=params)
    blocks = ModelSpec(name="e4", estimator="ets", params=params, refit_every=4)
    folds = RollingOrigin(n_origins=8, calibration_origins=0, min_train=24)
    result = backtest(cube, [every, blocks], folds=folds, baselines=False)
    f = result.forecasts.set_index(["model", "origin", "horizon", "area"])["point"]
    origins = sorted(result.forecasts["origin"].unique())
    first = f.xs(origins[0], level="origin")  # a block start: both estimated there
    np.testing.assert_allclose(first.xs("e1").to_numpy(), first.xs("e4").to_numpy())
    inside = f.xs(origins[1], level="origin")  # inside the block: the same data, earlier parameters
    assert not np.allclose(inside.xs("e1").to_numpy(), inside.xs("e4").to_numpy())
    with pytest.raises(ValueError, match="refit_every must be at least 1"):
        ModelSpec(name="x", estimator="ets", refit_every=0)
