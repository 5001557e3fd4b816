"""Calibration origins refitted on a cycle of their own (``RollingOrigin.calibration_refit_every``):
fewer fits, every scored forecast the same, and the backtest's record says what was done."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, RegressorMixin

from forecast.backtest import RollingOrigin, backtest
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.models import ESTIMATORS, ModelSpec, register_estimator

FOLDS = dict(n_origins=3, calibration_origins=4, min_train=12)
N_TIMES, H = 40, 2


def _origins(**kw):
    calibration, scored = RollingOrigin(**FOLDS, **kw).origins(N_TIMES, H)
    return calibration, scored


def test_by_default_every_origin_has_its_own_fit_or_refit_every_groups_them_across_the_two_roles():
    c, s = _origins()
    assert RollingOrigin(**FOLDS).blocks(N_TIMES, H) == [[o] for o in c + s]
    both = c + s
    assert RollingOrigin(**FOLDS, refit_every=2).blocks(N_TIMES, H) == [both[0:2], both[2:4], both[4:6], both[6:]]


def test_the_calibration_origins_take_their_own_cycle_and_the_first_scored_origin_fits_afresh():
    c, s = _origins()
    assert RollingOrigin(**FOLDS, calibration_refit_every=2).blocks(N_TIMES, H) == \
        [c[0:2], c[2:4], [s[0]], [s[1]], [s[2]]]
    assert RollingOrigin(**FOLDS, calibration_refit_every=3, refit_every=2).blocks(N_TIMES, H) == \
        [c[0:3], c[3:], s[0:2], s[2:]]


def test_a_specs_own_refit_every_holds_for_every_origin():
    c, s = _origins()
    both = c + s
    folds = RollingOrigin(**FOLDS, calibration_refit_every=2)
    assert folds.blocks(N_TIMES, H, refit_every=4) == [both[0:4], both[4:]]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_a_calibration_refit_every_that_is_not_a_positive_whole_number_is_refused_by_name(bad):
    with pytest.raises(ForecastError, match=r"RollingOrigin.calibration_refit_every must be a positive integer"):
        RollingOrigin(calibration_refit_every=bad)


class _Counted(RegressorMixin, BaseEstimator):
    """A global regressor that counts its fits and forecasts its training rows' mean."""

    fits: list = []

    def fit(self, X, y):
        _Counted.fits.append(len(y))
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.mean_)


@pytest.fixture
def counted():
    _Counted.fits = []
    register_estimator("fit_counter", "global", lambda **_: _Counted())
    yield ModelSpec(name="counted", estimator="fit_counter", horizons=[1, 2], features=["lags"])
    del ESTIMATORS["fit_counter"]


def test_refitting_the_calibration_origins_every_2_saves_their_fits_and_changes_no_scored_forecast(counted):
    cube = make_panel(6, N_TIMES, seed=4)
    every = backtest(cube, [counted], folds=RollingOrigin(**FOLDS), baselines=False, progress=False)
    fits_every = len(_Counted.fits)
    _Counted.fits = []
    halved = backtest(cube, [counted], folds=RollingOrigin(**FOLDS, calibration_refit_every=2), baselines=False,
                      progress=False)
    assert fits_every == (4 + 3) * 2  # every origin, each horizon
    assert len(_Counted.fits) == (2 + 3) * 2  # the calibration origins in pairs

    def points(result, role):
        rows = result.forecasts[result.forecasts["role"] == role]
        return rows.sort_values(["origin", "horizon", "area"])["point"].to_numpy()

    np.testing.assert_array_equal(points(every, "scored"), points(halved, "scored"))
    # the second origin of each pair forecasts from the pair's first fit: the mean of fewer rows
    assert not np.array_equal(points(every, "calibration"), points(halved, "calibration"))
