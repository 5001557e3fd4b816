"""Explanations per forecast, by driver family: the contributions add up, the backtest keeps them,
a trained model explains its last forecast, the report says why, and the CLI prints them."""

from __future__ import annotations

import re
import warnings

import matplotlib
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from forecast.backtest import CONTRIBUTION_KEYS, RollingOrigin, backtest, driver_chart
from forecast.cli import app
from forecast.cube import save_cube
from forecast.datasets._synthetic import make_panel
from forecast.errors import ForecastError
from forecast.features import DRIVERS, build_features, column_drivers
from forecast.models import (
    SARIMAX,
    Contributions,
    HistGBForecaster,
    LightGBMForecaster,
    ModelSpec,
    by_driver,
    exog_contributions,
    explain_series,
    train_index,
)
from forecast.pipeline import train
from forecast.report import NO_BREAKDOWN, area_reasons, reason_for
from forecast.tracking import log_backtest

TINY = {"n_estimators": 20, "num_leaves": 7, "min_child_samples": 5, "max_bin": 31}
ARRIVALS, SEASON, DROUGHT, CONFLICT = DRIVERS[:4]


@pytest.fixture(scope="module")
def cube():
    return make_panel(10, 48, seed=9, with_flows=True)


@pytest.fixture(scope="module")
def fm(cube):
    return build_features(cube, "arrivals")


def _fit(fm, **params):
    rows, y = train_index(fm, 40, 1)
    X = fm.X.to_numpy()[rows]
    return LightGBMForecaster(**{**TINY, **params}).fit(X, y), X


@pytest.mark.parametrize("point, objective, scale", [("mean", "poisson", "log"), ("median", "poisson", "identity"),
                                                     ("mean", "regression", "identity")])
def test_lightgbm_contributions_add_up_to_the_raw_score_when_point_is(fm, point, objective, scale):
    model, X = _fit(fm, point=point, objective=objective)
    c = model.contributions(X[:50], list(fm.X.columns))
    raw = model.model_.booster.predict(X[:50], raw_score=True, num_threads=1)
    assert c.scale == scale and c.values.shape == (50, X.shape[1]) and c.columns == list(fm.X.columns)
    np.testing.assert_allclose(c.total, raw, atol=1e-6)
    np.testing.assert_allclose(c.to_array()[:, -1], c.base)
    forecast = np.exp(c.total) if scale == "log" else c.total
    np.testing.assert_allclose(np.maximum(forecast, 0) if objective == "poisson" else forecast,
                               model.predict(X[:50]), rtol=1e-6, atol=1e-6)


def test_driver_sums_add_up_to_the_same_total(fm):
    model, X = _fit(fm, point="median")
    c = model.contributions(X[:30], list(fm.X.columns))
    mapping = column_drivers(fm.families, c.columns)
    drivers = by_driver(c, mapping)
    assert list(drivers.columns) == list(DRIVERS)
    np.testing.assert_allclose(c.base + drivers.sum(axis=1).to_numpy(), c.total, atol=1e-6)
    for driver in DRIVERS:  # against a plain sum of the driver's columns
        mine = [j for j, col in enumerate(c.columns) if mapping[col] == driver]
        np.testing.assert_allclose(drivers[driver], c.values[:, mine].sum(axis=1), atol=1e-12)


def test_by_driver_counts_a_column_it_is_not_told_about_as_other():
    c = Contributions(values=np.array([[1.0, 2.0, 4.0]]), base=np.array([0.5]), columns=["a", "b", "c"], scale="log")
    out = by_driver(c, {"a": CONFLICT, "b": CONFLICT})
    assert out.loc[0, CONFLICT] == 3.0 and out.loc[0, "other"] == 4.0 and out.loc[0, SEASON] == 0.0


def test_contributions_refuse_wrong_column_names(fm):
    model, X = _fit(fm)
    with pytest.raises(ForecastError, match="2 column names for"):
        model.contributions(X[:3], ["a", "b"])


def test_histgb_contributions_are_refused_naming_the_model():
    rng = np.random.default_rng(0)
    X = rng.random((80, 3))
    model = HistGBForecaster(max_iter=5).fit(X, rng.poisson(5 + 10 * X[:, 0]))
    with pytest.raises(ForecastError, match=r"HistGBForecaster \(HistGradientBoosting\) has no per-prediction"):
        model.contributions(X[:3])


@pytest.fixture(scope="module")
def sarimax(cube):
    panel = build_features(cube, "arrivals", families=[]).panel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' convergence chatter on a tiny panel
        model = SARIMAX(exog=("conflict_events", "rain_anomaly"), exog_lag=3, point="median").fit(panel)
    return model, panel


def test_sarimax_exog_contributions_equal_coefficient_times_value(sarimax):
    model, panel = sarimax
    terms = exog_contributions(model, [1, 2, 3])
    n_t = panel.y.shape[1]
    fitted = [i for i, r in enumerate(model.results_) if r is not None]
    assert len(terms) == len(fitted) * 3 * 2
    for _, row in terms.iterrows():
        i = list(panel.areas).index(row["area"])
        result = model.results_[i]
        k = list(model.exog).index(row["term"])
        coefficient = dict(zip(result.model.param_names, result.params))[f"x{k + 1}"]
        # the model for month t reads x[t - exog_lag]: h months after the origin, x[origin + h - lag]
        value = panel.exog[row["term"]][i, n_t - 1 + row["horizon"] - model.exog_lag]
        assert row["value"] == pytest.approx(value)
        assert row["coefficient"] == pytest.approx(coefficient)
        assert row["contribution"] == pytest.approx(coefficient * value)


def test_sarimax_base_plus_drivers_is_its_forecast_on_the_log1p_scale(sarimax):
    model, _ = sarimax
    table = explain_series(model, [1, 2, 3])
    assert set(table["scale"]) == {"log1p"}
    drivers = table[list(DRIVERS)]
    assert drivers[ARRIVALS].eq(0).all() and (drivers[CONFLICT].abs() > 0).any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        point = model.forecast([1, 2, 3]).point  # the median: expm1 of the transformed mean
    fitted = [i for i, r in enumerate(model.results_) if r is not None]
    expected = np.log1p(point[fitted]).ravel()
    total = (table["base"] + drivers.sum(axis=1)).to_numpy()
    keep = point[fitted].ravel() > 0  # the forecast is clipped at zero
    np.testing.assert_allclose(total[keep], expected[keep], rtol=1e-9, atol=1e-9)


def test_sarimax_without_covariates_has_no_breakdown(sarimax):
    _, panel = sarimax
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SARIMAX().fit(panel)
    with pytest.raises(ForecastError, match="no covariates"):
        exog_contributions(model, [1])


# --- the backtest -------------------------------------------------------------------------------

SPEC = ModelSpec(name="tiny", estimator="lightgbm", horizons=[1, 2, 3], params={**TINY, "point": "median"})
FOLDS = RollingOrigin(n_origins=3, calibration_origins=8, min_train=12)


@pytest.fixture(scope="module")
def result(cube):
    return backtest(cube, [SPEC], folds=FOLDS)


def test_backtest_keeps_a_breakdown_of_every_scored_lightgbm_forecast(result):
    c = result.contributions
    assert list(c.columns) == [*CONTRIBUTION_KEYS, *DRIVERS]
    assert set(c["model"]) == {"tiny"}  # the baselines have none
    keys = ["model", "origin", "horizon", "area", "time"]
    forecasts = result.scored[result.scored["model"] == "tiny"]  # the calibration origins only set intervals
    assert set(result.forecasts["role"]) == {"scored", "calibration"}
    merged = forecasts.merge(c, on=keys, how="outer", indicator=True)
    assert (merged["_merge"] == "both").all() and len(c) == len(forecasts)
    total = merged["base"] + merged[list(DRIVERS)].sum(axis=1)
    positive = merged["point"] > 0  # the median model's point is its raw score, clipped at 0
    np.testing.assert_allclose(total[positive], merged.loc[positive, "point"], atol=1e-6)


def test_backtest_without_explain_forecasts_the_same_and_keeps_no_breakdown(cube, result):
    """explain=False (``forecast backtest --no-explain``) skips TreeSHAP, what costs most at scale,
    and nothing else: the forecasts are the same."""
    bare = backtest(cube, [SPEC], folds=FOLDS, explain=False)
    assert bare.contributions.empty and list(bare.contributions.columns) == CONTRIBUTION_KEYS
    pd.testing.assert_frame_equal(bare.forecasts, result.forecasts)
    with pytest.raises(ForecastError, match="contributions"):
        bare.explain(str(cube["area"].values[0]), bare.forecasts["origin"].max())


@pytest.mark.parametrize("strategy", ["pooled", "recursive"])
def test_backtest_of_a_poisson_model_adds_up_to_log_of_the_forecast_when_strategy_is(cube, strategy):
    families = ["lags", "rolling", "season"] if strategy == "recursive" else "all"  # what recursion can rebuild
    spec = ModelSpec(name=strategy, estimator="lightgbm", horizons=[1, 2, 3], strategy=strategy, params=TINY,
                     features=families)
    res = backtest(cube, [spec], folds=RollingOrigin(n_origins=2, calibration_origins=0, min_train=12),
                   baselines=False)
    assert set(res.contributions["scale"]) == {"log"}
    merged = res.forecasts.drop(columns="scale").merge(res.contributions, on=["model", "origin", "horizon", "area",
                                                                               "time"])
    assert len(merged) == len(res.forecasts)
    np.testing.assert_allclose(np.exp(merged["base"] + merged[list(DRIVERS)].sum(axis=1)), merged["point"], rtol=1e-6)


def test_result_explain_gives_one_forecasts_drivers_largest_first(result):
    origin = result.contributions["origin"].iloc[-1]
    rows = result.explain("XY0102", origin.strftime("%Y-%m"))
    assert list(rows.columns) == ["model", "area", "origin", "horizon", "time", "driver", "contribution", "base",
                                  "scale"]
    assert len(rows) == 3 * len(DRIVERS) and set(rows["horizon"]) == {1, 2, 3}
    for _, part in rows.groupby("horizon"):
        sizes = part["contribution"].abs().to_numpy()
        assert np.all(np.diff(sizes) <= 0)
    one = result.explain("XY0102", origin, model="tiny", horizon=2)
    wide = result.contributions
    wide = wide[(wide["area"] == "XY0102") & (wide["origin"] == origin) & (wide["horizon"] == 2)].iloc[0]
    assert dict(zip(one["driver"], one["contribution"])) == {d: wide[d] for d in DRIVERS}


@pytest.mark.parametrize("kwargs, message", [
    ({"area": "XY9999", "origin": "2018-11"}, "no forecasts of 'tiny' for area 'XY9999'; 10 areas have them"),
    ({"area": "XY0101", "origin": "2010-01"}, "no origin 2010-01 in this backtest for 'XY0101'; its origins run from"),
    ({"area": "XY0101", "origin": "2018-11", "model": "naive"},
     "no contributions for model 'naive'; models with them: tiny"),
    ({"area": "XY0101", "origin": "not a month"}, "origin 'not a month' is not a month"),
    ({"area": "XY0101", "origin": "2019-07", "horizon": 9}, r"no horizon 9; the horizons are \[1, 2, 3\]"),
])
def test_result_explain_refuses_what_the_backtest_does_not_have(result, kwargs, message):
    with pytest.raises(ForecastError, match=message):
        result.explain(**kwargs)


def test_result_explain_says_a_calibration_origin_is_not_explained(result):
    first = result.forecasts.loc[result.forecasts["role"] == "calibration", "origin"].min()
    scored = result.scored["origin"]
    with pytest.raises(ForecastError, match=f"origin {first:%Y-%m} is a calibration origin: its forecasts set the "
                                            f"intervals and are not explained; the scored origins run from "
                                            f"{scored.min():%Y-%m} to {scored.max():%Y-%m}"):
        result.explain("XY0101", first)


def test_result_explain_says_when_no_model_had_contributions(cube):
    res = backtest(cube, [], folds=FOLDS)
    assert res.contributions.empty
    with pytest.raises(ForecastError, match="kept no contributions: only LightGBM models have them"):
        res.explain("XY0101", "2018-11")


def test_driver_chart_draws_one_signed_bar_per_driver(result):
    origin = result.contributions["origin"].iloc[0]
    rows = result.explain("XY0101", origin, horizon=1)
    fig = driver_chart(rows)
    ax = fig.axes[0]
    assert len(ax.patches) == len(DRIVERS)
    assert ax.get_title() == f"XY0101: drivers of the forecast for {rows['time'].iloc[0]:%Y-%m} from {origin:%Y-%m}"
    for bar in ax.patches:  # red pushes the forecast up, blue down
        expected = "tab:red" if bar.get_width() > 0 else "tab:blue"
        assert bar.get_facecolor() == matplotlib.colors.to_rgba(expected)
    assert sorted(bar.get_width() for bar in ax.patches) == sorted(rows["contribution"])
    assert result.plot_drivers("XY0101", origin).axes[0].get_title() == ax.get_title()
    with pytest.raises(ForecastError, match="draws one forecast, but the rows hold 3 values of horizon"):
        driver_chart(result.explain("XY0101", origin))


def test_log_backtest_logs_the_contributions_of_the_lightgbm_run(result, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = log_backtest(result, tracking_uri=uri, sample_areas=0)
    client = MlflowClient(tracking_uri=uri)
    children = {r.data.tags["model"]: r for r in client.search_runs(
        [client.get_run(run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")}
    assert [a.path for a in client.list_artifacts(children["tiny"].info.run_id, "explanations")] == \
        ["explanations/contributions.parquet"]
    assert client.list_artifacts(children["naive"].info.run_id, "explanations") == []
    path = mlflow.artifacts.download_artifacts(
        artifact_uri=f"runs:/{children['tiny'].info.run_id}/explanations/contributions.parquet",
        tracking_uri=uri, dst_path=str(tmp_path))
    pd.testing.assert_frame_equal(pd.read_parquet(path), result.contributions, check_dtype=False)


# --- the trained model ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(cube):
    return train(cube, SPEC, calibration=RollingOrigin(n_origins=6, calibration_origins=0, min_train=12))


def test_trained_explain_gives_every_area_and_horizon_of_the_last_forecast(trained, cube):
    table = trained.explain(cube)
    forecasts = trained.predict(cube)
    assert list(table.columns) == ["area", "origin", "horizon", "time", "base", "scale", *DRIVERS]
    pd.testing.assert_frame_equal(table[["area", "origin", "horizon", "time"]],
                                  forecasts[["area", "origin", "horizon", "time"]], check_dtype=False)
    total = table["base"] + table[list(DRIVERS)].sum(axis=1)
    positive = forecasts["point"] > 0
    np.testing.assert_allclose(total[positive], forecasts.loc[positive, "point"], atol=1e-6)


def test_trained_explain_of_one_area_is_tidy_and_largest_first(trained, cube):
    rows = trained.explain(cube, area="XY0103", horizon=2)
    assert set(rows["area"]) == {"XY0103"} and set(rows["horizon"]) == {2} and len(rows) == len(DRIVERS)
    assert np.all(np.diff(rows["contribution"].abs().to_numpy()) <= 0)
    with pytest.raises(ForecastError, match="no explained forecast for area 'nowhere'"):
        trained.explain(cube, area="nowhere")
    with pytest.raises(ForecastError, match=r"no horizon 7; model 'tiny' forecasts \[1, 2, 3\] months ahead"):
        trained.explain(cube, horizon=7)


def test_trained_explain_refuses_a_model_without_contributions_naming_it(cube):
    spec = ModelSpec(name="ets_model", estimator="ets", horizons=[1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ets = train(cube, spec, calibration=RollingOrigin(n_origins=6, calibration_origins=0, min_train=12))
    with pytest.raises(ForecastError, match=r"model 'ets_model' \(estimator ets\) gives no contributions"):
        ets.explain(cube)


# --- the reasons of the report ------------------------------------------------------------------


def _hand_made(n_months=36):
    """Two districts with flat rain: A's arrivals rise every month of the last four, B's fall."""
    cube = make_panel(2, n_months, seed=1, with_flows=False)
    arrivals = np.full((2, n_months), 100.0)
    arrivals[0, -4:] = [120, 150, 190, 260]
    arrivals[1, -4:] = [90, 70, 50, 30]
    cube["arrivals"].values[:] = arrivals
    cube["arrivals_observed"].values[:] = True
    cube["rainfall"].values[:] = 50.0
    cube["conflict_events"].values[:] = 2.0
    cube["conflict_fatalities"].values[:] = 1.0
    cube["departures"].values[:] = 10.0
    return cube


def _explanation(cube, arrivals=1.0, drought=0.0, conflict=0.0):
    areas = cube["area"].values.astype(str)
    rows = pd.DataFrame({"area": np.repeat(areas, 2), "horizon": np.tile([1, 2], len(areas)), "base": 4.0,
                         "scale": "log", **{d: 0.0 for d in DRIVERS}})
    rows[ARRIVALS], rows[DROUGHT], rows[CONFLICT] = arrivals, drought, conflict
    return rows


def test_reason_says_arrivals_rose_only_where_they_did():
    cube = _hand_made()
    a, b = cube["area"].values.astype(str)
    reasons = area_reasons(_explanation(cube), cube, [a, b])
    assert reasons[a] == "arrivals rising 4 months in a row"
    assert "rising" not in reasons[b] and " up " not in reasons[b]
    assert reasons[b] == f"the model weighs {ARRIVALS} upward (no change in the data to name)"


def test_reason_names_failed_rains_and_rising_conflict_when_the_data_show_them():
    cube = _hand_made()
    a, b = cube["area"].values.astype(str)
    cube["rainfall"].values[1, -3:] = 10.0  # 20% of the usual rain for those months
    cube["conflict_events"].values[1, -3:] = 9.0
    reasons = area_reasons(_explanation(cube, arrivals=0.1, drought=0.5, conflict=0.3), cube, [a, b])
    assert reasons[b] == ("rainfall of the last 3 months failed (80% below the usual for those months); "
                          "conflict events up in the last 3 months against the 3 before")
    # A's rain and conflict did not change: its drivers are named as the model's reading, not as facts
    assert reasons[a] == (f"the model weighs {DROUGHT} upward (no change in the data to name); "
                          f"the model weighs {CONFLICT} upward (no change in the data to name)")


def test_reason_names_the_failed_somali_season_where_people_come_from():
    cube = _hand_made().assign_coords(admin0_pcode=("area", ["SO", "SO"]))
    a, b = cube["area"].values.astype(str)
    n_t = cube.sizes["time"]
    cube["rainfall"].values[1, -3:] = 20.0  # B's Deyr (Oct-Dec 2018): 40% of its usual
    flows = np.zeros((2, 2, n_t))
    flows[1, 0, :] = 30.0  # everyone arriving in A comes from B
    cube = cube.assign(flows=(("origin", "destination", "time"), flows)).assign_coords(origin=[a, b], destination=[a, b])
    reasons = area_reasons(_explanation(cube, arrivals=0.0, drought=0.5), cube, [a, b], top=1)
    assert reasons == {a: "Deyr rains (2018) failed in the districts people come from (60% below the usual for "
                          "those months)",
                       b: "Deyr rains (2018) failed (60% below the usual for those months)"}


def test_reason_says_terms_of_trade_fell_and_prices_rose_but_not_the_harmless_way_round():
    cube = _hand_made()
    a, b = cube["area"].values.astype(str)
    terms = np.full((2, cube.sizes["time"]), 2.0)
    terms[0, -3:], terms[1, -3:] = 3.0, 1.0  # A's terms of trade improved, B's fell
    prices = np.full((2, cube.sizes["time"]), 100.0)
    prices[0, -3:], prices[1, -3:] = 140.0, 60.0  # A's maize got dearer, B's cheaper
    cube = cube.assign(tot_goat_cereal=(("area", "time"), terms), maize_price=(("area", "time"), prices))
    markets = DRIVERS[4]
    rows = _explanation(cube, arrivals=0.0)
    rows[markets] = 0.4
    reasons = area_reasons(rows, cube, [a, b], top=1)
    assert reasons == {a: "maize price up in the last 3 months against the 3 before",
                       b: "tot goat cereal down in the last 3 months against the 3 before"}


def test_reason_without_contributions_says_so_and_keeps_to_facts():
    cube = _hand_made()
    a, b = cube["area"].values.astype(str)
    reasons = area_reasons(None, cube, [a, b])
    assert reasons == {a: f"{NO_BREAKDOWN}; arrivals rising 4 months in a row", b: NO_BREAKDOWN}


def test_reason_for_names_only_drivers_that_push_up():
    assert reason_for({SEASON: -0.5, CONFLICT: -0.1}, {}) == \
        "no driver pushes this forecast up; it rests on the model's usual level"
    assert reason_for({SEASON: 0.5, CONFLICT: 0.2, DROUGHT: 0.1}, {CONFLICT: "conflict up"}, top=2) == \
        f"the model weighs {SEASON} upward (no change in the data to name); conflict up"


def test_the_report_headline_gives_each_flagged_district_its_reason(cube, tmp_path):
    from markupsafe import escape

    from _pipeline import TRIGGERS, card_inputs, hand_made_evidence, policy_file
    from forecast.ethics import ReleaseStatus, card_from_evidence
    from forecast.policy import load_policy
    from forecast.report import assemble_report, rank_areas, to_html
    from forecast.triggers import load_triggers

    (tmp_path / "triggers.yaml").write_text(TRIGGERS)
    spec = ModelSpec(name="tiny_lgbm", estimator="lightgbm", horizons=[1, 2, 3], params=TINY)
    trained = train(cube, spec, calibration=RollingOrigin(n_origins=6, calibration_origins=0),
                    triggers=load_triggers(tmp_path / "triggers.yaml"))
    ranking = rank_areas(trained, cube, "t" * 32, lead=3)
    table = ranking.table
    flagged = table["rank"].notna() & table["signal"].astype(bool)
    assert flagged.any() and (~flagged).any()
    assert (table.loc[~flagged, "reason"] == "").all()
    expected = area_reasons(trained.explain(cube), cube, list(table.loc[flagged, "area"]), horizons=[1, 2, 3])
    assert dict(zip(table.loc[flagged, "area"], table.loc[flagged, "reason"])) == expected
    assert all(r and NO_BREAKDOWN not in r for r in expected.values())
    evidence = hand_made_evidence()
    report = assemble_report(evidence, card_from_evidence(evidence, card_inputs()), ranking, trained, cube,
                             status=ReleaseStatus("t" * 32, False), sensitivity="high",
                             policy=load_policy(policy_file(tmp_path / "policy.yaml")))
    html = to_html(report)
    assert "<th>why</th>" in html
    assert all(f'<td class="reason">{escape(r)}</td>' in html for r in expected.values())


# --- the command line -----------------------------------------------------------------------------


def _run(args, cwd, monkeypatch):
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    return CliRunner().invoke(app, args)


def test_predict_explain_prints_the_drivers_and_writes_them_beside_the_forecasts(cube, tmp_path, monkeypatch):
    save_cube(cube, tmp_path / "cube.nc")
    (tmp_path / "spec.yaml").write_text("name: tiny_lgbm\nestimator: lightgbm\nhorizons: [1, 2, 3]\n"
                                        "params: {n_estimators: 20, num_leaves: 7, min_child_samples: 5, max_bin: 31}\n")
    res = _run(["train", "--cube", str(tmp_path / "cube.nc"), "--spec", str(tmp_path / "spec.yaml")],
               tmp_path, monkeypatch)
    assert res.exit_code == 0, res.output
    run_id = re.search(r"MLflow run ([0-9a-f]{32})", res.output).group(1)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert [a.path for a in client.list_artifacts(run_id, "explanations")] == ["explanations/contributions.parquet"]
    uri = re.search(r"model URI\s+(\S+)", res.output).group(1)
    out = tmp_path / "pred.csv"
    res = _run(["predict", "--model", uri, "--cube", str(tmp_path / "cube.nc"), "--out", str(out), "--top", "3",
                "--explain"], tmp_path, monkeypatch)
    assert res.exit_code == 0, res.output
    assert "what drives those forecasts: largest contributions on log(forecast)" in res.output
    assert re.search(r"[+-]\d+\.\d\d (recent arrivals and level|seasonality|neighbours|conflict|rainfall and drought"
                     r"|inflows and origin pressure)", res.output)
    explained = pd.read_csv(tmp_path / "pred_explanations.csv")
    assert list(explained.columns) == ["release_status", "area", "origin", "horizon", "time", "base", "scale", *DRIVERS]
    assert len(explained) == len(pd.read_csv(out))
    res = _run(["predict", "--model", uri, "--cube", str(tmp_path / "cube.nc"), "--top", "3"], tmp_path, monkeypatch)
    assert res.exit_code == 0 and "what drives" not in res.output


def test_backtest_no_explain_logs_the_forecasts_without_their_drivers(cube, tmp_path, monkeypatch):
    save_cube(cube, tmp_path / "cube.nc")
    (tmp_path / "spec.yaml").write_text("name: tiny_lgbm\nestimator: lightgbm\nhorizons: [1, 2]\n"
                                        "params: {n_estimators: 10, num_leaves: 7, min_child_samples: 5, max_bin: 31}\n")
    res = _run(["backtest", "--cube", str(tmp_path / "cube.nc"), "--spec", str(tmp_path / "spec.yaml"),
                "--no-baselines", "--origins", "2", "--calibration-origins", "2", "--no-explain"], tmp_path, monkeypatch)
    assert res.exit_code == 0, res.output
    parent = re.search(r"MLflow run ([0-9a-f]{32})", res.output).group(1)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    child = client.search_runs([client.get_run(parent).info.experiment_id],
                               filter_string=f"tags.mlflow.parentRunId = '{parent}'")[0]
    paths = [a.path for a in client.list_artifacts(child.info.run_id)]
    assert "forecasts.parquet" in " ".join(paths) and "explanations" not in paths
