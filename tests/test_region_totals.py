"""Totals of regions and the country over a window (issue 20 §2): the districts' means added up,
so regions add up to the country, with intervals calibrated on earlier totals only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from forecast.backtest import NO_PARENT, RollingOrigin, level_groups, score_totals, window_totals
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.models import ModelSpec
from forecast.pipeline import train
from _pipeline import SPEC  # the tiny spec the MLflow tests share

AREAS = [f"A{i:02d}" for i in range(12)]
REGIONS = pd.Series([f"R{i % 3}" for i in range(12)], index=AREAS)
COUNTRY = pd.Series("XX", index=AREAS)


def _forecasts(n_origins: int = 40, seed: int = 0) -> pd.DataFrame:
    """A backtest's forecasts whose outcomes scatter around the mean (exchangeable errors)."""
    rng = np.random.default_rng(seed)
    origins = pd.date_range("2015-01-01", periods=n_origins, freq="MS")
    rows = []
    level = rng.uniform(50, 500, len(AREAS))
    for i, o in enumerate(origins):
        for h in range(1, 4):
            for a, area in enumerate(AREAS):
                mean = level[a] * (1 + 0.1 * h)
                rows.append({"area": area, "origin": o, "horizon": h, "time": o + pd.DateOffset(months=h),
                             "mean": mean, "point": 0.5 * mean, "scale": level[a] / 5,
                             "actual": max(mean + rng.normal(0, level[a] / 4), 0.0),
                             "role": "calibration" if i < n_origins // 2 else "scored"})
    return pd.DataFrame(rows)


def test_regions_add_up_to_the_country_and_each_window_sums_its_months():
    f = _forecasts()
    regions, country = window_totals(f, REGIONS, 3), window_totals(f, COUNTRY, 3, finer=REGIONS)
    summed = regions.groupby("origin")["mean"].sum()
    np.testing.assert_allclose(country.set_index("origin")["mean"].loc[summed.index], summed, rtol=1e-12)
    one = f[(f["origin"] == f["origin"].min()) & f["area"].isin(REGIONS.index[REGIONS == "R1"])]
    first = regions[(regions["group"] == "R1") & (regions["origin"] == f["origin"].min())].iloc[0]
    assert first["mean"] == pytest.approx(one["mean"].sum()) and first["actual"] == pytest.approx(one["actual"].sum())
    assert first["n_areas"] == 4 and first["lead"] == 3


def test_intervals_cover_about_80_percent_and_widen_with_the_past_errors():
    f = _forecasts(n_origins=60)
    totals = window_totals(f, REGIONS, 2)
    scored = totals[(totals["role"] == "scored") & totals["lower"].notna()]
    inside = (scored["actual"] >= scored["lower"]) & (scored["actual"] <= scored["upper"])
    assert len(scored) == 90 and 0.65 <= inside.mean() <= 0.95
    scores = score_totals(totals)
    assert (scores["n"], scores["with_interval"]) == (90, 90) and scores["coverage80"] == pytest.approx(inside.mean())
    assert scores["level_ratio"] == pytest.approx(scored["mean"].sum() / scored["actual"].sum())
    assert (scored["lower"] <= scored["mean"]).all() and (scored["mean"] <= scored["upper"]).all()
    noisy = f.assign(actual=f["mean"] + 3 * (f["actual"] - f["mean"]))
    wide = window_totals(noisy, REGIONS, 2)
    width = lambda t: (t["upper"] - t["lower"])[t["role"] == "scored"].mean()  # noqa: E731
    assert width(wide) > 2 * width(totals)


def test_an_interval_reads_only_windows_known_at_its_origin():
    f = _forecasts()
    origin = sorted(f["origin"].unique())[25]
    before = window_totals(f, REGIONS, 3)
    later = f["time"] > origin
    changed = f.assign(actual=np.where(later, f["actual"] * 50, f["actual"]))
    after = window_totals(changed, REGIONS, 3)
    at = lambda t: t[t["origin"] <= origin][["lower", "upper"]].to_numpy()  # noqa: E731
    np.testing.assert_array_equal(at(before), at(after))
    # a window ending after its origin is not counted: the first origin has no earlier windows
    assert before.loc[before["origin"] == f["origin"].min(), "n_calibration"].eq(0).all()
    assert not np.array_equal(before[["lower", "upper"]].to_numpy(), after[["lower", "upper"]].to_numpy())


def test_the_country_borrows_the_regions_errors_and_says_so():
    f = _forecasts()
    country = window_totals(f, COUNTRY, 3, finer=REGIONS)
    origins = sorted(f["origin"].unique())
    borrowed = country[country["origin"].between(origins[15], origins[30])]
    assert borrowed["calibrated_by"].eq("finer").all() and borrowed["lower"].notna().all()
    # from its 30th window of its own (origin 32), the country calibrates itself
    last = country[country["origin"] == origins[-1]].iloc[0]
    assert (last["calibrated_by"], last["n_calibration"]) == ("own", 37)
    alone = window_totals(f, COUNTRY, 3)  # without a finer level: no interval until its own 30
    early = alone[alone["origin"] <= origins[30]]
    assert early["lower"].isna().all() and early["calibrated_by"].isna().all()


def test_an_area_without_a_group_is_named_and_a_short_window_refused():
    f = _forecasts(n_origins=4)
    with pytest.raises(ForecastError, match="1 area\\(s\\) have no group to total them in: A11"):
        window_totals(f, REGIONS.drop("A11"), 2)
    with pytest.raises(ForecastError, match="no horizon 4, 5"):
        window_totals(f, REGIONS, 5)


def test_level_groups_reads_the_cube_s_parent_codes():
    cube = make_panel(12, 36, seed=3)
    groups = level_groups(cube)
    assert list(groups) == ["admin1", "national"]
    regions, names = groups["admin1"]
    assert regions.to_dict() == dict(zip(cube["area"].values.astype(str), cube["admin1_pcode"].values.astype(str)))
    assert set(names) == set(regions) and all(isinstance(v, str) for v in names.values())
    # a district whose region is not known is totalled apart, never dropped
    orphaned = cube.assign_coords(admin1_pcode=("area", np.where(np.arange(12) == 4, "", cube["admin1_pcode"].values)))
    regions, names = level_groups(orphaned)["admin1"]
    assert regions.iloc[4] == NO_PARENT and names[NO_PARENT] == NO_PARENT and (regions != NO_PARENT).sum() == 11
    bare = cube.drop_vars(["admin1_pcode", "admin1_name", "admin0_pcode", "admin0_name"])
    assert list(level_groups(bare)) == ["national"] and level_groups(bare)["national"][0].eq("all areas").all()


def test_a_trained_model_totals_its_regions_and_country():
    cube = make_panel(12, 48, seed=9)
    spec = ModelSpec.model_validate(yaml.safe_load(SPEC))
    trained = train(cube, spec, calibration=RollingOrigin(n_origins=8, calibration_origins=0), progress=False)
    totals = trained.totals(cube, 2)
    regions, country = totals[totals["level"] == "admin1"], totals[totals["level"] == "national"].iloc[0]
    forecasts = trained.predict(cube)
    assert country["mean"] == pytest.approx(forecasts.loc[forecasts["horizon"] <= 2, "mean"].sum())
    assert country["mean"] == pytest.approx(regions["mean"].sum())
    assert country["n_areas"] == country["of_areas"] == 12 and regions["name"].notna().all()
    assert (totals["point"] < totals["mean"]).all()  # the medians' sum is the smaller figure
    calibrated = totals[totals["lower"].notna()]
    assert (calibrated["lower"] <= calibrated["mean"]).all() and (calibrated["mean"] <= calibrated["upper"]).all()
    assert trained.total_calibration[("admin1", 2)].n == int(totals.loc[totals["level"] == "admin1", "n_calibration"].iloc[0])
    with pytest.raises(ForecastError, match="no 4-month total"):
        trained.totals(cube, 4)
