"""Cube invariants: missing is not zero, flows add up, aggregation keeps totals, storage is exact."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import forecast
from forecast.cube import aggregate, cube_hash, flow_table, load_cube, save_cube
from forecast.datasets import load_somalia, make_panel, sample_files
from forecast.errors import CubeError, UnusableFileError

ADM2 = sample_files()["areas"]
DTM = """admin1Name,admin2Name,numPresentIdpInd,reportingDate
Bay,Baidoa,1200,2020-01-15
Bay,Buur Hakaba,0,2020-01-15
Bay,Baidoa,1500,2020-04-15
Gedo,Luuq,80,2020-04-15
"""
FLOWS = """Month End,Current (Arrival) District,Previous (Departure) District,Number of Individuals
2016-01-31,Baidoa,Luuq,7
2016-01-31,Baidoa,Baidoa,2
2016-01-31,Luuq,Baidoa,4
2016-03-31,Buur Hakaba,Luuq,5
"""


@pytest.fixture(scope="module")
def dtm_cube(tmp_path_factory) -> xr.Dataset:
    path = tmp_path_factory.mktemp("dtm") / "dtm.csv"
    path.write_text(DTM)
    return forecast.ingest([path], "dtm", areas=ADM2).cube


@pytest.fixture(scope="module")
def flows_cube(tmp_path_factory) -> xr.Dataset:
    path = tmp_path_factory.mktemp("flows") / "flows.csv"
    path.write_text(FLOWS)
    return forecast.ingest([path], "flows", areas=ADM2).cube


@pytest.fixture(scope="module")
def somalia() -> xr.Dataset:
    return load_somalia()


# --- missing is not zero -------------------------------------------------------------------

def test_unobserved_area_months_are_nan_with_a_false_mask_never_zero(dtm_cube):
    stock = dtm_cube["idp_stock"].to_pandas()
    observed = dtm_cube["idp_stock_observed"].to_pandas()
    np.testing.assert_array_equal(stock.loc["SO2401"].to_numpy(), [1200.0, np.nan, np.nan, 1500.0])
    assert observed.loc["SO2401"].tolist() == [True, False, False, True]
    # a district no row mentions is unassessed: all NaN, not 0
    assert stock.loc["SO1101"].isna().all() and not observed.loc["SO1101"].any()
    assert int(observed.values.sum()) == 4


def test_a_reported_zero_stays_an_observed_zero(dtm_cube):
    assert float(dtm_cube["idp_stock"].sel(area="SO2402", time="2020-01-01")) == 0.0
    assert bool(dtm_cube["idp_stock_observed"].sel(area="SO2402", time="2020-01-01"))


@pytest.mark.parametrize("name", ["dtm_cube", "flows_cube", "somalia"])
def test_every_area_variable_has_a_mask_equal_to_its_non_missing_cells(request, name):
    cube = request.getfixturevalue(name)
    area_vars = [v for v in cube.data_vars if cube[v].dims == ("area", "time") and not v.endswith("_observed")]
    assert area_vars
    for var in area_vars:
        assert cube[var].dtype == np.float64
        mask = cube[f"{var}_observed"]
        assert mask.dtype == bool
        np.testing.assert_array_equal(mask.values, cube[var].notnull().values, err_msg=var)


def test_cube_months_are_contiguous_month_starts_spanning_the_data(dtm_cube):
    times = pd.DatetimeIndex(dtm_cube["time"].values)
    assert times.equals(pd.date_range("2020-01-01", "2020-04-01", freq="MS"))
    assert dtm_cube["time"].dtype == np.dtype("datetime64[ns]")


def test_cube_carries_its_area_coordinates_and_attributes(dtm_cube):
    assert dtm_cube.attrs["area_key"] == "pcode" and dtm_cube.attrs["admin_level"] == 2
    assert dtm_cube.sizes["area"] == 74
    baidoa = dtm_cube.sel(area="SO2401")
    assert (str(baidoa["area_name"].values), str(baidoa["parent_pcode"].values),
            str(baidoa["admin1_name"].values), int(baidoa["admin_level"])) == ("Baidoa", "SO24", "Bay", 2)


# --- flows ---------------------------------------------------------------------------------

def test_flows_are_origin_by_destination_by_month_with_nan_where_no_record(flows_cube):
    assert flows_cube["flows"].dims == ("flow",) and flows_cube.sizes["flow"] == 4  # one record per route-month
    flows = flow_table(flows_cube).dense()
    assert flows.dims == ("origin", "destination", "time")
    assert float(flows.sel(origin="SO2606", destination="SO2401", time="2016-01-01")) == 7.0
    assert float(flows.sel(origin="SO2401", destination="SO2401", time="2016-01-01")) == 2.0
    assert np.isnan(flows.sel(origin="SO2606", destination="SO2401", time="2016-02-01"))
    assert int(flows.notnull().sum()) == 4


@pytest.mark.parametrize("name", ["flows_cube", "somalia"])
def test_arrivals_and_departures_are_the_flow_sums_with_nan_where_no_flow_was_recorded(request, name):
    cube = request.getfixturevalue(name)
    flows = flow_table(cube).dense()
    arrivals = flows.sum("origin", min_count=1).rename(destination="area")
    departures = flows.sum("destination", min_count=1).rename(origin="area")
    np.testing.assert_array_equal(cube["arrivals"].values, arrivals.transpose("area", "time").values)
    np.testing.assert_array_equal(cube["departures"].values, departures.transpose("area", "time").values)
    assert float(cube["arrivals"].sum()) == float(cube["departures"].sum()) == float(flows.sum())


def test_small_flows_file_gives_the_expected_arrivals_and_departures(flows_cube):
    arrivals = flows_cube["arrivals"].sel(time="2016-01-01")
    departures = flows_cube["departures"].sel(time="2016-01-01")
    assert (float(arrivals.sel(area="SO2401")), float(arrivals.sel(area="SO2606"))) == (9.0, 4.0)
    assert (float(departures.sel(area="SO2401")), float(departures.sel(area="SO2606"))) == (6.0, 7.0)
    assert np.isnan(arrivals.sel(area="SO2402"))


def test_arrivals_by_reason_sum_to_arrivals(somalia):
    by_reason = somalia["arrivals_by_reason"].sum("reason", min_count=1)
    np.testing.assert_array_equal(by_reason.values, somalia["arrivals"].values)


# --- combining files ----------------------------------------------------------------------

def test_two_files_reporting_the_same_cells_are_refused_as_double_counting(tmp_path):
    (tmp_path / "a.csv").write_text(DTM)
    (tmp_path / "b.csv").write_text(DTM)
    with pytest.raises(CubeError, match=r"'idp_stock' is reported by both .*a.csv and .*b.csv for 4 area-months"):
        forecast.ingest([tmp_path / "a.csv", tmp_path / "b.csv"], "dtm", areas=ADM2)


def test_two_files_with_disjoint_cells_fill_one_variable(tmp_path, dtm_cube):
    lines = DTM.splitlines(keepends=True)
    (tmp_path / "a.csv").write_text("".join(lines[:3]))
    (tmp_path / "b.csv").write_text(lines[0] + "".join(lines[3:]))
    merged = forecast.ingest([tmp_path / "a.csv", tmp_path / "b.csv"], "dtm", areas=ADM2).cube
    xr.testing.assert_identical(merged, dtm_cube)


def test_inputs_at_different_admin_levels_are_refused(tmp_path):
    (tmp_path / "a.csv").write_text(DTM)
    (tmp_path / "b.csv").write_text("admin1Name,numPresentIdpInd,reportingDate\nBay,5,2020-01-15\n")
    with pytest.raises(CubeError, match=r"different admin levels: .*a.csv \(admin2\), .*b.csv \(admin1\)"):
        forecast.ingest([tmp_path / "a.csv", tmp_path / "b.csv"], "dtm", areas=ADM2)


def test_no_kept_row_is_refused_with_each_files_reasons(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("admin1Name,admin2Name,numPresentIdpInd,reportingDate\nBay,Baidoa,-4,2020-01-15\nBay,Baidoa,x,2020-02-15\n")
    with pytest.raises(CubeError) as caught:
        forecast.ingest([path], "dtm")
    assert str(caught.value) == (f"no row of any input file was kept: {path}: 2 of 2 rows quarantined "
                                 "(negative count (1), not a number (1))")


# --- aggregation ---------------------------------------------------------------------------

def test_aggregate_to_regions_keeps_totals_and_reports_coverage(somalia):
    regions = aggregate(somalia, 1)
    assert regions.sizes["area"] == 18 and regions.attrs["admin_level"] == 1
    assert "cube_hash" not in regions.attrs  # the district cube's hash does not name this one
    assert (regions["admin_level"] == 1).all() and str(regions["area_name"].sel(area="SO24").values) == "Bay"
    for var in ("arrivals", "departures", "rainfall"):
        assert float(regions[var].sum()) == pytest.approx(float(somalia[var].sum()), rel=1e-12)
    assert "flows" not in regions and "flows_coverage" not in regions
    coverage = regions["arrivals_coverage"].sel(area="SO24")
    expected = somalia["arrivals"].notnull().where(somalia["admin1_pcode"] == "SO24", drop=True).mean("area")
    np.testing.assert_allclose(coverage.values, expected.values)


def test_aggregate_gives_nan_where_no_child_was_observed_and_partial_sums_with_their_coverage(dtm_cube):
    regions = aggregate(dtm_cube, 1)
    stock = regions["idp_stock"].to_pandas()
    coverage = regions["idp_stock_coverage"].to_pandas()
    assert stock.loc["SO24"].tolist()[0] == 1200.0 and coverage.loc["SO24"].iloc[0] == 0.5  # 2 of 4 districts
    assert np.isnan(stock.loc["SO24"].iloc[1]) and coverage.loc["SO24"].iloc[1] == 0.0
    assert not bool(regions["idp_stock_observed"].sel(area="SO24").isel(time=1))
    assert stock.loc["SO11"].isna().all()


def test_aggregate_to_the_same_or_a_finer_level_is_refused(dtm_cube):
    with pytest.raises(CubeError, match="cannot aggregate an admin2 cube to admin2"):
        aggregate(dtm_cube, 2)


def test_aggregate_works_on_a_name_keyed_cube(tmp_path):
    (tmp_path / "dtm.csv").write_text(DTM)
    cube = forecast.ingest([tmp_path / "dtm.csv"], "dtm").cube
    regions = aggregate(cube, 1)
    assert regions["area"].values.tolist() == ["Bay", "Gedo"]
    assert regions["idp_stock"].sel(area="Bay").values.tolist()[::3] == [1200.0, 1500.0]


def reference_aggregate(values: np.ndarray, parents: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sum of the observed children per parent (NaN when none) and the share observed."""
    frame = pd.DataFrame(values)
    frame["parent"] = parents
    grouped = frame.groupby("parent")
    return grouped.sum(min_count=1), frame.notna().groupby(frame["parent"]).mean().drop(columns="parent")


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(n_areas=st.integers(1, 12), n_months=st.integers(1, 6), n_regions=st.integers(1, 4),
       seed=st.integers(0, 2**16), gap=st.sampled_from([0.0, 0.3, 0.7, 0.99]))
def test_aggregate_matches_a_reference_and_preserves_totals_on_random_panels(n_areas, n_months, n_regions,
                                                                               seed, gap):
    n_regions = min(n_regions, n_areas)
    panel = make_panel(n_areas, n_months, seed=seed, n_regions=n_regions, gap_rate=gap,
                       with_flows=False)[["arrivals", "idp_stock"]]
    regions = aggregate(panel, 1)
    parents = panel["admin1_pcode"].values.astype(str).tolist()
    for var in ("arrivals", "idp_stock"):
        total, coverage = reference_aggregate(panel[var].values, parents)
        got = regions[var].sel(area=total.index.to_numpy())
        np.testing.assert_allclose(got.values, total.to_numpy(), equal_nan=True)
        np.testing.assert_allclose(regions[f"{var}_coverage"].sel(area=total.index.to_numpy()).values,
                                   coverage.to_numpy())
        np.testing.assert_array_equal(regions[f"{var}_observed"].values, regions[var].notnull().values)
        assert float(regions[var].sum()) == pytest.approx(float(panel[var].sum()))
    country = aggregate(panel, 0)
    assert country.sizes["area"] == 1
    assert float(country["arrivals"].sum()) == pytest.approx(float(panel["arrivals"].sum()))


# --- storage and identity ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["dtm_cube", "flows_cube", "somalia"])
def test_save_load_round_trip_is_exact_and_keeps_the_hash(request, tmp_path, name):
    cube = request.getfixturevalue(name)
    digest = save_cube(cube, tmp_path / "cube.nc")
    loaded = load_cube(tmp_path / "cube.nc")
    assert digest == cube_hash(cube) == cube_hash(loaded)
    assert loaded.attrs.pop("cube_hash") == digest
    original = cube.copy()
    original.attrs.pop("cube_hash", None)
    xr.testing.assert_identical(loaded, original)


def test_cube_hash_changes_when_one_value_changes(dtm_cube):
    changed = dtm_cube.copy(deep=True)
    changed["idp_stock"].loc[{"area": "SO2401", "time": "2020-01-01"}] = 1201.0
    assert cube_hash(changed) != cube_hash(dtm_cube)
    missing = dtm_cube.copy(deep=True)
    missing["idp_stock"].loc[{"area": "SO2402", "time": "2020-01-01"}] = np.nan  # 0 -> missing is a change
    assert cube_hash(missing) != cube_hash(dtm_cube)


def test_cube_hash_changes_with_attributes_and_coordinates(dtm_cube):
    relabelled = dtm_cube.copy(deep=True)
    relabelled.attrs["sensitivity"] = "high"
    assert cube_hash(relabelled) != cube_hash(dtm_cube)
    renamed = dtm_cube.assign_coords(area_name=dtm_cube["area_name"].where(dtm_cube["area"] != "SO2401", "Baydhaba"))
    assert cube_hash(renamed) != cube_hash(dtm_cube)


def test_cube_hash_ignores_variable_order_nan_payload_and_its_own_attribute(dtm_cube):
    reordered = xr.Dataset({v: dtm_cube[v] for v in reversed(list(dtm_cube.data_vars))}, attrs=dtm_cube.attrs)
    assert cube_hash(reordered) == cube_hash(dtm_cube)
    other_nan = dtm_cube.copy(deep=True)
    values = other_nan["idp_stock"].values
    values[np.isnan(values)] = -np.nan  # a NaN with the sign bit set
    assert cube_hash(other_nan) == cube_hash(dtm_cube)
    tagged = dtm_cube.copy()
    tagged.attrs["cube_hash"] = "anything"
    assert cube_hash(tagged) == cube_hash(dtm_cube)


def test_manifest_hash_names_the_cube_written_beside_it(tmp_path):
    (tmp_path / "dtm.csv").write_text(DTM)
    paths = forecast.ingest([tmp_path / "dtm.csv"], "dtm", areas=ADM2).write(tmp_path / "out")
    manifest = forecast.Manifest.read(paths["manifest"])
    assert cube_hash(load_cube(paths["cube"])) == manifest.cube_hash
    assert manifest.dims == {"area": 74, "time": 4} and manifest.time_range == ("2020-01-01", "2020-04-01")


@pytest.mark.parametrize("content", [None, b"", b"CDF\x01 not really netcdf"], ids=["missing", "empty", "garbage"])
def test_loading_something_that_is_not_a_cube_is_unusable_naming_it(tmp_path, content):
    path = tmp_path / "cube.nc"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UnusableFileError) as caught:
        load_cube(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_unreadable_manifest_is_unusable_naming_it(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text('{"cube_hash": 1}')
    with pytest.raises(UnusableFileError, match=r"not a readable manifest") as caught:
        forecast.Manifest.read(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_manifest_refuses_row_counts_that_do_not_add_up():
    with pytest.raises(ValueError, match=r"rows_in 10 != rows_kept 8 \+ rows_quarantined 1"):
        forecast.FileRecord(path="a.csv", sha256="0", format="dtm", admin_level=2, rows_in=10, rows_kept=8,
                            rows_quarantined=1, columns_kept={}, columns_dropped=[],
                            duplicates_policy="", sensitivity="low", sensitivity_reasons=[])
