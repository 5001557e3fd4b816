"""Reconciliation across admin levels: coherent means, coherent quantiles, no leakage."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from forecast.backtest._reconcile import (
    METHODS,
    coherence_error,
    hierarchy_of,
    reconcile,
    reconcile_means,
    shrunk_covariance,
)
from forecast.datasets import load_somalia, make_panel
from forecast.errors import ForecastError

PROJECTIONS = ("ols", "wls_struct", "mint_shrink")


def _cube(admin1=("R1", "R1", "R1", "R2", "R2"), admin0=("XY",) * 5, areas=None):
    areas = list(areas or [f"D{i}" for i in range(len(admin1))])
    return xr.Dataset(
        {"arrivals": (("area", "time"), np.ones((len(areas), 3)))},
        coords={"area": areas, "time": pd.date_range("2020-01-01", periods=3, freq="MS"),
                "admin0_pcode": ("area", list(admin0)), "admin1_pcode": ("area", list(admin1))},
        attrs={"admin_level": 2},
    )


def _tables(hierarchy, n_origins=8, horizons=(1, 2, 3), seed=0):
    """Incoherent base forecasts at every level, symmetric quantiles far above 0."""
    rng = np.random.default_rng(seed)
    origins = pd.date_range("2020-01-01", periods=n_origins, freq="MS")
    m = len(hierarchy.bottom)
    by_level = {level: [] for level in hierarchy.levels}
    for origin in origins:
        for h in horizons:
            truth = hierarchy.S @ rng.uniform(800, 1200, m)
            point = truth * rng.uniform(0.8, 1.2, len(truth))
            half = 0.1 * point
            for level in hierarchy.levels:
                rows = hierarchy.index(level)
                by_level[level].append(pd.DataFrame({
                    "model": "m", "origin": origin, "horizon": h,
                    "area": hierarchy.series["area"].to_numpy()[rows],
                    "time": origin + pd.DateOffset(months=h), "actual": truth[rows], "point": point[rows],
                    "q0.1": point[rows] - half[rows], "q0.5": point[rows], "q0.9": point[rows] + half[rows],
                    "scale": 50.0, "role": "scored"}))
    return {level: pd.concat(parts, ignore_index=True) for level, parts in by_level.items()}


def _with_means(tables, factor=None, seed=21):
    """The tables with a ``mean`` column: ``factor`` times the point, or a random factor per row
    (means that do not add up)."""
    rng = np.random.default_rng(seed)
    return {level: table.assign(mean=table["point"] * (factor if factor is not None
                                                        else rng.uniform(1.1, 1.6, len(table))))
            for level, table in tables.items()}


@pytest.fixture(scope="module")
def small():
    return hierarchy_of(_cube())


# --------------------------------------------------------------------------- the hierarchy


def test_hierarchy_of_sums_every_district_once_per_level_when_built_from_make_panel():
    cube = make_panel(12, 48, seed=1)
    hierarchy = hierarchy_of(cube)
    regions = np.unique(cube["admin1_pcode"].values)
    assert hierarchy.levels == (0, 1, 2)
    assert hierarchy.S.shape == (1 + len(regions) + 12, 12)
    assert list(hierarchy.bottom) == list(cube["area"].values.astype(str))
    np.testing.assert_array_equal(hierarchy.S.sum(axis=0), np.full(12, 3.0))
    for row in hierarchy.index(1):
        code = hierarchy.series["area"].iloc[row]
        np.testing.assert_array_equal(hierarchy.S[row], (cube["admin1_pcode"].values == code).astype(float))
    assert hierarchy.n_series == len(hierarchy.series) == hierarchy.S.shape[0]


def test_hierarchy_of_names_the_areas_without_a_parent():
    with pytest.raises(ForecastError, match=r"2 areas have no admin1 parent: D1, D3"):
        hierarchy_of(_cube(admin1=("R1", "", "R1", "", "R2")))


def test_hierarchy_of_lists_ten_orphans_then_counts_the_rest():
    cube = _cube(admin1=("",) * 12, admin0=("XY",) * 12)
    with pytest.raises(ForecastError, match=r"D0, D1, .*, D9 and 2 more"):
        hierarchy_of(cube)


def test_hierarchy_of_refuses_a_region_under_two_countries():
    with pytest.raises(ForecastError, match=r"admin1 code\(s\) R2 lie in more than one admin0"):
        hierarchy_of(_cube(admin0=("XY", "XY", "XY", "XY", "ZZ")))


def test_hierarchy_of_refuses_a_parent_code_that_is_also_a_district():
    with pytest.raises(ForecastError, match=r"admin1 code\(s\) D0 are also codes"):
        hierarchy_of(_cube(admin1=("D0", "D0", "R1", "R1", "R1")))


def test_hierarchy_of_somalia_has_the_country_18_regions_and_74_districts():
    hierarchy = hierarchy_of(load_somalia())
    assert hierarchy.levels == (0, 1, 2)
    assert [len(hierarchy.index(k)) for k in (0, 1, 2)] == [1, 18, 74]
    assert hierarchy.S.shape == (93, 74)
    np.testing.assert_array_equal(hierarchy.S[hierarchy.index(0)], np.ones((1, 74)))


# --------------------------------------------------------------------------- covariance


def _reference_shrinkage(r):
    """Schäfer & Strimmer (2005), target D, written out with loops."""
    n, p = r.shape
    x = r - r.mean(axis=0)
    sd = x.std(axis=0, ddof=1)
    z = x / sd
    num = den = 0.0
    for i in range(p):
        for j in range(p):
            if i != j:
                w = z[:, i] * z[:, j]
                num += n / (n - 1) ** 3 * ((w - w.mean()) ** 2).sum()
                den += (w.sum() / (n - 1)) ** 2
    lam = min(max(num / den, 0.0), 1.0)
    cov = x.T @ x / (n - 1)
    return lam * np.diag(np.diag(cov)) + (1 - lam) * cov, lam


def test_shrunk_covariance_matches_the_paper_formula_on_a_small_example():
    rng = np.random.default_rng(3)
    r = rng.normal(size=(9, 4)) @ rng.normal(size=(4, 4))
    W, lam = shrunk_covariance(r)
    expected, expected_lam = _reference_shrinkage(r)
    assert 0 < lam < 1
    assert lam == pytest.approx(expected_lam, rel=1e-10)
    np.testing.assert_allclose(W, expected, rtol=1e-6)


def test_shrunk_covariance_shrinks_fully_for_independent_series_and_little_for_correlated_ones():
    rng = np.random.default_rng(4)
    _, lam_independent = shrunk_covariance(rng.normal(size=(2000, 5)))
    common = rng.normal(size=(2000, 1))
    _, lam_correlated = shrunk_covariance(common + 0.1 * rng.normal(size=(2000, 5)))
    assert 0.5 < lam_independent <= 1.0
    assert 0.0 <= lam_correlated < 0.05


def test_shrunk_covariance_is_positive_definite_with_fewer_rows_than_series_and_a_flat_series():
    rng = np.random.default_rng(5)
    r = rng.normal(size=(6, 10)) * 100
    r[:, 3] = 7.0  # a series whose errors never vary
    W, lam = shrunk_covariance(r)
    assert 0.0 <= lam <= 1.0
    np.testing.assert_array_equal(W, W.T)
    assert np.linalg.eigvalsh(W).min() > 0
    assert W[3, 3] > 0 and np.all(W[3, np.arange(10) != 3] == 0)


def test_shrunk_covariance_drops_rows_with_nan():
    rng = np.random.default_rng(6)
    r = rng.normal(size=(12, 3))
    holed = np.vstack([r, [[np.nan, 1.0, 2.0], [0.5, np.nan, np.nan]]])
    W, lam = shrunk_covariance(holed)
    W_clean, lam_clean = shrunk_covariance(r)
    np.testing.assert_array_equal(W, W_clean)
    assert lam == lam_clean


def test_shrunk_covariance_refuses_fewer_than_two_complete_rows():
    with pytest.raises(ForecastError, match="1 complete error vector"):
        shrunk_covariance(np.array([[1.0, 2.0], [np.nan, 1.0], [3.0, 4.0 * np.nan]]))


# --------------------------------------------------------------------------- means


def test_bottom_up_keeps_the_bottom_forecasts_and_sums_them(small):
    S, m = small.S, len(small.bottom)
    base = np.random.default_rng(7).uniform(0, 100, (small.n_series, 4))
    out = reconcile_means(base, S, "bottom_up")
    np.testing.assert_array_equal(out[-m:], base[-m:])
    np.testing.assert_array_equal(out, S @ base[-m:])


@pytest.mark.parametrize("method", PROJECTIONS)
def test_projections_make_random_forecasts_coherent(small, method):
    S, m = small.S, len(small.bottom)
    rng = np.random.default_rng(8)
    base = rng.uniform(0, 100, (small.n_series, 5))
    W = shrunk_covariance(rng.normal(size=(30, small.n_series)))[0] if method == "mint_shrink" else None
    out = reconcile_means(base, S, method, W)
    assert np.abs(out - S @ out[-m:]).max() < 1e-6
    assert np.abs(out - base).max() > 1  # it did move the incoherent forecasts


@pytest.mark.parametrize("method", METHODS)
def test_every_method_leaves_coherent_forecasts_unchanged(small, method):
    rng = np.random.default_rng(9)
    base = small.S @ rng.uniform(0, 100, (len(small.bottom), 3))
    W = shrunk_covariance(rng.normal(size=(30, small.n_series)))[0] if method == "mint_shrink" else None
    np.testing.assert_allclose(reconcile_means(base, small.S, method, W), base, atol=1e-8)


def test_mint_with_identity_covariance_equals_ols(small):
    base = np.random.default_rng(10).uniform(0, 100, (small.n_series, 3))
    np.testing.assert_allclose(reconcile_means(base, small.S, "mint_shrink", np.eye(small.n_series)),
                               reconcile_means(base, small.S, "ols"), atol=1e-10)


def test_reconcile_means_names_the_methods_when_given_an_unknown_one(small):
    with pytest.raises(ForecastError, match=r"unknown reconciliation method 'mint'; choose one of \['bottom_up'"):
        reconcile_means(np.ones(small.n_series), small.S, "mint")


def test_reconcile_means_confines_nan_to_its_column_or_its_ancestors(small):
    base = np.random.default_rng(11).uniform(0, 100, (small.n_series, 2))
    base[-1, 0] = np.nan  # district D4, in region R2
    ols = reconcile_means(base, small.S, "ols")
    assert np.isnan(ols[:, 0]).all() and np.isfinite(ols[:, 1]).all()
    up = reconcile_means(base, small.S, "bottom_up")
    nan_series = set(small.series["area"][np.isnan(up[:, 0])])
    assert nan_series == {"XY", "R2", "D4"}


# --------------------------------------------------------------------------- tables


@pytest.mark.parametrize("method", METHODS)
def test_reconcile_makes_every_origin_coherent_and_keeps_quantiles_ordered(small, method):
    tables = _with_means(_tables(small))
    base = pd.concat([t.assign(level=k) for k, t in tables.items()])
    assert coherence_error(base, small) > 1 and coherence_error(base, small, "mean") > 1
    out = reconcile(tables, small, method, n_samples=200)
    assert len(out) == sum(map(len, tables.values()))
    assert coherence_error(out, small) < 1e-6
    assert coherence_error(out, small, "mean") < 1e-6  # the means that hold totals add up too
    ordered = base.sort_values(["origin", "horizon", "level", "area"])
    np.testing.assert_array_equal(out["base_point"].to_numpy(), ordered["point"].to_numpy())
    np.testing.assert_array_equal(out["base_mean"].to_numpy(), ordered["mean"].to_numpy())
    assert (out["q0.1"] <= out["q0.5"]).all() and (out["q0.5"] <= out["q0.9"]).all()


@pytest.mark.parametrize("method", METHODS)
def test_reconcile_moves_the_means_with_the_same_projection_as_the_points(small, method):
    # the projection is linear: means 1.5 times the points reconcile to 1.5 times the reconciled
    # points only when both go through the same method and the same W at each origin and horizon
    out = reconcile(_with_means(_tables(small), factor=1.5), small, method, n_samples=50)
    assert out["reconciled_by"].nunique() == (2 if method == "mint_shrink" else 1)
    np.testing.assert_allclose(out["mean"], 1.5 * out["point"], rtol=1e-9)
    assert not np.allclose(out["mean"], out["base_mean"])


def test_a_series_without_a_mean_takes_the_sum_of_its_districts_means(small):
    tables = _with_means(_tables(small))
    tables[0] = tables[0].assign(mean=np.nan)  # the national series: too few errors for a mean
    out = reconcile(tables, small, "mint_shrink", n_samples=50)
    national = out[out["level"] == 0].set_index(["origin", "horizon"])["base_mean"].sort_index()
    districts = out[out["level"] == 2].groupby(["origin", "horizon"])["base_mean"].sum().sort_index()
    np.testing.assert_allclose(national, districts, rtol=1e-12)
    assert out["mean"].notna().all() and coherence_error(out, small, "mean") < 1e-6


def test_without_means_the_means_stay_missing_and_the_points_are_reconciled_as_before(small):
    tables = _tables(small)
    out = reconcile(tables, small, "mint_shrink", n_samples=50)
    assert out["mean"].isna().all() and out["base_mean"].isna().all()
    with_means = reconcile(_with_means(tables), small, "mint_shrink", n_samples=50)
    pd.testing.assert_frame_equal(out.drop(columns=["mean", "base_mean"]),
                                  with_means.drop(columns=["mean", "base_mean"]))


def test_a_district_without_a_mean_leaves_only_its_origin_and_horizon_without_means(small):
    tables = _with_means(_tables(small))
    tables[0] = tables[0].assign(mean=np.nan)
    origin = pd.Timestamp("2020-03-01")
    bottom = tables[2].copy()
    bottom.loc[(bottom["origin"] == origin) & (bottom["horizon"] == 2) & (bottom["area"] == "D4"), "mean"] = np.nan
    out = reconcile({**tables, 2: bottom}, small, "mint_shrink", n_samples=50)
    missing = out[out["mean"].isna()]
    assert len(missing) == small.n_series  # every series of that one origin and horizon, under a projection
    assert (missing["origin"] == origin).all() and (missing["horizon"] == 2).all()
    assert out["point"].notna().all()


def test_reconcile_falls_back_to_wls_where_too_few_past_errors(small):
    out = reconcile(_tables(small), small, "mint_shrink", n_samples=50)
    first = out["origin"] == out["origin"].min()
    assert (out.loc[first, "reconciled_by"] == "wls_struct").all()
    assert (out.loc[~first & (out["horizon"] == 1), "reconciled_by"].iloc[-1] == "mint_shrink")


def test_reconcile_sample_paths_have_the_reconciled_points_as_means(small, monkeypatch):
    from forecast.backtest import _reconcile

    means, summed = [], _reconcile._summed

    def recording(draws, S):
        paths, ok = summed(draws, S)
        means.append(paths.mean(axis=0))
        return paths, ok

    monkeypatch.setattr(_reconcile, "_summed", recording)
    out = reconcile(_tables(small, n_origins=4, horizons=(1,)), small, "mint_shrink", n_samples=1000)
    points = out["point"].to_numpy().reshape(len(means), -1)
    spread = (out["q0.9"] - out["q0.1"]).to_numpy().reshape(len(means), -1)
    # symmetric base distributions have the base point as mean: the paths' means move with the
    # reconciled points, by far more than the Monte Carlo error
    np.testing.assert_array_less(np.abs(np.array(means) - points), 0.01 * spread)
    assert (np.abs(out["point"] - out["base_point"]) > 0.2 * (out["q0.9"] - out["q0.1"])).any()


def test_reconcile_widens_the_national_interval_when_district_errors_move_together(small):
    tables = _tables(small, n_origins=12, horizons=(1,))
    bottom = tables[2]
    rng = np.random.default_rng(13)
    common = bottom.groupby("origin")["point"].transform(lambda _: rng.normal())
    together = {**tables, 2: bottom.assign(actual=bottom["point"] + 50 * common)}
    apart = {**tables, 2: bottom.assign(actual=bottom["point"] + 50 * rng.normal(size=len(bottom)))}

    def national_width(by_level):
        out = reconcile(by_level, small, "bottom_up", n_samples=500)
        last = out[(out["level"] == 0) & (out["origin"] == out["origin"].max())]
        return float((last["q0.9"] - last["q0.1"]).iloc[0])

    assert national_width(together) > 1.5 * national_width(apart)


def test_reconcile_is_reproducible_for_a_seed(small):
    tables = _tables(small)
    first = reconcile(tables, small, n_samples=100, seed=1)
    pd.testing.assert_frame_equal(first, reconcile(tables, small, n_samples=100, seed=1))
    assert not first["q0.9"].equals(reconcile(tables, small, n_samples=100, seed=2)["q0.9"])


def test_reconcile_never_uses_outcomes_after_the_origin(small):
    tables = _with_means(_tables(small))
    origin = pd.Timestamp("2020-05-01")
    rng = np.random.default_rng(12)

    def altered(after: bool):
        out = {}
        for level, table in tables.items():
            table = table.copy()
            rows = table["time"] > origin if after else table["time"] <= origin
            table.loc[rows, "actual"] = rng.uniform(0, 5000, rows.sum())
            out[level] = table
        return out

    def at_origin(frame):
        columns = ["point", "mean", "q0.1", "q0.5", "q0.9", "reconciled_by"]
        return frame.loc[frame["origin"] == origin, columns].reset_index(drop=True)

    before = reconcile(tables, small, "mint_shrink", n_samples=100)
    assert (at_origin(before)["reconciled_by"] == "mint_shrink").any()
    pd.testing.assert_frame_equal(at_origin(reconcile(altered(True), small, "mint_shrink", n_samples=100)),
                                  at_origin(before))
    # the check can fail: outcomes known at the origin do move its forecasts
    changed = at_origin(reconcile(altered(False), small, "mint_shrink", n_samples=100))
    assert not np.allclose(changed["point"], at_origin(before)["point"])
    assert not np.allclose(changed["mean"], at_origin(before)["mean"])


@pytest.mark.parametrize(("method", "nan_areas"), [("ols", {"XY", "R1", "R2", "D0", "D1", "D2", "D3", "D4"}),
                                                 ("bottom_up", {"XY", "R2", "D4"})])
def test_reconcile_keeps_a_missing_base_point_to_its_origin_and_horizon(small, method, nan_areas):
    tables = _tables(small)
    origin = pd.Timestamp("2020-03-01")
    bottom = tables[2].copy()
    bottom.loc[(bottom["origin"] == origin) & (bottom["horizon"] == 2) & (bottom["area"] == "D4"), "point"] = np.nan
    out = reconcile({**tables, 2: bottom}, small, method, n_samples=50)
    missing = out[out["point"].isna() | out["q0.5"].isna()]
    assert set(missing["area"]) == nan_areas
    assert (missing["origin"] == origin).all() and (missing["horizon"] == 2).all()


def test_reconcile_names_the_areas_a_level_lacks(small):
    tables = _tables(small)
    tables[1] = tables[1][tables[1]["area"] != "R2"]
    with pytest.raises(ForecastError, match=r"admin1 table's areas differ.*missing R2"):
        reconcile(tables, small)
