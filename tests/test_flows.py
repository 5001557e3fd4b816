"""Flows stored as records (one per route and month), read by every stage through flow_table.

A dense origin x destination x month array does not fit at admin3 (5,000 areas x 120 months is
3 billion cells); the records do. These tests hold what users rely on: the records round-trip
through NetCDF exactly, a cube cut to earlier months or fewer areas shows no flows beyond its
cut (no leakage into a backtest origin), and the flow features computed from the records are
those of the dense formula they replace.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from forecast.cube import cube_hash, flow_table, load_cube, save_cube, with_flows
from forecast.datasets import make_panel
from forecast.errors import CubeError
from forecast.features import build_features


@pytest.fixture(scope="module")
def panel():
    return make_panel(30, 40, seed=5, gap_rate=0.1)


def _dense_reference(cube: xr.Dataset) -> xr.Dataset:
    """The same cube with its flows as the dense (origin, destination, time) array of old."""
    dense = flow_table(cube).dense()
    out = cube.drop_vars(["flows", "flow_origin", "flow_destination", "flow_time", "flow_area"])
    out["flows"] = dense
    return out


def test_flow_records_round_trip_through_netcdf_exactly(panel, tmp_path):
    digest = save_cube(panel, tmp_path / "cube.nc")
    back = load_cube(tmp_path / "cube.nc")
    assert cube_hash(back) == digest == cube_hash(panel)
    pd.testing.assert_frame_equal(flow_table(back).frame(), flow_table(panel).frame())
    lazy = load_cube(tmp_path / "cube.nc", chunks={})  # a Dask-backed open (the stored chunks) reads the same
    pd.testing.assert_frame_equal(flow_table(lazy).frame(), flow_table(panel).frame())


def test_a_cube_cut_to_earlier_months_shows_no_later_flows(panel):
    cut = panel.isel(time=slice(0, 25))
    table = flow_table(cut)
    last = pd.Timestamp(cut["time"].values[-1])
    assert len(table) > 0 and (table.frame()["time"] <= last).all()
    full = flow_table(panel).frame()
    assert len(table) == int((full["time"] <= last).sum())
    # the features at the cut's months are those of the full cube: nothing after the cut is read
    early = build_features(cut, families=["spatial", "pressure"]).X
    whole = build_features(panel, families=["spatial", "pressure"]).X.loc[early.index]
    pd.testing.assert_frame_equal(early, whole)


def test_a_cube_cut_to_some_areas_keeps_only_their_routes(panel):
    keep = [str(a) for a in panel["area"].values[::3]]
    table = flow_table(panel.sel(area=keep))
    frame = table.frame()
    assert set(frame["origin"]) | set(frame["destination"]) <= set(keep)
    full = flow_table(panel).frame()
    inside = full[full["origin"].isin(keep) & full["destination"].isin(keep)].reset_index(drop=True)
    pd.testing.assert_frame_equal(frame, inside)


def test_flow_features_from_the_records_equal_the_dense_formula(panel):
    """spatial's from_*_mean3: origin shares of cumulative arrivals (einsum over the dense array)."""
    fm = build_features(panel, families=["spatial"])
    dense = np.nan_to_num(flow_table(panel).dense().values)
    cum = np.cumsum(dense, axis=2)
    total = cum.sum(axis=0, keepdims=True)
    share = np.divide(cum, total, out=np.zeros_like(cum), where=total > 0)
    x = panel["conflict_events"].values
    mean3 = pd.DataFrame(x.T).rolling(3, min_periods=1).mean().to_numpy().T
    expected = np.einsum("odt,ot->dt", share, np.nan_to_num(mean3))
    got = fm.X["from_conflict_events_mean3"].to_numpy(float).reshape(panel.sizes["time"], -1).T
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)  # the design matrix is float32


def test_a_dense_flows_array_made_elsewhere_gives_the_same_features(panel):
    families = ["spatial", "pressure"]
    sparse = build_features(panel, families=families).X
    dense = build_features(_dense_reference(panel), families=families).X
    assert any(c.startswith("from_") for c in sparse.columns)
    pd.testing.assert_frame_equal(sparse, dense)


def test_with_flows_takes_a_table_and_adds_up_rows_of_one_route_and_month(panel):
    frame = flow_table(panel).frame()
    again = with_flows(panel, pd.concat([frame.assign(flows=frame["flows"] / 2)] * 2))
    pd.testing.assert_frame_equal(flow_table(again).frame(), frame)
    assert again.sizes["flow"] == panel.sizes["flow"]


@pytest.mark.parametrize(("change", "message"), [
    ({"origin": "XY9999"}, r"1 flow rows have a origin the cube lacks, e.g. row 0 \(XY9999\)"),
    ({"time": "1999-01-01"}, r"1 flow rows have a time the cube lacks, e.g. row 0 \(1999-01-01\)"),
    ({"flows": -3.0}, r"flow row 0 has flows=-3.0; counts must be numbers >= 0"),
])
def test_with_flows_refuses_a_row_naming_what_is_wrong(panel, change, message):
    frame = flow_table(panel).frame().head(3).copy()
    for column, value in change.items():
        frame[column] = frame[column].astype(object)
        frame.loc[0, column] = value
    with pytest.raises(CubeError, match=message):
        with_flows(panel, frame)


def test_the_admin3_scale_panel_holds_records_not_cells():
    cube = make_panel(5_000, 120, seed=1)
    table = flow_table(cube)
    assert len(table) == cube.sizes["flow"] < 6 * 5_000 * 120           # ~5 routes per area-month
    assert table.n_routes == len(table.routes) <= 5 * 5_000             # stays and 4 neighbours
    np.testing.assert_array_equal(table.arrivals(), cube["arrivals"].values)


def test_a_cube_cut_to_earlier_months_is_saved_and_named_without_its_later_flows(panel, tmp_path):
    cut = panel.isel(time=slice(0, 25))  # as the demo keeps the month before the last
    digest = save_cube(cut, tmp_path / "cut.nc")
    back = load_cube(tmp_path / "cut.nc")
    last = back["time"].values[-1]
    assert (back["flow_time"].values <= last).all() and back.sizes["flow"] == len(flow_table(cut))
    assert cube_hash(back) == digest == cube_hash(cut)
    fewer = panel.sel(area=panel["area"].values[:10])
    assert cube_hash(fewer) == cube_hash(save_and_load(fewer, tmp_path / "fewer.nc"))
    assert load_cube(tmp_path / "fewer.nc").sizes["flow_area"] == 10


def save_and_load(cube: xr.Dataset, path) -> xr.Dataset:
    save_cube(cube, path)
    return load_cube(path)
