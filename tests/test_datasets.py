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


def test_load_somalia_gives_74_districts_by_96_months_when_loaded():
    cube = load_somalia()
    assert dict(cube.sizes)["area"] == 74
    assert dict(cube.sizes)["time"] == 96
    assert str(cube["time"].values[0])[:7] == "2016-01"
    assert str(cube["time"].values[-1])[:7] == "2023-12"
    assert cube.attrs["area_key"] == "pcode"
    assert {"arrivals", "departures", "flows", "rainfall", "conflict_events"} <= set(cube.data_vars)


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


def test_shipped_conflict_data_holds_counts_not_acled_event_rows():
    conflict = pd.read_csv(sample_files()["conflict"])
    assert list(conflict.columns) == ["admin2Pcode", "district", "y", "m", "conflict_events", "conflict_fatalities"]
    assert not conflict.duplicated(["district", "y", "m"]).any()
