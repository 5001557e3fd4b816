"""One spec backtested at admin2, admin1 and national level and reconciled (issue 20 §2): the
forecasts (points and means) add up at every origin and horizon, every level is scored (base and
reconciled), each level's quantiles are calibrated on that level's earlier errors only, and a
district without a region is named before anything runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.backtest import MIN_CALIBRATION, RollingOrigin, backtest_levels, coherence_error, conformal_shifts
from forecast.backtest._levels import calibrate_by_level
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
    assert coherence_error(table, levels.hierarchy, "mean") < 1e-6
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


def test_every_level_reports_the_level_ratio_of_its_means(levels):
    scores = levels.scores().set_index(["level", "forecast", "horizon"])
    done = levels.forecasts[levels.forecasts["role"] == "scored"]
    for (level, horizon), part in done.groupby(["level", "horizon"]):
        expected = part["mean"].sum() / part["actual"].sum()
        assert scores.loc[(level, "mint_shrink", horizon), "mean_level_ratio"] == pytest.approx(expected, rel=1e-12)
    # the districts' own model has means; the country (one series) and the two regions have too
    # few earlier errors for one, and their base means are the districts' summed (bottom-up)
    base = scores.xs("base", level="forecast")["mean_level_ratio"]
    assert base.loc[2].notna().all() and base.loc[[0, 1]].isna().all()
    assert done["mean"].notna().all()
    districts = done[done["level"] == 2].groupby(["origin", "horizon"])["base_mean"].sum().sort_index()
    national = done[done["level"] == 0].set_index(["origin", "horizon"])["base_mean"].sort_index()
    np.testing.assert_allclose(national, districts, rtol=1e-12)


def test_coverage_is_read_per_size_bin_at_every_level(levels):
    """Each reconciled forecast carries its series' size bin from its level's own backtest (the
    tail is where money goes: a level's intervals must hold for its largest areas too)."""
    table = levels.forecasts
    for level in (1, 2):
        own = levels.base[level].forecasts
        own = own[own["model"] == "tiny"].set_index(["area", "origin", "horizon"])["size_bin"]
        mine = table[table["level"] == level].set_index(["area", "origin", "horizon"])["size_bin"]
        pd.testing.assert_series_equal(mine.sort_index(), own.reindex(mine.index).sort_index(), check_names=False)
    by_size = levels.scores(by=("horizon", "size_bin"))
    districts = by_size[(by_size["level"] == 2) & (by_size["forecast"] == "mint_shrink")]
    assert set(districts["size_bin"]) == {"small", "medium", "large"}
    done = table[(table["level"] == 2) & (table["role"] == "scored") & (table["size_bin"] == "large")]
    inside = ((done["actual"] >= done["q0.1"]) & (done["actual"] <= done["q0.9"])).groupby(done["horizon"]).mean()
    large = districts[districts["size_bin"] == "large"].set_index("horizon")["coverage80"]
    np.testing.assert_allclose(large.loc[inside.index], inside, rtol=1e-12)


def test_a_district_without_a_region_is_named_before_anything_runs():
    cube = make_panel(6, 40, seed=3)
    orphan = str(cube["area"].values[2])
    cube = cube.assign_coords(admin1_pcode=cube["admin1_pcode"].where(cube["area"] != orphan, ""))
    with pytest.raises(ForecastError, match=orphan):
        backtest_levels(cube, SPEC, folds=FOLDS, progress=False)


def test_bottom_up_keeps_each_districts_interval_and_a_district_with_no_arrivals_keeps_its_zero(levels):
    reconciled = backtest_levels(make_panel(12, 60, seed=2), SPEC, folds=FOLDS, method="bottom_up", progress=False,
                                 bottom=levels.base[2], calibrate_levels=False).forecasts
    districts = reconciled[(reconciled["level"] == 2) & (reconciled["role"] == "scored")]
    base = levels.base[2].scored.set_index(["area", "origin", "horizon"])
    mine = districts.set_index(["area", "origin", "horizon"]).loc[base.index]
    for q in ("q0.1", "q0.5", "q0.9"):  # the same distribution, read back from 500 draws
        spread = (base["q0.9"] - base["q0.1"]).to_numpy() + 1.0
        assert np.all(np.abs(mine[q].to_numpy() - base[q].to_numpy()) <= 0.05 * spread), q
    zero = base["q0.1"].to_numpy() == 0
    assert zero.any() and (mine["q0.1"].to_numpy()[zero] == 0).all()


# --------------------------------------------------------------------------- calibration by level


def _narrow(n_origins=10, regions=8, seed=0):
    """A reconciled-like table: one national series and ``regions`` regions, one horizon, whose
    80% intervals are a third as wide as their errors need."""
    rng = np.random.default_rng(seed)
    origins = pd.date_range("2020-01-01", periods=n_origins, freq="MS")
    rows = []
    for origin in origins:
        for level, areas in ((0, ["XY"]), (1, [f"R{i}" for i in range(regions)])):
            point = rng.uniform(500, 1500, len(areas))
            scale = 100.0 * (1 + level)
            rows.append(pd.DataFrame({
                "level": level, "area": areas, "origin": origin, "horizon": 1,
                "time": origin + pd.DateOffset(months=1), "actual": point + rng.normal(0, 3 * scale, len(areas)),
                "point": point, "q0.1": point - 1.28 * scale, "q0.5": point, "q0.9": point + 1.28 * scale,
                "scale": scale, "role": "scored"}))
    return pd.concat(rows, ignore_index=True)


def test_calibrate_by_level_shifts_each_level_by_its_own_earlier_errors():
    table = _narrow()
    out = calibrate_by_level(table, [0.1, 0.5, 0.9])
    region = out[out["level"] == 1]
    # a region's origin o is calibrated by the regions' errors of months up to o: 8 per origin,
    # so from the fifth origin on (32 errors); before, as the paths gave them
    first = region.loc[region["calibrated_by"] == "level", "origin"].min()
    assert first == table["origin"].sort_values().unique()[4]
    assert (region.loc[region["origin"] < first, "calibrated_by"] == "none").all()
    o = table["origin"].max()
    known = table[(table["level"] == 1) & (table["time"] <= o)]
    assert len(known) >= MIN_CALIBRATION
    errors = (known["actual"].to_numpy()[:, None] - known[["q0.1", "q0.5", "q0.9"]].to_numpy()) / 200.0
    shift = conformal_shifts(errors, np.array([0.1, 0.5, 0.9]))
    now = region[region["origin"] == o]
    raw = table[(table["level"] == 1) & (table["origin"] == o)]
    np.testing.assert_allclose(now[["q0.1", "q0.5", "q0.9"]].to_numpy(),
                               np.maximum(raw[["q0.1", "q0.5", "q0.9"]].to_numpy() + 200.0 * shift, 0.0))
    np.testing.assert_array_equal(now[["raw_q0.1", "raw_q0.9"]].to_numpy(), raw[["q0.1", "q0.9"]].to_numpy())
    # the intervals widen, the points do not move
    assert (now["q0.9"] - now["q0.1"] > 2 * (raw["q0.9"] - raw["q0.1"]).to_numpy()).all()
    pd.testing.assert_series_equal(out["point"], table["point"])
    # the country, one series with 9 earlier errors at most, keeps the paths' quantiles
    national = out[out["level"] == 0]
    assert (national["calibrated_by"] == "none").all()
    np.testing.assert_array_equal(national["q0.9"], table.loc[table["level"] == 0, "q0.9"])


def test_calibrate_by_level_brings_a_too_narrow_interval_toward_its_coverage():
    table = _narrow(n_origins=40, regions=10, seed=1)
    out = calibrate_by_level(table, [0.1, 0.5, 0.9])
    late = out[(out["level"] == 1) & (out["calibrated_by"] == "level")]
    inside = lambda lo, hi: ((late[lo] <= late["actual"]) & (late["actual"] <= late[hi])).mean()  # noqa: E731
    assert inside("raw_q0.1", "raw_q0.9") < 0.5
    assert 0.7 <= inside("q0.1", "q0.9") <= 0.9


def test_calibrate_by_level_uses_no_outcome_after_the_origin():
    table = _narrow(n_origins=12)
    origin = table["origin"].unique()[8]
    rng = np.random.default_rng(5)

    def at_origin(frame):
        rows = frame["origin"] == origin
        return frame.loc[rows, ["q0.1", "q0.5", "q0.9", "calibrated_by"]].reset_index(drop=True)

    before = calibrate_by_level(table, [0.1, 0.5, 0.9])
    assert (at_origin(before)["calibrated_by"] == "level").any()
    later = table["time"] > origin
    changed = table.assign(actual=np.where(later, rng.uniform(0, 1e5, len(table)), table["actual"]))
    pd.testing.assert_frame_equal(at_origin(calibrate_by_level(changed, [0.1, 0.5, 0.9])), at_origin(before))
    # the check can fail: outcomes known at the origin do move its quantiles
    earlier = table.assign(actual=np.where(~later, rng.uniform(0, 1e5, len(table)), table["actual"]))
    assert not at_origin(calibrate_by_level(earlier, [0.1, 0.5, 0.9]))["q0.9"].equals(at_origin(before)["q0.9"])


def test_calibrate_by_level_names_the_columns_it_lacks():
    with pytest.raises(ForecastError, match=r"lack column\(s\) \['q0.9'\]"):
        calibrate_by_level(_narrow().drop(columns="q0.9"), [0.1, 0.5, 0.9])


def test_backtest_levels_calibrates_by_level_unless_told_not_to(levels):
    table = levels.forecasts
    assert set(table["calibrated_by"]) == {"level", "none"}
    assert (table.loc[table["level"] == 0, "calibrated_by"] == "none").all()  # one series: too few errors
    calibrated = table[table["calibrated_by"] == "level"]
    assert not np.allclose(calibrated["q0.9"], calibrated["raw_q0.9"])
    assert coherence_error(table, levels.hierarchy) < 1e-6  # points and means stay coherent
