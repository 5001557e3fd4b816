"""End to end: a panel whose shocks one group of areas cannot see coming fails the fairness check.

Twenty areas in two regions. Every area has the same rare one-month surges of arrivals. In a
"warned" area, conflict events spike in the two months before each surge, so the trigger
classifier can learn to signal it; in an "unwarned" area surges come out of the blue. When
region B is unwarned, its surges are systematically missed and the fairness check must say
so (hit rate by region, naming B); when both regions are warned, it must pass.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from forecast.backtest import RollingOrigin, backtest
from forecast.fairness import area_groups, fairness_report
from forecast.triggers import TriggerSpec, evaluate_triggers

N_PER_GROUP, N_MONTHS = 10, 72
SHOCK = TriggerSpec(name="shock", kind="absolute", value=500, leads=[2], probability=0.5)
FOLDS = RollingOrigin(n_origins=30, calibration_origins=6, min_train=24)


def _cube(warned_b: bool, seed: int = 3) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    n = 2 * N_PER_GROUP
    arrivals = rng.poisson(40, size=(n, N_MONTHS)).astype(float)
    conflict = rng.poisson(1.0, size=(n, N_MONTHS)).astype(float)
    region = np.array(["A"] * N_PER_GROUP + ["B"] * N_PER_GROUP)
    for a in range(n):
        months = np.flatnonzero(rng.random(N_MONTHS) < 0.1)
        for s in months[months >= 2]:
            arrivals[a, s] = rng.integers(1500, 3000)
            if region[a] == "A" or warned_b:
                conflict[a, s - 2: s] = rng.integers(25, 40, size=2)
    areas = [f"XX{i:02d}" for i in range(n)]
    time = pd.date_range("2017-01-01", periods=N_MONTHS, freq="MS")
    data = {name: (("area", "time"), values) for name, values in
            (("arrivals", arrivals), ("conflict_events", conflict))}
    data.update({f"{name}_observed": (("area", "time"), np.ones_like(values, dtype=bool))
                 for name, values in (("arrivals", arrivals), ("conflict_events", conflict))})
    return xr.Dataset(data, coords={"area": areas, "time": time, "area_name": ("area", areas),
                                    "region": ("area", region)})


def _report(cube):
    result = backtest(cube, [], folds=FOLDS)  # baselines: the classifier route needs no model fit
    evaluation = evaluate_triggers(result, cube, [SHOCK], model="naive", routes=("lightgbm",))
    signals = evaluation.signals[evaluation.signals["probability"].notna()]
    return evaluation, fairness_report(signals, result.scored, area_groups(cube), model="naive")


@pytest.fixture(scope="module")
def unwarned():
    return _report(_cube(warned_b=False))


@pytest.fixture(scope="module")
def warned():
    return _report(_cube(warned_b=True))


def _hit_rate(report, group):
    rows = report.by_group[(report.by_group["group_column"] == "region") & (report.by_group["group"] == group)]
    return float(rows["hit_rate"].iloc[0])


def test_fairness_check_fails_naming_the_group_whose_shocks_are_missed_when_it_gets_no_warning(unwarned):
    evaluation, report = unwarned
    assert _hit_rate(report, "A") > 0.6 > 0.3 > _hit_rate(report, "B")  # the classifier learned A's warning
    assert report.passed is False
    failed = report.disparities[report.disparities["status"] == "failed"]
    hit = failed[(failed["metric"] == "hit_rate") & (failed["group_column"] == "region")]
    assert len(hit) == 1 and hit["worst_group"].iloc[0] == "B" and hit["best_group"].iloc[0] == "A"
    assert any("hit_rate by region" in line and "'B'" in line for line in report.failures)


def test_fairness_check_passes_when_every_group_is_warned_alike(warned):
    evaluation, report = warned
    assert min(_hit_rate(report, "A"), _hit_rate(report, "B")) > 0.6
    assert report.passed is True, report.summary()


def test_overall_trigger_scores_show_skill_only_where_there_is_a_warning(unwarned, warned):
    worse = unwarned[0].metrics().iloc[0]
    better = warned[0].metrics().iloc[0]
    assert better["hit_rate"] > worse["hit_rate"]
    assert better["brier"] < worse["brier"]
