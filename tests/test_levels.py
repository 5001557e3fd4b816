"""One spec backtested at admin2, admin1 and national level and reconciled (issue 20 §2): the
forecasts add up at every origin and horizon, every level is scored (base and reconciled), and
a district without a region is named before anything runs."""

from __future__ import annotations

import numpy as np
import pytest

from forecast.backtest import RollingOrigin, backtest_levels, coherence_error
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.models import ModelSpec

SPEC = ModelSpec(name="tiny", estimator="lightgbm", horizons=[1, 2, 3],
                 params={"n_estimators": 20, "num_leaves": 7, "min_child_samples": 5})
FOLDS = RollingOrigin(n_origins=6, calibration_origins=8, min_train=12)


@pytest.fixture(scope="module")
def levels():
    return backtest_levels(make_panel(12, 60, seed=2), SPEC, folds=FOLDS, progress=False)


def test_districts_add_up_to_regions_and_the_country_at_every_origin_and_horizon(levels):
    table = levels.forecasts
    assert sorted(table["level"].unique()) == [0, 1, 2]
    assert coherence_error(table, levels.hierarchy) < 1e-6
    assert coherence_error(table, levels.hierarchy, "base_point") > 1  # the base forecasts did not add up
    national = table[table["level"] == 0].set_index(["origin", "horizon"])["point"]
    districts = table[table["level"] == 2].groupby(["origin", "horizon"])["point"].sum()
    assert np.allclose(national.sort_index(), districts.sort_index(), rtol=1e-9)
    scored = table[table["role"] == "scored"]
    quantiles = scored[["q0.1", "q0.5", "q0.9"]].to_numpy()
    assert np.isfinite(quantiles).all() and (np.diff(quantiles, axis=1) >= 0).all()


def test_every_level_is_scored_for_the_base_and_the_reconciled_forecasts(levels):
    scores = levels.scores()
    got = set(zip(scores["level"], scores["forecast"]))
    assert got == {(level, kind) for level in (0, 1, 2) for kind in ("base", "mint_shrink")}
    reconciled = scores[scores["forecast"] == "mint_shrink"]
    assert reconciled[["mase", "level_ratio", "coverage80"]].notna().all().all()
    # the coarse levels' own backtests have too few past errors to calibrate an interval; the
    # reconciled ones take theirs from the districts' sample paths
    assert scores.loc[(scores["level"] == 0) & (scores["forecast"] == "base"), "coverage80"].isna().all()


def test_a_district_without_a_region_is_named_before_anything_runs():
    cube = make_panel(6, 40, seed=3)
    orphan = str(cube["area"].values[2])
    cube = cube.assign_coords(admin1_pcode=cube["admin1_pcode"].where(cube["area"] != orphan, ""))
    with pytest.raises(ForecastError, match=orphan):
        backtest_levels(cube, SPEC, folds=FOLDS, progress=False)


def test_bottom_up_keeps_each_districts_interval_and_a_district_with_no_arrivals_keeps_its_zero(levels):
    reconciled = backtest_levels(make_panel(12, 60, seed=2), SPEC, folds=FOLDS, method="bottom_up", progress=False,
                                 bottom=levels.base[2]).forecasts
    districts = reconciled[(reconciled["level"] == 2) & (reconciled["role"] == "scored")]
    base = levels.base[2].scored.set_index(["area", "origin", "horizon"])
    mine = districts.set_index(["area", "origin", "horizon"]).loc[base.index]
    for q in ("q0.1", "q0.5", "q0.9"):  # the same distribution, read back from 500 draws
        spread = (base["q0.9"] - base["q0.1"]).to_numpy() + 1.0
        assert np.all(np.abs(mine[q].to_numpy() - base[q].to_numpy()) <= 0.05 * spread), q
    zero = base["q0.1"].to_numpy() == 0
    assert zero.any() and (mine["q0.1"].to_numpy()[zero] == 0).all()
