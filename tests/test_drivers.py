"""Driver families (drought, conflict, markets, food security, origin pressure) and ablations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.features import assert_causal, build_features, same_month_anomaly, season_state, season_totals
from forecast.models import ModelSpec

DRIVER_FAMILIES = ("drought", "conflict", "markets", "food_security", "pressure")
FSNAU = ("ndvi", "drought_index", "water_price", "conflict_incidents", "sorghum_price", "maize_price",
         "rice_price", "goat_price", "wage", "tot_goat_cereal", "tot_wage_cereal", "cost_min_basket")


def fsnau_cube(n_areas: int = 8, n_months: int = 72, *, seed: int = 0, start: str = "2009-01",
               gaps: float = 0.05) -> xr.Dataset:
    """The synthetic panel (rainfall, ACLED conflict, flows) plus every FSNAU covariate, with gaps,
    and IPC values at irregular reference months only."""
    cube = make_panel(n_areas, n_months, start=start, seed=seed, with_flows=True)
    rng = np.random.default_rng(seed)
    shape = (n_areas, n_months)
    for name in FSNAU:
        if name == "conflict_incidents":
            x = rng.poisson(2.0, shape).astype(float)
        elif name == "ndvi":
            x = rng.uniform(0.1, 0.6, shape)
        elif name == "drought_index":
            x = rng.normal(0.0, 1.0, shape)
        else:
            x = np.exp(rng.normal(3.0, 0.3, shape))
        x[rng.random(shape) < gaps] = np.nan
        cube[name] = (("area", "time"), x)
    rounds = np.cumsum(rng.integers(3, 9, n_months))
    rounds = rounds[rounds < n_months]
    for name, values in (("ipc_phase3plus_share", rng.uniform(0, 1, (n_areas, len(rounds)))),
                         ("ipc_area_phase", rng.integers(1, 6, (n_areas, len(rounds))).astype(float))):
        x = np.full(shape, np.nan)
        x[:, rounds] = values
        cube[name] = (("area", "time"), x)
    return cube


def hand_cube(start: str, variables: dict[str, np.ndarray], flows: np.ndarray | None = None) -> xr.Dataset:
    """A small cube from (area, time) arrays, areas A, B, C, ...; arrivals 1 everywhere."""
    n_areas, n_months = next(iter(variables.values())).shape
    areas = [chr(ord("A") + i) for i in range(n_areas)]
    time = pd.date_range(start, periods=n_months, freq="MS")
    cube = xr.Dataset({name: (("area", "time"), np.asarray(x, float)) for name, x in variables.items()},
                      coords={"area": areas, "time": time})
    cube["arrivals"] = (("area", "time"), np.ones((n_areas, n_months)))
    if flows is not None:
        cube["flows"] = (("origin", "destination", "time"), flows)
        cube = cube.assign_coords(origin=areas, destination=areas)
    return cube


def column(fm, name: str) -> np.ndarray:
    """A feature column as an (area, time) array."""
    return fm.X[name].to_numpy().astype(float).reshape(len(fm.panel.time), len(fm.panel.areas)).T


@pytest.mark.parametrize("family", DRIVER_FAMILIES)
def test_driver_family_is_causal_when_the_cube_has_every_fsnau_variable(family):
    cube = fsnau_cube(6, 84, seed=1)
    fm = build_features(cube, "arrivals", families=[family], missing_target="zero")
    assert fm.families[family] and np.isfinite(fm.X.to_numpy()).any(axis=0).all()
    # cut just before, at and after season ends (May, June, July, November, December)
    assert_causal(cube, "arrivals", families=[family], missing_target="zero",
                  cutoffs=[40, 41, 42, 46, 47, 59, 70, 80])


@given(seed=st.integers(0, 10_000), cut=st.floats(0.2, 0.95), gaps=st.floats(0.0, 0.3),
       start=st.sampled_from(["2009-01", "2009-05", "2010-11"]))
@settings(max_examples=12, deadline=None)
def test_driver_families_never_read_later_months_whatever_the_gaps_and_start(seed, cut, gaps, start):
    cube = fsnau_cube(4, 60, seed=seed, start=start, gaps=gaps)
    assert_causal(cube, "arrivals", families=list(DRIVER_FAMILIES), missing_target="zero",
                  cutoffs=[int(cut * 59)])


def test_driver_families_add_nothing_when_the_cube_has_none_of_their_variables():
    cube = make_panel(5, 48, seed=2, with_flows=False).drop_vars(["rainfall", "rainfall_observed"])
    fm = build_features(cube, "arrivals", missing_target="zero")
    assert {f: fm.families[f] for f in DRIVER_FAMILIES} == {f: () for f in DRIVER_FAMILIES} | {
        "conflict": fm.families["conflict"]}
    assert all(c.startswith(("conflict_events_", "conflict_fatalities_")) for c in fm.families["conflict"])


def _reference_anomaly(x: np.ndarray, months: np.ndarray, min_years: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    for a in range(x.shape[0]):
        for t in range(x.shape[1]):
            earlier = x[a, :t][(months[:t] == months[t]) & ~np.isnan(x[a, :t])]
            if len(earlier) >= min_years and earlier.std(ddof=1) > 0:
                out[a, t] = np.clip((x[a, t] - earlier.mean()) / earlier.std(ddof=1), -5, 5)  # Z_CLIP
    return out


@given(seed=st.integers(0, 10_000), n_months=st.integers(1, 70), start_month=st.integers(1, 12),
       min_years=st.integers(2, 4))
@settings(max_examples=40, deadline=None)
def test_same_month_anomaly_matches_a_loop_over_earlier_years(seed, n_months, start_month, min_years):
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 30.0, (3, n_months))
    x[rng.random(x.shape) < 0.2] = np.nan
    time = pd.date_range(f"2010-{start_month:02d}", periods=n_months, freq="MS")
    np.testing.assert_allclose(same_month_anomaly(x, time, min_years),
                               _reference_anomaly(x, time.month.to_numpy(), min_years), rtol=1e-9, atol=1e-12)


def test_climatology_uses_only_earlier_years_of_the_same_month():
    # January: 10, 20, 30, 60, 0 in 2010-2014; every other month 5
    rain = np.full((1, 60), 5.0)
    rain[0, ::12] = [10, 20, 30, 60, 0]
    fm = build_features(hand_cube("2010-01", {"rainfall": rain}), "arrivals", families=["drought"])
    z, z1 = column(fm, "rainfall_z_lag0")[0], column(fm, "rainfall_z_lag1")[0]
    assert np.isnan(z[[0, 12, 24]]).all()                # fewer than 3 earlier Januaries
    assert z[36] == pytest.approx(4.0)                   # (60 - mean(10, 20, 30)) / std(10, 20, 30) = 40 / 10
    assert z[48] == pytest.approx((0 - 30) / np.std([10, 20, 30, 60], ddof=1), rel=1e-6)
    assert z1[37] == pytest.approx(4.0) and np.isnan(z[37])  # lag 1; February is constant: std 0
    two = build_features(hand_cube("2010-01", {"rainfall": rain}), "arrivals", families=["drought"],
                         params={"clim_min_years": 2})
    assert column(two, "rainfall_z_lag0")[0, 24] == pytest.approx((30 - 15) / np.std([10, 20], ddof=1))


def _season_rain(gu: dict[int, float], deyr: dict[int, float], years: range, other: float = 5.0) -> np.ndarray:
    """Monthly rainfall with each Gu and Deyr total spread evenly over its three months."""
    rain = np.full((len(years), 12), other)
    for i, year in enumerate(years):
        rain[i, 3:6] = gu[year] / 3
        rain[i, 9:12] = deyr[year] / 3
    return rain.reshape(1, -1)


def test_seasons_fail_below_the_earlier_seasons_quantile_and_a_missing_month_stops_the_streak():
    years = range(2010, 2016)
    gu = {2010: 90, 2011: 120, 2012: 150, 2013: 60, 2014: 100, 2015: 30}
    deyr = {2010: 30, 2011: 60, 2012: 90, 2013: 15, 2014: 60, 2015: 20}
    rain = _season_rain(gu, deyr, years)
    rain[0, 12 * 4 + 10] = np.nan                        # November 2014: Deyr 2014 unknown
    time = pd.date_range("2010-01", periods=rain.shape[1], freq="MS")
    fm = build_features(hand_cube("2010-01", {"rainfall": rain}), "arrivals", families=["drought"])
    streak = pd.Series(column(fm, "seasons_failed")[0], index=time)
    assert streak[:"2013-05"].isna().all()               # fewer than 3 earlier seasons of a kind
    # Gu 2013: 60 < 109.8, the 0.33 quantile of 90, 120, 150; Deyr 2012 before it is unknown
    assert (streak["2013-06":"2013-11"] == 1).all()
    assert (streak["2013-12":"2014-05"] == 2).all()      # Deyr 2013: 15 < 49.8
    assert (streak["2014-06":"2014-11"] == 0).all()      # Gu 2014: 100 >= 89.7
    assert streak["2014-12":"2015-05"].isna().all()      # Deyr 2014 has a missing month
    assert (streak["2015-06":"2015-11"] == 1).all()      # Gu 2015 fails; counting stops at Deyr 2014
    assert streak["2015-12-01"] == 2                        # Deyr 2015: 20 < 29.85 (of 15, 30, 60, 90)
    last_z = pd.Series(column(fm, "season_last_z")[0], index=time)
    assert np.isnan(last_z["2013-05-01"]) and last_z["2013-06":"2013-11"].to_numpy() == pytest.approx(-2.0)
    running = pd.Series(column(fm, "season_running_z")[0], index=time)
    assert running["2013-04-01"] == pytest.approx(-2.0)     # April 20 vs 30, 40, 50
    assert running[time.month.isin([1, 2, 3, 7, 8, 9])].isna().all()
    totals = season_totals(rain, time)[0]
    assert totals[5] == pytest.approx(90) and np.isnan(totals[12 * 4 + 11]) and np.isnan(totals[4])
    state = season_state(rain, time)
    assert state.last_failed[0, time.get_loc("2014-06-01")] == 0
    assert state.last_failed[0, time.get_loc("2015-06-01")] == 1


def test_seasons_failed_refuses_a_quantile_outside_zero_and_one():
    rain = np.ones((1, 24))
    with pytest.raises(ForecastError, match="season_fail_quantile lies strictly between 0 and 1, got 1.5"):
        build_features(hand_cube("2010-01", {"rainfall": rain}), "arrivals", families=["drought"],
                       params={"season_fail_quantile": 1.5})


def test_ipc_round_enters_after_the_publication_lag_and_expires_after_max_age():
    time = pd.date_range("2017-01", periods=36, freq="MS")
    share = np.full((1, 36), np.nan)
    share[0, [0, 8]] = [0.2, 0.5]                        # rounds with reference months 2017-01, 2017-09
    phase = np.where(np.isnan(share), np.nan, 3.0)
    variables = {"ipc_phase3plus_share": share, "ipc_area_phase": phase}
    fm = build_features(hand_cube("2017-01", variables), "arrivals", families=["food_security"])
    got = pd.Series(column(fm, "ipc_phase3plus_share_last")[0], index=time)
    age = pd.Series(column(fm, "ipc_age")[0], index=time)
    assert got[:"2017-03"].isna().all() and age[:"2017-03"].isna().all()
    assert got["2017-04":"2017-11"].to_numpy() == pytest.approx(0.2) and age["2017-04-01"] == 3 and age["2017-11-01"] == 10
    assert got["2017-12":"2018-09"].to_numpy() == pytest.approx(0.5) and age["2017-12-01"] == 3 and age["2018-09-01"] == 12
    assert got["2018-10":].isna().all() and age["2018-10":].isna().all()   # older than ipc_max_age
    # a round changes no feature before reference month + ipc_lag
    without = dict(variables, ipc_phase3plus_share=np.where(np.arange(36) == 8, np.nan, share))
    before = build_features(hand_cube("2017-01", without), "arrivals", families=["food_security"])
    until = time.get_loc("2017-12-01")
    np.testing.assert_array_equal(before.X.to_numpy()[:until], fm.X.to_numpy()[:until])
    assert not np.array_equal(before.X.to_numpy()[until], fm.X.to_numpy()[until], equal_nan=True)
    lag0 = build_features(hand_cube("2017-01", variables), "arrivals", families=["food_security"],
                          params={"ipc_lag": 0, "ipc_max_age": 6})
    assert column(lag0, "ipc_phase3plus_share_last")[0, 0] == pytest.approx(0.2)
    assert np.isnan(column(lag0, "ipc_age")[0, 7]) and column(lag0, "ipc_age")[0, 6] == 6


def test_pressure_weights_origins_by_their_arrivals_over_the_trailing_window():
    n = 48                                               # 2010-01 .. 2013-12; t = 31 is 2012-08
    incidents = np.array([np.full(n, 1.0), np.zeros(n), np.full(n, 7.0)])
    incidents[2, 30] = np.nan                            # C's 3-month sum unknown at t = 30..32
    gu = {2010: 90, 2011: 120, 2013: 90}
    rain = np.vstack([_season_rain({**gu, 2012: g}, dict.fromkeys(range(2010, 2014), 60), range(2010, 2014))
                      for g in (30, 150, 90)])           # Gu 2012: A fails (< 99.9), B does not
    rain[2, 12 * 2 + 4] = np.nan                         # C: May 2012 missing, its Gu 2012 unknown
    flows = np.zeros((3, 3, n))                          # (origin, destination, time)
    flows[0, 2, 31], flows[1, 2, 32] = 30, 10            # A -> C, B -> C
    flows[0, 1, 32], flows[2, 1, 32], flows[2, 1, 33] = 20, 20, 20   # A -> B, C -> B
    cube = hand_cube("2010-01", {"conflict_incidents": incidents, "rainfall": rain}, flows)
    fm = build_features(cube, "arrivals", families=["pressure"],
                        params={"pressure_window": 2, "season_min_years": 2})
    log4, log22 = np.log(4.0), np.log(22.0)
    conflict = column(fm, "from_conflict_incidents_log_sum3")
    assert np.isnan(conflict[0]).all()                   # A never received anyone
    np.testing.assert_allclose(conflict[2, 31:35], [log4, 0.75 * log4, 0.0, np.nan], rtol=1e-6)
    # B at t = 32: C's indicator is unknown, so A alone counts; t = 33: A 20 (t = 32), C 40
    np.testing.assert_allclose(conflict[1, 32:36], [log4, (20 * log4 + 40 * log22) / 60, log22, np.nan], rtol=1e-6)
    assert np.isnan(np.delete(conflict[2], [31, 32, 33])).all()
    share = column(fm, "from_drought_share")
    np.testing.assert_allclose(share[2, 31:35], [1.0, 0.75, 0.0, np.nan])   # 30 of 40 from A (failed)
    np.testing.assert_allclose(share[1, 32:35], [1.0, 1.0, np.nan])         # C's last season unknown
    failed = column(fm, "from_seasons_failed")
    np.testing.assert_allclose(failed[2, 31:33], [1.0, 0.75])


def test_exclude_variables_removes_every_column_derived_from_the_variable():
    cube = fsnau_cube(6, 60, seed=4).drop_vars(["rain_anomaly", "rain_anomaly_observed"])
    full = build_features(cube, "arrivals", missing_target="zero")
    # the columns that read rainfall: those that change when rainfall does
    rng = np.random.default_rng(0)
    changed = cube.copy()
    changed["rainfall"] = cube["rainfall"] * rng.uniform(0.5, 2.0, cube["rainfall"].shape)
    changed["rainfall"][0, 30] = np.nan
    other = build_features(changed, "arrivals", missing_target="zero")
    a, b = full.X.to_numpy(), other.X.to_numpy()
    reads_rain = set(full.X.columns[~((a == b) | (np.isnan(a) & np.isnan(b))).all(axis=0)])
    assert {"rainfall_z_lag0", "seasons_failed", "from_drought_share", "rainfall_observed"} <= reads_rain
    lean = build_features(cube, "arrivals", missing_target="zero", exclude_variables=["rainfall"])
    assert set(full.X.columns) - set(lean.X.columns) == reads_rain
    np.testing.assert_array_equal(lean.X.to_numpy(), full.X[lean.X.columns].to_numpy())
    # the spec field reaches build_features; withholding flows removes origin pressure
    spec = ModelSpec(name="no_flows", estimator="lightgbm", exclude_variables=["flows", "ndvi"])
    fm = spec.feature_matrix(cube)
    assert fm.families["pressure"] == () and not [c for c in fm.X.columns if "ndvi" in c or c.startswith("from_")]


def test_exclude_variables_refuses_an_unknown_variable_and_the_target():
    cube = fsnau_cube(3, 24)
    with pytest.raises(ForecastError, match=r"does not have: \['rainfal'\]; it has arrivals, departures"):
        build_features(cube, "arrivals", exclude_variables=["rainfal"])
    with pytest.raises(ForecastError, match="cannot withhold the target 'arrivals'"):
        ModelSpec(name="m", estimator="lightgbm", exclude_variables=["arrivals"]).feature_matrix(cube)


def test_anomalies_of_dry_months_are_clipped_so_a_few_millimetres_do_not_read_as_hundreds_of_sigmas():
    time = pd.date_range("2001-01", periods=48, freq="MS")
    x = np.full((1, 48), 0.0)
    x[0, [0, 12, 24]] = [0.1, 0.2, 0.1]   # three dry Januaries
    x[0, 36] = 40.0                         # 40 mm in the fourth: about 690 standard deviations
    z = same_month_anomaly(x, time)
    assert z[0, 36] == 5.0


def test_one_backtest_of_specs_that_differ_only_in_withheld_variables_gives_each_its_own_features():
    from forecast.backtest import RollingOrigin, backtest
    from forecast.models import ModelSpec

    cube = make_panel(30, 60, seed=4)
    common = dict(estimator="lightgbm", horizons=[1, 2], quantiles=[0.1, 0.5, 0.9], features="all",
                  params={"n_estimators": 20, "point": "median", "min_child_samples": 5})
    full = ModelSpec(name="full", **common)
    blind = ModelSpec(name="no_rain", exclude_variables=["rainfall", "rain_anomaly"], **common)
    result = backtest(cube, [full, blind], folds=RollingOrigin(n_origins=3, calibration_origins=0), baselines=False)
    f = result.forecasts.pivot_table(index=["origin", "horizon", "area"], columns="model", values="point")
    assert not np.allclose(f["full"], f["no_rain"])  # a shared feature matrix would make them equal
