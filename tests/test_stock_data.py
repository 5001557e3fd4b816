"""Stock data: the synthetic DTM-like stock generator, the shipped Somalia DTM rounds, and the
stock-flow consistency check of the cube layer (and its place in ingest)."""

from __future__ import annotations

import re
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import forecast
from forecast._names import (
    ADMIN_LEVEL,
    AREA,
    AREA_NAME,
    ARRIVALS,
    DEPARTURES,
    GROUP_COLUMNS,
    IDP_STOCK,
    PARENT_PCODE,
    RETURNS,
    TIME,
    admin_name,
    admin_pcode,
    observed_name,
)
from forecast.cube import check_stock_flow, cube_hash, load_cube, save_cube, stock_flow_gaps
from forecast.datasets import dtm_export, load_somalia, load_somalia_dtm, make_stock_panel
from forecast.datasets._somalia_dtm import DROPPED, DTM_FILE, SOURCE, SOURCE_ROWS, aggregate_dtm, ingest_somalia_dtm
from forecast.errors import DataQualityWarning

FLOW_VARS = (ARRIVALS, DEPARTURES, RETURNS)
AREA_COORDS = (AREA_NAME, ADMIN_LEVEL, PARENT_PCODE, admin_pcode(0), admin_name(0),
               admin_pcode(1), admin_name(1), *GROUP_COLUMNS)
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def panel() -> xr.Dataset:
    return make_stock_panel()


@pytest.fixture(scope="module")
def exact() -> xr.Dataset:
    return make_stock_panel(40, 48, seed=5, flow_gap_rate=0.0)


def round_months(p: xr.Dataset) -> np.ndarray:
    return np.flatnonzero(p[observed_name(IDP_STOCK)].any(AREA).values)


@contextmanager
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# --- the generator -------------------------------------------------------------------------

def test_make_stock_panel_follows_the_cube_layout_and_survives_a_save(panel, tmp_path):
    p = panel
    assert dict(p.sizes) == {AREA: 60, TIME: 72}
    assert (pd.DatetimeIndex(p[TIME].values) == pd.date_range("2016-01", periods=72, freq="MS")).all()
    assert p[TIME].dtype == np.dtype("datetime64[ns]") and len(set(p[AREA].values)) == 60
    for name in AREA_COORDS:
        assert p[name].dims == (AREA,), name
    assert p[ADMIN_LEVEL].dtype == np.int64 and (p[ADMIN_LEVEL] == 2).all()
    codes = p[AREA].values.astype(str)
    assert all(re.fullmatch(r"XY\d{4,}", c) for c in codes)
    assert all(c.startswith(parent) for c, parent in zip(codes, p[PARENT_PCODE].values.astype(str)))
    assert set(p.data_vars) == {*(v for n in (IDP_STOCK, *FLOW_VARS) for v in (n, observed_name(n)))}
    for name in (IDP_STOCK, *FLOW_VARS):
        assert p[name].dims == (AREA, TIME) and p[name].dtype == np.float64, name
        mask = p[observed_name(name)]
        assert mask.dtype == bool and (mask == p[name].notnull()).all(), name
        values = p[name].values[~np.isnan(p[name].values)]
        assert (values >= 0).all() and (values == np.round(values)).all(), name
    assert p.attrs == {"area_key": "pcode", "admin_level": 2, "sensitivity": "low",
                       "source": "synthetic-stock", "seed": 0}
    digest = save_cube(p, tmp_path / "stock.nc")
    loaded = load_cube(tmp_path / "stock.nc")
    assert loaded.attrs.pop("cube_hash") == digest == cube_hash(p)
    xr.testing.assert_identical(loaded, p)
    regions = forecast.aggregate(p, 1)  # the cube layer takes it like any other cube
    assert float(regions[IDP_STOCK].sum()) == pytest.approx(float(p[IDP_STOCK].sum()))


def test_make_stock_panel_is_identical_when_seed_is_repeated_and_differs_otherwise():
    a = make_stock_panel(20, 30, seed=3)
    xr.testing.assert_identical(a, make_stock_panel(20, 30, seed=3))
    b = make_stock_panel(20, 30, seed=4)
    assert not a[IDP_STOCK].equals(b[IDP_STOCK]) and not a[ARRIVALS].equals(b[ARRIVALS])


@pytest.mark.parametrize("gap", [(1, 4), (2, 3), (3, 3), (1, 1)])
def test_rounds_are_spaced_within_round_gap(gap):
    months = round_months(make_stock_panel(30, 60, seed=1, round_gap=gap))
    steps = np.diff(months)
    assert steps.min() >= gap[0] and steps.max() <= gap[1]
    assert months[0] < gap[0] and 60 - months[-1] <= gap[1]
    if gap[0] < gap[1]:
        assert len(set(steps.tolist())) > 1  # irregular


def test_stock_is_missing_between_rounds_and_rounds_skip_some_areas(panel):
    seen = panel[observed_name(IDP_STOCK)].values
    rounds = round_months(panel)
    off = np.setdiff1d(np.arange(panel.sizes[TIME]), rounds)
    assert len(off) > 0 and not seen[:, off].any()
    monitored = panel[observed_name(ARRIVALS)].values  # an area exists (has IDPs) once its flows start
    started = np.maximum.accumulate(monitored | seen, axis=1)
    skipped = started[:, rounds] & ~seen[:, rounds]
    assert 0.05 < skipped.sum() / started[:, rounds].sum() < 0.15       # skip_rate=0.1
    assert (skipped.sum(axis=0) > 0).mean() > 0.8                       # most rounds skip someone
    none = make_stock_panel(60, 72, seed=0, skip_rate=0.0)
    assert (none[observed_name(IDP_STOCK)].values[:, round_months(none)]
            | ~np.maximum.accumulate(none[observed_name(ARRIVALS)].values, axis=1)[:, round_months(none)]).all()


def test_new_areas_appear_in_a_later_round_with_nothing_before(panel):
    stock, arrivals = panel[IDP_STOCK].values, panel[ARRIVALS].values
    first_round = round_months(panel)[0]
    first_seen = np.array([np.flatnonzero(~np.isnan(row))[0] for row in stock])
    late = np.flatnonzero(first_seen > 12)
    assert 3 <= len(late) <= 20                               # about 15 % of 60 areas
    for a in late:
        assert np.isnan(stock[a, :first_seen[a]]).all()
        onset = np.flatnonzero(~np.isnan(arrivals[a]))[0]     # not monitored before its IDPs came
        assert onset > first_round and np.isnan(arrivals[a, :onset]).all()
        assert first_seen[a] >= onset


def test_sizes_are_heavy_tailed_across_areas(panel):
    largest = np.nanmax(panel[IDP_STOCK].values, axis=1)
    assert (largest >= 1e4).sum() >= 1 and largest.max() <= 1e5 * 1.5
    assert 100 <= np.median(largest) <= 1000
    assert ((largest >= 100) & (largest < 1000)).mean() > 0.5


def test_flows_explain_the_stock_exactly_when_no_flow_is_missing(exact, panel):
    gaps = stock_flow_gaps(exact)
    assert len(gaps) > 100 and gaps.attrs["flows"] == list(FLOW_VARS)
    assert (gaps["flow_months_missing"] == 0).all()
    np.testing.assert_array_equal(gaps["gap"].to_numpy(), 0.0)
    np.testing.assert_array_equal(gaps["stock_change"], gaps["stock_to"] - gaps["stock_from"])
    with no_warnings():
        check_stock_flow(exact)
    # with the default few monitoring gaps, only the round pairs spanning a gap can miss
    gappy = stock_flow_gaps(panel)
    assert (gappy["flow_months_missing"] > 0).sum() > 0
    assert (gappy.loc[gappy["flow_months_missing"] == 0, "gap"] == 0).all()
    assert (gappy.loc[gappy["gap"] != 0, "flow_months_missing"] > 0).all()


def test_stock_drops_sharply_when_a_camp_closes(exact):
    # the monthly stock, rebuilt from the first observation and the flows
    stock, net = exact[IDP_STOCK].values, (exact[ARRIVALS] - exact[DEPARTURES] - exact[RETURNS]).values
    drops = 0
    for a in range(exact.sizes[AREA]):
        t0 = np.flatnonzero(~np.isnan(stock[a]))[0]
        level = stock[a, t0] + np.concatenate([[0.0], np.cumsum(net[a, t0 + 1:])])
        assert (level >= 0).all()
        before, departed = level[:-1], exact[DEPARTURES].values[a, t0 + 1:]
        drops += int(((departed >= 0.3 * before) & (before >= 100)).sum())
    assert drops >= 1


def test_stock_only_panel_gives_an_empty_table_without_a_warning():
    p = make_stock_panel(10, 12, seed=2, with_flows=False)
    assert set(p.data_vars) == {IDP_STOCK, observed_name(IDP_STOCK)}
    with no_warnings():
        table = check_stock_flow(p)
    assert table.empty and list(table.columns) == list(stock_flow_gaps(p).columns)
    assert stock_flow_gaps(p.drop_vars([IDP_STOCK])).empty


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_areas": 0}, "n_areas must be >= 1"),
    ({"n_months": 2.5}, "n_months must be an integer"),
    ({"seed": -1}, "seed must be >= 0"),
    ({"n_areas": 3, "n_regions": 4}, "n_regions must be at most n_areas"),
    ({"round_gap": (4, 1)}, "round_gap must be two integers"),
    ({"round_gap": (0, 2)}, "round_gap must be two integers"),
    ({"skip_rate": 1.0}, r"skip_rate must be a number in \[0, 1\)"),
    ({"flow_gap_rate": -0.1}, r"flow_gap_rate must be a number in \[0, 1\)"),
    ({"start": "2016-01-15"}, "start must name a month"),
    ({"with_flows": None}, "with_flows must be True or False"),
])
def test_make_stock_panel_raises_when_argument_is_invalid(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_stock_panel(**kwargs)


# --- the check -----------------------------------------------------------------------------

def test_a_tampered_stock_value_gives_a_warning_that_names_the_gap(exact):
    gaps = stock_flow_gaps(exact)
    row = gaps[gaps["stock_from"] > 1000].iloc[0]         # tamper with the later round of a pair
    tampered = exact.copy(deep=True)
    tampered[IDP_STOCK].loc[{AREA: row["area"], TIME: row["to"]}] = row["stock_to"] + 5000
    with pytest.warns(DataQualityWarning) as caught:
        table = check_stock_flow(tampered, tolerance=0.25)
    message = str(caught[0].message)
    assert re.search(r"\b[12] of \d+ round pairs differ by more than 25%", message), message
    assert "+5,000 people" in message and row["area"] in message
    changed = table[table["gap"] != 0]
    assert set(changed["area"]) == {row["area"]} and 5000 in changed["gap"].to_numpy()
    with no_warnings():                                   # tolerance above the gap: silence
        check_stock_flow(tampered, tolerance=1e6)
    with pytest.raises(ValueError, match="tolerance"):
        check_stock_flow(exact, tolerance=-1)


def flow_files(p: xr.Dataset, folder: Path) -> list[Path]:
    dtm_export(p).to_csv(folder / "dtm.csv", index=False)
    table = p[list(FLOW_VARS)].to_dataframe().reset_index()
    table["admin1Pcode"] = np.repeat(p[admin_pcode(1)].values, p.sizes[TIME])
    table["date"] = table[TIME].dt.strftime("%Y-%m")
    table = table.rename(columns={AREA: "admin2Pcode"})
    table[["admin1Pcode", "admin2Pcode", "date", *FLOW_VARS]].to_csv(folder / "flows.csv", index=False)
    return [folder / "dtm.csv", folder / "flows.csv"]


def test_ingest_checks_stock_against_flows_and_warns_when_they_disagree(tmp_path):
    p = make_stock_panel(12, 24, seed=2, flow_gap_rate=0.0)
    with no_warnings():
        result = forecast.ingest(flow_files(p, tmp_path), ["dtm", "table"])
    assert len(result.stock_flow) > 10 and (result.stock_flow["gap"] == 0).all()
    tampered = p.copy(deep=True)
    a, t = np.argwhere(p[observed_name(IDP_STOCK)].values)[-1]
    tampered[IDP_STOCK][a, t] = float(p[IDP_STOCK][a, t]) + 7000
    with pytest.warns(DataQualityWarning, match=r"largest gap \+7,000 people"):
        result = forecast.ingest(flow_files(tampered, tmp_path), ["dtm", "table"])
    assert (result.stock_flow["gap"] != 0).sum() == 1


# --- the Somalia DTM rounds ----------------------------------------------------------------

@pytest.fixture(scope="module")
def dtm():
    with no_warnings():
        return ingest_somalia_dtm()


def test_somalia_dtm_cube_holds_every_idp_of_the_shipped_file(dtm):
    shipped = pd.read_csv(DTM_FILE)
    cube = dtm.cube
    assert float(cube[IDP_STOCK].sum()) == shipped["idps"].sum() == 4_797_840
    assert int(cube[observed_name(IDP_STOCK)].sum()) == len(shipped) == 126
    record = dtm.manifest.files[0]
    assert record.rows_in == record.rows_kept == 126 and len(dtm.quarantine) == 0
    assert not shipped.duplicated(["district", "date"]).any()
    # every source row: summed into the file, or dropped for a reason the module names
    assert shipped["source_rows"].sum() + sum(DROPPED.values()) == SOURCE_ROWS


def test_somalia_dtm_cube_sits_on_the_sample_districts(dtm):
    cube, sample = dtm.cube, load_somalia()
    assert dict(cube.sizes) == {AREA: 74, TIME: 33}
    assert str(cube[TIME].values[0])[:7] == "2016-01" and str(cube[TIME].values[-1])[:7] == "2018-09"
    for name, coord in sample.coords.items():
        if coord.dims == (AREA,):
            np.testing.assert_array_equal(cube[name].values, coord.values, err_msg=name)
    assert cube.attrs["area_key"] == "pcode"
    # LSHTM's spellings reach their COD districts: Baydhaba is Baidoa, Kismaayo is Kismayo
    assert float(cube[IDP_STOCK].sel(area="SO2401").notnull().sum()) >= 1
    assert float(cube[IDP_STOCK].sel(area="SO2801", time="2016-01-01")) == 51_456
    assert int((cube[observed_name(IDP_STOCK)].sum(TIME) >= 3).sum()) == 12
    assert dtm.stock_flow.empty and stock_flow_gaps(cube).empty   # a stock file has no flows


def test_load_somalia_dtm_returns_the_ingested_cube(dtm):
    with no_warnings():
        cube = load_somalia_dtm()
    assert cube.attrs["source"].startswith("IOM DTM Somalia")
    xr.testing.assert_identical(cube[IDP_STOCK], dtm.cube[IDP_STOCK])


def test_aggregation_keeps_the_later_round_and_accounts_for_every_row():
    raw = pd.DataFrame({"round": [1, 1, 3, 3, 2], "y": [2016] * 5, "m": [1, 1, 1, 1, 2],
                        "district": ["Borama", "Borama", "Borama ", "Borama", "Doolow"],
                        "idps": [10, 20, 5, 7, 3]})
    table, dropped = aggregate_dtm(raw)
    assert table.to_dict("records") == [
        {"district": "Borama", "date": "2016-01", "source_round": 3, "idps": 12, "source_rows": 2},
        {"district": "Doolow", "date": "2016-02", "source_round": 2, "idps": 3, "source_rows": 1}]
    assert len(dropped) == 2 and dropped["reason"].str.startswith("superseded").all()
    assert table["source_rows"].sum() + len(dropped) == len(raw)
    _, unknown = aggregate_dtm(raw, known={"Borama"})
    assert unknown["reason"].value_counts().to_dict() == {"superseded: a later round assessed the "
                                                          "district in the same month": 2,
                                                          "district not in the gazetteer": 1}


@pytest.mark.skipif(not (SHARED / SOURCE).is_file(), reason="the raw DTM source is not checked out")
def test_shipped_file_is_the_source_summed_when_the_source_is_at_hand():
    raw = pd.read_csv(SHARED / SOURCE)
    table, dropped = aggregate_dtm(raw)
    pd.testing.assert_frame_equal(table, pd.read_csv(DTM_FILE))
    assert len(raw) == SOURCE_ROWS and dropped["reason"].value_counts().to_dict() == DROPPED
    assert raw["idps"].sum() == table["idps"].sum() + dropped["idps"].sum()
