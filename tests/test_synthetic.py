"""The synthetic DTM-style panel: what tests, demos and benchmarks rely on."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecast._names import (
    ADMIN_LEVEL,
    AREA,
    AREA_NAME,
    ARRIVALS,
    CONFLICT_EVENTS,
    CONFLICT_FATALITIES,
    DEPARTURES,
    FLOW,
    FLOW_AREA,
    FLOWS,
    GROUP_COLUMNS,
    IDP_STOCK,
    PARENT_PCODE,
    RETURNS,
    TIME,
    admin_name,
    admin_pcode,
    observed_name,
)
from forecast.cube import flow_table
from forecast.datasets._synthetic import DTM_FIELDS, dtm_export, make_panel

VARIABLES = (ARRIVALS, DEPARTURES, IDP_STOCK, RETURNS, CONFLICT_EVENTS, CONFLICT_FATALITIES,
             "rainfall", "rain_anomaly")
COUNTS = (ARRIVALS, DEPARTURES, IDP_STOCK, RETURNS, CONFLICT_EVENTS, CONFLICT_FATALITIES)
AREA_COORDS = (AREA_NAME, ADMIN_LEVEL, PARENT_PCODE, admin_pcode(0), admin_name(0),
               admin_pcode(1), admin_name(1), *GROUP_COLUMNS)


@pytest.fixture(scope="module")
def panel() -> xr.Dataset:
    return make_panel()


@pytest.fixture(scope="module")
def gappy() -> xr.Dataset:
    return make_panel(60, 48, seed=7, gap_rate=0.3, shock_rate=0.1)


def round_months(p: xr.Dataset) -> np.ndarray:
    return np.flatnonzero(p[observed_name(IDP_STOCK)].any(AREA).values)


def check_layout(p: xr.Dataset, n_areas: int, n_months: int, flows: bool) -> None:
    assert p[AREA].dims == (AREA,) and p.sizes[AREA] == n_areas and p.sizes[TIME] == n_months
    assert p[TIME].dtype == np.dtype("datetime64[ns]")
    assert (pd.DatetimeIndex(p[TIME].values) == pd.date_range(p[TIME].values[0], periods=n_months,
                                                               freq="MS")).all()
    assert len(set(p[AREA].values)) == n_areas
    for name in AREA_COORDS:
        assert p[name].dims == (AREA,), name
    assert p[ADMIN_LEVEL].dtype == np.int64 and (p[ADMIN_LEVEL] == 2).all()
    codes = p[AREA].values.astype(str)
    assert all(re.fullmatch(r"XY\d{4,}", c) for c in codes)
    parents = p[PARENT_PCODE].values.astype(str)
    assert all(c.startswith(parent) for c, parent in zip(codes, parents))
    assert (p[admin_pcode(1)].values == parents).all()
    assert (p[admin_pcode(0)] == "XY").all()
    assert (p["region"].values == p[admin_name(1)].values).all()
    assert set(p["access"].values) <= {"accessible", "hard_to_reach"}
    assert set(p["settlement"].values) <= {"urban", "rural"}
    for name in VARIABLES:
        assert p[name].dims == (AREA, TIME) and p[name].dtype == np.float64, name
        mask = p[observed_name(name)]
        assert mask.dtype == bool and mask.dims == (AREA, TIME)
        assert (mask == p[name].notnull()).all(), name
    for name in COUNTS:
        values = p[name].values[~np.isnan(p[name].values)]
        assert (values >= 0).all() and (values == np.round(values)).all(), name
    assert p[observed_name(IDP_STOCK)].any(AREA).sum() >= 1
    assert (FLOWS in p) == flows
    if flows:
        table = flow_table(p)
        assert p[FLOWS].dims == (FLOW,) and len(table) == p.sizes[FLOW]  # records, not cells
        assert (p[FLOW_AREA].values == codes).all()
        np.testing.assert_array_equal(table.arrivals(), p[ARRIVALS].values)
    assert p.attrs == {"area_key": "pcode", "admin_level": 2, "sensitivity": "low",
                       "source": "synthetic", "seed": p.attrs["seed"]}


def test_make_panel_is_identical_when_seed_is_repeated():
    xr.testing.assert_identical(make_panel(25, 30, seed=3), make_panel(25, 30, seed=3))


def test_make_panel_differs_when_seed_differs():
    a, b = make_panel(25, 30, seed=3), make_panel(25, 30, seed=4)
    assert not a[ARRIVALS].equals(b[ARRIVALS])
    assert not a[RETURNS].equals(b[RETURNS])


def test_make_panel_follows_cube_layout_when_defaults_are_used(panel):
    check_layout(panel, 200, 96, flows=True)
    assert str(panel[TIME].values[0])[:10] == "2016-01-01"
    assert panel[AREA].values[0] == "XY0101" and panel[AREA_NAME].values[0] == "District 0101"
    assert panel.attrs["seed"] == 0
    assert len(set(panel[admin_pcode(1)].values)) == 7     # round(sqrt(200) / 2)
    assert {"accessible", "hard_to_reach"} == set(panel["access"].values)
    assert {"urban", "rural"} == set(panel["settlement"].values)


def test_make_panel_widens_pcodes_when_regions_hold_over_99_districts():
    p = make_panel(250, 2, n_regions=2)
    assert p[AREA].values[0] == "XY01001" and p[PARENT_PCODE].values[-1] == "XY02"


def test_make_panel_keeps_unassessed_cells_nan_when_gaps_are_drawn(gappy):
    for name in (ARRIVALS, DEPARTURES):
        share = float(gappy[name].isnull().mean())
        assert 0.25 < share < 0.35, (name, share)
        hidden = ~gappy[observed_name(name)]
        assert gappy[name].where(hidden).isnull().all()
    for name in (RETURNS, CONFLICT_EVENTS, CONFLICT_FATALITIES, "rainfall", "rain_anomaly"):
        assert gappy[observed_name(name)].all(), name
    hard = gappy["access"] == "hard_to_reach"
    missed = gappy[ARRIVALS].isnull().mean(TIME)
    assert float(missed.where(hard).mean()) > float(missed.where(~hard).mean())


def test_make_panel_observes_every_cell_when_gap_rate_is_zero():
    p = make_panel(30, 20, gap_rate=0.0)
    assert p[observed_name(ARRIVALS)].all() and p[observed_name(DEPARTURES)].all()


@pytest.mark.parametrize("round_every", [(2, 3), (1, 1), (4, 6)])
def test_make_panel_observes_stock_only_in_round_months_when_rounds_are_drawn(round_every):
    lo, hi = round_every
    p = make_panel(20, 60, seed=5, round_every=round_every)
    seen = p[observed_name(IDP_STOCK)].values
    rounds = round_months(p)
    assert seen[:, rounds].all() and not seen[:, np.setdiff1d(np.arange(60), rounds)].any()
    assert rounds[0] < lo and 60 - rounds[-1] <= hi
    assert ((np.diff(rounds) >= lo) & (np.diff(rounds) <= hi)).all()


def test_make_panel_flows_add_up_to_arrivals_and_departures_when_observed(gappy):
    table = flow_table(gappy)
    np.testing.assert_array_equal(table.arrivals(), gappy[ARRIVALS].values)  # NaN exactly where unassessed
    outflow = np.nan_to_num(table.departures())
    seen = gappy[observed_name(DEPARTURES)].values
    np.testing.assert_array_equal(outflow[seen], gappy[DEPARTURES].values[seen])
    assert gappy[observed_name(ARRIVALS)].values[table.destination, table.time].all()  # none into unassessed


def test_make_panel_flows_only_link_neighbours_when_simulated(panel):
    linked = (flow_table(panel).dense().fillna(0) > 0).any(TIME).values
    assert linked.sum(axis=1).max() <= 5                       # self + 4 grid neighbours
    assert linked.diagonal().all()


def test_make_panel_spreads_shocks_when_shock_rate_is_high():
    calm, shocked = make_panel(40, 60, shock_rate=0.0), make_panel(40, 60, shock_rate=0.3)
    assert float(shocked[ARRIVALS].mean()) > 1.5 * float(calm[ARRIVALS].mean())


def test_make_panel_adds_flows_unless_asked_not_to():
    assert FLOWS in make_panel(20, 2)
    assert FLOWS not in make_panel(20, 2, with_flows=False)


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(n_areas=st.integers(1, 30), n_months=st.integers(1, 40), seed=st.integers(0, 2**32),
       lo=st.integers(1, 4), extra=st.integers(0, 3), gap_rate=st.floats(0, 0.9),
       shock_rate=st.floats(0, 0.5))
def test_make_panel_holds_layout_when_size_is_small(n_areas, n_months, seed, lo, extra, gap_rate, shock_rate):
    p = make_panel(n_areas, n_months, seed=seed, round_every=(lo, lo + extra), gap_rate=gap_rate,
                   shock_rate=shock_rate)
    check_layout(p, n_areas, n_months, flows=True)
    rounds = round_months(p)
    assert rounds[0] < lo and (np.diff(rounds) >= lo).all() and (np.diff(rounds) <= lo + extra).all()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_areas": 0}, "n_areas must be >= 1; got 0"),
    ({"n_areas": 2.5}, "n_areas must be an integer >= 1; got 2.5"),
    ({"n_months": 0}, "n_months must be >= 1; got 0"),
    ({"seed": -1}, "seed must be >= 0; got -1"),
    ({"n_regions": 0}, "n_regions must be >= 1; got 0"),
    ({"n_areas": 5, "n_regions": 6}, "n_regions must be at most n_areas (5); got 6"),
    ({"gap_rate": 1.0}, "gap_rate must be a number in [0, 1); got 1.0"),
    ({"shock_rate": -0.1}, "shock_rate must be a number in [0, 1); got -0.1"),
    ({"round_every": (3, 2)}, "1 <= shortest <= longest, e.g. (2, 3); got (3, 2)"),
    ({"round_every": (0, 2)}, "got (0, 2)"),
    ({"start": "not a month"}, "start must be a month such as '2016-01'; got 'not a month'"),
    ({"start": "2016-01-15"}, "start must name a month ('2016-01') or its first day; got '2016-01-15'"),
    ({"with_flows": "yes"}, "with_flows must be True or False; got 'yes'"),
])
def test_make_panel_raises_when_argument_is_invalid(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make_panel(**{"n_areas": 10, "n_months": 5, **kwargs})


def test_make_panel_starts_at_first_day_when_start_is_a_date():
    p = make_panel(3, 3, start="2020-11-01")
    assert [str(t)[:10] for t in p[TIME].values] == ["2020-11-01", "2020-12-01", "2021-01-01"]


def test_dtm_export_has_one_row_per_observed_stock_cell(panel):
    table = dtm_export(panel)
    assert list(table.columns) == list(DTM_FIELDS)
    assert len(table) == int(panel[observed_name(IDP_STOCK)].sum())
    cells = panel[IDP_STOCK].sel({AREA: xr.DataArray(table["admin2Pcode"].to_numpy()),
                                   TIME: xr.DataArray(pd.to_datetime(table["reportingDate"]).to_numpy()
                                                      .astype("datetime64[M]").astype("datetime64[ns]"))})
    np.testing.assert_array_equal(cells.values, table["numPresentIdpInd"].to_numpy())
    assert table["numPresentIdpInd"].dtype == np.int64
    assert (table["reportingDate"].str[8:] == "15").all()
    dates = pd.to_datetime(table["reportingDate"])
    assert (dates.dt.year == table["yearReportingDate"]).all()
    assert (dates.dt.month == table["monthReportingDate"]).all()
    names = panel[AREA_NAME].to_series()
    assert (table["admin2Name"].to_numpy() == names.loc[table["admin2Pcode"]].to_numpy()).all()
    assert (table["admin1Pcode"] == table["admin2Pcode"].str[:4]).all()
    assert set(table["operation"]) == {"Synthetic"} and set(table["assessmentType"]) == {"BA"}


def test_dtm_export_numbers_rounds_globally_when_months_repeat_across_areas(panel):
    table = dtm_export(panel)
    n_rounds = len(round_months(panel))
    for _, rows in table.groupby("admin2Pcode"):
        assert rows["roundNumber"].tolist() == list(range(1, n_rounds + 1))
        assert rows["reportingDate"].is_monotonic_increasing
    assert (table.groupby("reportingDate")["roundNumber"].nunique() == 1).all()


def test_dtm_export_round_trips_when_read_back_by_read_dtm(tmp_path):
    from forecast.io import read_dtm

    p = make_panel(12, 18, seed=2)
    path = tmp_path / "dtm.csv"
    dtm_export(p).to_csv(path, index=False)
    result = read_dtm(path)
    assert result.rows_kept == int(p[observed_name(IDP_STOCK)].sum())
    back = result.table.set_index([AREA, TIME])["value"]
    expected = p[IDP_STOCK].to_series().dropna()
    pd.testing.assert_series_equal(back.sort_index(), expected.sort_index(), check_names=False,
                                   check_index_type=False)


def test_dtm_export_raises_when_panel_lacks_idp_stock(panel):
    with pytest.raises(ValueError, match=r"missing \['idp_stock'\]"):
        dtm_export(panel.drop_vars(IDP_STOCK))


def test_make_panel_builds_national_scale_with_flows_as_records():
    p = make_panel(10_000, 120)
    assert (p.sizes[AREA], p.sizes[TIME]) == (10_000, 120)
    # about 5 routes per area and month (stays and the 4 neighbours), not 10,000² x 120 cells
    assert 4 * 10_000 * 120 < p.sizes[FLOW] <= 5 * 10_000 * 120
    assert p.nbytes < 2**30
