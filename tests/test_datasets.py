"""The shipped Somalia sample: what `load_somalia()` and `make demo` rely on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from forecast import cube_hash
from forecast.datasets import ingest_sample, load_somalia, sample_files
from forecast.datasets._somalia import SAMPLE_MANIFEST


@pytest.fixture(scope="module")
def sample():
    return ingest_sample()


FSNAU = ["rainfall", "ndvi", "drought_index", "water_price", "conflict_incidents", "conflict_fatalities",
         "sorghum_price", "maize_price", "rice_price", "goat_price", "wage", "tot_goat_cereal",
         "tot_wage_cereal", "cost_min_basket"]


def test_load_somalia_gives_74_districts_by_180_months_when_loaded():
    cube = load_somalia()
    assert dict(cube.sizes)["area"] == 74
    assert dict(cube.sizes)["time"] == 180
    assert str(cube["time"].values[0])[:7] == "2009-01"
    assert str(cube["time"].values[-1])[:7] == "2023-12"
    assert cube.attrs["area_key"] == "pcode"
    assert {"arrivals", "departures", "flows", *FSNAU, "ipc_phase3plus_share", "ipc_area_phase"} <= set(cube.data_vars)


def test_sample_covariates_reach_the_scored_origins_and_arrivals_start_in_2016():
    cube = load_somalia()
    scored = cube.sel(time=slice("2022-07", "2023-12"))
    for name in FSNAU:  # every covariate is there where the backtest is judged
        assert float(scored[name].notnull().mean()) > 0.3, name
    assert float(cube["rainfall"].sel(time=slice("2009-01", "2014-12")).notnull().mean()) > 0.95
    assert int(cube["arrivals"].sel(time=slice("2009-01", "2015-12")).notnull().sum()) == 0
    # Mogadishu (FSNAU's name) is Banadir through the alias table
    assert float(cube["rainfall"].sel(area="SO2201", time="2020-04-01").notnull()) == 1.0


def test_sample_ipc_rounds_sit_at_their_reference_months_only():
    ipc = load_somalia()["ipc_phase3plus_share"]
    months = sorted({str(t)[:7] for t in ipc["time"].values[ipc.notnull().any("area").values]})
    assert months == ["2017-01", "2017-07", "2018-01", "2018-07", "2019-01", "2019-08", "2020-01", "2020-09", "2021-01"]
    assert float(ipc.max()) <= 1.0


def test_sample_value_rules_withhold_implausible_values_and_keep_their_rows(sample):
    record = next(r for r in sample.manifest.files if r.path.endswith("fsnau_district_month.csv"))
    raw = pd.read_csv(sample_files()["fsnau"])
    assert record.rows_kept == len(raw) and record.rows_quarantined == 0
    withheld = sample.withheld
    assert record.values_withheld == len(withheld) > 0
    # every negative NDVI of the file is withheld, and missing in the cube
    negative = raw[raw["ndvi"] < 0]
    assert len(negative) == int((withheld["field"] == "ndvi").sum()) == 10
    cube = sample.cube
    names = dict(zip(cube["area_name"].values, cube["area"].values))
    row = negative[negative["District"].isin(names)].iloc[0]  # a district FSNAU spells as the COD does
    assert np.isnan(float(cube["ndvi"].sel(area=names[row["District"]], time=row["date"] + "-01")))
    # rice at 5.6 million shillings a kilo is withheld as a jump against the district's earlier months
    rice = withheld[withheld["field"] == "rice_price"]
    assert "5.6168e+06" in set(rice["value"]) and rice["reason"].str.contains("10 times").all()
    # a withheld value's row still gives its other values (rainfall of that district-month)
    assert np.isfinite(float(cube["rainfall"].sel(area=names[row["District"]], time=row["date"] + "-01")))


def test_shipped_cube_equals_a_fresh_ingest_of_the_shipped_files(sample):
    assert cube_hash(load_somalia()) == cube_hash(sample.cube)
    shipped = json.loads(SAMPLE_MANIFEST.read_text())
    assert shipped["cube_hash"] == sample.manifest.cube_hash


def test_sample_rows_add_up_for_every_file(sample):
    for record in sample.manifest.files:
        assert record.rows_in == record.rows_kept + record.rows_quarantined
    assert len(sample.quarantine) == sum(r.rows_quarantined for r in sample.manifest.files)


def test_sample_arrivals_keep_unrecorded_months_missing_not_zero():
    cube = load_somalia()
    arrivals = cube["arrivals"]
    assert arrivals.isnull().any()
    np.testing.assert_array_equal(arrivals.notnull().values, cube["arrivals_observed"].values)
    # PRMN records are positive counts: a recorded month is never 0.
    assert float(arrivals.min()) > 0


def test_sample_arrivals_total_matches_the_kept_prmn_records(sample):
    flows = pd.read_csv(sample_files()["flows"])
    quarantined_rows = sample.quarantine.loc[
        sample.quarantine["source_file"].str.endswith("prmn_flows_district_month.csv"), "row"]
    kept = flows.drop(index=quarantined_rows - 2)
    assert float(load_somalia()["arrivals"].sum()) == kept["Number of Individuals"].sum()


def test_shipped_covariates_are_district_months_with_only_the_columns_the_pipeline_reads():
    fsnau = pd.read_csv(sample_files()["fsnau"])
    assert list(fsnau.columns) == ["Region", "District", "date", *FSNAU]
    assert not fsnau.duplicated(["District", "date"]).any()
    climate = pd.read_csv(sample_files()["climate"])
    assert list(climate.columns) == ["Region", "District", "date", "rainfall", "ndvi"]
    assert climate["date"].max() < fsnau["date"].min()  # the older extract only before the dashboard
