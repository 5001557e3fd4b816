"""Stocks: models of DTM IDP stock rounds learn the change from the last round, state-space
models take the gaps as they are, and a backtest runs the specs a covariate-free cube can serve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecast.backtest import RollingOrigin, backtest
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.features import Panel, build_features
from forecast.models import ETS, SARIMAX, ModelSpec, load_spec, to_level, train_index

MODELS = Path(__file__).resolve().parents[1] / "models"
SMALL_LGBM = dict(n_estimators=30, learning_rate=0.1, num_leaves=7, min_child_samples=5, max_bin=31)
FOLDS = RollingOrigin(n_origins=4, calibration_origins=4, min_train=18)


@pytest.fixture(scope="module")
def stocks():
    """A panel whose only variable is a stock seen in rounds 2-3 months apart (no covariates)."""
    panel = make_panel(16, 48, seed=5, round_every=(2, 3), with_flows=False)
    return panel[["idp_stock", "idp_stock_observed"]]


def stock_spec(**kw):
    return ModelSpec(**{"name": "lgbm", "estimator": "lightgbm", "target": "idp_stock", "horizons": [1, 2, 3],
                        "params": {"point": "median", **SMALL_LGBM}, **kw})


def test_a_global_model_of_a_stock_learns_the_change_by_default_and_of_a_flow_the_level():
    assert stock_spec().resolved_target_transform == "log_ratio"
    assert stock_spec(target="arrivals").resolved_target_transform == "level"
    assert stock_spec(target_transform="level").resolved_target_transform == "level"
    assert ModelSpec(name="n", estimator="naive", target="idp_stock").resolved_target_transform == "level"
    # a change can be negative: the Poisson point model gives way to squared error
    poisson = stock_spec(params={"objective": "poisson"})
    assert poisson.build().get_params()["objective"] == "regression"
    assert stock_spec(target="arrivals", params={"objective": "poisson"}).build().get_params()["objective"] == "poisson"
    assert load_spec(MODELS / "lightgbm_stock.yaml").resolved_target_transform == "log_ratio"


def test_a_change_transform_is_refused_where_it_cannot_apply():
    with pytest.raises(ValueError, match="log_ratio is for global models"):
        ModelSpec(name="e", estimator="ets", target="idp_stock", target_transform="log_ratio")
    with pytest.raises(ValueError, match="strategy recursive feeds forecasts back"):
        stock_spec(strategy="recursive", features=["lags"])


def test_the_change_is_measured_from_the_last_round_known_at_each_row(stocks):
    late = stocks.copy(deep=True)  # the first area appears in the rounds after month 20 only
    late["idp_stock"][0, :20] = np.nan
    fm = build_features(late, "idp_stock", families=["lags"], missing_target="skip")
    y = fm.panel.y
    o, h = 40, 2
    rows, change = train_index(fm, o, h, transform="log_ratio")
    n = fm.n_areas
    t, a = rows // n, rows % n
    last = pd.DataFrame(y.T).ffill().to_numpy().T  # the last round at or before each month
    np.testing.assert_allclose(change, np.log1p(y[a, t + h]) - np.log1p(last[a, t]), rtol=1e-6)
    assert np.all(t + h <= o) and np.isfinite(last[a, t]).all()
    # rows before an area's first round have no anchor and are not trained on
    level_rows, _ = train_index(fm, o, h)
    assert len(rows) < len(level_rows)
    # no change forecasts the last round, as the naive forecast does
    np.testing.assert_allclose(to_level(fm, o, np.zeros((n, 3)), "log_ratio"),
                               np.repeat(np.nan_to_num(last[:, o])[:, None], 3, axis=1), rtol=1e-6)


def test_stock_forecasts_at_an_origin_do_not_change_when_later_rounds_change(stocks):
    """The anchor, the features and the fit at origin o read rounds up to o only."""
    spec = stock_spec()
    first = backtest(stocks, [spec], folds=FOLDS, baselines=False)
    cut = sorted(first.forecasts["origin"].unique())[3]
    poisoned = stocks.copy(deep=True)
    later = poisoned["time"] > cut
    poisoned["idp_stock"] = poisoned["idp_stock"].where(~later, poisoned["idp_stock"] * 5 + 1000)
    again = backtest(poisoned, [spec], folds=FOLDS, baselines=False)
    cols = ["point", "q0.1", "q0.9"]
    a, b = (r.forecasts[r.forecasts["origin"] <= cut] for r in (first, again))
    np.testing.assert_allclose(a[cols].to_numpy(), b[cols].to_numpy(), equal_nan=True)
    assert not np.allclose(first.forecasts.loc[first.forecasts["origin"] > cut, "point"],
                           again.forecasts.loc[again.forecasts["origin"] > cut, "point"])


def test_a_backtest_on_a_covariate_free_cube_runs_what_it_can_and_names_what_it_skipped(stocks):
    covariate = ModelSpec(name="sarimax", estimator="sarimax", target="idp_stock", horizons=[1, 2, 3],
                          params={"exog": ["conflict_incidents"], "min_length": 4})
    asks = stock_spec(name="asks", feature_params={"covariates": ["rainfall"]})
    result = backtest(stocks, [stock_spec(), covariate, asks], folds=FOLDS)
    assert result.skipped == {
        "sarimax": "skipped: its covariate(s) conflict_incidents (params.exog) are not in the cube",
        "asks": "skipped: its covariate(s) rainfall (feature_params.covariates) are not in the cube"}
    assert "lgbm" in result.models and "sarimax" not in result.models
    summary = result.summary()
    assert list(summary.index[-2:]) == ["sarimax", "asks"] and summary.loc["sarimax"].isna().all()
    assert np.isfinite(summary.loc["lgbm"]).all()
    with pytest.raises(ForecastError, match="no spec can run on this cube:\n  sarimax: skipped: its covariate"):
        backtest(stocks, [covariate], folds=FOLDS)


def test_a_global_model_with_too_few_rounds_at_an_origin_says_the_naive_forecast_stood_in():
    panel = make_panel(4, 40, seed=1, round_every=(3, 4), with_flows=False)[["idp_stock", "idp_stock_observed"]]
    result = backtest(panel, [stock_spec()], folds=RollingOrigin(n_origins=3, calibration_origins=2, min_train=12))
    notes = result.notes["lgbm"]
    assert notes and "naive forecast instead" in notes[0] and "training rows, fewer than the 50" in notes[0]
    # four areas give too few earlier errors to calibrate an interval: said, not made up
    assert "fewer than 30 earlier errors" in notes[-1]
    lacking = result.scored[(result.scored["model"] == "lgbm") & result.scored["q0.1"].isna()]
    assert f"no interval for {len(lacking)} scored forecasts" in notes[-1]
    f = result.forecasts
    early = f[f["origin"] == f["origin"].min()]
    np.testing.assert_allclose(early[early["model"] == "lgbm"]["point"].to_numpy(),
                               early[early["model"] == "naive"]["point"].to_numpy())


def rounds_panel(n_areas=6, n_times=48, seed=0):
    """Log-random-walk stocks seen every 2-4 months, the months between missing."""
    rng = np.random.default_rng(seed)
    level = np.log(rng.uniform(500, 50_000, n_areas))[:, None] + np.cumsum(rng.normal(0, 0.05, (n_areas, n_times)), 1)
    y = np.full((n_areas, n_times), np.nan)
    t = 0
    while t < n_times:
        y[:, t] = np.round(np.exp(level[:, t]))
        t += int(rng.integers(2, 5))
    y[:, -1] = np.round(np.exp(level[:, -1]))
    return Panel(y=y, areas=pd.Index([f"A{i}" for i in range(n_areas)]),
                 time=pd.date_range("2019-01-01", periods=n_times, freq="MS"))


def test_state_space_model_filters_through_the_months_between_rounds_with_intervals():
    panel = rounds_panel()
    model = SARIMAX(order=(0, 1, 1), trend="n", point="median", min_length=4).fit(panel)
    assert model.fallback_areas_ == {}
    fc = model.forecast([1, 3, 6], quantiles=[0.1, 0.5, 0.9])
    assert np.isfinite(fc.point).all() and np.isfinite(fc.quantiles).all()
    assert np.all(fc.quantiles[..., 0] < fc.point) and np.all(fc.point < fc.quantiles[..., 2])
    last = panel.y[:, -1]
    assert np.all(np.abs(np.log(fc.point[:, 0] / last)) < 0.5)  # a random walk stays near the last round


def test_ets_refuses_series_mostly_missing_between_rounds_and_says_why_with_an_interval():
    panel = rounds_panel()
    model = ETS(trend="add", damped_trend=True, point="median", min_length=4).fit(panel)
    assert set(model.fallback_areas_) == set(panel.areas)
    assert all("ETS reads no missing months" in why for why in model.fallback_areas_.values())
    fc = model.forecast([1, 3], quantiles=[0.1, 0.5, 0.9])
    np.testing.assert_allclose(fc.point, np.repeat(panel.y[:, -1:], 2, axis=1))
    assert np.isfinite(fc.quantiles).all() and np.all(fc.quantiles[:, 1, 2] > fc.quantiles[:, 0, 2])


def test_a_fit_whose_forecast_runs_away_is_refused_for_the_naive_forecast():
    t = np.arange(30, dtype=float)
    y = np.vstack([1000 + 0 * t, 100 * np.exp(0.25 * t)])  # area 1 explodes along its trend
    y[0] += np.random.default_rng(0).normal(0, 20, 30)
    panel = Panel(y=np.round(y), areas=pd.Index(["flat", "boom"]),
                  time=pd.date_range("2020-01-01", periods=30, freq="MS"))
    model = ETS(trend="add", point="median", min_length=10).fit(panel)
    fc = model.forecast([1, 60], quantiles=[0.1, 0.9])  # five years on, the trend has run far away
    assert list(model.diverged_areas_) == ["boom"] and "diverged" in model.diverged_areas_["boom"]
    np.testing.assert_allclose(fc.point[1], panel.y[1, -1])
    assert np.isfinite(fc.quantiles).all()


def test_the_default_stock_spec_does_not_lose_to_the_last_round_on_a_dtm_like_panel():
    """On rounds 1-4 months apart with skipped and new areas, shocks, returns and evictions, the
    shipped default for stocks is no worse than naive beyond noise (5%) at h1-3."""
    from forecast.datasets import make_stock_panel

    cube = make_stock_panel(40, 48, seed=2)
    spec = load_spec(MODELS / "lightgbm_stock.yaml", horizons=[1, 2, 3])
    result = backtest(cube, [spec], folds=RollingOrigin(n_origins=8, calibration_origins=4, min_train=18))
    mase = result.scores().set_index(["model", "horizon"])["mase"]
    ratio = mase.loc["lightgbm_stock"] / mase.loc["naive"]
    assert (ratio <= 1.05).all(), ratio.round(3).to_dict()
    assert not any("naive forecast instead" in n for n in result.notes.get("lightgbm_stock", []))


def test_histgb_fits_when_a_feature_was_never_observed_in_its_training_rows():
    """On few DTM rounds a covariate may have no value before an origin; scikit-learn's binning
    fails on an all-missing column, so such a column is a constant for the fit."""
    from forecast.models import HistGBForecaster

    rng = np.random.default_rng(0)
    X = rng.random((80, 3))
    X[:, 1] = np.nan
    y = rng.poisson(5 + 10 * X[:, 0])
    model = HistGBForecaster(max_iter=20).fit(X, y)
    X_new = X[:5].copy()
    X_new[:, 1] = 7.0  # observed later: the fit has nothing to say about it
    np.testing.assert_allclose(model.predict(X_new), model.predict(X[:5]))



def test_the_flows_since_the_last_round_add_up_to_the_change_of_the_stock():
    """stock_flow: at the next round, net flow since the last round = the stock's change, when the
    flows explain the stock (the synthetic panel's are exact); before any round, nothing."""
    from forecast.datasets import make_stock_panel

    cube = make_stock_panel(20, 36, seed=1, flow_gap_rate=0.0)
    fm = build_features(cube, "idp_stock", families=["stock_flow"], missing_target="skip")
    assert set(fm.families["stock_flow"]) == {"arrivals_since_round", "departures_since_round",
                                              "returns_since_round", "net_flow_since_round"}
    net = fm.X["net_flow_since_round"].to_numpy().reshape(-1, fm.n_areas).T  # (area, time)
    y = fm.panel.y
    checked = 0
    for a in range(fm.n_areas):
        rounds = np.flatnonzero(~np.isnan(y[a]))
        assert np.isnan(net[a, : rounds[0]]).all() if rounds.size else np.isnan(net[a]).all()
        for r0, r1 in zip(rounds, rounds[1:]):
            # the row of month r1 - 1 still has r0 as its last round; add month r1's own flows
            flows_r1 = sum(sign * cube[v].values[a, r1] for v, sign in
                           (("arrivals", 1), ("departures", -1), ("returns", -1)))
            assert net[a, r1 - 1] + flows_r1 == pytest.approx(y[a, r1] - y[a, r0], abs=0.5)
            checked += 1
    assert checked > 50
    # a flow target gets none of these columns
    assert build_features(cube, "arrivals", families=["stock_flow"]).families["stock_flow"] == ()
