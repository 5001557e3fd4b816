"""Baselines read only observed months and never treat missing as zero."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from forecast.models import Panel
from forecast.models import BASELINES, ExponentialMean, HistoricalMean, MovingAverage, Naive, SeasonalNaive

NAN = np.nan


def panel(rows):
    y = np.asarray(rows, dtype=float)
    return Panel(y=y, areas=pd.Index([f"A{i}" for i in range(len(y))]),
                 time=pd.date_range("2020-01-01", periods=y.shape[1], freq="MS"))


def test_naive_is_the_last_observed_value_not_a_missing_month():
    fc = Naive().fit(panel([[1, 2, 3, NAN, NAN], [NAN] * 5])).forecast([1, 2])
    assert fc.point[0].tolist() == [3, 3]
    assert np.isnan(fc.point[1]).all()


def test_seasonal_naive_reads_a_year_back_and_falls_back_to_naive_where_missing():
    y = np.arange(24, dtype=float)[None, :].repeat(2, axis=0)
    y[1, 12] = NAN  # the month one year before horizon 1 is missing for area 1
    fc = SeasonalNaive().fit(panel(y)).forecast([1, 2, 12, 13])
    assert fc.point[0].tolist() == [12, 13, 23, 12]
    assert fc.point[1].tolist() == [23, 13, 23, 23]


def test_moving_average_ewm_and_mean_skip_missing_months():
    p = panel([[10, NAN, 20, NAN, 30]])
    assert MovingAverage(window=3).fit(p).forecast([1]).point[0, 0] == 25
    assert HistoricalMean().fit(p).forecast([1]).point[0, 0] == 20
    ewm = ExponentialMean(halflife=1).fit(p).forecast([1]).point[0, 0]
    assert ewm == pytest.approx((30 * 1 + 20 * 0.25 + 10 * 0.0625) / (1 + 0.25 + 0.0625))


@pytest.mark.parametrize("name", list(BASELINES))
def test_baselines_are_clonable_estimators_with_their_parameters(name):
    est = BASELINES[name]()
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    with pytest.raises(Exception, match="not fitted"):
        copy.forecast([1])
