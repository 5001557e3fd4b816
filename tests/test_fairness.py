"""Fairness checks: who is left behind by the forecasts and the trigger signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.figure import Figure

from forecast.backtest import score
from forecast.errors import ForecastError
from forecast.fairness import (
    FairnessReport,
    Policy,
    area_groups,
    fairness_report,
    group_thresholds,
    load_policy,
    mitigation_tradeoff,
)
from forecast.policy import ethics_file

REPO_POLICY = Path(__file__).resolve().parents[1] / "ethics" / "policy.yaml"

# --------------------------------------------------------------------------- synthetic data


def make_signals(sizes=None, *, missed=(), origins=36, leads=(3,), triggers=("surge",),
                 unassessed=0.0, seed=0) -> pd.DataFrame:
    """Signals for areas named <group><nn>; groups in ``missed`` get 10% of their events
    signalled, the others 85%, with the same 30% event rate and 10% false activations."""
    sizes = sizes or {"A": 6, "B": 6}
    rng = np.random.default_rng(seed)
    rows = []
    for group, n in sizes.items():
        for i in range(n):
            for origin in pd.date_range("2020-01-01", periods=origins, freq="MS"):
                for lead in leads:
                    for trigger in triggers:
                        event = float(rng.random() < 0.3)
                        caught = rng.random() < (0.1 if group in missed else 0.85)
                        false_alarm = rng.random() < 0.1
                        high = (event and caught) or (not event and false_alarm)
                        p = rng.uniform(0.55, 0.95) if high else rng.uniform(0.02, 0.45)
                        if rng.random() < unassessed:
                            event = np.nan
                        rows.append({"trigger": trigger, "lead": lead, "origin": origin,
                                     "area": f"{group}{i:02d}", "probability": p,
                                     "signal": p >= 0.5, "event": event})
    return pd.DataFrame(rows)


def groups_of(frame: pd.DataFrame) -> pd.DataFrame:
    areas = sorted(set(frame["area"]))
    return pd.DataFrame({"region": [a[0] for a in areas]}, index=pd.Index(areas, name="area"))


def make_scored(areas, *, origins=10, horizons=(1, 2, 3, 4), seed=1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [{"model": "gbm", "origin": o, "horizon": h, "area": a,
             "actual": float(rng.poisson(50)) if rng.random() > 0.1 else np.nan,
             "point": float(rng.normal(50, 5)), "scale": float(rng.uniform(2, 8))}
            for a in areas for o in range(origins) for h in horizons]
    rows += [{**r, "model": "naive", "point": r["actual"]} for r in rows[:20]]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the report


def test_fairness_report_fails_naming_hit_rate_and_group_b_when_b_shocks_are_missed():
    signals = make_signals(missed=("B",))
    report = fairness_report(signals, None, groups_of(signals), policy=Policy())

    assert report.passed is False
    hit = report.disparities.set_index("metric").loc["hit_rate"]
    assert hit["status"] == "failed" and hit["worst_group"] == "B" and hit["best_group"] == "A"
    assert hit["difference"] > 0.5
    line = next(f for f in report.failures if f.startswith("hit_rate"))
    assert "by region" in line and "worst group 'B'" in line and "> limit 0.2" in line
    assert "FAILED" in report.summary()


def test_fairness_report_passes_when_both_groups_are_served_equally():
    signals = make_signals()
    report = fairness_report(signals, make_scored(sorted(set(signals["area"]))), groups_of(signals),
                             policy=Policy(), model="gbm")

    assert report.passed is True
    assert report.failures == []
    checked = report.disparities[report.disparities["metric"] != "selection_rate"]
    assert set(checked["status"]) == {"passed"}
    assert report.disparities.set_index("metric").loc["selection_rate", "status"].startswith("not checked")


def test_fairness_report_reports_group_too_small_but_leaves_it_out_when_it_has_two_areas():
    signals = make_signals({"A": 6, "B": 6, "C": 2}, missed=("C",))
    report = fairness_report(signals, None, groups_of(signals), policy=Policy())

    row = report.by_group.set_index("group").loc["C"]
    assert row["status"] == "too small: 2 area(s) < min_areas 3"
    assert row["n_areas"] == 2 and row["hit_rate"] < 0.5  # reported, with its numbers
    for _, check in report.disparities.iterrows():
        assert "C" not in check["groups_compared"].split(", ")
        assert "C (2 area(s) < min_areas 3)" in check["groups_left_out"]
    assert report.passed is True  # C's missed shocks are visible, but not judged on 2 areas


def test_fairness_report_cannot_judge_when_only_one_group_is_large_enough():
    signals = make_signals({"A": 6, "B": 2})
    report = fairness_report(signals, None, groups_of(signals), policy=Policy())

    assert report.passed is None
    assert set(report.disparities["passed"].isna()) == {True}
    assert report.not_judged  # every checked metric, with the reason
    assert all("cannot judge: 1 group(s) large enough, 2 needed" in line for line in report.not_judged)
    assert "B (2 area(s) < min_areas 3)" in report.not_judged[0]
    assert "cannot judge" in report.summary()


def test_fairness_report_judges_each_metric_over_its_own_large_enough_groups_when_events_are_few():
    signals = make_signals({"A": 6, "B": 6})
    b_events = signals.index[(signals["area"].str[0] == "B") & (signals["event"] == 1)]
    signals.loc[b_events[3:], "event"] = 0.0  # B keeps 3 events: too few for its hit rate
    report = fairness_report(signals, None, groups_of(signals), policy=Policy())

    status = report.by_group.set_index("group")["status"]
    assert status["B"].startswith("too small for hit_rate (3 event(s) < min_events 5)")
    checks = report.disparities.set_index("metric")
    assert checks.loc["hit_rate", "status"].startswith("cannot judge")
    assert checks.loc["selection_rate", "groups_compared"] == "A, B"


def test_fairness_report_mase_per_group_equals_hand_computation_when_rows_are_unscored():
    signals = make_signals({"A": 3, "B": 4}, origins=12)
    scored = make_scored(sorted(set(signals["area"])))
    report = fairness_report(signals, scored, groups_of(signals), policy=Policy(), model="gbm")

    rows = scored[(scored["model"] == "gbm") & scored["actual"].notna() & (scored["horizon"] <= 3)]
    table = report.by_group.set_index("group")
    for group in ("A", "B"):
        mine = rows[rows["area"].str[0] == group]
        by_hand = np.mean(np.abs(mine["actual"] - mine["point"]) / mine["scale"])
        assert table.loc[group, "mase"] == pytest.approx(by_hand, rel=1e-12)
        assert table.loc[group, "n_scored"] == len(mine)
        pooled = score(mine.assign(model="gbm"), by=("model",))["mase"].iloc[0]
        assert table.loc[group, "mase"] == pytest.approx(pooled, rel=1e-12)


def test_fairness_report_fails_mase_ratio_naming_worse_group_when_its_forecasts_are_far_off():
    signals = make_signals({"A": 3, "B": 3}, origins=12)
    scored = make_scored(sorted(set(signals["area"])))
    scored.loc[scored["area"].str[0] == "B", "point"] += 100.0
    report = fairness_report(None, scored, groups_of(signals), policy=Policy(), model="gbm")

    assert report.passed is False
    assert list(report.disparities["metric"]) == ["mase"]
    assert "mase by region: worst group 'B'" in report.failures[0]
    assert "ratio" in report.failures[0] and "< limit 0.5" in report.failures[0]


def test_fairness_report_leaves_a_group_out_of_mase_saying_why_when_a_forecast_is_missing():
    signals = make_signals({"A": 3, "B": 3, "C": 3}, origins=12)
    scored = make_scored(sorted(set(signals["area"])))
    scored.loc[(scored["area"] == "C00") & scored["actual"].notna() & (scored["horizon"] == 1), "point"] = np.nan
    report = fairness_report(None, scored, groups_of(signals), policy=Policy(), model="gbm")

    c = report.by_group.set_index("group").loc["C"]
    assert np.isnan(c["mase"]) and c["status"].startswith("mase is NaN")
    check = report.disparities.iloc[0]
    assert check["groups_compared"] == "A, B" and check["groups_left_out"].startswith("C (mase is NaN")


def test_fairness_report_asks_for_a_model_when_scored_holds_several():
    signals = make_signals({"A": 3})
    with pytest.raises(ForecastError, match=r"hold models \['gbm', 'naive'\]; pass model="):
        fairness_report(signals, make_scored(["A00"]), groups_of(signals))


def test_fairness_report_counts_unassessed_rows_but_measures_none_when_windows_were_not_observed():
    signals = make_signals({"A": 4, "B": 4}, unassessed=0.3)
    report = fairness_report(signals, None, groups_of(signals), policy=Policy())

    a = report.by_group.set_index("group").loc["A"]
    rows = signals[signals["area"].str[0] == "A"]
    observed = rows[rows["event"].notna()]
    assert a["n_unassessed"] == rows["event"].isna().sum() > 0
    assert a["n_rows"] == len(observed)
    events = observed[observed["event"] == 1]
    assert a["hit_rate"] == pytest.approx(events["signal"].mean())


def test_fairness_report_has_rows_per_trigger_and_lead_when_signals_hold_several():
    signals = make_signals({"A": 3, "B": 3}, origins=12, leads=(1, 3), triggers=("surge", "abs"))
    report = fairness_report(signals, None, groups_of(signals), policy=Policy())

    for table in (report.by_group, report.disparities, report.overall):
        assert set(map(tuple, table[["trigger", "lead"]].drop_duplicates().to_numpy())) == {
            ("abs", 1), ("abs", 3), ("surge", 1), ("surge", 3)}
    only = fairness_report(signals, None, groups_of(signals), policy=Policy(), trigger="abs", lead=3)
    assert set(only.by_group["trigger"]) == {"abs"} and set(only.by_group["lead"]) == {3}
    with pytest.raises(ForecastError, match=r"no signals for lead \[6\]; the signals have leads \[1, 3\]"):
        fairness_report(signals, None, groups_of(signals), lead=6)


def test_fairness_report_judges_each_route_on_scored_origins_when_signals_come_from_trigger_layer():
    base = make_signals({"A": 4, "B": 4}, missed=("B",), origins=24)
    base["role"] = np.where(base["origin"] < "2020-07-01", "calibration", "scored")
    no_probability = base.index[base["area"].eq("B00") & base["event"].notna()][-5:]
    base.loc[no_probability, ["probability", "signal"]] = [np.nan, False]  # e.g. stale data
    signals = pd.concat([base.assign(route="forecast"), base.assign(route="logistic")])
    report = fairness_report(signals, None, groups_of(signals), policy=Policy())

    assert set(report.by_group["route"]) == {"forecast", "logistic"}
    assert set(report.disparities["route"]) == {"forecast", "logistic"}
    assert any("route 'logistic'" in line for line in report.failures)
    b = report.by_group.query("route == 'forecast' and group == 'B'").iloc[0]
    scored_b = base[(base["role"] == "scored") & (base["area"].str[0] == "B")]
    missing = scored_b["probability"].isna()
    assert b["n_no_probability"] == missing.sum() > 0
    assert b["n_rows"] == (scored_b["event"].notna() & ~missing).sum()
    with pytest.raises(ForecastError, match=r"several rows for trigger 'surge', lead 3, origin "
                                            r"2020-01, area 'A00'; keep one row per trigger x lead "
                                            r"x origin x area \(or add a 'route' column"):
        fairness_report(signals.drop(columns="route"), None, groups_of(signals))


def test_fairness_report_keeps_a_group_without_data_as_too_small_when_groups_table_has_it():
    signals = make_signals({"A": 3, "B": 3}, origins=12)
    groups = pd.concat([groups_of(signals), pd.DataFrame({"region": ["Z"]}, index=["Z00"])])
    report = fairness_report(signals, None, groups, policy=Policy())

    z = report.by_group.set_index("group").loc["Z"]
    assert z["n_areas"] == 0 and z["n_rows"] == 0
    assert z["status"] == "too small: 0 area(s) < min_areas 3"


def test_fairness_report_says_which_areas_lack_groups_when_groups_table_is_incomplete():
    signals = make_signals({"A": 3, "B": 3}, origins=3)
    with pytest.raises(ForecastError, match=r"3 area\(s\) in the data have no row in the groups "
                                            r"table: B00, B01, B02\. Build the groups"):
        fairness_report(signals, None, groups_of(signals).iloc[:3])


def test_fairness_report_rejects_signals_when_an_event_is_not_zero_one_or_nan():
    signals = make_signals({"A": 3}, origins=3)
    signals.loc[4, "event"] = 2.0
    with pytest.raises(ForecastError, match=r"signals column 'event' must hold 1\.0 \(exceeded\), "
                                            r"0\.0 \(not exceeded\) or NaN .* first row 4"):
        fairness_report(signals, None, groups_of(signals))


def test_fairness_report_gives_tables_and_a_plot_with_the_limit_when_logged():
    signals = make_signals({"A": 6, "B": 6, "C": 2}, missed=("B",), leads=(1, 3))
    report = fairness_report(signals, None, groups_of(signals), policy=Policy())

    assert isinstance(report, FairnessReport)
    assert set(report.tables()) == {"fairness_by_group", "fairness_disparities", "fairness_overall"}
    assert len(report.to_frame()) == len(report.disparities) and "policy" in report.to_frame()
    fig = report.plot("hit_rate", lead=3)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    limit = [line for line in ax.get_lines() if "policy limit" in line.get_label()]
    best = report.disparities.query("metric == 'hit_rate' and lead == 3")["best_value"].iloc[0]
    assert limit and limit[0].get_ydata()[0] == pytest.approx(best - 0.2)
    with pytest.raises(ForecastError, match="pick one set of signals to plot"):
        report.plot("hit_rate")
    with pytest.raises(ForecastError, match="plot 'hit_rate'"):
        report.plot("equalized_odds", lead=3)


def test_fairness_chart_gives_a_panel_of_many_groups_room_for_every_name():
    """18 regions beside 2 zones: each panel gets width by its groups, so the regions' names do
    not run into each other (they did in one fixed-width panel per column)."""
    from forecast.fairness._plots import PER_GROUP

    signals = make_signals({chr(ord("A") + i): 3 for i in range(18)}, origins=12)
    areas = sorted(set(signals["area"]))
    groups = pd.DataFrame({"region": [f"region {a[0]}" for a in areas],
                           "zone": ["north" if a[0] < "J" else "south" for a in areas]}, index=areas)
    fig = fairness_report(signals, None, groups, policy=Policy()).plot("hit_rate", lead=3)
    fig.canvas.draw()  # the layout is made when drawn
    inches = [ax.get_position().width * fig.get_figwidth() for ax in fig.axes]
    assert inches[0] >= PER_GROUP * 18 * 0.8 and inches[0] > 2 * inches[1]
    names = [label for label in fig.axes[0].get_xticklabels() if label.get_text()]
    assert len(names) == 18 and {label.get_rotation() for label in names} == {45.0}
    # slanted at 45 degrees, neighbouring names are further apart than a line of their text is high
    gap = np.diff([label.get_window_extent().x1 for label in names])
    height = fig.dpi * names[0].get_fontsize() / 72
    assert (gap / np.sqrt(2) > height).all()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(assignment=st.lists(st.sampled_from(["north", "south", "", None]), min_size=8, max_size=8),
       seed=st.integers(0, 2**16))
def test_fairness_report_group_counts_add_up_to_overall_when_groups_are_arbitrary(assignment, seed):
    signals = make_signals({"A": 4, "B": 4}, origins=6, unassessed=0.2, seed=seed)
    areas = sorted(set(signals["area"]))
    scored = make_scored(areas, origins=3, seed=seed)
    groups = pd.DataFrame({"access": assignment, "region": [a[0] for a in areas]}, index=areas)
    report = fairness_report(signals, scored, groups, policy=Policy(), model="gbm")

    overall = report.overall.iloc[0]
    for _, table in report.by_group.groupby("group_column"):
        for count in ("n_areas", "n_rows", "n_events", "n_alarms", "n_unassessed", "n_scored"):
            assert table[count].sum() == overall[count]
    access = report.by_group[report.by_group["group_column"] == "access"]
    assert set(access["group"]) == {"unknown" if a in ("", None) else a for a in assignment}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.tuples(st.integers(3, 6), st.integers(3, 6), st.integers(3, 6)),
       missed=st.sets(st.sampled_from("ABC"), max_size=2), seed=st.integers(0, 2**16))
def test_fairness_report_equalized_odds_equals_fairlearns_functions_when_groups_vary(sizes, missed, seed):
    from fairlearn.metrics import equalized_odds_difference, equalized_odds_ratio

    signals = make_signals(dict(zip("ABC", sizes)), missed=tuple(missed), origins=8, seed=seed)
    policy = Policy()
    report = fairness_report(signals, None, groups_of(signals), policy=policy)
    row = report.disparities.set_index("metric").loc["equalized_odds"]
    if not row["n_groups_compared"] >= 2:
        return
    # the groups the report compared, as fairlearn's own functions take them
    compared = row["groups_compared"].split(", ")
    rows = signals[signals["area"].str[0].isin(compared)]
    args = (rows["event"].astype(int), rows["signal"].astype(int))
    with np.errstate(divide="ignore", invalid="ignore"):
        assert row["difference"] == equalized_odds_difference(*args, sensitive_features=rows["area"].str[0])
        ratio = equalized_odds_ratio(*args, sensitive_features=rows["area"].str[0])
    assert row["ratio"] == ratio or (np.isnan(row["ratio"]) and np.isnan(ratio))


# --------------------------------------------------------------------------- groups of areas


def test_area_groups_bins_numerics_and_maps_admin1_name_to_region_when_cube_has_no_region():
    cube = xr.Dataset(coords={
        "area": ["A1", "A2", "A3", "A4", "A5", "A6"],
        "area_name": ("area", ["a", "b", "c", "d", "e", "f"]),
        "admin1_pcode": ("area", ["X1"] * 6), "admin1_name": ("area", ["Bay", "Bay", "Gedo", "", "Gedo", "Bay"]),
        "parent_pcode": ("area", ["X1"] * 6), "admin_level": ("area", [2] * 6),
        "settlement": ("area", ["urban", "rural", "rural", "urban", "rural", "rural"]),
        "population": ("area", [3100.0, 9000.0, 41000.0, 12000.0, np.nan, 5000.0]),
    })
    groups = area_groups(cube)

    assert list(groups.columns) == ["region", "settlement", "population"]
    assert groups.index.name == "area" and list(groups.index) == list(cube["area"].values)
    assert groups.loc["A4", "region"] == "unknown"
    assert list(groups["region"].cat.categories) == ["Bay", "Gedo", "unknown"]
    # tercile edges of the five known populations: 3100, 6333, 11000, 41000
    assert groups.loc["A1", "population"] == "population: 3.1k-6.3k"
    assert groups.loc["A3", "population"] == "population: 11k-41k"
    assert groups.loc["A5", "population"] == "unknown"
    assert list(groups["population"].cat.categories) == [
        "population: 3.1k-6.3k", "population: 6.3k-11k", "population: 11k-41k", "unknown"]
    assert list(area_groups(cube, columns=["region"], bins=2).columns) == ["region"]


def test_area_groups_uses_region_coord_and_bins_shares_when_cube_has_both():
    cube = xr.Dataset(coords={
        "area": ["A1", "A2", "A3", "A4"],
        "region": ("area", ["north", "north", "south", "south"]),
        "admin1_name": ("area", ["Bay", "Bay", "Gedo", "Gedo"]),
        "idp_share_2014": ("area", [0.05, 0.10, 0.21, 0.33]),
    })
    groups = area_groups(cube, bins=2)

    assert list(groups.columns) == ["region", "idp_share_2014"]
    assert groups["region"].tolist() == ["north", "north", "south", "south"]
    assert groups["idp_share_2014"].tolist() == ["idp_share_2014: 0.05-0.15"] * 2 + [
        "idp_share_2014: 0.15-0.33"] * 2


def test_area_groups_lists_area_coordinates_when_a_column_is_unknown():
    cube = xr.Dataset(coords={"area": ["A1"], "zone": ("area", ["agro"])})
    with pytest.raises(ForecastError, match=r"\['access'\] is not an area coordinate of the cube; "
                                            r"its area coordinates are \['zone'\]"):
        area_groups(cube, columns=["access"])
    with pytest.raises(ForecastError, match="bins must be a positive whole number"):
        area_groups(cube, bins=0)


# --------------------------------------------------------------------------- the policy


def test_load_policy_names_the_key_when_the_file_has_an_unknown_key(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("metrics:\n  hit_rate:\n    max_diference: 0.2\n")
    with pytest.raises(ForecastError) as err:
        load_policy(path)
    assert str(err.value).startswith(f"{path}: invalid fairness policy\n")
    assert "metrics.hit_rate.max_diference: unknown key" in str(err.value)


def test_load_policy_rejects_a_negative_limit_with_its_field_and_value(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("metrics:\n  false_alarm_ratio:\n    max_difference: -0.1\n"
                    "minimums:\n  min_areas: 0\n")
    with pytest.raises(ForecastError) as err:
        load_policy(path)
    message = str(err.value)
    assert "metrics.false_alarm_ratio.max_difference: Input should be greater than or equal to 0, got -0.1" in message
    assert "minimums.min_areas: Input should be greater than or equal to 1, got 0" in message


def test_load_policy_says_what_it_expects_when_the_file_is_not_a_mapping(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("- 0.2\n")
    with pytest.raises(ForecastError, match="a fairness policy is a mapping with 'metrics' and 'minimums'"):
        load_policy(path)
    with pytest.raises(ForecastError, match="cannot read the fairness policy"):
        load_policy(tmp_path / "absent.yaml")


def test_the_default_policy_is_the_one_file_in_ethics_when_no_path_is_given():
    assert ethics_file("policy.yaml").resolve() == REPO_POLICY.resolve()


def test_load_policy_defaults_equal_the_documented_defaults_when_no_path_is_given():
    policy = load_policy()
    assert policy.source == str(REPO_POLICY)
    # the fairness limits in the file are the documented ones; release thresholds and review
    # rules have no defaults in code (tests/test_release_policy.py, tests/test_review.py)
    assert policy.model_dump(exclude={"release", "review"}) == Policy().model_dump(exclude={"release", "review"})
    assert Policy().release is None and Policy().review is None
    with pytest.raises(Exception):  # frozen
        policy.version = 2


# --------------------------------------------------------------------------- mitigation


def _mitigated(signals, **kwargs):
    return group_thresholds(signals, groups_of(signals), "region", min_history=60, grid_size=200,
                            **kwargs)


@pytest.fixture(scope="module")
def missed():
    return make_signals({"A": 4, "B": 4}, missed=("B",), origins=24, seed=3)


@pytest.mark.parametrize("cut", ["2021-01-01", "2021-06-01"])
def test_group_thresholds_at_origin_ignore_unknown_outcomes_when_they_are_removed_or_poisoned(missed, cut):
    cut = pd.Timestamp(cut)
    full = _mitigated(missed)
    end = missed["origin"].dt.to_period("M") + missed["lead"]
    unknown = (end > cut.to_period("M")).to_numpy()

    poisoned = missed.copy()
    poisoned.loc[unknown, "event"] = 1.0 - poisoned.loc[unknown, "event"]
    later = poisoned["origin"] > cut
    poisoned.loc[later, "probability"] = 1.0 - poisoned.loc[later, "probability"]
    poisoned.loc[later, "signal"] = poisoned.loc[later, "probability"] >= 0.5
    truncated = missed[missed["origin"] <= cut]

    upto = full["origin"] <= cut
    expected = full.loc[upto, "signal_mitigated"].to_numpy()
    assert full.loc[full["origin"] == cut, "mitigation"].iloc[0].startswith("group thresholds fitted")
    assert (expected != full.loc[upto, "signal"].to_numpy()).any()  # the mitigation did act
    for variant in (_mitigated(poisoned), _mitigated(truncated)):
        assert variant.loc[variant["origin"] <= cut, "signal_mitigated"].to_numpy().tolist() == expected.tolist()
    changed = _mitigated(poisoned)
    assert (changed.loc[~upto, "signal_mitigated"] != full.loc[~upto, "signal_mitigated"]).any()


def test_group_thresholds_keeps_the_signal_and_says_why_when_history_is_short(missed):
    result = _mitigated(missed)
    first = result[result["origin"] == result["origin"].min()]
    assert (first["signal_mitigated"] == first["signal"]).all()
    assert first["mitigation"].iloc[0] == "unmitigated: 0 outcome(s) known at this origin < min_history 60"

    one_class = missed.copy()
    one_class.loc[one_class["area"].str[0] == "B", "event"] = 0.0
    notes = set(_mitigated(one_class)["mitigation"])
    assert "unmitigated: group(s) ['B'] have only events or only non-events in the known history" in notes


def test_group_thresholds_keeps_the_signal_of_rows_without_probability_when_thresholding(missed):
    signals = missed.copy()
    gap = signals.index[signals["area"].eq("A01")][-6:]
    signals.loc[gap, ["probability", "signal"]] = [np.nan, False]
    result = _mitigated(signals)

    assert not result.loc[gap, "signal_mitigated"].any()
    assert set(result.loc[gap, "mitigation"]) == {"unmitigated: no probability for this row"}
    assert result["mitigation"].str.startswith("group thresholds fitted").any()


def test_group_thresholds_is_reproducible_when_run_twice(missed):
    pd.testing.assert_frame_equal(_mitigated(missed), _mitigated(missed))


def test_mitigation_tradeoff_shows_hit_rate_gap_closing_at_a_cost_when_b_was_missed(missed):
    table = mitigation_tradeoff(_mitigated(missed), policy=Policy())

    assert list(table.columns) == ["trigger", "lead", "kind", "metric", "before", "after", "change",
                                   "n_rows", "n_changed"]
    row = table.set_index("metric")
    assert set(row.index) == {"hit_rate", "false_alarm_ratio", "precision", "f1", "selection_rate",
                              "peirce_skill", "hit_rate_difference", "false_alarm_ratio_difference",
                              "selection_rate_difference", "equalized_odds_difference"}
    assert row.loc["hit_rate_difference", "after"] < row.loc["hit_rate_difference", "before"]
    assert row.loc["precision", "before"] == pytest.approx(1 - row.loc["false_alarm_ratio", "before"])
    assert row.loc["hit_rate", "n_changed"] > 0
    with pytest.raises(ForecastError, match="pass the output of forecast.fairness.group_thresholds"):
        mitigation_tradeoff(missed)


def test_group_thresholds_rejects_an_unknown_constraint_with_the_choices(missed):
    with pytest.raises(ForecastError, match=r"constraint must be one of \['true_positive_rate_parity'"):
        _mitigated(missed, constraint="equal_hits")
