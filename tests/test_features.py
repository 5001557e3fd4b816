"""Features: causal window operations and the leakage property for every family."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecast.datasets import load_somalia, make_panel
from forecast.errors import ForecastError
from forecast.features import (
    FAMILIES,
    LeakageError,
    assert_causal,
    build_features,
    register_family,
)
from forecast.features import _windows as w


def _frame(x):
    return pd.DataFrame(x.T)  # pandas rolls down columns: one column per area


@given(st.integers(1, 6), st.integers(1, 30), st.integers(0, 2**16))
@settings(max_examples=40, deadline=None)
def test_rolling_ops_match_pandas_when_values_are_missing(window, n_times, seed):
    rng = np.random.default_rng(seed)
    x = rng.poisson(20, size=(3, n_times)).astype(float)
    x[rng.random(x.shape) < 0.3] = np.nan
    roll = _frame(x).rolling(window, min_periods=1)
    np.testing.assert_allclose(w.rolling_mean(x, window), roll.mean().to_numpy().T, rtol=1e-9)
    np.testing.assert_allclose(w.rolling_max(x, window), roll.max().to_numpy().T)
    if window >= 2:
        ref_std = _frame(x).rolling(window, min_periods=2).std(ddof=0).to_numpy().T
        np.testing.assert_allclose(w.rolling_std(x, window), ref_std, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(w.forward_fill(x), _frame(x).ffill().to_numpy().T)
    np.testing.assert_allclose(w.expanding_mean(x), _frame(x).expanding().mean().to_numpy().T, rtol=1e-9)


def test_lag_refuses_negative_lags_because_they_read_the_future():
    with pytest.raises(ValueError, match="future"):
        w.lag(np.zeros((1, 3)), -1)


def test_missing_months_stay_missing_in_features_and_are_not_zero():
    cube = make_panel(12, 48, seed=3)
    fm = build_features(cube, "idp_stock", missing_target="skip")
    stock = cube["idp_stock"].transpose("area", "time").values
    unobserved = np.isnan(stock).T.ravel()
    assert unobserved.any()
    assert np.isnan(fm.X["y_lag0"].to_numpy()[unobserved]).all()
    assert (fm.X["y_observed"].to_numpy()[unobserved] == 0).all()
    # the last observed value and its age carry the information across rounds
    assert np.isfinite(fm.X["y_last"].to_numpy()[unobserved][-20:]).all()
    assert (fm.X["y_age"].to_numpy()[unobserved][-20:] >= 1).all()


def test_features_are_float32_rows_by_time_then_area():
    cube = make_panel(5, 30, seed=1)
    fm = build_features(cube, "arrivals")
    assert set(fm.X.dtypes) == {np.dtype("float32")}
    assert fm.X.shape[0] == 5 * 30
    assert list(fm.X.index[:5].get_level_values("area")) == list(cube["area"].values)
    t = 7
    assert (fm.X.iloc[fm.rows_at(t)].index.get_level_values("time") == cube["time"].values[t]).all()


def test_target_at_horizon_is_the_value_h_months_later():
    cube = make_panel(4, 20, seed=2)
    fm = build_features(cube, "arrivals", missing_target="zero")
    y = fm.panel.y
    ahead = fm.target(3).reshape(20, 4).T
    np.testing.assert_array_equal(ahead[:, :17], y[:, 3:])
    assert np.isnan(ahead[:, 17:]).all()


def test_every_family_is_causal_on_the_somalia_sample():
    assert_causal(load_somalia(), "arrivals", missing_target="zero", cutoffs=[30, 60, 90])


@given(n_areas=st.integers(2, 9), n_months=st.integers(14, 40), seed=st.integers(0, 10_000),
       cut=st.floats(0.1, 0.95), target=st.sampled_from(["arrivals", "idp_stock"]),
       missing=st.sampled_from(["skip", "zero"]))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_features_at_origin_are_identical_with_or_without_later_data(n_areas, n_months, seed, cut, target, missing):
    cube = make_panel(n_areas, n_months, seed=seed, with_flows=True)
    k = max(0, min(n_months - 2, int(cut * n_months)))
    assert_causal(cube, target, missing_target=missing, cutoffs=[k])


@pytest.fixture
def leaky_family():
    """A family that uses the whole series' mean: a classic leak (a full-sample scaler)."""
    @register_family("leaky_scaler")
    def leaky(inputs, params):
        y = inputs.y
        seen = ~np.isnan(y)
        total = np.where(seen, y, 0).sum(axis=1, keepdims=True)
        mean = total / np.maximum(seen.sum(axis=1, keepdims=True), 1)
        return {"y_over_full_mean": y / np.maximum(mean, 1)}
    yield "leaky_scaler"
    del FAMILIES["leaky_scaler"]


def test_leakage_check_catches_a_feature_that_reads_the_future(leaky_family):
    cube = make_panel(6, 36, seed=5)
    with pytest.raises(LeakageError, match=r"y_over_full_mean \(family 'leaky_scaler'\)"):
        assert_causal(cube, "arrivals", families=["lags", leaky_family], cutoffs=[20])
    # the same check passes for the honest families alone
    assert_causal(cube, "arrivals", families=["lags", "rolling"], cutoffs=[20])


def test_unknown_family_lists_the_known_ones():
    with pytest.raises(ForecastError, match="unknown feature family 'lagz'; known families: lags"):
        build_features(make_panel(3, 20), "arrivals", families=["lagz"])


def test_unknown_target_lists_the_cube_variables():
    with pytest.raises(ForecastError, match="no variable 'arrival'.*arrivals"):
        build_features(make_panel(3, 20), "arrival")


def test_spatial_features_average_bordering_areas_from_the_cube_neighbours():
    cube = make_panel(9, 24, seed=4)
    y = cube["arrivals"].transpose("area", "time").values
    areas = list(cube["area"].values)
    neighbours = {areas[0]: [areas[1], areas[3]]}
    fm = build_features(cube, "arrivals", families=["spatial"], neighbours=neighbours)
    got = fm.X["nb_y_lag0"].to_numpy().reshape(24, 9).T[0]
    np.testing.assert_allclose(got, np.nanmean(y[[1, 3]], axis=0), rtol=1e-5)


def test_zero_fill_reads_unrecorded_months_as_zero_only_after_recording_starts():
    cube = make_panel(3, 24, seed=6)
    arr = cube["arrivals"].copy()
    arr[:, :5] = np.nan
    arr[0, 10] = np.nan
    cube["arrivals"] = arr
    fm = build_features(cube, "arrivals", families=["masks"], missing_target="zero")
    y = fm.panel.y
    assert np.isnan(y[:, :5]).all() and y[0, 10] == 0
    recorded = fm.X["y_recorded"].to_numpy().reshape(24, 3).T
    assert recorded[0, 10] == 0 and fm.X["y_observed"].to_numpy().reshape(24, 3).T[0, 10] == 1


def test_ingest_records_bordering_districts_and_features_use_them():
    from forecast.features import neighbours_from_cube

    cube = load_somalia()
    table = neighbours_from_cube(cube)
    assert set(table["SO2401"]) == {"SO2402", "SO2403", "SO2404", "SO2501", "SO2503", "SO2504",
                                    "SO2601", "SO2606"}  # Baidoa's neighbours on the COD map
    assert all(a in table[b] for a, nbs in table.items() for b in nbs)  # symmetric
    assert all(nbs for nbs in table.values()) and all(a not in nbs for a, nbs in table.items())
    fm = build_features(cube, "arrivals", families=["spatial"], missing_target="zero")
    y = fm.panel.y
    idx = [list(cube["area"].values).index(a) for a in table["SO2401"]]
    got = fm.X["nb_y_lag0"].to_numpy().reshape(cube.sizes["time"], -1).T[list(cube["area"].values).index("SO2401")]
    recorded = slice(int(np.flatnonzero(np.isfinite(y).any(axis=0))[0]), None)  # arrivals start in 2016
    np.testing.assert_allclose(got[recorded], np.nanmean(y[idx][:, recorded], axis=0), rtol=1e-5)


def test_excluded_columns_are_left_out_as_built_and_unknown_ones_refused():
    panel = make_panel(20, 36, seed=2)
    full = build_features(panel, "arrivals", missing_target="zero")
    lean = build_features(panel, "arrivals", missing_target="zero", exclude=["y_max3", "month_sin"])
    np.testing.assert_array_equal(lean.X.to_numpy(), full.X.drop(columns=["y_max3", "month_sin"]).to_numpy())
    assert "y_max3" not in lean.families["rolling"] and "month_sin" not in lean.families["season"]
    with pytest.raises(ForecastError, match=r"do not have: \['y_max4'\]"):
        build_features(panel, "arrivals", exclude=["y_max4"])


def test_target_only_families_leave_the_covariates_out_but_series_models_get_them():
    """A matrix of target and calendar features does not hold the covariates in memory; the
    panel a backtest gives series models (SARIMAX reads covariates) still has every one."""
    from forecast.backtest._run import _Runner
    from forecast.models import ModelSpec

    panel = make_panel(10, 36, seed=2)
    lean = build_features(panel, "arrivals", families=["lags", "rolling", "season"], missing_target="zero")
    assert lean.panel.exog == {}
    assert "conflict_events" in build_features(panel, "arrivals", families=["covariates"]).panel.exog
    sarimax = ModelSpec(name="s", estimator="sarimax", params={"exog": ["conflict_events"]})
    series = _Runner(panel, "arrivals", [1, 2], [0.1, 0.5, 0.9], None).features(sarimax)
    assert "conflict_events" in series.panel.exog and series.X.shape == (10 * 36, 0)
