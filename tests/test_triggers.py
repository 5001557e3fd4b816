"""Anticipatory-action triggers: specs, causal thresholds, probabilities, signals, scores, ranking.

The cardinal rule is tested last but matters most: nothing a signal says at an origin may move
when the months after that origin change.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from matplotlib.figure import Figure
from pydantic import ValidationError

from forecast.pipeline._train import TrainedModel, train
from forecast.backtest import RollingOrigin, backtest
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.models import ModelSpec
from forecast.triggers import (
    PlattCalibrator,
    TriggerSpec,
    drift_table,
    evaluate_triggers,
    exceedance_probability,
    load_triggers,
    rank_areas,
    recalibrator,
    reliability_table,
    threshold_matrix,
    trigger_metrics,
    trigger_signals,
    window_events,
)
from forecast.triggers import prioritize as prioritize_areas
from forecast.triggers._prioritize import COLUMNS

ROOT = Path(__file__).resolve().parents[1]
LEVELS = [0.1, 0.5, 0.9]
SMALL_LGBM = {"n_estimators": 20, "learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 5, "max_bin": 31}
SPEC = ModelSpec(name="lgbm", estimator="lightgbm", params=SMALL_LGBM, horizons=[1, 2, 3])
# 10 origins (months 27..36 of 40): the first 5 calibrate the intervals, the last 5 are scored
FOLDS = RollingOrigin(n_origins=5, calibration_origins=5, min_train=18)
SURGE = TriggerSpec(name="surge", kind="percentile", value=80, floor=10, min_history=6, leads=[1, 3])
ROUTES = ("forecast", "lightgbm", "logistic")
METRIC_COLUMNS = ["trigger", "lead", "route", "n", "events", "signals", "hits", "misses", "false_alarms",
                  "hit_rate", "false_alarm_ratio", "precision_at_5", "recall_at_5", "brier", "brier_raw",
                  "brier_skill", "base_rate", "activations", "return_period", "event_return_period",
                  "years", "areas"]
SIGNAL_COLUMNS = {"trigger", "lead", "origin", "area", "expected", "lower", "upper", "event", "threshold",
                  "route", "probability_raw", "role", "probability", "calibrated", "climatology", "signal",
                  "status", "score", "rank"}
KEYS = ["trigger", "lead", "route", "origin", "area"]


@pytest.fixture(scope="module", autouse=True)
def _agg_backend():
    matplotlib.use("Agg")


def make_cube() -> xr.Dataset:
    return make_panel(12, 40, seed=3, with_flows=False)


@pytest.fixture(scope="module")
def cube():
    return make_cube()


@pytest.fixture(scope="module")
def result(cube):
    return backtest(cube, [SPEC], folds=FOLDS, baselines=False)


@pytest.fixture(scope="module")
def evaluation(result, cube):
    return evaluate_triggers(result, cube, [SURGE], routes=ROUTES)


def write(tmp_path: Path, text: str, name: str = "triggers.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def hand_cube(n_months: int = 24, *, population=None, stale=(), never=(), weights=None) -> xr.Dataset:
    """Areas A-F with 50 arrivals every month; ``stale`` areas stop reporting 8 months before
    the end, ``never`` areas never report."""
    areas = ["A", "B", "C", "D", "E", "F"]
    time = pd.date_range("2020-01-01", periods=n_months, freq="MS")
    y = np.full((len(areas), n_months), 50.0)
    for a in stale:
        y[areas.index(a), -8:] = np.nan
    for a in never:
        y[areas.index(a), :] = np.nan
    coords = {"area": areas, "time": time, "area_name": ("area", [f"District {a}" for a in areas]),
              "region": ("area", ["North"] * 3 + ["South"] * 3)}
    if population is not None:
        coords["population"] = ("area", np.asarray(population, dtype=float))
    if weights is not None:
        coords["idp_share"] = ("area", np.asarray(weights, dtype=float))
    return xr.Dataset({"arrivals": (("area", "time"), y), "arrivals_observed": (("area", "time"), np.isfinite(y))},
                      coords=coords)


def hand_forecasts(quantiles: dict[str, list[float]], horizons=(1, 2, 3)) -> pd.DataFrame:
    """A TrainedModel.predict-like frame: the same quantiles at every horizon of each area."""
    rows = [{"area": a, "origin": pd.Timestamp("2021-12-01"), "horizon": h, "point": q[1],
             "q0.1": q[0], "q0.5": q[1], "q0.9": q[2]} for a, q in quantiles.items() for h in horizons]
    return pd.DataFrame(rows)


# population trigger: 10 per 1,000 residents = 100 arrivals in each area of 10,000
POP = TriggerSpec(name="pop", kind="population", value=10, per=1000, leads=[1, 3])
QUANTILES = {"A": [80, 150, 300], "B": [50, 90, 200], "C": [50, 90, 200], "D": [10, 30, 90],
             "E": [500, 800, 1000], "F": [500, 800, 1000]}


# --------------------------------------------------------------------------- specs


def test_load_triggers_reads_the_shipped_trigger_file():
    triggers = load_triggers(ROOT / "models" / "triggers.yaml")
    assert [t.name for t in triggers] == ["surge"]
    surge = triggers[0]
    assert (surge.kind, surge.value, surge.floor, surge.min_history) == ("percentile", 90, 1000, 12)
    assert surge.leads == [1, 3, 6] and surge.probability == 0.5 and surge.target == "arrivals"


def test_load_triggers_reads_a_single_mapping_and_sorts_leads_when_given_one_trigger(tmp_path):
    path = write(tmp_path, "name: big\nkind: absolute\nvalue: 5000\nleads: [6, 1]\n")
    (trigger,) = load_triggers(path)
    assert trigger.name == "big" and trigger.leads == [1, 6]


@pytest.mark.parametrize(("text", "message"), [
    ("triggers:\n  - {name: a, kind: absolute, value: 5, colour: red}\n",
     "trigger 'a': colour: Extra inputs are not permitted"),
    ("triggers:\n  - {name: a, kind: percentile, value: 100}\n",
     "trigger 'a': trigger: Value error, a percentile trigger needs 0 < value < 100, got 100.0"),
    ("triggers:\n  - {name: a, kind: percentile, value: 0}\n",
     "trigger 'a': trigger: Value error, a percentile trigger needs 0 < value < 100, got 0.0"),
    ("triggers:\n  - {name: a, kind: absolute, value: 5, probability: 1.0}\n",
     "trigger 'a': probability: Value error, probability must be strictly between 0 and 1, got 1.0"),
    ("triggers:\n  - {name: a, kind: absolute, value: 5, leads: [3, 3]}\n",
     "trigger 'a': leads: Value error, leads must be distinct whole months between 1 and 24, got [3, 3]"),
    ("triggers:\n  - {name: a, kind: absolute, value: 5, leads: [25]}\n",
     "trigger 'a': leads: Value error, leads must be distinct whole months between 1 and 24, got [25]"),
    ("triggers:\n  - {name: a, kind: relative, value: 5}\n",
     "trigger 'a': kind: Input should be 'absolute', 'percentile' or 'population'"),
    ("triggers:\n  - {kind: absolute, value: 5}\n", "trigger '#1': name: Field required"),
    ("triggers:\n  - {name: a, kind: absolute, value: 5}\n  - {name: a, kind: absolute, value: 6}\n",
     "trigger names repeat: ['a', 'a']"),
    ("triggers: 5\n", "expected a 'triggers:' list of triggers (name, kind, value, ...)"),
    ("", "expected a 'triggers:' list of triggers (name, kind, value, ...)"),
    ("triggers:\n  - surge\n", "trigger #1 must be a mapping, got str"),
])
def test_load_triggers_names_the_file_trigger_and_field_when_the_file_is_wrong(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ForecastError) as err:
        load_triggers(path)
    assert str(err.value) == f"{path}: {message}"


def test_load_triggers_says_the_file_is_not_yaml_when_it_cannot_be_parsed(tmp_path):
    path = write(tmp_path, "triggers: [\n  - {name: a\n")
    with pytest.raises(ForecastError, match=re.escape(f"{path}: not valid YAML (")):
        load_triggers(path)


def test_load_triggers_names_the_file_when_it_cannot_be_read(tmp_path):
    path = tmp_path / "absent.yaml"
    with pytest.raises(ForecastError, match=re.escape(f"{path}: no such trigger file: not a file, nor one of "
                                                      "the toolkit's shipped trigger files")) as caught:
        load_triggers(path)
    assert "default" in str(caught.value)  # the names a user could have meant


@pytest.mark.parametrize(("trigger", "text"), [
    (TriggerSpec(name="a", kind="absolute", value=1000), ">= 1,000 arrivals in a month"),
    (TriggerSpec(name="s", kind="percentile", value=90, floor=1000),
     "at or above the area's own 90th percentile of monthly arrivals (at least 1,000)"),
    (TriggerSpec(name="p", kind="population", value=5, per=1000, target="departures"),
     ">= 5 departures per 1,000 residents in a month"),
])
def test_trigger_describe_says_the_rule_in_words_when_printed_in_a_report(trigger, text):
    assert trigger.describe() == text


def test_trigger_spec_is_frozen_and_its_hash_changes_with_its_content():
    a = TriggerSpec(name="a", kind="absolute", value=5)
    with pytest.raises(ValidationError):
        a.value = 6
    assert a.hash() == TriggerSpec(name="a", kind="absolute", value=5).hash()
    assert a.hash() != TriggerSpec(name="a", kind="absolute", value=6).hash()


# --------------------------------------------------------------------------- thresholds


def test_threshold_matrix_is_the_value_everywhere_when_absolute_and_never_below_the_floor():
    y = np.arange(12.0).reshape(2, 6)
    assert (threshold_matrix(TriggerSpec(name="a", kind="absolute", value=50), y) == 50).all()
    assert (threshold_matrix(TriggerSpec(name="a", kind="absolute", value=50, floor=80), y) == 80).all()


def test_threshold_matrix_scales_population_and_leaves_unknown_population_without_threshold():
    cube = hand_cube(6, population=[10_000, 20_000, 0, np.nan, 1_000, 30_000])
    thr = threshold_matrix(POP, np.zeros((6, 6)), cube)
    np.testing.assert_array_equal(thr[:, 0], [100, 200, np.nan, np.nan, 10, 300])
    np.testing.assert_array_equal(thr, np.repeat(thr[:, [0]], 6, axis=1))
    floored = threshold_matrix(POP.model_copy(update={"floor": 150}), np.zeros((6, 6)), cube)
    np.testing.assert_array_equal(floored[:, 0], [150, 200, np.nan, np.nan, 150, 300])


def test_threshold_matrix_names_the_missing_population_coordinate_and_lists_the_cubes_area_coords():
    cube = hand_cube(6)
    with pytest.raises(ForecastError) as err:
        threshold_matrix(POP, np.zeros((6, 6)), cube)
    assert str(err.value) == (
        "trigger 'pop' is relative to population, but the cube has no area coordinate 'population' "
        "(it has: area_name, region); ingest an attributes table with a population column "
        "(forecast ingest --attributes)")


def reference_percentile(y: np.ndarray, q: float, min_history: int, floor: float) -> np.ndarray:
    out = np.full(y.shape, np.nan)
    for a in range(y.shape[0]):
        for t in range(y.shape[1]):
            history = y[a, : t + 1]
            history = history[np.isfinite(history)]
            if len(history) >= min_history:
                out[a, t] = max(np.percentile(history, q), floor)
    return out


def test_threshold_matrix_is_the_percentile_of_the_history_up_to_each_month_when_percentile():
    rng = np.random.default_rng(0)
    y = rng.gamma(1.0, 300.0, size=(5, 30))
    y[rng.random(y.shape) < 0.25] = np.nan
    trigger = TriggerSpec(name="s", kind="percentile", value=90, floor=100, min_history=6)
    thr = threshold_matrix(trigger, y)
    np.testing.assert_allclose(thr, reference_percentile(y, 90, 6, 100), equal_nan=True)
    seen = np.cumsum(np.isfinite(y), axis=1)
    assert np.isnan(thr[seen < 6]).all() and np.isfinite(thr[seen >= 6]).all()
    assert (thr[np.isfinite(thr)] >= 100).all()


cells = st.one_of(st.floats(0, 1e5, allow_nan=False), st.just(np.nan), st.just(0.0))
triggers = st.one_of(
    st.builds(lambda v, f, m: TriggerSpec(name="s", kind="percentile", value=v, floor=f, min_history=m),
              st.floats(0.5, 99.5), st.sampled_from([0.0, 10.0, 500.0]), st.integers(1, 6)),
    st.builds(lambda v, f: TriggerSpec(name="a", kind="absolute", value=v, floor=f),
              st.floats(1, 1e4), st.sampled_from([0.0, 10.0])),
)


@settings(max_examples=80, deadline=None)
@given(y=hnp.arrays(float, st.tuples(st.integers(1, 6), st.integers(1, 30)), elements=cells),
       q=st.floats(0.5, 99.5), min_history=st.integers(1, 8))
def test_percentile_threshold_equals_nanpercentile_of_each_months_history_to_the_bit(y, q, min_history):
    """The thresholds are computed once per observation and carried forward; that must give, to
    the bit, numpy's nanpercentile of every month's history (where it has min_history months)."""
    trigger = TriggerSpec(name="s", kind="percentile", value=q, floor=0.0, min_history=min_history)
    expected = np.full(y.shape, np.nan)
    for a in range(y.shape[0]):
        for t in range(y.shape[1]):
            if np.isfinite(y[a, : t + 1]).sum() >= min_history:
                expected[a, t] = np.nanpercentile(y[a, : t + 1], q)
    np.testing.assert_array_equal(threshold_matrix(trigger, y), expected)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), trigger=triggers,
       y=hnp.arrays(float, st.tuples(st.integers(1, 4), st.integers(1, 24)), elements=cells))
def test_threshold_matrix_at_a_month_never_depends_on_later_months(data, trigger, y):
    t = data.draw(st.integers(0, y.shape[1] - 1), label="t")
    full = threshold_matrix(trigger, y)
    np.testing.assert_array_equal(full[:, : t + 1], threshold_matrix(trigger, y[:, : t + 1]))
    later = data.draw(hnp.arrays(float, (y.shape[0], y.shape[1] - t - 1), elements=cells), label="later")
    changed = np.concatenate([y[:, : t + 1], later], axis=1)
    np.testing.assert_array_equal(full[:, : t + 1], threshold_matrix(trigger, changed)[:, : t + 1])


# --------------------------------------------------------------------------- window events


def test_window_events_marks_crossings_non_crossings_and_unknowns_when_given_hand_made_months():
    nan = np.nan
    y = np.array([[1.0, 5.0, nan, 2.0, 0.0, 9.0]])
    thr = np.full(y.shape, 4.0)
    # t=0: months 1-2 = 5, nan -> crossed although month 2 is unobserved
    # t=1: months 2-3 = nan, 2 -> no crossing seen, a month unknown
    # t=2: months 3-4 = 2, 0 -> both observed below
    # t=3: months 4-5 = 0, 9 -> crossed; t=4, t=5: the window runs past the data
    np.testing.assert_array_equal(window_events(y, thr, 2), [[1.0, nan, 0.0, 1.0, nan, nan]])
    np.testing.assert_array_equal(window_events(y, thr, 1), [[1.0, nan, 0.0, 0.0, 1.0, nan]])


def test_window_events_compares_the_window_with_the_threshold_set_at_its_origin():
    y = np.array([[0.0, 6.0, 6.0, 6.0]])
    thr = np.array([[10.0, 5.0, np.nan, 1.0]])
    # t=0 below 10; t=1 crosses 5; t=2 has no threshold although month 3 is large
    np.testing.assert_array_equal(window_events(y, thr, 1), [[0.0, 1.0, np.nan, np.nan]])


def test_window_events_reaching_the_threshold_counts_as_a_crossing():
    y = np.array([[0.0, 4.0]])
    assert window_events(y, np.full(y.shape, 4.0), 1)[0, 0] == 1.0


# --------------------------------------------------------------------------- probabilities


@pytest.mark.parametrize("levels", [[0.1, 0.5, 0.9], [0.05, 0.25, 0.5, 0.75, 0.95]])
def test_exceedance_probability_is_the_survival_of_each_level_when_the_threshold_is_that_quantile(levels):
    q = np.array([[10.0 * (j + 1) ** 2 for j in range(len(levels))]] * len(levels))
    p = exceedance_probability(q, levels, np.diag(q))
    np.testing.assert_allclose(p, 1 - np.asarray(levels), atol=1e-12)


def test_exceedance_probability_is_nan_when_a_quantile_or_the_threshold_is_missing():
    q = np.array([[10.0, np.nan, 30.0], [10.0, 20.0, 30.0]])
    p = exceedance_probability(q, LEVELS, np.array([15.0, np.nan]))
    assert np.isnan(p).all()


def test_exceedance_probability_is_about_zero_when_every_quantile_is_zero_and_the_threshold_positive():
    p = exceedance_probability(np.zeros((2, 3)), LEVELS, np.array([1.0, 1000.0]))
    assert (p < 1e-6).all()


def test_exceedance_probability_is_one_when_the_threshold_is_zero():
    q = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 10.0], [10.0, 20.0, 30.0]])
    np.testing.assert_allclose(exceedance_probability(q, LEVELS, np.zeros(3)), 1.0)


def test_exceedance_probability_is_a_step_when_there_is_one_quantile():
    p = exceedance_probability(np.array([[10.0]] * 3), [0.5], np.array([5.0, 10.0, 11.0]))
    np.testing.assert_array_equal(p, [1.0, 1.0, 0.0])


sorted_quantiles = hnp.arrays(float, 3, elements=st.one_of(st.floats(0, 1e5), st.sampled_from([0.0, 7.0, 100.0])))


@settings(max_examples=200, deadline=None)
@given(q=sorted_quantiles, a=st.floats(0, 2e5), b=st.floats(0, 2e5),
       levels=st.sampled_from([[0.1, 0.5, 0.9], [0.05, 0.5, 0.95], [0.25, 0.75]]))
def test_exceedance_probability_never_rises_with_the_threshold_and_stays_in_zero_one(q, a, b, levels):
    row = np.sort(q)[: len(levels)][None, :]
    lo, hi = min(a, b), max(a, b)
    p = exceedance_probability(np.repeat(row, 2, axis=0), levels, np.array([lo, hi]))
    assert np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()
    assert p[0] >= p[1] - 1e-12


# --------------------------------------------------------------------------- recalibration


def miscalibrated(n: int, seed: int, power: float = 3.0):
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.02, 0.98, n)
    return truth ** power, (rng.random(n) < truth).astype(float)


def brier(p, y) -> float:
    return float(np.mean((p - y) ** 2))


def test_platt_calibrator_is_the_identity_when_there_are_too_few_events():
    p = np.linspace(0.05, 0.95, 40)
    y = np.zeros(40)
    y[:9] = 1  # nine events: fewer than ten
    cal = PlattCalibrator().fit(p, y)
    assert not cal.fitted_ and cal.n_events_ == 9
    np.testing.assert_array_equal(cal.transform(p), p)


def test_platt_calibrator_lowers_the_brier_score_when_probabilities_are_miscalibrated():
    p, y = miscalibrated(2000, 1)
    p_new, y_new = miscalibrated(2000, 2)
    cal = PlattCalibrator().fit(p, y)
    assert cal.fitted_
    assert brier(cal.transform(p_new), y_new) < brier(p_new, y_new) - 0.01
    out = cal.transform(np.array([0.3, np.nan]))
    assert 0 < out[0] < 1 and np.isnan(out[1])


def test_recalibrator_passes_through_when_never_and_fits_when_always():
    p, y = miscalibrated(600, 3)
    origin = np.repeat(np.arange(6), 100)
    never = recalibrator(p, y, origin, mode="never")
    assert not never.fitted_
    np.testing.assert_array_equal(never.transform(p), p)
    assert recalibrator(p, y, origin, mode="always").fitted_


def test_recalibrator_fits_when_auto_and_recalibration_helps_on_recent_origins():
    p, y = miscalibrated(900, 4)
    assert recalibrator(p, y, np.repeat(np.arange(9), 100), mode="auto").fitted_


def test_recalibrator_passes_through_when_auto_and_recalibration_hurts_on_recent_origins():
    early_p, early_y = miscalibrated(600, 5, power=3.0)   # early origins: far too low
    late_p, late_y = miscalibrated(300, 6, power=1.0)     # recent origins: already reliable
    p, y = np.concatenate([early_p, late_p]), np.concatenate([early_y, late_y])
    cal = recalibrator(p, y, np.repeat(np.arange(9), 100), mode="auto")
    assert not cal.fitted_
    np.testing.assert_array_equal(cal.transform(p), p)


def test_recalibrator_refuses_an_unknown_mode():
    with pytest.raises(ValueError, match=re.escape(
            "recalibrate must be one of ('always', 'auto', 'never'), got 'sometimes'")):
        recalibrator(np.array([0.5]), np.array([1.0]), np.array([0]), mode="sometimes")


# --------------------------------------------------------------------------- scores


def signal_rows(signal: dict[str, list], event: dict[str, list], *, probability=None, rank=None,
                role="scored", start="2020-01-01") -> pd.DataFrame:
    rows = []
    for area, flags in signal.items():
        for i, (s, e) in enumerate(zip(flags, event[area])):
            p = 0.8 if s else 0.2
            if probability is not None:
                p = probability[area][i]
            rows.append({"trigger": "t", "lead": 1, "route": "forecast",
                         "origin": pd.Timestamp(start) + pd.DateOffset(months=i), "area": area,
                         "role": role, "event": e, "probability": p, "probability_raw": p,
                         "signal": bool(s), "climatology": 0.25,
                         "rank": np.nan if rank is None else rank[area][i]})
    return pd.DataFrame(rows)


nan = np.nan
SIG = {"A": [1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
       "B": [0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0]}
EVT = {"A": [1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0],
       "B": [0, 0, 0, 0, 1, 1, nan, 0, 1, 0, 0, 0]}


def test_trigger_metrics_counts_hits_misses_false_alarms_and_activations_on_a_hand_made_table():
    signals = pd.concat([signal_rows(SIG, EVT),
                         # calibration origins are not scored however wrong they were
                         signal_rows({"A": [1, 1]}, {"A": [0, 0]}, role="calibration", start="2019-01-01")])
    m = trigger_metrics(signals).set_index(["trigger", "lead", "route"]).loc[("t", 1, "forecast")]
    # judged rows: 23 (B's seventh origin has an unobserved window); events: A 3, B 3
    # signals judged: A 3 (origins 0, 1, 4), B 3 (3, 4, 5; origin 6 is not judged)
    # hits: A at 0 and 4, B at 4 and 5
    assert (m["n"], m["events"], m["signals"], m["hits"], m["misses"], m["false_alarms"]) == (23, 6, 6, 4, 2, 2)
    assert m["hit_rate"] == pytest.approx(4 / 6) and m["false_alarm_ratio"] == pytest.approx(2 / 6)
    assert m["base_rate"] == pytest.approx(6 / 23)
    # onsets: A at 0 and 4, B at 3 (one run 3..6): three releases over one year and two areas
    assert m["activations"] == 3 and m["years"] == 1 and m["areas"] == 2
    assert m["return_period"] == pytest.approx((1 + 1) / (3 / 2))
    # crossing onsets: A at 0, 3; B at 4, 8
    assert m["event_return_period"] == pytest.approx((1 + 1) / (4 / 2))
    judged = signal_rows(SIG, EVT).dropna(subset=["event"])
    expected_brier = brier(judged["probability"].to_numpy(), judged["event"].to_numpy())
    assert m["brier"] == pytest.approx(expected_brier)
    assert m["brier_skill"] == pytest.approx(1 - expected_brier / brier(np.full(23, 0.25), judged["event"].to_numpy()))


def test_trigger_metrics_counts_the_years_the_origins_span_when_origins_are_quarterly():
    signals = signal_rows({"A": [1, 0] * 6}, {"A": [1, 0] * 6})
    signals["origin"] = [pd.Timestamp("2020-01-01") + pd.DateOffset(months=3 * i) for i in range(12)]
    m = trigger_metrics(signals).iloc[0]
    assert m["years"] == 3 and m["activations"] == 6
    assert m["return_period"] == pytest.approx((3 + 1) / 6)


def test_trigger_metrics_gives_an_infinite_return_period_when_the_trigger_never_fires():
    signals = signal_rows({"A": [0] * 6}, {"A": [1, 0, 0, 1, 0, 0]})
    m = trigger_metrics(signals).iloc[0]
    assert m["activations"] == 0 and m["return_period"] == np.inf
    assert m["hit_rate"] == 0 and np.isnan(m["false_alarm_ratio"])


def test_trigger_metrics_precision_and_recall_at_k_average_over_origins_per_the_definition():
    event = {"A": [1, 0, 0, nan], "B": [0, 0, 0, 1], "C": [1, 1, 0, 0]}
    rank = {"A": [1, 2, 1, 1], "B": [2, 1, 2, 2], "C": [3, nan, 3, 3]}
    signals = signal_rows({a: [0] * 4 for a in event}, event, rank=rank)
    m = trigger_metrics(signals, k=2).iloc[0]
    # top 2 per origin: (A, B) 1 of 2 crossed, 1 of 2 crossings; (B, A) none, 0 of 1 (C, unranked,
    # crossed); (A, B) none and no crossing (left out of recall); (A, B) with A's window unobserved:
    # B, the one known, crossed (1 of 1) and holds the origin's one crossing
    assert m["precision_at_2"] == pytest.approx((0.5 + 0 + 0 + 1) / 4)
    assert m["recall_at_2"] == pytest.approx((0.5 + 0 + 1) / 3)


def test_drift_table_gives_a_small_p_value_when_the_signal_rate_changes_between_halves():
    areas = [f"X{i}" for i in range(10)]
    changed = signal_rows({a: [0] * 6 + [1] * 6 for a in areas}, {a: [0] * 12 for a in areas})
    steady = signal_rows({a: [0, 1] * 6 for a in areas}, {a: [0] * 12 for a in areas})
    d = drift_table(changed).iloc[0]
    assert d["signal_rate_early"] == 0 and d["signal_rate_late"] == 1 and d["p_value"] < 1e-6
    assert d["early"] == "2020-01..2020-06"
    assert drift_table(steady).iloc[0]["p_value"] == pytest.approx(1.0)


def test_reliability_table_bins_probabilities_in_equal_width_bins_with_observed_frequencies():
    p = {"A": [0.05, 0.15, 0.95, 1.0, 0.5, 0.0]}
    signals = signal_rows({"A": [0] * 6}, {"A": [0, 1, 1, 1, nan, 0]}, probability=p)
    table = reliability_table(signals, bins=10)
    cal = table[table["kind"] == "calibrated"].set_index("bin")
    assert list(cal.index) == [0, 1, 9]  # the unobserved window (0.5) is not binned
    assert cal.loc[0, "n"] == 2 and cal.loc[0, "predicted"] == pytest.approx(0.025) and cal.loc[0, "observed"] == 0
    assert cal.loc[9, "n"] == 2 and cal.loc[9, "observed"] == 1
    assert (cal.loc[1, "lower"], cal.loc[1, "upper"]) == pytest.approx((0.1, 0.2))
    assert set(table["kind"]) == {"calibrated", "raw"}


# --------------------------------------------------------------------------- ranking


def test_rank_areas_shares_ranks_between_equal_scores_and_leaves_unassessed_unranked():
    frame = pd.DataFrame({"origin": 0, "score": [9.0, 5.0, 5.0, 1.0, 99.0, 99.0],
                          "probability": [0.9, 0.5, 0.5, 0.1, 0.9, np.nan],
                          "status": ["ok"] * 4 + ["stale: no data since 2020-01", "ok"]})
    np.testing.assert_array_equal(rank_areas(frame, ["origin"]), [1, 2, 2, 4, np.nan, np.nan])


def test_prioritize_ranks_equal_scores_alike_and_lists_stale_and_thresholdless_areas_last():
    cube = hand_cube(population=[10_000] * 5 + [np.nan], stale=["E"])
    table = prioritize_areas(hand_forecasts(QUANTILES), cube, POP, 3, quantiles=LEVELS)
    assert list(table.columns) == COLUMNS
    assert list(table["area"]) == ["A", "B", "C", "D", "E", "F"]
    np.testing.assert_array_equal(table["rank"], [1, 2, 2, 4, np.nan, np.nan])
    status = dict(zip(table["area"], table["status"]))
    assert status["E"] == "stale: no data since 2021-04"
    assert status["F"] == "no threshold: population unknown"
    assert {status[a] for a in "ABCD"} == {"ok"}
    assert table.loc[table["area"] == "A", "expected"].item() == 450
    assert table.loc[table["area"] == "F", "last_data"].item() == "2021-12"
    assert table.loc[table["area"] == "E", "last_data"].item() == "2021-04"
    np.testing.assert_array_equal(table["threshold"], [100, 100, 100, 100, 100, np.nan])
    assert list(table["area_name"][:2]) == ["District A", "District B"] and table["region"][0] == "North"
    assert (table["trigger"] == "pop").all() and (table["lead"] == 3).all()
    ok = table["rank"].notna()
    np.testing.assert_allclose(table.loc[ok, "score"], table.loc[ok, "probability"] * table.loc[ok, "expected"])
    assert (table["signal"] == (table["probability"] >= 0.5)).all()


def test_prioritize_puts_the_areas_expected_to_cross_first_then_the_others_each_by_score():
    from forecast.triggers._prioritize import _signal_first

    frame = pd.DataFrame({"score": [900.0, 50.0, 40.0, 40.0, 5.0, 1.0, 99.0],
                          "probability": [0.3, 0.6, 0.7, 0.7, 0.9, 0.2, np.nan],
                          "signal": [False, True, True, True, True, False, False],
                          "status": ["ok"] * 5 + ["ok (population unknown: weight 1)", "ok"]})
    # the large score below the activation probability comes after every signal
    np.testing.assert_array_equal(_signal_first(frame), [5, 1, 2, 2, 4, 6, np.nan])


def test_prioritize_gives_no_rank_and_says_why_when_history_is_too_short_for_a_percentile():
    trigger = TriggerSpec(name="s", kind="percentile", value=90, min_history=30, leads=[1])
    table = prioritize_areas(hand_forecasts(QUANTILES, horizons=(1,)), hand_cube(), trigger, 1, quantiles=LEVELS)
    assert table["rank"].isna().all()
    assert set(table["status"]) == {"no threshold: fewer than 30 months of history"}


def test_prioritize_scales_the_score_by_the_weight_and_flags_an_area_without_one():
    cube = hand_cube(population=[10_000] * 6, weights=[2, 1, 1, np.nan, 1, 1])
    table = prioritize_areas(hand_forecasts(QUANTILES), cube, POP, 3, quantiles=LEVELS, weight="idp_share")
    by = table.set_index("area")
    assert by.loc["A", "weight"] == pytest.approx(2 / 1.2) and by.loc["B", "weight"] == pytest.approx(1 / 1.2)
    assert by.loc["D", "weight"] == 1.0 and by.loc["D", "status"] == "ok (idp_share unknown: weight 1)"
    assert np.isfinite(by.loc["D", "rank"])
    np.testing.assert_allclose(by["score"], by["probability"] * by["expected"] * by["weight"])
    unweighted = prioritize_areas(hand_forecasts(QUANTILES), cube, POP, 3, quantiles=LEVELS).set_index("area")
    assert by.loc["A", "score"] == pytest.approx(unweighted.loc["A", "score"] * 2 / 1.2)


def test_prioritize_names_the_cubes_area_coords_when_the_weight_is_unknown():
    cube = hand_cube(population=[10_000] * 6)
    with pytest.raises(ForecastError) as err:
        prioritize_areas(hand_forecasts(QUANTILES), cube, POP, 3, quantiles=LEVELS, weight="idps")
    assert str(err.value) == ("weight 'idps' is not an area coordinate of the cube (area_name, region, "
                              "population) nor an area x month variable (arrivals)")


def test_prioritize_weights_by_the_latest_observed_value_of_a_variable_such_as_the_idp_stock():
    cube = hand_cube(population=[10_000] * 6)
    stock = np.full((6, cube.sizes["time"]), np.nan)
    stock[:, 3] = [100, 100, 100, 100, 100, 100]
    stock[0, 10] = 300  # A's latest round counts, not its first
    cube["idp_stock"] = (("area", "time"), stock)
    by = prioritize_areas(hand_forecasts(QUANTILES), cube, POP, 3, quantiles=LEVELS,
                          weight="idp_stock").set_index("area")
    mean = (300 + 5 * 100) / 6
    assert by.loc["A", "weight"] == pytest.approx(300 / mean) and by.loc["B", "weight"] == pytest.approx(100 / mean)


def test_prioritize_refuses_a_lead_the_trigger_does_not_have():
    cube = hand_cube(population=[10_000] * 6)
    with pytest.raises(ForecastError) as err:
        prioritize_areas(hand_forecasts(QUANTILES), cube, POP, 2, quantiles=LEVELS)
    assert str(err.value) == "trigger 'pop' has leads [1, 3]; lead 2 is not one of them"


def test_prioritize_lists_an_area_never_observed_when_the_forecasts_leave_it_out():
    cube = hand_cube(population=[10_000] * 6, never=["F"])
    forecasts = hand_forecasts({a: q for a, q in QUANTILES.items() if a != "F"})
    table = prioritize_areas(forecasts, cube, POP, 3, quantiles=LEVELS, missing_target="skip")
    assert sorted(table["area"]) == ["A", "B", "C", "D", "E", "F"]
    assert table["area"].iloc[-1] == "F" and table["status"].iloc[-1] == "no data yet"


# --------------------------------------------------------------------------- signals end to end


def test_evaluate_triggers_gives_one_signal_per_trigger_lead_route_origin_and_area(evaluation, result, cube):
    s = evaluation.signals
    assert set(s.columns) == SIGNAL_COLUMNS
    n_origins = result.forecasts["origin"].nunique()
    assert len(s) == 1 * 2 * 3 * n_origins * cube.sizes["area"]
    assert not s.duplicated(KEYS).any()
    assert set(s["role"]) == {"calibration", "scored"} and set(s["route"]) == set(ROUTES)
    assert ((s["probability"] >= 0) & (s["probability"] <= 1) | s["probability"].isna()).all()
    assert (s["signal"] == (s["probability"] >= SURGE.probability)).all()
    # where too few outcomes were known the probability is the route's own
    raw = s[~s["calibrated"]]
    np.testing.assert_array_equal(raw["probability"], raw["probability_raw"])
    assert s["calibrated"].any()


def test_evaluate_triggers_metrics_have_one_row_per_trigger_lead_and_route(evaluation):
    m = evaluation.metrics()
    assert list(m.columns) == METRIC_COLUMNS
    assert sorted(map(tuple, m[["trigger", "lead", "route"]].to_numpy())) == sorted(
        ("surge", lead, route) for lead in (1, 3) for route in ROUTES)
    s = evaluation.signals
    for _, row in m.iterrows():
        part = s[(s["lead"] == row["lead"]) & (s["route"] == row["route"]) & (s["role"] == "scored")]
        judged = part.dropna(subset=["event", "probability"])
        assert row["n"] == len(judged)
        assert row["hits"] == (judged["signal"] & judged["event"].eq(1)).sum()
        assert row["events"] == judged["event"].sum()
    assert {"signal_rate_early", "p_value"} <= set(evaluation.drift().columns)
    assert set(evaluation.reliability()["kind"]) == {"calibrated", "raw"}


def test_evaluate_triggers_plots_are_figures(evaluation):
    reliability = evaluation.plot_reliability()
    timeline = evaluation.plot_timeline(lead=3, route="logistic")
    assert isinstance(reliability, Figure) and isinstance(timeline, Figure)
    assert len(reliability.axes) == 2  # one panel per lead
    with pytest.raises(ForecastError, match=re.escape("no trigger 'flood' in this evaluation; it has surge")):
        evaluation.plot_reliability("flood")
    for fig in (reliability, timeline):
        fig.clear()


def test_evaluate_triggers_timeline_refuses_an_unknown_trigger(evaluation):
    with pytest.raises(ForecastError, match="flood"):
        evaluation.plot_timeline("flood").clear()


def test_trigger_signals_expected_arrivals_are_missing_when_the_windows_forecasts_lack_quantiles(evaluation, result):
    f = result.forecasts
    window = f[f["horizon"] <= 3].groupby(["origin", "area"])["q0.5"].apply(lambda q: q.isna().any())
    incomplete = window[window].index
    assert len(incomplete) > 0  # the first calibration origins have no calibrated intervals yet
    s = evaluation.signals.set_index(["origin", "area"])
    lead3 = s[(s["lead"] == 3) & (s["route"] == "forecast")]
    assert lead3.loc[incomplete, ["expected", "lower", "upper"]].isna().all().all()


def test_trigger_signals_refuses_an_unknown_route_model_or_recalibration_and_a_lead_too_long(result, cube):
    with pytest.raises(ForecastError) as err:
        trigger_signals(result, cube, [SURGE], routes=("forecast", "forest"))
    assert str(err.value) == "unknown route(s) ['forest']; known: forecast, lightgbm, logistic"
    with pytest.raises(ForecastError) as err:
        trigger_signals(result, cube, [SURGE], model="prophet")
    assert str(err.value) == "model 'prophet' is not in the backtest; it has lgbm"
    with pytest.raises(ForecastError) as err:
        trigger_signals(result, cube, [SURGE], recalibrate="sometimes")
    assert str(err.value) == "recalibrate must be one of always, auto, never, got 'sometimes'"
    long = SURGE.model_copy(update={"leads": [1, 6]})
    with pytest.raises(ForecastError) as err:
        evaluate_triggers(result, cube, [long], routes=("forecast",))
    assert str(err.value) == ("trigger 'surge' has lead 6, which needs forecasts 1..6 months ahead; "
                              "'lgbm' has horizons [1, 2, 3] (missing [4, 5, 6])")


def test_trigger_signals_rank_the_signals_of_each_origin_from_one(evaluation):
    s = evaluation.signals
    ranked = s[s["rank"].notna()]
    assert len(ranked) > 0
    assert (ranked.groupby(["lead", "route", "origin"])["rank"].min() == 1).all()
    assert s.loc[s["probability"].isna(), "rank"].isna().all()


# --------------------------------------------------------------------------- leakage


def test_trigger_signals_at_an_origin_do_not_change_when_later_months_change(evaluation, result, cube):
    """Thresholds, raw and recalibrated probabilities of every route, climatology and expected
    arrivals at origin o read months up to o only; the outcome reads o+1..o+lead."""
    origins = sorted(result.forecasts["origin"].unique())
    cut = origins[6]
    poisoned = cube.copy(deep=True)
    later = poisoned["time"] > cut
    for name, var in poisoned.data_vars.items():
        if "time" in var.dims and var.dtype.kind == "f":
            poisoned[name] = var.where(~later, var * 100 + 10_000)
    again = backtest(poisoned, [SPEC], folds=FOLDS, baselines=False)
    moved = trigger_signals(again, poisoned, [SURGE], routes=ROUTES).sort_values(KEYS).reset_index(drop=True)
    clean = evaluation.signals.sort_values(KEYS).reset_index(drop=True)
    pd.testing.assert_frame_equal(clean[KEYS], moved[KEYS])

    before = (clean["origin"] <= cut).to_numpy()
    assert clean.loc[before, "calibrated"].any()  # the Platt step is exercised, not skipped
    assert set(clean.loc[before, "route"]) == set(ROUTES)
    for column in ("threshold", "probability_raw", "probability", "climatology", "expected", "lower",
                   "upper", "score", "rank"):
        np.testing.assert_array_equal(clean.loc[before, column].to_numpy(float),
                                      moved.loc[before, column].to_numpy(float), err_msg=column)
    assert (clean.loc[before, ["signal", "calibrated", "status"]].to_numpy()
            == moved.loc[before, ["signal", "calibrated", "status"]].to_numpy()).all()
    # the outcome is known only once its window has passed
    month = pd.DatetimeIndex(cube["time"].values)
    closed = month.get_indexer(clean["origin"]) + clean["lead"].to_numpy() <= month.get_loc(cut)
    np.testing.assert_array_equal(clean.loc[closed, "event"], moved.loc[closed, "event"])
    # and the poison did reach what comes after the cut
    after = ~before
    assert not np.allclose(clean.loc[after, "threshold"], moved.loc[after, "threshold"])
    for route in ROUTES:
        later_rows = after & (clean["route"] == route).to_numpy()
        assert not np.allclose(clean.loc[later_rows, "probability_raw"], moved.loc[later_rows, "probability_raw"],
                               equal_nan=True), route
    assert not np.array_equal(clean.loc[~closed, "event"], moved.loc[~closed, "event"], equal_nan=True)


# --------------------------------------------------------------------------- trained model


def test_trained_model_prioritize_ranks_every_area_from_the_last_month(cube):
    calibration = RollingOrigin(n_origins=6, calibration_origins=0, min_train=18)
    model = train(cube, SPEC, calibration=calibration, triggers=[SURGE])
    assert set(model.trigger_calibration) == {("surge", 1), ("surge", 3)}
    table = model.prioritize(cube)
    assert list(table.columns) == COLUMNS
    assert len(table) == cube.sizes["area"] and set(table["area"]) == set(cube["area"].values.astype(str))
    assert table["rank"].iloc[0] == 1
    ranks = table["rank"].to_numpy()
    ranked = np.isfinite(ranks)
    assert not (~ranked[:-1] & ranked[1:]).any()  # unranked areas come after every ranked one
    assert (np.diff(ranks[ranked]) >= 0).all()
    assert (table["lead"] == 1).all() and (table["trigger"] == "surge").all()
    assert (model.prioritize(cube, "surge", 3)["lead"] == 3).all()
    with pytest.raises(ForecastError, match=re.escape("trigger 'surge' has leads [1, 3]; lead 2 is not one of them")):
        model.prioritize(cube, lead=2)
    with pytest.raises(ForecastError, match=re.escape("no trigger 'flood'; this model has surge")):
        model.prioritize(cube, "flood")


def test_trained_model_prioritize_refuses_when_the_model_was_trained_without_triggers(cube):
    model = TrainedModel(spec=SPEC, fitted=None, shifts={})
    with pytest.raises(ForecastError) as err:
        model.prioritize(cube)
    assert str(err.value) == ("this model was trained without triggers; train it with "
                              "triggers=load_triggers(...) (forecast train --triggers FILE)")
