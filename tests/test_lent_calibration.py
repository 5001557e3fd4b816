"""A trained model calibrated on a backtest already run (issue 21 §1): ``train(cube, spec,
calibration=<BacktestResult>)`` takes the backtest's scored origins instead of forecasting them
again, and gives what a calibration run of its own gives; a backtest of another cube or another
spec is refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.backtest import RollingOrigin, backtest, scored_part
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.models import ModelSpec
from forecast.pipeline import train
from forecast.triggers import TriggerSpec

#: A model without LightGBM's shared bin edges: its forecast at an origin depends on nothing else.
SPEC = ModelSpec(name="hgb", estimator="hist_gradient_boosting", horizons=[1, 2, 3],
                 params={"loss": "poisson", "max_iter": 10, "max_leaf_nodes": 7, "learning_rate": 0.3})
FOLDS = RollingOrigin(n_origins=8, calibration_origins=4, min_train=18)
TRIGGER = TriggerSpec(name="spike", kind="percentile", value=80, min_history=6, leads=[1, 2])


@pytest.fixture(scope="module")
def cube():
    return make_panel(9, 48, seed=5, with_flows=False)


@pytest.fixture(scope="module")
def longer(cube):
    return backtest(cube, [SPEC], folds=FOLDS, progress=False)


def test_the_scored_part_of_a_backtest_is_the_backtest_of_those_origins_alone(cube, longer):
    alone = scored_part(longer, SPEC.name)
    assert alone.folds.origins(cube.sizes["time"], 3) == ([], FOLDS.origins(cube.sizes["time"], 3)[1])
    assert alone.models == [SPEC.name] and (alone.forecasts["role"] == "scored").all()
    own = backtest(cube, [SPEC], folds=alone.folds, progress=False).forecasts
    for model in (SPEC.name, "seasonal_naive"):  # a baseline too
        part = own[own["model"] == model].reset_index(drop=True)
        pd.testing.assert_frame_equal(scored_part(longer, model).forecasts, part)
    # the intervals were made again from the scored origins' own errors: the first origins have none
    first = alone.forecasts[alone.forecasts["origin"] == alone.forecasts["origin"].min()]
    assert first["q0.1"].isna().all()
    assert longer.scored.query("model == 'hgb'").groupby("origin")["q0.1"].count().min() > 0


def test_train_on_a_lent_backtest_gives_what_its_own_calibration_run_gives(cube, longer):
    lent = train(cube, SPEC, calibration=longer, triggers=[TRIGGER], progress=False)
    own = train(cube, SPEC, calibration=RollingOrigin(n_origins=8, calibration_origins=0), triggers=[TRIGGER],
                progress=False)
    assert lent.shifts.keys() == own.shifts.keys() == {1, 2, 3}
    for h in own.shifts:
        np.testing.assert_array_equal(lent.shifts[h], own.shifts[h])
    assert lent.n_calibration == own.n_calibration and lent.total_ratios == own.total_ratios
    assert lent.size_shifts.keys() == own.size_shifts.keys()
    assert lent.trigger_calibration.keys() == own.trigger_calibration.keys() == {("spike", 1), ("spike", 2)}
    for key, platt in own.trigger_calibration.items():
        assert (lent.trigger_calibration[key].coef_, lent.trigger_calibration[key].intercept_) == \
            (platt.coef_, platt.intercept_)
    assert lent.total_calibration.keys() == own.total_calibration.keys()
    for key, total in own.total_calibration.items():
        other = lent.total_calibration[key]
        assert (other.n, other.calibrated_by) == (total.n, total.calibrated_by)
        np.testing.assert_array_equal(other.shifts, total.shifts)
    pd.testing.assert_frame_equal(lent.prioritize(cube), own.prioritize(cube))


def test_train_refuses_a_backtest_of_another_cube_or_another_spec(cube, longer):
    with pytest.raises(ForecastError, match="ran on another cube"):
        train(make_panel(9, 48, seed=6, with_flows=False), SPEC, calibration=longer, progress=False)
    with pytest.raises(ForecastError, match="has no model 'other'"):
        train(cube, SPEC.model_copy(update={"name": "other"}), calibration=longer, progress=False)
    changed = SPEC.model_copy(update={"params": {**SPEC.params, "max_iter": 12}})
    with pytest.raises(ForecastError, match="its spec differs"):
        train(cube, changed, calibration=longer, progress=False)
    with pytest.raises(ForecastError, match="'nope' is not in the backtest"):
        scored_part(longer, "nope")
