"""Backtests: folds, no look-ahead at any origin, irregular rounds, intervals, specs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.utils.estimator_checks import parametrize_with_checks

from forecast.backtest import RollingOrigin, backtest
from forecast.backtest._metrics import quantile_column
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.models import HistGBForecaster, LightGBMForecaster, ModelSpec, load_spec

SMALL_LGBM = dict(n_estimators=30, learning_rate=0.1, num_leaves=7, min_child_samples=5, max_bin=31)
FOLDS = RollingOrigin(n_origins=4, calibration_origins=6, min_train=18)


@pytest.fixture(scope="module")
def panel():
    return make_panel(16, 48, seed=11, with_flows=True)


@pytest.fixture(scope="module")
def result(panel):
    spec = ModelSpec(name="lgbm", estimator="lightgbm", params=SMALL_LGBM, horizons=[1, 2, 3])
    return backtest(panel, [spec], folds=FOLDS)


@given(n_origins=st.integers(1, 10), step=st.integers(1, 3), cal=st.integers(0, 8),
       min_train=st.integers(1, 30), max_h=st.integers(1, 12), extra=st.integers(0, 20))
def test_folds_expand_forward_and_keep_every_target_inside_the_data(n_origins, step, cal, min_train, max_h, extra):
    folds = RollingOrigin(n_origins=n_origins, step=step, calibration_origins=cal, min_train=min_train)
    n_times = folds.months_needed(max_h) + extra
    calibration, scored = folds.origins(n_times, max_h)
    every = calibration + scored
    assert len(calibration) == cal and len(scored) == n_origins
    assert every == sorted(every) and len(set(every)) == len(every)
    assert np.all(np.diff(every) == step)
    assert every[0] >= min_train - 1 and scored[-1] + max_h == n_times - 1


def test_folds_refuse_a_cube_too_short_and_say_how_many_months_are_needed():
    with pytest.raises(ForecastError, match=r"needs 47 months .* the cube has 40"):
        RollingOrigin(n_origins=12, calibration_origins=6, min_train=24).origins(40, 6)
    with pytest.raises(ForecastError, match="n_origins must be a positive integer"):
        RollingOrigin(n_origins=0)


def test_backtest_table_has_every_model_origin_horizon_and_area(result, panel):
    f = result.forecasts
    assert result.models == ["naive", "seasonal_naive", "moving_average", "ewm", "historical_mean", "lgbm"]
    per_model = f.groupby("model").size()
    assert (per_model == 10 * 3 * panel.sizes["area"]).all()
    assert set(f["role"]) == {"scored", "calibration"}
    months = (f["time"].dt.year - f["origin"].dt.year) * 12 + f["time"].dt.month - f["origin"].dt.month
    assert (months == f["horizon"]).all()


def test_quantiles_never_cross_and_are_never_negative(result):
    q = result.forecasts[[quantile_column(x) for x in (0.1, 0.5, 0.9)]].dropna().to_numpy()
    assert len(q) > 0
    assert (np.diff(q, axis=1) >= 0).all() and (q >= 0).all()


def test_forecasts_at_an_origin_do_not_change_when_later_data_changes(panel, result):
    """Features, fitted models and interval calibration at origin o use data up to o only."""
    origins = sorted(result.forecasts["origin"].unique())
    cut = origins[5]
    poisoned = panel.copy(deep=True)
    later = poisoned["time"] > cut
    for name, var in poisoned.data_vars.items():
        if "time" in var.dims and var.dtype.kind == "f":
            poisoned[name] = var.where(~later, var * 7 + 1000)
    spec = result.specs[-1]
    again = backtest(poisoned, [spec], folds=FOLDS)
    cols = ["point", "q0.1", "q0.5", "q0.9", "raw_q0.1", "raw_q0.9"]
    for model in ("lgbm", "seasonal_naive", "ewm"):
        a = result.forecasts[(result.forecasts["model"] == model) & (result.forecasts["origin"] <= cut)]
        b = again.forecasts[(again.forecasts["model"] == model) & (again.forecasts["origin"] <= cut)]
        np.testing.assert_allclose(a[cols].to_numpy(), b[cols].to_numpy(), equal_nan=True)
        if model == "seasonal_naive":  # reads a year back: later data need not reach it
            continue
        changed = again.forecasts[(again.forecasts["model"] == model) & (again.forecasts["origin"] > cut)]
        later_rows = result.forecasts[(result.forecasts["model"] == model) & (result.forecasts["origin"] > cut)]
        assert not np.allclose(changed["point"].to_numpy(), later_rows["point"].to_numpy())


def test_irregular_rounds_backtest_and_only_observed_months_are_scored():
    cube = make_panel(10, 48, seed=2, round_every=(2, 3))
    spec = ModelSpec(name="lgbm", estimator="lightgbm", params=SMALL_LGBM, target="idp_stock",
                     horizons=[1, 2, 3])
    assert spec.resolved_missing_target == "skip"
    res = backtest(cube, [spec], folds=FOLDS)
    scored = res.scored
    observed = np.isfinite(scored["actual"])
    assert 0 < observed.mean() < 0.7  # rounds every 2-3 months leave months unobserved
    scores = res.scores()
    n = scores.set_index(["model", "horizon"])["n"]
    expected = scored[observed].groupby(["model", "horizon"]).size()
    assert (n.loc[expected.index] == expected).all()
    assert np.isfinite(scores["mase"]).all()


def test_calibrated_80_percent_intervals_cover_about_80_percent():
    cube = make_panel(40, 72, seed=4)
    folds = RollingOrigin(n_origins=12, calibration_origins=12, min_train=24)
    res = backtest(cube, [], folds=folds)
    coverage = res.scores().set_index(["model", "horizon"])["coverage80"]
    assert coverage.between(0.65, 0.93).all(), coverage.to_dict()
    assert abs(coverage.mean() - 0.8) < 0.06


def test_scores_report_skill_against_both_naive_baselines(result):
    scores = result.scores()
    for col in ("skill_mase_vs_seasonal_naive", "skill_mase_vs_naive", "mase", "rmsle", "crps",
                "coverage80", "width80", "level_ratio", "pinball"):
        assert col in scores
    ref = scores[scores["model"] == "seasonal_naive"]["skill_mase_vs_seasonal_naive"]
    assert np.allclose(ref, 0.0)
    wide = result.summary(horizons=[1, 3])
    assert list(wide.index) == result.models
    assert ("mase", 3) in wide.columns


def test_specs_for_different_targets_are_refused_in_one_backtest(panel):
    a = ModelSpec(name="a", estimator="lightgbm", target="arrivals")
    b = ModelSpec(name="b", estimator="lightgbm", target="idp_stock")
    with pytest.raises(ForecastError, match="differs from 'a'"):
        backtest(panel, [a, b], folds=FOLDS)


@pytest.mark.parametrize("text, message", [
    ("estimator: lightgbn", "unknown estimator 'lightgbn' (did you mean 'lightgbm'?)"),
    ("estimator: lightgbm\nhorizons: [0, 3]", "horizons are months ahead between 1 and 24, got [0]"),
    ("estimator: lightgbm\nparams: {n_estimator: 5}", "has no parameter(s) ['n_estimator'] (did you mean 'n_estimators'?)"),
    ("estimator: lightgbm\nhorizon: [1]", "horizon: Extra inputs are not permitted"),
    ("estimator: lightgbm\nfeatures: [lags, rollin]", "unknown feature families ['rollin'] (did you mean 'rolling'?)"),
    ("estimator: naive\nquantiles: [0.1, 1.5]", "quantiles lie strictly between 0 and 1, got [1.5]"),
    ("estimator: ets\ndrop_incomplete_rows: true", "drop_incomplete_rows is for global models"),
    ("estimator: hist_gradient_boosting\nparams: {quantile_max_iter: 0}",
     "params.quantile_max_iter is a number of boosting rounds, a whole number of at least 1; got 0"),
    ("estimator: lightgbm\nparams: {n_estimators: lots}", "params.n_estimators is a number of boosting rounds"),
    ("estimator: lightgbm\nparams: {quantile_n_estimators: 2.5}", "got 2.5"),
])
def test_spec_errors_name_the_file_and_the_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ForecastError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}: invalid model spec")
    assert message in str(info.value)


def test_shipped_specs_load_and_build():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "models"
    specs = [load_spec(p) for p in sorted(root.glob("*.yaml")) if p.name != "triggers.yaml"]
    assert {s.name for s in specs} >= {"lightgbm", "hist_gradient_boosting", "ets", "sarimax"}
    for s in specs:
        assert s.build().get_params() is not None


def _known_failures(estimator):
    if isinstance(estimator, LightGBMForecaster) and estimator.subsample < 1:
        return {"check_sample_weight_equivalence_on_dense_data":
                "bagging (subsample < 1) draws rows, so a weight of 2 is not a repeated row"}
    return {}


@parametrize_with_checks([LightGBMForecaster(n_estimators=100, subsample=1.0), HistGBForecaster(max_iter=50),
                          LightGBMForecaster(n_estimators=100, point="median")],
                         expected_failed_checks=_known_failures)
def test_global_models_follow_the_scikit_learn_estimator_contract(estimator, check):
    check(estimator)


def test_result_plots_a_fan_chart_and_importance_for_notebooks(result):
    area = result.scored["area"].iloc[0]
    fig = result.plot_fan(area)
    ax = fig.axes[0]
    assert "lgbm" in ax.get_legend_handles_labels()[1][-2] and "80% interval" in ax.get_legend_handles_labels()[1]
    fig = result.plot_importance(top=5)
    assert len(fig.axes[0].patches) == 5
    with pytest.raises(ForecastError, match="no feature importance for 'naive'; global models have it: lgbm"):
        result.plot_importance("naive")


def test_forecasts_as_xarray_have_model_origin_horizon_area_dims(result):
    ds = result.to_xarray()
    assert set(ds["point"].dims) == {"model", "origin", "horizon", "area"}
    assert ds.sizes["model"] == len(result.models)


def test_any_registered_scikit_learn_regressor_backtests_with_conformal_intervals(panel):
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.impute import SimpleImputer

    from forecast.models import ESTIMATORS, register_estimator

    def factory(**params):
        # early origins have features never observed yet (a climatology needs earlier years)
        return make_pipeline(SimpleImputer(keep_empty_features=True), RandomForestRegressor(n_estimators=10, random_state=0, **params))
    register_estimator("forest", "global", factory)
    try:
        spec = ModelSpec(name="forest", estimator="forest", params={"randomforestregressor__max_depth": 4},
                         horizons=[1, 2])
        res = backtest(panel, [spec], folds=FOLDS, baselines=False)
    finally:
        del ESTIMATORS["forest"]
    q = res.scored[["q0.1", "q0.9"]].dropna().to_numpy()
    assert len(q) and (q[:, 0] <= q[:, 1]).all()
    assert "forest" not in res.importance


def test_a_dtm_file_with_irregular_rounds_ingests_and_backtests_scoring_only_round_months(tmp_path):
    import forecast
    from forecast.datasets import dtm_export

    truth = make_panel(12, 48, seed=21, round_every=(2, 3))
    path = tmp_path / "dtm.csv"
    dtm_export(truth).to_csv(path, index=False)
    cube = forecast.ingest([path], "dtm").cube  # keyed by admin names: no gazetteer
    spec = ModelSpec(name="lgbm", estimator="lightgbm", params=SMALL_LGBM, target="idp_stock",
                     horizons=[1, 2, 3])
    res = backtest(cube, [spec], folds=FOLDS)
    observed = cube["idp_stock_observed"]
    scored = res.scored[res.scored["model"] == "lgbm"]
    months = set(scored.loc[np.isfinite(scored["actual"]), "time"])
    round_months = set(pd.DatetimeIndex(cube["time"].values[observed.any("area").values]))
    assert months and months <= round_months  # only round months are scored
    assert len(months) < len(set(scored["time"]))  # and months between rounds are not
    n = res.scores().set_index(["model", "horizon"])["n"].loc["lgbm"]
    assert n.sum() == np.isfinite(scored["actual"]).sum()


def test_backtest_records_the_hash_of_the_data_it_ran_on_not_a_stale_attribute(panel, result):
    from forecast.cube import cube_hash

    assert result.cube_hash == cube_hash(panel)
    changed = panel.copy(deep=True)
    changed["arrivals"][0, 0] = 123456.0  # an edit keeps the old cube_hash attribute
    assert backtest(changed, [], folds=FOLDS).cube_hash == cube_hash(changed) != result.cube_hash


def test_drop_incomplete_rows_trains_on_complete_rows_only_and_still_forecasts_every_area(panel):
    """As mlforecast's dropna: rows with a missing feature (an area's first year here) are not
    trained on; the forecasts still cover every assessable area, and differ from a fit that
    keeps those rows."""
    from forecast.models import train_index

    kw = dict(estimator="lightgbm", params=SMALL_LGBM, horizons=[1, 2], features=["lags", "rolling"],
              feature_params={"lags": [0, 1, 11], "windows": [3, 12]})
    keep = ModelSpec(name="keep", **kw)
    drop = ModelSpec(name="drop", drop_incomplete_rows=True, **kw)
    fm = drop.feature_matrix(panel)
    o = panel.sizes["time"] - 3
    every, _ = train_index(fm, o, 1)
    complete, y = train_index(fm, o, 1, complete=True)
    X = fm.X.to_numpy()
    assert np.isfinite(X[complete]).all() and np.isfinite(y).all()
    assert set(complete) < set(every) and not np.isfinite(X[np.setdiff1d(every, complete)]).all(axis=1).any()
    result = backtest(panel, [keep, drop], folds=FOLDS, baselines=False)
    f = result.forecasts
    a, b = f[f["model"] == "keep"], f[f["model"] == "drop"]
    assert len(a) == len(b) and b["point"].notna().all()
    assert not np.allclose(a["point"].to_numpy(), b["point"].to_numpy())
