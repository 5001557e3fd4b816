"""Intervals calibrated per size of area (issue 20 §3): the terciles of each area's recent level at
the origin are calibrated on their own past errors (Mondrian conformal), a bin with too few falls
back to the pooled calibration and says so, and nothing after the origin sizes or calibrates it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast.backtest import (
    MIN_CALIBRATION,
    mase_scale,
    RollingOrigin,
    backtest,
    calibrate,
    conformal_shifts,
    quantile_column,
    recent_level,
    size_bins,
)
from forecast.datasets import make_panel
from forecast.models import ModelSpec
from forecast.pipeline import train

LEVELS = [0.1, 0.5, 0.9]
SPREAD = {"small": 0.2, "medium": 1.0, "large": 5.0}  # errors in units of scale, per bin


def _table(per_bin: dict[str, int], n_origins: int = 40, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """One model's forecasts at horizon 1: the point forecast is right on average, its errors
    spread by each area's size bin as SPREAD says."""
    rng = np.random.default_rng(seed)
    origins = pd.date_range("2015-01-01", periods=n_origins, freq="MS")
    rows = []
    for o in origins:
        for b, n in per_bin.items():
            for i in range(n):
                rows.append({"origin": o, "horizon": 1, "area": f"{b}{i}", "time": o + pd.DateOffset(months=1),
                             "point": 100.0, "scale": 1.0, "size_bin": b,
                             "actual": 100.0 + SPREAD[b] * rng.standard_normal()})
    table = pd.DataFrame(rows)
    return table, np.repeat(table[["point"]].to_numpy(), len(LEVELS), axis=1)


def _coverage(result: pd.DataFrame, skip: int = 10) -> pd.Series:
    late = result[result["origin"] >= sorted(result["origin"].unique())[skip]]
    inside = (late["actual"] >= late[quantile_column(0.1)]) & (late["actual"] <= late[quantile_column(0.9)])
    return inside.groupby(late["size_bin"]).mean()


def test_each_size_bin_is_covered_as_promised_where_one_pool_over_and_under_covers():
    table, raw = _table({"small": 30, "medium": 30, "large": 30})
    by_size = _coverage(calibrate(table, raw, LEVELS))
    pooled = _coverage(calibrate(table, raw, LEVELS, by_size=False))
    assert ((by_size > 0.74) & (by_size < 0.86)).all(), by_size
    assert pooled["small"] > 0.97 and pooled["large"] < 0.7, pooled  # what one pool does to the tails


def test_a_bin_with_too_few_past_errors_takes_the_pooled_calibration_and_says_so():
    table, raw = _table({"small": 30, "medium": 30, "large": 1})  # one large area: one more error a month
    result = calibrate(table, raw, LEVELS, min_calibration=MIN_CALIBRATION)
    k = result["origin"].rank(method="dense").astype(int) - 1  # the origin's index: k earlier errors per area
    large, others = result["size_bin"] == "large", result["size_bin"] != "large"
    assert result.loc[k == 0, "calibrated_by"].isna().all()  # nothing known yet: no interval at all
    assert result.loc[k == 0, quantile_column(0.1)].isna().all()
    assert set(result.loc[large & k.between(1, MIN_CALIBRATION - 1), "calibrated_by"]) == {"pooled"}
    assert set(result.loc[large & (k >= MIN_CALIBRATION), "calibrated_by"]) == {"size"}
    assert set(result.loc[others & (k >= 1), "calibrated_by"]) == {"size"}


def test_an_areas_size_is_its_recent_observed_mean_and_its_tercile_among_the_areas_then():
    history = np.array([[np.nan] * 12 + [1.0, np.nan, 3.0], [np.nan] * 15, [10.0] * 15, [500.0] * 15])
    level = recent_level(history)
    assert level[0] == 2.0 and np.isnan(level[1]) and level[2] == 10.0
    assert list(size_bins(level)) == ["small", "unknown", "medium", "large"]
    assert recent_level(np.array([[1.0] * 12 + [100.0]]), months=1)[0] == 100.0


def test_nothing_after_the_origin_sizes_or_calibrates_its_forecasts():
    cube = make_panel(9, 60, seed=4)
    changed = cube.copy(deep=True)
    later = changed["time"].values[48:]
    changed["arrivals"].loc[{"time": later}] = changed["arrivals"].sel(time=later) * 50 + 1000
    folds = RollingOrigin(n_origins=12, calibration_origins=12, min_train=12)
    columns = ["model", "origin", "horizon", "area", "recent_mean", "size_bin", "calibrated_by", "point", "mean",
               *[quantile_column(q) for q in LEVELS]]
    before, after = (backtest(c, [], folds=folds, progress=False).forecasts for c in (cube, changed))
    known = before["origin"] < pd.Timestamp(later[0])
    assert known.sum() > 0 and (~known).sum() > 0
    pd.testing.assert_frame_equal(before.loc[known, columns].reset_index(drop=True),
                                  after.loc[after["origin"] < pd.Timestamp(later[0]), columns].reset_index(drop=True))
    assert not before.loc[~known, "recent_mean"].equals(after.loc[~known, "recent_mean"])


@pytest.mark.parametrize("how", ["size", "pooled"])
def test_a_trained_model_shifts_each_area_by_its_size_bin_at_the_origin(how):
    cube = make_panel(30, 60, seed=5)
    spec = ModelSpec(name="naive_intervals", estimator="naive", horizons=[1, 2], interval_calibration=how)
    model = train(cube, spec, calibration=RollingOrigin(n_origins=12, calibration_origins=0), progress=False)
    assert bool(model.size_shifts) == (how == "size")
    forecasts = model.predict(cube)
    panel = spec.feature_matrix(cube).panel  # the target as the model reads it (missing months as the spec says)
    bins = pd.Series(size_bins(recent_level(panel.y)), index=panel.areas)
    scale = pd.Series(mase_scale(panel.y), index=panel.areas)
    for h in (1, 2):
        rows = forecasts[forecasts["horizon"] == h]
        for b, part in rows.groupby(rows["area"].map(bins)):
            shift = model.size_shifts.get((h, b), model.shifts[h])  # its bin's own, else the pooled
            expected = np.maximum(np.sort(part[["point"]].to_numpy() + shift[None, :]
                                          * part["area"].map(scale).to_numpy()[:, None], axis=1), 0.0)
            got = part[[quantile_column(q) for q in LEVELS]].to_numpy()
            assert np.allclose(got, expected), (h, b)
    if how == "size":
        assert {b for _, b in model.size_shifts} == {"small", "medium", "large"}
    del model.size_shifts  # a model pickled before size bins: the pooled shifts, as before
    assert np.allclose(model.shift_rows(np.array([1]), np.array(["large"])), model.shifts[1])


def _calibrate_by_masks(table, raw, levels, min_calibration, by_size):
    """The definition, written with a boolean mask over the whole table per horizon x origin x bin
    (what calibrate computed before it worked on index arrays): the shifts and `calibrated_by`."""
    actual, scale = table["actual"].to_numpy(float), table["scale"].to_numpy(float)
    resid = (actual[:, None] - raw) / scale[:, None]
    origin, target, horizon = table["origin"].to_numpy(), table["time"].to_numpy(), table["horizon"].to_numpy()
    bins = table["size_bin"].to_numpy() if by_size else np.full(len(table), "unknown", dtype=object)
    out, used = np.full(raw.shape, np.nan), np.full(len(table), np.nan, dtype=object)
    for h in np.unique(horizon):
        for o in np.unique(origin[horizon == h]):
            pool = (horizon == h) & (target <= o) & np.isfinite(actual)
            if pool.sum() < min_calibration:
                continue
            rows = (horizon == h) & (origin == o)
            for b in np.unique(bins[rows]):
                mine, own = rows & (bins == b), pool & (bins == b)
                sized = b in ("small", "medium", "large") and own.sum() >= min_calibration
                delta = conformal_shifts(resid[own if sized else pool], np.asarray(levels))
                out[mine], used[mine] = raw[mine] + delta * scale[mine, None], "size" if sized else "pooled"
    return np.maximum(np.sort(out, axis=1), 0.0), used


@settings(max_examples=25, deadline=None)
@given(n_areas=st.integers(1, 8), n_origins=st.integers(1, 10), horizons=st.integers(1, 3),
       missing=st.floats(0.0, 0.5), min_calibration=st.integers(1, 12), by_size=st.booleans(),
       seed=st.integers(0, 2**16))
def test_calibrate_equals_its_definition_when_origins_horizons_bins_and_gaps_vary(
        n_areas, n_origins, horizons, missing, min_calibration, by_size, seed):
    rng = np.random.default_rng(seed)
    origins = pd.date_range("2020-01-01", periods=n_origins, freq="MS")
    rows = [{"origin": o, "horizon": h, "area": f"a{i}", "time": o + pd.DateOffset(months=h),
             "point": float(rng.gamma(2.0, 50.0)), "scale": float(rng.uniform(0.5, 20.0)),
             "size_bin": str(rng.choice(["small", "medium", "large", "unknown"])),
             "actual": np.nan if rng.random() < missing else float(rng.gamma(2.0, 50.0))}
            for o in origins for h in range(1, horizons + 1) for i in range(n_areas)]
    table = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)  # any row order
    raw = table[["point"]].to_numpy() * np.array([0.6, 1.0, 1.5])
    result = calibrate(table, raw, LEVELS, min_calibration=min_calibration, by_size=by_size)
    expected, used = _calibrate_by_masks(table, raw, LEVELS, min_calibration, by_size)
    np.testing.assert_array_equal(result[[quantile_column(q) for q in LEVELS]].to_numpy(), expected)
    assert result["calibrated_by"].fillna("none").tolist() == pd.Series(used).fillna("none").tolist()
