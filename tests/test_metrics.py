"""Backtest metrics: what users read off a score table, checked by hand and against references."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import norm

from forecast.backtest._metrics import (
    add_skill,
    crps_from_quantiles,
    interval_bounds,
    mase_scale,
    metrics_by_horizon,
    pinball_loss,
    quantile_column,
    quantile_levels,
    score,
)
from forecast.errors import ForecastError

LEVELS = (0.1, 0.5, 0.9)
QCOLS = [quantile_column(q) for q in LEVELS]
QUANTILE_METRICS = ["pinball", "crps", "scaled_crps", "coverage80", "width80"]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def frame(rows: list[tuple], quantiles: bool = True) -> pd.DataFrame:
    """Rows of (model, horizon, area, actual, point, scale[, q0.1, q0.5, q0.9])."""
    columns = ["model", "horizon", "area", "actual", "point", "scale"] + (QCOLS if quantiles else [])
    out = pd.DataFrame(rows, columns=columns)
    out["origin"] = pd.Timestamp("2020-01-01")
    out["time"] = out["origin"] + pd.to_timedelta(31 * out["horizon"], unit="D")
    return out


# Hand example: model "a", horizon 1; the last row's target month was not observed.
HAND = frame([
    ("a", 1, "x", 10.0, 12.0, 2.0, 8.0, 11.0, 14.0),
    ("a", 1, "y", 0.0, 3.0, 1.0, 0.0, 2.0, 4.0),
    ("a", 1, "z", 20.0, 14.0, 4.0, 10.0, 15.0, 18.0),
    ("a", 1, "w", np.nan, 100.0, 1.0, 50.0, 100.0, 150.0),
])


# --------------------------------------------------------------------------- quantile columns


def test_quantile_column_formats_level_compactly_when_given_floats():
    assert [quantile_column(q) for q in (0.1, 0.5, 0.9, 0.025, 0.975)] == [
        "q0.1", "q0.5", "q0.9", "q0.025", "q0.975"]


def test_quantile_column_raises_when_level_outside_unit_interval():
    with pytest.raises(ForecastError, match="strictly between 0 and 1, got 1.5"):
        quantile_column(1.5)


def test_quantile_levels_reads_sorted_levels_when_other_columns_present():
    table = pd.DataFrame(columns=["model", "q0.9", "quality", "q1", "q0.05", "point", "q0.5"])
    assert quantile_levels(table) == [0.05, 0.5, 0.9]
    assert quantile_levels(HAND.drop(columns=QCOLS)) == []


def test_quantile_levels_raises_when_a_level_is_spelled_differently():
    with pytest.raises(ForecastError, match=r"column 'q0.50' .* rename it to 'q0.5'"):
        quantile_levels(["q0.1", "q0.50"])


def test_interval_bounds_returns_the_present_levels_when_within_tolerance():
    assert interval_bounds([0.1, 0.5, 0.9], 0.8) == (0.1, 0.9)
    assert interval_bounds([0.05, 0.25, 0.75, 0.95], 0.5) == (0.25, 0.75)
    assert interval_bounds([0.1 + 1e-12, 0.9], 0.8) == (0.1 + 1e-12, 0.9)


def test_interval_bounds_raises_naming_available_levels_when_missing():
    message = ("a 0.9 central interval needs quantile levels 0.05 and 0.95, but the forecasts have "
               "levels [0.1, 0.5, 0.9]; add columns 'q0.05' and 'q0.95', or ask for a coverage "
               "these levels support: [0.8]")
    with pytest.raises(ForecastError) as info:
        interval_bounds([0.1, 0.5, 0.9], 0.9)
    assert str(info.value) == message


# --------------------------------------------------------------------------- mase_scale


def reference_mase_scale(history: np.ndarray, season: int) -> list[float]:
    out = []
    for row in history.tolist():
        seen = [(t, y) for t, y in enumerate(row) if math.isfinite(y)]
        seasonal = [abs(row[t] - row[t - season]) for t in range(season, len(row))
                    if math.isfinite(row[t]) and math.isfinite(row[t - season])]
        lag1 = [abs(b[1] - a[1]) for a, b in zip(seen, seen[1:])]
        level = [abs(y) for _, y in seen]
        scale = 1.0
        for values, minimum in ((seasonal, 3), (lag1, 1), (level, 1)):
            if len(values) >= minimum:
                mean = sum(values) / len(values)
                if math.isfinite(mean) and mean > 0:
                    scale = mean
                    break
        out.append(max(scale, 1.0))
    return out


def test_mase_scale_is_mean_seasonal_difference_when_enough_pairs():
    history = np.array([[0.0, 10.0, 4.0, 14.0, 10.0, 20.0]])
    np.testing.assert_allclose(mase_scale(history, season=2), [5.0])  # |4|,|4|,|6|,|6|


def test_mase_scale_uses_successive_observed_values_when_seasonal_pairs_too_few():
    history = np.array([[5.0, np.nan, 8.0, 2.0], [np.nan, 7.0, np.nan, np.nan]])
    # area 0: 8-5 across the gap, 2-8: mean 4.5; area 1: one value, falls back to its level
    np.testing.assert_allclose(mase_scale(history, season=12), [4.5, 7.0])


def test_mase_scale_uses_lag_one_when_only_two_seasonal_pairs_observed():
    history = np.array([[0.0, 10.0, 4.0, 14.0]])  # seasonal pairs |4|, |4|: too few
    np.testing.assert_allclose(mase_scale(history, season=2), [(10 + 6 + 10) / 3])


def test_mase_scale_falls_back_to_level_when_series_is_constant():
    history = np.array([[3.0, 3.0, 3.0, 3.0, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(mase_scale(history, season=1), [3.0, 1.0])


def test_mase_scale_is_floored_at_one_person_when_differences_are_tiny_or_nothing_observed():
    history = np.array([[0.0, 0.1, 0.2, 0.3, 0.4], [np.nan] * 5, [np.inf, np.nan, -np.inf, 1e-3, 0.0]])
    np.testing.assert_array_equal(mase_scale(history, season=1), [1.0, 1.0, 1.0])


def test_mase_scale_handles_no_time_steps_when_history_is_empty():
    np.testing.assert_array_equal(mase_scale(np.empty((2, 0))), [1.0, 1.0])
    assert mase_scale(np.empty((0, 5))).shape == (0,)


def test_mase_scale_raises_with_a_fix_when_history_is_one_dimensional():
    with pytest.raises(ForecastError, match=r"shape \(n_areas, n_times\).*history\[None, :\]"):
        mase_scale(np.arange(24.0))
    with pytest.raises(ForecastError, match="season must be a positive integer"):
        mase_scale(np.ones((1, 24)), season=0)


@FAST
@given(
    history=arrays(np.float64, st.tuples(st.integers(0, 5), st.integers(0, 30)),
                   elements=st.one_of(st.floats(-1e6, 1e6), st.just(np.nan))),
    season=st.integers(1, 13),
)
def test_mase_scale_matches_plain_python_reference_when_history_has_gaps(history, season):
    fast = mase_scale(history, season=season)
    np.testing.assert_allclose(fast, reference_mase_scale(history, season), rtol=1e-9)
    assert np.all(np.isfinite(fast)) and np.all(fast >= 1.0)


# --------------------------------------------------------------------------- pinball and CRPS


def test_pinball_loss_weights_under_and_over_prediction_by_level_when_elementwise():
    actual = np.array([10.0, 10.0, 10.0])
    np.testing.assert_allclose(pinball_loss(actual, np.array([8.0, 12.0, 10.0]), 0.9), [1.8, 0.2, 0.0])
    np.testing.assert_allclose(pinball_loss(10.0, 8.0, np.array([0.1, 0.5])), [0.2, 1.0])
    assert np.isnan(pinball_loss(np.nan, 1.0, 0.5))


def test_pinball_loss_raises_when_level_not_in_unit_interval():
    with pytest.raises(ForecastError, match="strictly between 0 and 1"):
        pinball_loss(1.0, 1.0, 1.0)


def test_crps_from_quantiles_is_scaled_sum_of_pinball_losses_when_forecast_is_a_point_mass():
    levels = [0.1, 0.25, 0.5, 0.75, 0.9]
    actual = np.array([-3.0, 0.0, 2.0, 7.5])
    c = 2.0
    quantiles = np.full((len(actual), len(levels)), c)
    by_hand = [2 / len(levels) * sum(max(t * (y - c), (t - 1) * (y - c)) for t in levels) for y in actual]
    got = crps_from_quantiles(actual, quantiles, levels)
    np.testing.assert_allclose(got, by_hand)
    # levels symmetric about 0.5: the exact CRPS of a point mass, |y - c|
    np.testing.assert_allclose(got, np.abs(actual - c))


def test_crps_from_quantiles_approaches_closed_form_normal_crps_when_levels_are_many():
    mu, sigma, k = 1.0, 2.0, 99
    levels = (np.arange(1, k + 1) - 0.5) / k
    actual = np.array([-5.0, -1.0, 0.0, 1.0, 2.5, 9.0])
    quantiles = np.tile(norm.ppf(levels, loc=mu, scale=sigma), (len(actual), 1))
    z = (actual - mu) / sigma
    exact = sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))
    np.testing.assert_allclose(crps_from_quantiles(actual, quantiles, levels), exact, rtol=0.01)


def test_crps_from_quantiles_raises_when_shapes_disagree():
    with pytest.raises(ForecastError, match=r"actual \(n,\), quantiles \(n, k\)"):
        crps_from_quantiles(np.zeros(3), np.zeros((3, 2)), [0.1, 0.5, 0.9])


# --------------------------------------------------------------------------- score


def test_score_gives_zero_errors_full_coverage_and_unit_level_when_forecasts_are_perfect():
    actual = [5.0, 0.0, 120.0, 33.0]
    rows = [("m", h, a, y, y, 2.0, y, y, y) for h, a, y in zip([1, 1, 2, 2], "xyxy", actual)]
    scores = score(frame(rows))
    assert scores["n"].tolist() == [2, 2]
    for metric in ["mae", "rmse", "rmsle", "mase", "pinball", "crps", "scaled_crps", "width80"]:
        assert scores[metric].tolist() == [0.0, 0.0], metric
    assert scores["coverage80"].tolist() == [1.0, 1.0]
    assert scores["level_ratio"].tolist() == [1.0, 1.0]


def test_score_matches_hand_computation_when_given_a_small_example():
    row = score(HAND).iloc[0]
    assert list(score(HAND).columns) == ["model", "horizon", "n", "mae", "rmse", "rmsle", "mase",
                                         "pinball", "crps", "scaled_crps", "coverage80", "width80",
                                         "level_ratio"]
    assert (row["model"], row["horizon"], row["n"]) == ("a", 1, 3)
    # errors 2, 3, -6; scales 2, 1, 4
    assert row["mae"] == pytest.approx(11 / 3)
    assert row["rmse"] == pytest.approx(math.sqrt(49 / 3))
    log_errors = [math.log(13 / 11), math.log(4), math.log(15 / 21)]
    assert row["rmsle"] == pytest.approx(math.sqrt(sum(e * e for e in log_errors) / 3))
    assert row["mase"] == pytest.approx((1 + 3 + 1.5) / 3)
    # pinball per row over (0.1, 0.5, 0.9): 0.2+0.5+0.4, 0+1+0.4, 1+2.5+1.8
    assert row["pinball"] == pytest.approx((1.1 + 1.4 + 5.3) / 9)
    assert row["crps"] == pytest.approx(2 / 3 * (1.1 + 1.4 + 5.3) / 3)
    assert row["scaled_crps"] == pytest.approx(2 / 3 * (1.1 / 2 + 1.4 / 1 + 5.3 / 4) / 3)
    # [8, 14] holds 10, [0, 4] holds 0 (inclusive), [10, 18] misses 20
    assert row["coverage80"] == pytest.approx(2 / 3)
    assert row["width80"] == pytest.approx((6 + 4 + 8) / 3)
    assert row["level_ratio"] == pytest.approx(29 / 30)


def test_score_ignores_unscored_rows_in_n_and_every_metric_when_actual_is_missing():
    observed = HAND[HAND["actual"].notna()]
    noisy = pd.concat([HAND, HAND.assign(actual=np.nan, point=1e9, **{"q0.5": 1e9})], ignore_index=True)
    expected = score(observed)
    pd.testing.assert_frame_equal(score(HAND), expected)
    pd.testing.assert_frame_equal(score(noisy), expected)
    assert expected["n"].item() == 3


def test_score_keeps_group_with_n_zero_and_nan_metrics_without_warnings_when_nothing_scored():
    rows = [("a", 1, "x", 4.0, 5.0, 1.0, 3.0, 5.0, 7.0), ("a", 6, "x", np.nan, 5.0, 1.0, 3.0, 5.0, 7.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = score(frame(rows))
    assert scores[["horizon", "n"]].values.tolist() == [[1, 1], [6, 0]]
    empty = scores.iloc[1].drop(["model", "horizon", "n"])
    assert empty.isna().all()
    assert scores.iloc[0].drop(["model"]).notna().all()


def test_score_reports_coverage_below_nominal_when_intervals_are_too_narrow():
    rng = np.random.default_rng(0)
    actual = rng.normal(100.0, 10.0, 2000)
    z = norm.ppf(0.9)
    rows = [("honest", 1, f"a{i}", y, 100.0, 1.0, 100 - 10 * z, 100.0, 100 + 10 * z)
            for i, y in enumerate(actual)]
    rows += [("narrow", 1, f"a{i}", y, 100.0, 1.0, 100 - 3 * z, 100.0, 100 + 3 * z)
             for i, y in enumerate(actual)]
    coverage = score(frame(rows)).set_index("model")["coverage80"]
    assert coverage["honest"] == pytest.approx(0.8, abs=0.03)
    assert coverage["narrow"] < 0.4


def test_score_leaves_quantile_metrics_nan_when_no_quantile_columns():
    scores = score(HAND.drop(columns=QCOLS), coverages=(0.5, 0.8))
    assert scores[["pinball", "crps", "scaled_crps", "coverage50", "width50", "coverage80", "width80"]
                  ].isna().all().all()
    assert scores["mae"].item() == pytest.approx(11 / 3)


def test_score_names_coverage_columns_by_percent_when_several_coverages():
    table = HAND.assign(**{"q0.25": HAND["q0.5"] - 1, "q0.75": HAND["q0.5"] + 1})
    scores = score(table, coverages=(0.5, 0.8))
    assert [c for c in scores.columns if c.startswith(("coverage", "width"))] == [
        "coverage50", "width50", "coverage80", "width80"]
    assert scores["width50"].item() == pytest.approx(2.0)


def test_score_raises_listing_missing_columns_when_required_columns_absent():
    with pytest.raises(ForecastError, match=re.escape("lacks required column(s) ['region', 'scale']")):
        score(HAND.drop(columns=["scale"]), by=("model", "region"))


def test_score_raises_naming_levels_when_coverage_has_no_matching_quantiles():
    with pytest.raises(ForecastError, match=r"0.95 central interval .* levels \[0.1, 0.5, 0.9\]"):
        score(HAND, coverages=(0.95,))


def test_score_raises_pointing_to_mase_scale_when_a_scored_scale_is_not_positive():
    bad = HAND.assign(scale=[2.0, 0.0, 4.0, np.nan])  # the NaN is on an unscored row: fine
    with pytest.raises(ForecastError, match=r"1 scored row\(s\).*row 1 \(area 'y'\).*mase_scale"):
        score(bad)


def test_score_propagates_nan_when_a_scored_row_has_no_forecast():
    scores = score(HAND.assign(point=[12.0, np.nan, 14.0, 1.0]))
    assert scores["n"].item() == 3
    assert np.isnan(scores["mae"].item()) and np.isnan(scores["level_ratio"].item())
    assert scores["crps"].item() == pytest.approx(2 / 3 * (1.1 + 1.4 + 5.3) / 3)


def test_score_rmsle_treats_negative_forecasts_as_zero_when_point_below_zero():
    scores = score(frame([("a", 1, "x", 3.0, -5.0, 1.0)], quantiles=False))
    assert scores["rmsle"].item() == pytest.approx(math.log(4))
    assert scores["mae"].item() == 8.0


def test_score_level_ratio_is_nan_when_actuals_sum_to_zero():
    rows = [("a", 1, "x", 0.0, 2.0, 1.0, 0.0, 2.0, 3.0)]
    scores = score(frame(rows))
    assert np.isnan(scores["level_ratio"].item())
    assert scores["mae"].item() == 2.0


def test_score_returns_empty_table_with_all_columns_when_forecasts_empty():
    scores = score(HAND.iloc[:0])
    assert scores.empty and {"n", "mae", "crps", "coverage80", "level_ratio"} <= set(scores.columns)


# --------------------------------------------------------------------------- score vs reference


def reference_score(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Plain loops over the groups; the coverage interval is (q0.1, q0.9)."""
    records = []
    for key in sorted(set(map(tuple, table[by].itertuples(index=False)))):
        rows = [r for r in table.to_dict("records")
                if tuple(r[c] for c in by) == key and not math.isnan(r["actual"])]
        n = len(rows)
        record = dict(zip(by, key), n=n)

        def mean(values):
            return sum(values) / n if n else np.nan

        record["mae"] = mean([abs(r["point"] - r["actual"]) for r in rows])
        record["mase"] = mean([abs(r["point"] - r["actual"]) / r["scale"] for r in rows])
        pinballs = [sum(max(t * (r["actual"] - r[c]), (t - 1) * (r["actual"] - r[c]))
                        for t, c in zip(LEVELS, QCOLS)) / len(LEVELS) for r in rows]
        record["pinball"] = mean(pinballs)
        record["crps"] = mean([2 * p for p in pinballs])
        record["scaled_crps"] = mean([2 * p / r["scale"] for p, r in zip(pinballs, rows)])
        record["coverage80"] = mean([float(r["q0.1"] <= r["actual"] <= r["q0.9"]) for r in rows])
        total = sum(r["actual"] for r in rows)
        record["level_ratio"] = sum(r["point"] for r in rows) / total if total != 0 else np.nan
        records.append(record)
    return pd.DataFrame(records)


@st.composite
def forecast_tables(draw) -> pd.DataFrame:
    n = draw(st.integers(1, 25))

    def column(elements, dtype=np.float64):
        return draw(arrays(dtype, n, elements=elements))

    value = st.floats(0, 1e4)
    point = column(value)
    rows = zip(np.array(["a", "b"])[column(st.integers(0, 1), np.int64)], column(st.integers(1, 3), np.int64),
               np.array(["x", "y", "z"])[column(st.integers(0, 2), np.int64)],
               column(st.one_of(value, st.just(np.nan))), point, column(st.floats(1, 1e3)),
               point - column(st.floats(0, 500)), point, point + column(st.floats(0, 500)))
    return frame([tuple(r) for r in rows])


@FAST
@given(table=forecast_tables(), by=st.sampled_from([["model"], ["model", "horizon"], ["area", "model"]]))
def test_score_matches_plain_loop_reference_when_grouped_any_way(table, by):
    fast = score(table, by=by)
    expected = reference_score(table, by)
    assert fast[by].values.tolist() == expected[by].values.tolist()
    assert fast["n"].tolist() == expected["n"].tolist()
    for metric in ["mae", "mase", "pinball", "crps", "scaled_crps", "coverage80", "level_ratio"]:
        np.testing.assert_allclose(fast[metric], expected[metric], rtol=1e-9, atol=1e-9, err_msg=metric)


@FAST
@given(table=forecast_tables())
def test_score_by_area_weighted_by_n_averages_back_to_pooled_when_regrouped(table):
    pooled = score(table, by=("model", "horizon")).set_index(["model", "horizon"])
    fine = score(table, by=("model", "horizon", "area"))
    assert fine["n"].sum() == pooled["n"].sum() == table["actual"].notna().sum()
    metrics = ["mae", "mase", "crps", "coverage80"]
    weighted = fine[metrics].mul(fine["n"], axis=0).where(fine["n"] > 0, 0.0)
    totals = weighted.groupby([fine["model"], fine["horizon"]]).sum()
    scored = pooled["n"] > 0
    regrouped = totals.div(pooled["n"], axis=0)[scored]
    np.testing.assert_allclose(regrouped[metrics], pooled.loc[scored, metrics], rtol=1e-9, atol=1e-9)
    assert pooled.loc[~scored, metrics].isna().all().all()


# --------------------------------------------------------------------------- skill and MLflow dict


def two_models() -> pd.DataFrame:
    good = HAND.assign(model="good", point=HAND["actual"].fillna(0) + 1)
    naive = HAND.assign(model="naive", point=HAND["actual"].fillna(0) + 4)
    late = naive.assign(model="good", horizon=3)  # a horizon the reference never forecast
    return pd.concat([good, naive, late], ignore_index=True)


def test_add_skill_is_positive_when_model_beats_reference_and_zero_for_reference():
    scores = add_skill(score(two_models()), "naive", metric="mase")
    skill = scores.set_index(["model", "horizon"])["skill_mase_vs_naive"]
    assert skill[("good", 1)] == pytest.approx(1 - 1 / 4)
    assert skill[("naive", 1)] == 0.0
    assert np.isnan(skill[("good", 3)])


def test_add_skill_compares_across_all_rows_when_scores_are_pooled_by_model():
    scores = add_skill(score(two_models().query("horizon == 1"), by=("model",)), "naive", metric="mae")
    assert scores.set_index("model")["skill_mae_vs_naive"]["good"] == pytest.approx(0.75)


def test_add_skill_raises_listing_models_when_reference_absent():
    with pytest.raises(ForecastError, match=re.escape("'climatology' is not in the scores; models "
                                                      "present: ['good', 'naive']")):
        add_skill(score(two_models()), "climatology")


def test_add_skill_raises_when_metric_is_not_a_loss():
    with pytest.raises(ForecastError, match="lower is better"):
        add_skill(score(two_models()), "naive", metric="coverage80")


def test_metrics_by_horizon_flattens_one_model_and_skips_nan_when_logged():
    scores = score(two_models().assign(actual=lambda f: f["actual"].where(f["horizon"] == 1)))
    flat = metrics_by_horizon(scores, "good")
    assert flat["mase_h1"] == pytest.approx(1.0 / 3 * (1 / 2 + 1 / 1 + 1 / 4))
    assert flat["coverage80_h1"] == pytest.approx(2 / 3)
    assert flat["n_h3"] == 0.0
    assert "mase_h3" not in flat and all(math.isfinite(v) for v in flat.values())
    assert metrics_by_horizon(scores, "good", metrics=["crps"]).keys() == {"crps_h1"}


def test_metrics_by_horizon_raises_when_model_absent_or_scores_grouped_finer():
    scores = score(two_models())
    with pytest.raises(ForecastError, match=r"'gbm' is not in the scores; models present"):
        metrics_by_horizon(scores, "gbm")
    with pytest.raises(ForecastError, match="grouped by \\('model', 'horizon'\\) exactly"):
        metrics_by_horizon(score(two_models(), by=("model", "horizon", "area")), "good")
