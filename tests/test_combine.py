"""A combination of backtested models (issue 20 §1): weights learned from earlier origins only,
on the simplex, the members weighted as promised, and calibrated as a model is so it scores as one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecast.backtest import calibrate, combination_weights, combine, score
from forecast.errors import ForecastError

LEVELS = [0.1, 0.5, 0.9]
QUANTILES = ["q0.1", "q0.5", "q0.9"]
RAW = [f"raw_{q}" for q in QUANTILES]
METHODS = ["inverse_mase", "equal", "stacking"]


def _forecasts(errors: dict[str, float], n_origins: int = 20, n_areas: int = 40, seed: int = 0,
               bias: dict[str, float] | None = None) -> pd.DataFrame:
    """A backtest's forecasts table: per model, the point misses the outcome by ``errors[model]``
    times the area's scale (random sign; plus ``bias[model]`` times the scale), raw quantiles
    around it, calibrated per model as the backtest does."""
    rng = np.random.default_rng(seed)
    bias = bias or {}
    origins = pd.date_range("2018-01-01", periods=n_origins, freq="MS")
    keys = pd.MultiIndex.from_product([origins, [1, 2], [f"a{i:02d}" for i in range(n_areas)]],
                                      names=["origin", "horizon", "area"]).to_frame(index=False)
    keys["time"] = [o + pd.DateOffset(months=int(h)) for o, h in zip(keys["origin"], keys["horizon"])]
    area_scale = dict(zip(sorted(keys["area"].unique()), rng.uniform(1.0, 20.0, n_areas)))
    keys["scale"] = keys["area"].map(area_scale)
    keys["actual"] = rng.gamma(2.0, 50.0, len(keys)).round()
    keys["recent_mean"] = keys["scale"] * 10
    keys["size_bin"] = pd.qcut(keys["scale"], 3, labels=["small", "medium", "large"]).astype(object)
    keys["role"] = np.where(keys["origin"] < origins[n_origins // 2], "calibration", "scored")
    frames = []
    for model, error in errors.items():
        table = keys.copy()
        sign = rng.choice([-1.0, 1.0], len(table))
        table["point"] = table["actual"] + (error * sign + bias.get(model, 0.0)) * table["scale"]
        table.insert(0, "model", model)
        spread = rng.uniform(5.0, 30.0, len(table))
        raw = table["point"].to_numpy()[:, None] + np.array([-1.0, 0.0, 1.0]) * spread[:, None]
        frames.append(calibrate(table, raw, LEVELS))
    return pd.concat(frames, ignore_index=True)


def _rows(frame: pd.DataFrame, model: str) -> pd.DataFrame:
    return frame[frame["model"] == model].set_index(["origin", "horizon", "area"]).sort_index()


@pytest.mark.parametrize("method", METHODS)
def test_the_forecasts_at_an_origin_read_no_outcome_after_it(method):
    fc = _forecasts({"a": 2.0, "b": 2.0, "c": 2.0})  # as good as each other: any outcome moves the weights
    cut = fc["origin"].sort_values().unique()[12]
    changed = fc.copy()
    later = changed["time"] > cut
    c_point = fc.loc[fc["model"] == "c"].set_index(["origin", "horizon", "area"])["point"]
    keys = pd.MultiIndex.from_frame(changed.loc[later, ["origin", "horizon", "area"]])
    changed.loc[later, "actual"] = c_point.reindex(keys).to_numpy()  # another future: c was right all along

    before = combine(fc, ["a", "b", "c"], method=method)
    after = combine(changed, ["a", "b", "c"], method=method)
    upto = before["origin"] <= cut
    columns = ["point", *QUANTILES, *RAW, "mean"]
    pd.testing.assert_frame_equal(before.loc[upto, columns], after.loc[upto, columns])
    w_before = combination_weights(fc, ["a", "b", "c"], method=method)
    w_after = combination_weights(changed, ["a", "b", "c"], method=method)
    known = w_before["origin"] <= cut
    pd.testing.assert_frame_equal(w_before[known], w_after[known])
    # and the changed outcomes do reach the later origins: the check above could have failed
    assert not np.allclose(before.loc[~upto, "mean"], after.loc[~upto, "mean"], equal_nan=True)
    if method != "equal":
        assert not np.allclose(w_before.loc[~known, "weight"], w_after.loc[~known, "weight"])


@pytest.mark.parametrize("method", METHODS)
def test_weights_are_nonnegative_and_sum_to_one_at_every_origin_and_horizon(method):
    fc = _forecasts({"a": 1.0, "b": 2.0, "c": 4.0}, bias={"b": -3.0})
    weights = combination_weights(fc, ["a", "b", "c"], method=method)
    assert len(weights) == 3 * fc.groupby(["origin", "horizon"]).ngroups
    assert (weights["weight"] >= 0).all()
    sums = weights.groupby(["origin", "horizon"])["weight"].sum()
    np.testing.assert_allclose(sums, 1.0)


@pytest.mark.parametrize("method", ["inverse_mase", "stacking"])
def test_a_member_perfect_on_earlier_origins_takes_the_largest_weight(method):
    fc = _forecasts({"noisy": 3.0, "perfect": 0.0, "biased": 1.0}, bias={"biased": 5.0})
    weights = combination_weights(fc, ["noisy", "perfect", "biased"], method=method, min_origins=3)
    learned = weights[weights["origins"] >= 3]
    assert learned["origin"].nunique() >= 10
    best = learned.loc[learned.groupby(["origin", "horizon"])["weight"].idxmax(), "model"]
    assert (best == "perfect").all()
    combined = _rows(combine(fc, ["noisy", "perfect", "biased"], method=method, min_origins=3), "combination")
    perfect = _rows(fc, "perfect")
    pairs = set(zip(learned["origin"], learned["horizon"]))
    at = np.array([(o, h) in pairs for o, h, _ in combined.index])
    np.testing.assert_allclose(combined.loc[at, "point"], perfect.loc[at, "point"], atol=1e-6)
    # before min_origins earlier origins are known, nothing is learned: equal weights
    first = weights[weights["origin"] == weights["origin"].min()]
    np.testing.assert_allclose(first["weight"], 1 / 3)
    assert (first["origins"] == 0).all()


def test_inverse_mase_weighs_each_member_by_one_over_its_earlier_mase():
    fc = _forecasts({"a": 1.0, "b": 2.0, "c": 4.0})  # MASE exactly 1, 2, 4 on any earlier forecasts
    weights = combination_weights(fc, ["a", "b", "c"], method="inverse_mase")
    learned = weights[weights["origins"] > 0].set_index(["origin", "horizon", "model"])["weight"].unstack()
    np.testing.assert_allclose(learned[["a", "b", "c"]].to_numpy(), np.tile([4 / 7, 2 / 7, 1 / 7], (len(learned), 1)))


def test_stacking_finds_the_weights_that_cancel_opposite_biases():
    # each of the first two alone misses by 4 scales, half of each by nothing; the third only adds noise
    fc = _forecasts({"high": 0.0, "low": 0.0, "far": 3.0}, bias={"high": 4.0, "low": -4.0, "far": 10.0})
    weights = combination_weights(fc, ["high", "low", "far"], method="stacking")
    learned = weights[weights["origins"] > 0].set_index(["origin", "horizon", "model"])["weight"].unstack()
    np.testing.assert_allclose(learned[["high", "low", "far"]].to_numpy(), np.tile([0.5, 0.5, 0.0], (len(learned), 1)),
                               atol=1e-6)
    inverse = combination_weights(fc, ["high", "low", "far"], method="inverse_mase")
    assert (inverse.loc[inverse["model"] == "far", "weight"] > 0.1).all()  # what inverse MASE cannot do


def test_equal_weights_reproduce_the_members_average():
    fc = _forecasts({"a": 1.0, "b": 3.0}, bias={"b": 2.0})
    combined = _rows(combine(fc, ["a", "b"], method="equal"), "combination")
    a, b = _rows(fc, "a"), _rows(fc, "b")
    np.testing.assert_allclose(combined["point"], (a["point"] + b["point"]) / 2)
    np.testing.assert_allclose(combined[RAW], (a[RAW] + b[RAW]) / 2)
    pd.testing.assert_series_equal(combined["actual"], a["actual"])


def test_a_combination_of_one_model_is_that_model_and_scores_as_one():
    fc = _forecasts({"a": 1.0, "b": 3.0})
    combined = combine(fc, ["a"], name="just_a")
    mine, theirs = _rows(combined, "just_a"), _rows(fc, "a")
    assert list(combined.columns) == list(fc.columns)
    for column in ["point", *RAW, *QUANTILES, "mean", "actual", "scale", "size_bin", "role", "calibrated_by"]:
        pd.testing.assert_series_equal(mine[column], theirs[column])
    scores = score(pd.concat([fc[fc["model"] == "a"], combined]), coverages=[0.8])
    metrics = ["mase", "rmsle", "crps", "coverage80", "level_ratio", "mean_level_ratio"]
    by_model = scores.set_index(["model", "horizon"])[metrics]
    pd.testing.assert_frame_equal(by_model.loc["just_a"], by_model.loc["a"])


def test_a_missing_model_is_named_with_the_models_present():
    fc = _forecasts({"a": 1.0, "b": 3.0})
    with pytest.raises(ForecastError, match=r"\['sarimax'\] not in the forecasts; models present: \['a', 'b'\]"):
        combine(fc, ["a", "sarimax"])


def test_a_member_lacking_some_origin_and_horizon_is_named():
    fc = _forecasts({"a": 1.0, "b": 3.0})
    origin = fc["origin"].sort_values().unique()[5]
    gap = fc[~((fc["model"] == "b") & (fc["origin"] == origin) & (fc["horizon"] == 2))]
    with pytest.raises(ForecastError, match=rf"model 'b' lacks 40 .*origin {origin:%Y-%m} h2"):
        combine(gap, ["a", "b"])
    with pytest.raises(ForecastError, match="model 'b' lacks"):
        combination_weights(gap, ["b", "a"])


def test_unusable_arguments_are_refused():
    fc = _forecasts({"a": 1.0, "b": 3.0})
    with pytest.raises(ForecastError, match="unknown combination method 'median'"):
        combine(fc, ["a", "b"], method="median")
    with pytest.raises(ForecastError, match="already a model"):
        combine(fc, ["a", "b"], name="a")
    with pytest.raises(ForecastError, match="at least one model"):
        combine(fc, [])
    with pytest.raises(ForecastError, match="min_origins"):
        combine(fc, ["a", "b"], min_origins=0)
