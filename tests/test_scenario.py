"""Scenarios: the same trained model on covariates rewritten up to the origin, logged under its train run."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast.cli import app
from forecast.cube import save_cube
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.models import ModelSpec
from forecast.pipeline import ScenarioResult, Shock, parse_shock, run_scenario, train
from forecast.triggers import TriggerSpec

PARAMS = {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 5, "max_bin": 31}
TRIGGER = TriggerSpec(name="spike", kind="percentile", value=80, min_history=6, leads=[1, 3])
COLUMNS = ["area", "area_name", "region", "shocked", "lead", "baseline", "scenario", "change",
           "baseline_q0.1", "baseline_q0.9", "scenario_q0.1", "scenario_q0.9", "baseline_probability",
           "scenario_probability", "probability_change", "baseline_signal", "scenario_signal", "status"]


@pytest.fixture(scope="module")
def cube():
    return make_panel(16, 48, seed=3, with_flows=False)


@pytest.fixture(scope="module")
def trained(cube):
    """A LightGBM model whose features read the covariates (rainfall, conflict, ...)."""
    spec = ModelSpec(name="tiny", estimator="lightgbm", params=PARAMS, horizons=[1, 2, 3],
                     features=["lags", "rolling", "season", "covariates"])
    return train(cube, spec, triggers=[TRIGGER])


@pytest.fixture(scope="module")
def logged(cube, trained, tmp_path_factory):
    """The model logged as a train run with its cube on disk: (tracking URI, run id, folder)."""
    from forecast.tracking import log_trained

    root = tmp_path_factory.mktemp("scenario")
    save_cube(cube, root / "cube.nc")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    run_id, _ = log_trained(trained, cube, experiment="scenarios", tracking_uri=uri, cube_path=root / "cube.nc")
    return uri, run_id, root


# --- shocks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, kind, value, label", [
    ("rainfall=-50%", "relative", -50.0, "rainfall-50pct"),
    ("rainfall=+20%", "relative", 20.0, "rainfall+20pct"),
    ("conflict_incidents=x2", "multiply", 2.0, "conflict_incidents_x2"),
    ("conflict_incidents=0.5x", "multiply", 0.5, "conflict_incidents_x0.5"),
    ("maize_price=+10", "add", 10.0, "maize_price+10"),
    ("maize_price = -2.5", "add", -2.5, "maize_price-2.5"),
    ("rainfall=p10", "percentile", 10.0, "rainfall_p10"),
    ("rainfall=P2.5", "percentile", 2.5, "rainfall_p2.5"),
])
def test_parse_shock_reads_each_form_when_written_as_documented(text, kind, value, label):
    shock = parse_shock(text)
    assert (shock.kind, shock.value, shock.label) == (kind, value, label)
    assert shock.variable == text.split("=")[0].strip()


def test_shock_apply_matches_the_arithmetic_it_names():
    x = np.array([10.0, 0.0, np.nan])
    np.testing.assert_allclose(parse_shock("v=-50%").apply(x), [5.0, 0.0, np.nan])
    np.testing.assert_allclose(parse_shock("v=x3").apply(x), [30.0, 0.0, np.nan])
    np.testing.assert_allclose(parse_shock("v=+4").apply(x), [14.0, 4.0, np.nan])


@pytest.mark.parametrize("text", ["rainfall", "rainfall=50%", "rainfall=half", "=x2", "rainfall=x-2",
                                  "rainfall=10", "rain fall=x2", "rainfall=x2x"])
def test_parse_shock_refuses_a_malformed_shock_naming_it_and_the_forms(text):
    with pytest.raises(ForecastError) as error:
        parse_shock(text)
    assert repr(text) in str(error.value)
    assert "-50% or +20% (relative change), x2 or 0.5x (multiply), +10 or -10 (add an amount)" in str(error.value)


@pytest.mark.parametrize("text", ["rainfall=x1", "rainfall=+0", "rainfall=-0%"])
def test_parse_shock_refuses_a_shock_that_changes_nothing(text):
    with pytest.raises(ForecastError, match="changes nothing"):
        parse_shock(text)


def test_a_percentile_beyond_p100_is_refused():
    with pytest.raises(ForecastError, match="between p0 and p100"):
        parse_shock("rainfall=p150")


def test_percentile_of_earlier_years_reads_the_same_month_of_earlier_years_only():
    from forecast.pipeline._shocks import MIN_YEARS, percentile_of_earlier_years

    time = pd.date_range("2010-01", periods=12 * 8, freq="MS")
    rng = np.random.default_rng(0)
    values = rng.gamma(2.0, 30.0, size=(3, len(time)))
    values[2, :-12] = np.nan  # no history: nothing to take a percentile of
    t_idx = np.array([len(time) - 3, len(time) - 1])  # October and December of the last year
    got = percentile_of_earlier_years(values, time, np.arange(3), t_idx, 10)
    for j, t in enumerate(t_idx):
        same = [k for k in range(t) if time[k].month == time[t].month]
        assert len(same) == 7 >= MIN_YEARS
        np.testing.assert_allclose(got[:2, j], np.percentile(values[:2, same], 10, axis=1))
    assert np.isnan(got[2]).all()
    # a value from after the month, or from another calendar month, changes nothing
    later = values.copy()
    later[:, t_idx[0] + 1:] *= 100
    later[:, t_idx[0] - 1] *= 100
    np.testing.assert_allclose(percentile_of_earlier_years(later, time, np.arange(3), t_idx[:1], 10), got[:, :1])


def test_a_percentile_shock_sets_the_months_to_the_area_s_own_dry_years():
    from forecast.pipeline._scenario import _month_indices
    from forecast.pipeline._shocks import apply_shock, percentile_of_earlier_years

    cube = make_panel(6, 96, seed=1, with_flows=False)  # 8 years: 7 earlier Octobers
    time = pd.DatetimeIndex(cube["time"].values)
    t_idx = _month_indices(f"{time[-3]:%Y-%m}..{time[-1]:%Y-%m}", time)
    a_idx = np.arange(cube.sizes["area"])
    shocked, clipped = apply_shock(cube, parse_shock("rainfall=p10"), a_idx, t_idx)
    rain = cube["rainfall"].transpose("area", "time").values
    expected = percentile_of_earlier_years(rain, time, a_idx, t_idx, 10)
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(shocked["rainfall"].transpose("area", "time").values[:, t_idx], expected)
    np.testing.assert_array_equal(shocked["rainfall"].values[:, : t_idx[0]], cube["rainfall"].values[:, : t_idx[0]])
    assert clipped == 0


def test_a_percentile_shock_without_enough_earlier_years_is_refused(trained, cube):
    with pytest.raises(ForecastError, match="rainfall=p10: no area has 5 earlier years of rainfall"):
        run_scenario(trained, cube, ["rainfall=p10"], months="2019-10..2019-12", lead=3)


# --- the scenario ------------------------------------------------------------------------------

def test_run_scenario_changes_the_forecast_of_the_shocked_areas_with_the_promised_columns(trained, cube):
    result = run_scenario(trained, cube, ["rainfall=-90%", "conflict_events=x3"], region="Region 01")
    assert isinstance(result, ScenarioResult)
    t = result.table
    assert list(t.columns) == COLUMNS
    assert len(t) == cube.sizes["area"] and set(t["lead"]) == {1}
    shocked = t[t["shocked"]]
    assert set(shocked["region"]) == {"Region 01"} and len(shocked) == 8
    assert (shocked["change"].abs() > 0).any() and (shocked["probability_change"].abs() > 0).any()
    np.testing.assert_allclose(t["change"], t["scenario"] - t["baseline"])
    np.testing.assert_allclose(t["probability_change"], t["scenario_probability"] - t["baseline_probability"])
    assert t["probability_change"].is_monotonic_decreasing
    assert result.months == ["2019-10", "2019-11", "2019-12"] and result.months_label == "2019-10..2019-12"
    assert result.name == "rainfall-90pct_conflict_events_x3" and result.notes == []
    assert "rainfall=-90%, conflict_events=x3 over 2019-10..2019-12 in region Region 01" in result.describe()


def test_run_scenario_baseline_matches_prioritize_of_the_unchanged_cube(trained, cube):
    result = run_scenario(trained, cube, ["rainfall=-50%"], lead=3)
    ranking = trained.prioritize(cube, lead=3).set_index("area")
    t = result.table.set_index("area").loc[ranking.index]
    np.testing.assert_allclose(t["baseline"], ranking["expected"])
    np.testing.assert_allclose(t["baseline_probability"], ranking["probability"])
    assert set(t["lead"]) == {3}


def test_run_scenario_reads_the_shocked_cube_not_a_copy_of_the_baseline(trained, cube):
    result = trained.scenario(["rainfall=-50%"], cube=cube, areas=["XY0101"], months="2019-12")
    shocked = cube.copy()
    shocked["rainfall"] = shocked["rainfall"].copy()
    shocked["rainfall"].loc[{"area": "XY0101", "time": "2019-12-01"}] *= 0.5
    expected = trained.prioritize(shocked).set_index("area")["expected"]
    got = result.table.set_index("area")["scenario"]
    np.testing.assert_allclose(got.loc[expected.index], expected)
    assert result.areas == ["XY0101"] and result.table["shocked"].sum() == 1


def test_run_scenario_refuses_months_after_the_origin(trained, cube):
    with pytest.raises(ForecastError, match=r"month\(s\) 2020-01, 2020-02 come after the cube's last month 2019-12"):
        run_scenario(trained, cube, ["rainfall=-50%"], months="2019-12..2020-02")


@pytest.mark.parametrize("months", ["2019-10...2019-12", "2019/10..2019/12", "Oct 2019", "2019-13", "2019-10..2019-11..2019-12"])
def test_run_scenario_refuses_a_malformed_months_range(trained, cube, months):
    with pytest.raises(ForecastError, match=re.escape(f"cannot read months {months!r}")):
        run_scenario(trained, cube, ["rainfall=-50%"], months=months)


def test_run_scenario_refuses_a_months_range_that_runs_backwards(trained, cube):
    with pytest.raises(ForecastError, match="run backwards"):
        run_scenario(trained, cube, ["rainfall=-50%"], months="2019-12..2019-10")


def test_run_scenario_refuses_an_area_not_in_the_cube(trained, cube):
    with pytest.raises(ForecastError, match="area\\(s\\) SO2401 are not in the cube; its 16 areas"):
        run_scenario(trained, cube, ["rainfall=-50%"], areas="XY0101,SO2401")


def test_run_scenario_refuses_an_unknown_region_listing_the_regions(trained, cube):
    with pytest.raises(ForecastError, match="no region 'Bay' in the cube; its regions \\(region\\) are: Region 01, Region 02"):
        run_scenario(trained, cube, ["rainfall=-50%"], region="Bay")


def test_run_scenario_finds_a_region_whatever_its_case(trained, cube):
    result = run_scenario(trained, cube, ["rainfall=-50%"], region="region 02")
    assert len(result.areas) == 8 and result.region == "Region 02"


def test_run_scenario_refuses_an_unknown_variable_listing_the_covariates(trained, cube):
    with pytest.raises(ForecastError) as error:
        run_scenario(trained, cube, ["rainfal=-50%"])
    message = str(error.value)
    assert "the cube has no covariate 'rainfal' (did you mean 'rainfall'?)" in message
    assert "its covariates are: departures, idp_stock, returns, conflict_events" in message
    assert "_observed" not in message


def test_run_scenario_refuses_to_shock_the_target(trained, cube):
    with pytest.raises(ForecastError, match="arrivals is the model's target"):
        run_scenario(trained, cube, ["arrivals=x2"])


def test_run_scenario_clips_negative_values_at_zero_and_says_how_many(trained, cube):
    result = run_scenario(trained, cube, ["conflict_events=-5"], months="2019-12")
    before = cube["conflict_events"].sel(time="2019-12-01").values
    n = int((before - 5 < 0).sum())
    assert n > 0
    assert result.notes == [f"{n} value(s) of conflict_events would have fallen below 0 and were set to 0"]
    assert result.clipped == {"conflict_events": n} and result.summary()["clipped_cells"] == n


def test_run_scenario_does_not_clip_a_variable_that_can_be_negative(trained, cube):
    assert run_scenario(trained, cube, ["rain_anomaly=-3"]).notes == []


def test_run_scenario_raises_naming_the_variable_when_the_model_reads_no_covariate(cube):
    spec = ModelSpec(name="history_only", estimator="lightgbm", params=PARAMS, horizons=[1, 2, 3],
                     features=["lags", "rolling", "season"])
    history_only = train(cube, spec)
    with pytest.raises(ForecastError, match="the model 'history_only' does not read rainfall: none of the"):
        run_scenario(history_only, cube, ["rainfall=-50%"])


def test_run_scenario_raises_for_a_series_model_without_covariates(cube):
    naive = train(cube, ModelSpec(name="snaive", estimator="seasonal_naive", horizons=[1, 2, 3]))
    with pytest.raises(ForecastError, match="does not read rainfall, conflict_events: its estimator 'seasonal_naive' "
                                            "reads no covariate"):
        run_scenario(naive, cube, ["rainfall=-50%", "conflict_events=x2"])


def test_run_scenario_raises_when_the_shocked_months_are_too_early_for_the_origin_features(trained, cube):
    # the covariate features reach back 12 months at most: 2018-06 is not read from 2019-12
    with pytest.raises(ForecastError, match="does not read rainfall: .* changes at its origin 2019-12"):
        run_scenario(trained, cube, ["rainfall=-50%"], months="2018-06")
    assert run_scenario(trained, cube, ["rainfall=-50%"], months="2019-01").notes == []


def test_run_scenario_notes_a_shocked_variable_the_model_does_not_read(cube):
    only = ModelSpec(name="conflict_only", estimator="lightgbm", params=PARAMS, horizons=[1, 2, 3],
                     features=["lags", "covariates"], feature_params={"covariate_lags": [0]})
    model = train(cube.drop_vars(["rainfall", "rainfall_observed", "rain_anomaly", "rain_anomaly_observed"]), only)
    result = run_scenario(model, cube, ["rainfall=-50%", "conflict_events=x2"])
    assert len(result.notes) == 1 and result.notes[0].startswith("the model does not read rainfall:")


def test_run_scenario_reads_a_series_model_through_its_exog_names():
    small = make_panel(4, 40, seed=3, with_flows=False)
    spec = ModelSpec(name="sx", estimator="sarimax", horizons=[1, 2],
                     params={"exog": ["conflict_events"], "exog_lag": 2, "min_length": 12})
    model = train(small, spec)
    result = run_scenario(model, small, ["rainfall=-50%", "conflict_events=x3"])
    assert result.notes == ["the model does not read rainfall: its estimator 'sarimax' reads only the covariates "
                            "conflict_events; only conflict_events changed the forecast"]
    assert (result.table["change"].abs() > 0).any()
    with pytest.raises(ForecastError, match="does not read rainfall: its estimator 'sarimax' reads only"):
        run_scenario(model, small, ["rainfall=-50%"])


def test_run_scenario_without_triggers_compares_each_horizon(cube):
    spec = ModelSpec(name="no_triggers", estimator="lightgbm", params=PARAMS, horizons=[1, 2],
                     features=["lags", "covariates"])
    model = train(cube, spec)
    result = run_scenario(model, cube, ["rainfall=-80%"])
    assert set(result.table["horizon"]) == {1, 2} and len(result.table) == 2 * cube.sizes["area"]
    assert result.table["baseline_probability"].isna().all() and result.trigger is None
    assert set(run_scenario(model, cube, ["rainfall=-80%"], lead=2).table["horizon"]) == {2}
    with pytest.raises(ForecastError, match="trained without triggers"):
        run_scenario(model, cube, ["rainfall=-80%"], trigger="spike")


def test_published_table_withholds_small_expected_arrivals(trained, cube):
    result = run_scenario(trained, cube, ["rainfall=-50%"])
    k = int(result.table["baseline"].median()) + 1
    published = result.published(k=k)
    small = (result.table["baseline"] >= 1) & (result.table["baseline"] < k)
    assert small.any()
    assert published.loc[small, "baseline"].isna().all() and published.loc[small, "change"].isna().all()
    assert published["baseline_suppressed"].equals(small)


def test_shock_objects_are_accepted_as_they_are(trained, cube):
    result = run_scenario(trained, cube, [Shock("rainfall", "multiply", 0.5)], name="half-rain")
    assert result.name == "half-rain" and str(result.shocks[0]) == "rainfall=x0.5"
    with pytest.raises(ForecastError, match="scenario name 'a b'"):
        run_scenario(trained, cube, ["rainfall=x0.5"], name="a b")


# --- MLflow --------------------------------------------------------------------------------------

def test_log_scenario_nests_a_run_under_the_train_run_with_the_scenario_as_parameters(trained, cube, logged):
    import mlflow

    from forecast.tracking import log_scenario, read_scenario, scenario_runs

    uri, train_id, _ = logged
    result = run_scenario(trained, cube, ["rainfall=-50%", "conflict_events=x2"], region="Region 01",
                          months="2019-11..2019-12", lead=3, name="drought")
    run_id = log_scenario(train_id, result, tracking_uri=uri, small_cell=1)
    client = mlflow.MlflowClient(tracking_uri=uri)
    run, parent = client.get_run(run_id), client.get_run(train_id)
    assert run.data.tags["mlflow.parentRunId"] == train_id and run.data.tags["kind"] == "scenario"
    assert run.info.experiment_id == parent.info.experiment_id and run.info.status == "FINISHED"
    assert run.data.params == {"name": "drought", "months": "2019-11..2019-12", "origin": "2019-12",
                               "model": "tiny", "n_areas": "8", "shock.rainfall": "-50%",
                               "shock.conflict_events": "x2", "region": "Region 01",
                               "areas": ",".join(f"XY01{i:02d}" for i in range(1, 9)), "trigger": "spike",
                               "lead": "3"}
    summary = result.summary()
    assert run.data.metrics["mean_probability_change"] == pytest.approx(summary["mean_probability_change"])
    assert {"n_signal_baseline", "n_signal_scenario", "mean_change"} <= set(run.data.metrics)
    assert scenario_runs(train_id, tracking_uri=uri) == {"drought": run_id}
    table = read_scenario(train_id, "drought", tracking_uri=uri)
    pd.testing.assert_series_equal(table["area"], result.table["area"])
    np.testing.assert_allclose(table["scenario_probability"], result.table["scenario_probability"])
    assert table.attrs["scenario"]["shocks"] == ["rainfall=-50%", "conflict_events=x2"]
    assert table.attrs["run_id"] == run_id


def test_logged_scenario_table_withholds_small_cells(trained, cube, logged):
    from forecast.tracking import log_scenario, read_scenario

    uri, train_id, _ = logged
    result = run_scenario(trained, cube, ["rainfall=-50%"], name="small-cells")
    k = int(result.table["baseline"].max()) + 1  # every expected value is a small cell
    log_scenario(train_id, result, tracking_uri=uri, small_cell=k)
    table = read_scenario(train_id, "small-cells", tracking_uri=uri)
    assert table["baseline"].isna().all() and table["baseline_suppressed"].all()


def test_read_scenario_refuses_an_unknown_name_listing_the_known_ones(logged):
    from forecast.tracking import read_scenario

    uri, train_id, _ = logged
    with pytest.raises(ForecastError, match=f"train run {train_id} has no scenario 'flood'; its scenarios:"):
        read_scenario(train_id, "flood", tracking_uri=uri)


def test_log_scenario_refuses_a_run_that_is_not_a_train_run(trained, cube, logged):
    from forecast.tracking import log_scenario, scenario_runs

    uri, train_id, _ = logged
    result = run_scenario(trained, cube, ["rainfall=-50%"], name="nested")
    child = log_scenario(train_id, result, tracking_uri=uri)
    with pytest.raises(ForecastError, match=f"run {child} is a scenario run"):
        log_scenario(child, result, tracking_uri=uri)
    assert scenario_runs(train_id, tracking_uri=uri)["nested"] == child


# --- the command ---------------------------------------------------------------------------------

def _run(args, cwd, monkeypatch):
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("COLUMNS", "250")  # rich wraps tables to the terminal's width
    return CliRunner().invoke(app, args)


def test_cli_scenario_prints_the_districts_writes_the_table_and_logs_the_run(logged, tmp_path, monkeypatch):
    uri, train_id, _ = logged
    out = tmp_path / "drought.csv"
    res = _run(["scenario", "--run", train_id, "--set", "rainfall=-150%", "--set", "conflict_events=x2",
                "--region", "Region 01", "--months", "2019-10..2019-12", "--lead", "3", "--out", str(out),
                "--tracking-uri", uri], tmp_path, monkeypatch)
    assert res.exit_code == 0, res.output
    assert "NOT RELEASED" in res.output
    assert "P baseline" in res.output and "XY0101 *" in res.output
    assert re.search(r"note: \d+ value\(s\) of rainfall would have fallen below 0", res.output)
    run_id = re.search(r"MLflow run ([0-9a-f]{32}) \(scenario 'rainfall-150pct_conflict_events_x2'", res.output).group(1)
    table = pd.read_csv(out)
    assert len(table) == 16 and {"release_status", "baseline", "scenario_probability"} <= set(table.columns)
    import mlflow

    assert mlflow.MlflowClient(tracking_uri=uri).get_run(run_id).data.tags["mlflow.parentRunId"] == train_id


@pytest.mark.parametrize("args, message", [
    (["--set", "rainfall=half"], "cannot read the shock 'rainfall=half'"),
    (["--set", "ndvi=-50%"], "the cube has no covariate 'ndvi'"),
    (["--set", "rainfall=-50%", "--months", "2019-11..2020-01"], "come after the cube's last month 2019-12"),
    (["--set", "rainfall=-50%", "--areas", "SO2401"], "area(s) SO2401 are not in the cube"),
    (["--set", "rainfall=-50%", "--region", "Bay"], "no region 'Bay' in the cube"),
    (["--set", "rainfall=-50%", "--trigger", "flood"], "no trigger 'flood'"),
])
def test_cli_scenario_exits_2_with_the_reason_on_bad_input(logged, tmp_path, monkeypatch, args, message):
    uri, train_id, _ = logged
    res = _run(["scenario", "--run", train_id, *args, "--tracking-uri", uri], tmp_path, monkeypatch)
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split()) and "Traceback" not in res.output


def test_cli_scenario_exits_2_for_an_unknown_run(logged, tmp_path, monkeypatch):
    uri, _, _ = logged
    res = _run(["scenario", "--run", "0" * 32, "--set", "rainfall=-50%", "--tracking-uri", uri], tmp_path, monkeypatch)
    assert res.exit_code == 2 and "no MLflow train run" in res.output
