"""Per-format reader behaviour users rely on: layouts, column names, duplicates, areas."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import forecast
from forecast.cube import flow_table
from forecast.datasets import dtm_export, make_panel, sample_files
from forecast.errors import UnusableFileError
from forecast.io import Gazetteer, read_acled, read_dtm, read_flows, read_table
from forecast.io._areas import _distinct_rows
from forecast.io._flows import canonical_reason
from forecast.io._parse import DATE_FORMATS

ADM2 = sample_files()["areas"]
ALIASES = sample_files()["aliases"]

DTM_ROWS = """admin1Name,admin2Name,numPresentIdpInd,reportingDate,roundNumber
Bay,Baidoa,1200,2020-01-15,1
Bay,Buur Hakaba,300,2020-01-15,1
Gedo,Luuq,80,2020-03-02,2
"""

FLOW_HEADER = ("Month End,Current (Arrival) Region,Current (Arrival) District,"
               "Previous (Departure) Region,Previous (Departure) District,Reason,Number of Individuals\n")

# A small gazetteer CSV in which two districts of different regions share a name.
GAZETTEER_CSV = """pcode,name,admin_level,parent_pcode
XY,Country,0,
XY01,North,1,XY
XY02,South,1,XY
XY0101,Riverside,2,XY01
XY0102,Hilltop,2,XY01
XY0201,Riverside,2,XY02
"""


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.from_file(ADM2)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def quarantined(result) -> list[list]:
    """The quarantine as [row, field, value, reason] lists, the way users read it."""
    return result.quarantine[["row", "field", "value", "reason"]].values.tolist()


# --- one cube whatever the container ------------------------------------------------------

@pytest.fixture(scope="module")
def synthetic_dtm() -> tuple[xr.Dataset, pd.DataFrame]:
    panel = make_panel(9, 10, seed=4, with_flows=False)
    return panel, dtm_export(panel)


def test_dtm_cube_is_identical_when_the_same_records_come_as_csv_xlsx_api_envelope_or_json_list(
        tmp_path, synthetic_dtm):
    panel, table = synthetic_dtm
    records = json.loads(table.to_json(orient="records"))
    table.to_csv(tmp_path / "dtm.csv", index=False)
    table.to_excel(tmp_path / "dtm.xlsx", index=False)
    (tmp_path / "envelope.json").write_text(json.dumps({"isSuccess": True, "result": records}))
    (tmp_path / "list.json").write_text(json.dumps(records))
    cubes = {name: forecast.ingest([tmp_path / name], "dtm").cube
             for name in ("dtm.csv", "dtm.xlsx", "envelope.json", "list.json")}
    reference = cubes.pop("dtm.csv")
    for name, cube in cubes.items():
        xr.testing.assert_identical(cube, reference)
        assert forecast.cube_hash(cube) == forecast.cube_hash(reference), name
    # ... and that cube holds exactly the panel's observed stock.
    truth = panel["idp_stock"].sel(time=reference["time"])
    np.testing.assert_array_equal(reference["idp_stock"].sel(area=truth["area"]).values, truth.values)


def test_xlsx_with_real_excel_dates_gives_the_same_cube_as_iso_text_dates(tmp_path):
    frame = pd.read_csv(write(tmp_path / "dtm.csv", DTM_ROWS), dtype=str)
    frame["reportingDate"] = pd.to_datetime(frame["reportingDate"])
    frame["numPresentIdpInd"] = frame["numPresentIdpInd"].astype(int)
    frame.to_excel(tmp_path / "dtm.xlsx", index=False)
    from_csv = forecast.ingest([tmp_path / "dtm.csv"], "dtm", areas=ADM2)
    from_xlsx = forecast.ingest([tmp_path / "dtm.xlsx"], "dtm", areas=ADM2)
    xr.testing.assert_identical(from_csv.cube, from_xlsx.cube)
    assert from_xlsx.manifest.files[0].rows_kept == 3


def test_failed_dtm_api_response_is_unusable_and_names_the_file_and_the_api_message(tmp_path):
    path = tmp_path / "api.json"
    path.write_text(json.dumps({"isSuccess": False, "errorMessages": ["Invalid admin0Pcode"], "result": []}))
    with pytest.raises(UnusableFileError) as caught:
        read_dtm(path)
    assert str(caught.value).startswith(f"{path}: is a failed DTM API response")
    assert "Invalid admin0Pcode" in str(caught.value)


def test_json_object_without_result_list_is_unusable_with_a_hint_on_the_expected_layout(tmp_path):
    path = tmp_path / "odd.json"
    path.write_text(json.dumps({"isSuccess": True, "rows": []}))
    with pytest.raises(UnusableFileError, match=r"without a 'result' list") as caught:
        forecast.ingest([path], "dtm")
    assert caught.value.hint and '"isSuccess": true, "result": [...]' in caught.value.hint


# --- column names -------------------------------------------------------------------------

@pytest.mark.parametrize("header", ["IDP Individuals", "Total IDPs", "idps", "numPresentIdpInd",
                                    "idp_individuals", "TOTAL-IDPS", "Number of IDPs"])
def test_dtm_stock_column_is_found_under_each_known_name(tmp_path, header):
    path = write(tmp_path / "dtm.csv", DTM_ROWS.replace("numPresentIdpInd", header))
    result = read_dtm(path)
    assert result.columns_kept["idp_stock"] == header
    assert sorted(result.table["value"]) == [80.0, 300.0, 1200.0]


def test_user_columns_yaml_adds_a_name_the_builtin_table_lacks(tmp_path):
    path = write(tmp_path / "dtm.csv", DTM_ROWS.replace("numPresentIdpInd", "Displaced persons (total)"))
    with pytest.raises(UnusableFileError, match="no column for 'idp_stock'"):
        forecast.ingest([path], "dtm")
    mapping = write(tmp_path / "cols.yaml", "dtm:\n  idp_stock: [Displaced persons (total)]\n")
    result = forecast.ingest([path], "dtm", columns=mapping)
    assert result.manifest.files[0].columns_kept["idp_stock"] == "Displaced persons (total)"
    assert float(result.cube["idp_stock"].sum()) == 1580.0


@pytest.mark.parametrize("text, problem", [
    ("dtm:\n  idp_stok: [x]\n", "unknown field 'dtm.idp_stok'"),
    ("dmt:\n  idp_stock: [x]\n", "unknown format 'dmt'"),
    ("dtm:\n  idp_stock: 5\n", "'dtm.idp_stock' must be a column name or a list of names"),
    ("- a\n- b\n", "a column mapping must be a YAML mapping"),
    ("dtm: [\n", "cannot read the column mapping"),
], ids=["field", "format", "not-names", "not-mapping", "bad-yaml"])
def test_bad_columns_yaml_is_unusable_and_names_the_yaml_file(tmp_path, text, problem):
    data = write(tmp_path / "dtm.csv", DTM_ROWS)
    mapping = write(tmp_path / "cols.yaml", text)
    with pytest.raises(UnusableFileError) as caught:
        forecast.ingest([data], "dtm", columns=mapping)
    assert str(caught.value).startswith(f"{mapping}: ")
    assert problem in str(caught.value)


def test_unknown_layout_error_lists_the_columns_found_and_the_closest_known_names(tmp_path):
    path = write(tmp_path / "dtm.csv", "admin1Name,admin2Name,Total IDP,reportingDate\nBay,Baidoa,5,2020-01-01\n")
    with pytest.raises(UnusableFileError) as caught:
        read_dtm(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not a DTM layout: no column for 'idp_stock'.")
    assert "Columns found: ['admin1Name', 'admin2Name', 'Total IDP', 'reportingDate']" in message
    assert "Closest: [\"'Total IDP' ~ 'Total IDPs'\"]" in message
    assert "--columns" in caught.value.hint


def test_two_columns_for_one_field_are_refused_rather_than_one_picked(tmp_path):
    path = write(tmp_path / "dtm.csv", DTM_ROWS.replace("roundNumber", "IDPs"))
    with pytest.raises(UnusableFileError, match=r"all look like 'idp_stock'; keep one of them"):
        read_dtm(path)


# --- dates -------------------------------------------------------------------------------

@pytest.mark.parametrize("date", [pd.Timestamp("2020-03-15 10:20:30").strftime(f) for f in DATE_FORMATS]
                         + ["2020-03-15T00:00:00Z", "2020-03-15T00:00:00.000Z", "2020-03-15T10:00:00+03:00"])
def test_dtm_row_is_placed_in_its_month_in_every_documented_date_format(tmp_path, date):
    path = write(tmp_path / "dtm.csv", f'admin1Name,admin2Name,IDPs,Date\nBay,Baidoa,10,"{date}"\n')
    result = read_dtm(path)
    assert result.table["time"].tolist() == [pd.Timestamp("2020-03-01")]


def test_dd_mm_dates_are_read_day_first(tmp_path):
    path = write(tmp_path / "dtm.csv", "admin1Name,admin2Name,IDPs,Date\nBay,Baidoa,10,04/03/2020\n")
    assert read_dtm(path).table["time"].tolist() == [pd.Timestamp("2020-03-01")]


def test_year_and_month_columns_place_rows_when_there_is_no_date(tmp_path):
    path = write(tmp_path / "dtm.csv", "admin1Name,admin2Name,IDPs,year,month\nBay,Baidoa,10,2021,Feb\n"
                 "Bay,Baidoa,11,2021,13\n")
    result = read_dtm(path)
    assert result.table["time"].tolist() == [pd.Timestamp("2021-02-01")]
    assert quarantined(result) == [[3, "year/month", "2021/13", "unreadable year/month"]]


# --- DTM duplicates ------------------------------------------------------------------------

def test_exact_repeat_of_a_dtm_row_keeps_the_first_and_quarantines_the_repeat(tmp_path):
    path = write(tmp_path / "dtm.csv", DTM_ROWS + "Bay,Baidoa,1200,2020-01-15,1\n")
    result = read_dtm(path)
    assert quarantined(result) == [[5, "roundNumber", "1", "duplicate row: same key and values as row 2"]]
    assert sorted(result.table["source_row"]) == [2, 3, 4]


def test_dtm_rows_that_disagree_for_one_area_round_are_all_quarantined(tmp_path):
    path = write(tmp_path / "dtm.csv", DTM_ROWS + "Bay,Baidoa,1300,2020-01-15,1\n")
    result = read_dtm(path)
    reason = "conflicting duplicate: rows 2, 5 give different values for the same key"
    assert quarantined(result) == [[2, "roundNumber", "1", reason], [5, "roundNumber", "1", reason]]
    assert "Bay/Baidoa" not in set(result.table["area"])


def test_two_rounds_in_one_month_keep_the_latest_and_quarantine_the_earlier_as_superseded(tmp_path):
    path = write(tmp_path / "dtm.csv", DTM_ROWS + "Bay,Baidoa,1250,2020-01-28,2\n")
    result = forecast.ingest([path], "dtm", areas=ADM2)
    assert quarantined(result) == [
        [2, "roundNumber", "1", "superseded: a later round (2) reports this area in the same month"]]
    assert float(result.cube["idp_stock"].sel(area="SO2401", time="2020-01-01")) == 1250.0
    assert result.manifest.files[0].quarantine_reasons == {"superseded": 1}


# --- flows ---------------------------------------------------------------------------------

def test_identical_flow_rows_are_separate_records_and_are_summed(tmp_path, gazetteer):
    row = "2016-01-31,Bay,Baidoa,Gedo,Luuq,Drought related,7\n"
    path = write(tmp_path / "flows.csv", FLOW_HEADER + row * 3)
    result = forecast.ingest([path], "flows", areas=gazetteer)
    record = result.manifest.files[0]
    assert (record.rows_in, record.rows_kept, record.rows_quarantined) == (3, 3, 0)
    assert result.cube.sizes["flow"] == 1  # one record per route and month
    assert float(flow_table(result.cube).dense().sel(origin="SO2606", destination="SO2401", time="2016-01-01")) == 21.0
    assert "summed" in record.duplicates_policy


def test_flow_reasons_are_canonicalised_across_spellings(tmp_path, gazetteer):
    rows = ["2016-01-31,Bay,Baidoa,Gedo,Luuq,Drought related,7",
            "2016-01-31,Bay,Baidoa,Gedo,Luuq,DROUGHT,1",
            "2016-01-31,Bay,Baidoa,Gedo,Luuq,Conflict/Insecurity,3",
            "2016-01-31,Bay,Baidoa,Gedo,Luuq,Floods,5",
            "2016-01-31,Bay,Baidoa,Gedo,Luuq,,2",
            "2016-01-31,Bay,Baidoa,Gedo,Luuq,Forced eviction,4"]
    path = write(tmp_path / "flows.csv", FLOW_HEADER + "\n".join(rows) + "\n")
    cube = forecast.ingest([path], "flows", areas=gazetteer).cube
    by_reason = cube["arrivals_by_reason"].sel(area="SO2401", time="2016-01-01").to_series()
    assert by_reason.to_dict() == {"conflict": 3.0, "drought": 8.0, "flood": 5.0, "forced_eviction": 4.0,
                                   "not_stated": 2.0}
    assert float(cube["arrivals"].sel(area="SO2401", time="2016-01-01")) == 22.0


@pytest.mark.parametrize("label, reason", [("Drought related", "drought"), ("Conflict/Insecurity", "conflict"),
                                           ("insecurity", "conflict"), ("Flooding", "flood"), ("Others", "other"),
                                           ("  ", "not_stated"), ("Lack of livelihood", "lack_of_livelihood")])
def test_canonical_reason_maps_known_labels_and_keeps_unknown_ones_by_name(label, reason):
    assert canonical_reason(label) == reason


def test_flow_with_unreadable_count_is_quarantined_not_zero(tmp_path, gazetteer):
    rows = "2016-01-31,Bay,Baidoa,Gedo,Luuq,Drought related,seven\n2016-01-31,Bay,Baidoa,Gedo,Luuq,Drought related,2.5\n"
    result = read_flows(write(tmp_path / "flows.csv", FLOW_HEADER + rows), resolver=gazetteer)
    assert quarantined(result) == [[2, "Number of Individuals", "seven", "not a number"],
                                   [3, "Number of Individuals", "2.5", "count is not a whole number"]]
    assert result.rows_kept == 0


# --- areas ---------------------------------------------------------------------------------

def test_gazetteer_from_the_shipped_cod_geojson_lists_74_districts_in_18_regions(gazetteer):
    assert gazetteer.levels == [0, 1, 2]
    districts = gazetteer.areas_at(2)
    assert len(districts) == 74 and len(gazetteer.areas_at(1)) == 18
    baidoa = districts.set_index("area").loc["SO2401"]
    assert (baidoa["area_name"], baidoa["parent_pcode"], baidoa["admin1_name"]) == ("Baidoa", "SO24", "Bay")


def test_gazetteer_csv_resolves_names_within_their_parent_and_refuses_an_ambiguous_name(tmp_path):
    gaz = Gazetteer.from_file(write(tmp_path / "gaz.csv", GAZETTEER_CSV))
    table = "district,region,date,rain\nRiverside,North,2020-01,1\nRiverside,South,2020-01,2\nRiverside,,2020-01,3\nHILL-TOP,North,2020-01,4\n"
    result = read_table(write(tmp_path / "rain.csv", table), resolver=gaz)
    assert dict(zip(result.table["source_row"], result.table["area"])) == {2: "XY0101", 3: "XY0201", 5: "XY0102"}
    assert quarantined(result) == [[4, "region", "", "missing area: no admin1 name or P-code"]]
    names_only = read_table(write(tmp_path / "rain2.csv", "district,date,rain\nRiverside,2020-01,1\n"), resolver=gaz)
    assert quarantined(names_only) == [
        [2, "district", "Riverside", "ambiguous area name: 'Riverside' matches admin2 areas XY0101, XY0201"]]


@pytest.mark.parametrize("problem, text", [
    ("a gazetteer CSV needs columns", "code,name\nXY,Country\n"),
    ("P-codes listed twice", "pcode,name,admin_level\nXY,A,0\nXY,B,0\n"),
    ("admin_level must be a whole number", "pcode,name,admin_level\nXY,A,zero\n"),
    ("parent P-codes that are not areas", "pcode,name,admin_level,parent_pcode\nXY,A,0,\nXY0101,B,2,XY01\n"),
])
def test_broken_gazetteer_csv_is_unusable_naming_it(tmp_path, problem, text):
    path = write(tmp_path / "gaz.csv", text)
    with pytest.raises(UnusableFileError) as caught:
        Gazetteer.from_file(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert problem in str(caught.value)


def test_cod_alternative_names_and_an_alias_csv_resolve_spelling_variants(tmp_path):
    rows = "2016-01-31,Bay,Baydhaba,Gedo,Luuq,Drought related,7\n2016-01-31,Bay,Bur Hacaba,Gedo,Luuq,Drought related,3\n"
    path = write(tmp_path / "flows.csv", FLOW_HEADER + rows)
    without = forecast.ingest([path], "flows", areas=ADM2)
    assert quarantined(without) == [[2, "Current (Arrival) District", "Baydhaba",
                                     "unknown area name: 'Baydhaba' matches no admin2 area in som_adm2.geojson; "
                                     "add it to an alias table if it is a spelling variant"]]
    with_aliases = forecast.ingest([path], "flows", areas=ADM2, aliases=ALIASES)
    assert len(with_aliases.quarantine) == 0
    arrivals = with_aliases.cube["arrivals"].sel(time="2016-01-01")
    assert (float(arrivals.sel(area="SO2401")), float(arrivals.sel(area="SO2402"))) == (7.0, 3.0)
    assert with_aliases.manifest.gazetteer["aliases"] > without.manifest.gazetteer["aliases"]


def test_alias_pointing_to_an_unknown_pcode_is_refused(tmp_path):
    aliases = write(tmp_path / "aliases.csv", "alias,pcode\nBaydhaba,SO9999\n")
    with pytest.raises(UnusableFileError, match="alias 'Baydhaba' points to unknown P-code 'SO9999'"):
        Gazetteer.from_file(ADM2, aliases=aliases)


def test_alias_csv_without_its_columns_is_unusable_naming_it(tmp_path):
    aliases = write(tmp_path / "aliases.csv", "name,code\nBaydhaba,SO2401\n")
    with pytest.raises(UnusableFileError) as caught:
        Gazetteer.from_file(ADM2, aliases=aliases)
    assert str(caught.value).startswith(f"{aliases}: an alias table needs columns alias, pcode")


def test_near_miss_name_is_quarantined_never_guessed(tmp_path, gazetteer):
    path = write(tmp_path / "dtm.csv", DTM_ROWS.replace("Bay,Baidoa", "Bay,Baidoaa"))
    result = read_dtm(path, resolver=gazetteer)
    assert quarantined(result)[0][:3] == [2, "admin2Name", "Baidoaa"]
    assert quarantined(result)[0][3].startswith("unknown area name: 'Baidoaa' matches no admin2 area")
    assert "SO2401" not in set(result.table["area"])


def test_names_match_ignoring_case_accents_spaces_and_punctuation(tmp_path, gazetteer):
    text = "admin1Name,admin2Name,IDPs,Date\nBAY,baïdoa,1,2020-01-01\nbay,BUUR-HAKABA,2,2020-01-01\n"
    result = read_dtm(write(tmp_path / "dtm.csv", text), resolver=gazetteer)
    assert sorted(result.table["area"]) == ["SO2401", "SO2402"]


def test_district_under_the_wrong_region_is_quarantined_unless_hierarchy_is_lenient(tmp_path):
    path = write(tmp_path / "dtm.csv", DTM_ROWS.replace("Bay,Baidoa", "Gedo,Baidoa"))
    strict = forecast.ingest([path], "dtm", areas=ADM2)
    assert quarantined(strict) == [[2, "admin2Name", "Baidoa",
                                    "admin hierarchy: Baidoa (SO2401) lies in Bay (SO24) in som_adm2.geojson, "
                                    "not in Gedo (SO26) as the row says"]]
    lenient = forecast.ingest([path], "dtm", areas=ADM2, strict_hierarchy=False)
    assert len(lenient.quarantine) == 0
    assert float(lenient.cube["idp_stock"].sel(area="SO2401", time="2020-01-01")) == 1200.0


def test_rows_given_by_pcode_resolve_and_an_unknown_pcode_is_quarantined(tmp_path, gazetteer):
    text = "admin2Pcode,IDPs,Date\nSO2401,5,2020-01-01\nSO24,6,2020-01-01\n"
    result = read_dtm(write(tmp_path / "dtm.csv", text), resolver=gazetteer)
    assert result.table["area"].tolist() == ["SO2401"]
    assert quarantined(result) == [
        [3, "admin2Pcode", "SO24", "unknown P-code: 'SO24' is not an admin2 area in som_adm2.geojson"]]


# --- ACLED ---------------------------------------------------------------------------------

ACLED_ROWS = """event_id_cnty,event_date,admin1,admin2,event_type,fatalities
SOM1,2020-01-03,Bay,Baidoa,Battles,2
SOM2,15 January 2020,Bay,Baidoa,Explosions/Remote violence,0
SOM3,2020-03-30,Gedo,Luuq,Battles,5
SOM2,2020-01-15,Bay,Baidoa,Explosions/Remote violence,0
"""


def test_acled_events_become_monthly_counts_and_fatalities_with_zero_in_months_without_events(tmp_path):
    result = forecast.ingest([write(tmp_path / "acled.csv", ACLED_ROWS)], "acled", areas=ADM2)
    cube = result.cube
    assert [str(t)[:7] for t in cube["time"].values] == ["2020-01", "2020-02", "2020-03"]
    events = cube["conflict_events"].to_pandas()
    assert events.loc["SO2401"].tolist() == [2.0, 0.0, 0.0]
    assert events.loc["SO2606"].tolist() == [0.0, 0.0, 1.0]
    assert cube["conflict_fatalities"].sel(area="SO2401").values.tolist() == [2.0, 0.0, 0.0]
    # ACLED covers every area: no event is a count of 0 for all 74 districts, not missing.
    assert bool(cube["conflict_events_observed"].all()) and float(events.loc["SO1101"].sum()) == 0.0
    assert result.manifest.sensitivity.level == "low"


def test_acled_repeated_event_id_is_quarantined(tmp_path):
    result = read_acled(write(tmp_path / "acled.csv", ACLED_ROWS))
    assert quarantined(result) == [[5, "event_id_cnty", "SOM2", "duplicate event: this event_id appeared earlier"]]


def test_acled_points_are_placed_in_the_polygon_that_contains_them(tmp_path, gazetteer):
    text = ("event_id_cnty,event_date,latitude,longitude,fatalities\n"
            "A1,2020-02-01,3.11,43.65,1\n"       # Baidoa (Baydhaba), Bay
            "A2,2020-02-09,2.04,45.34,0\n"       # Banadir
            "A3,2020-02-10,0.0,0.0,0\n"          # Gulf of Guinea
            "A4,2020-02-11,north,45.3,0\n")
    result = read_acled(write(tmp_path / "acled.csv", text), resolver=gazetteer)
    assert dict(zip(result.table["source_row"], result.table["area"])) == {2: "SO2401", 3: "SO2201"}
    assert quarantined(result) == [
        [4, "latitude/longitude", "0.0,0.0", "event lies in no admin2 polygon of the gazetteer"],
        [5, "latitude/longitude", "north,45.3", "unreadable coordinates"]]
    assert result.admin_level == 2


def test_acled_points_without_a_boundary_file_are_refused_with_a_hint(tmp_path):
    path = write(tmp_path / "acled.csv", "event_date,latitude,longitude\n2020-02-01,3.11,43.65\n")
    with pytest.raises(UnusableFileError, match="needs a boundary GeoJSON") as caught:
        read_acled(path)
    assert "--areas" in caught.value.hint


# --- area-month tables ---------------------------------------------------------------------

def test_area_month_table_makes_one_variable_per_numeric_column_and_empty_cells_missing(tmp_path, gazetteer):
    text = ("district,y,m,Rainfall (mm),Mean SPI 3m,note\n"
            "Baidoa,2020,1,12.5,-0.4,dry\n"
            "Baidoa,2020,2,,0.3,\n"
            "Luuq,2020,2,3,,ok\n")
    result = forecast.ingest([write(tmp_path / "rain.csv", text)], "table", areas=gazetteer)
    cube = result.cube
    assert {"rainfall_mm", "mean_spi_3m"} <= set(cube.data_vars)
    assert cube["rainfall_mm"].sel(area="SO2401").values.tolist()[0] == 12.5
    assert np.isnan(cube["rainfall_mm"].sel(area="SO2401", time="2020-02-01"))
    assert float(cube["mean_spi_3m"].sel(area="SO2401", time="2020-02-01")) == 0.3
    record = result.manifest.files[0]
    assert record.columns_kept["rainfall_mm"] == "Rainfall (mm)" and record.columns_dropped == ["note"]


def test_area_month_table_duplicates_keep_an_exact_repeat_once_and_drop_disagreeing_rows(tmp_path):
    text = "district,date,rain\nBaidoa,2020-01,1\nBaidoa,2020-01,1\nLuuq,2020-01,1\nLuuq,2020-01,2\nEyl,2020-01,x\n"
    result = read_table(write(tmp_path / "rain.csv", text))
    assert result.table["source_row"].tolist() == [2]
    conflict = "conflicting duplicate: rows 4, 5 give different values for the same key"
    assert quarantined(result) == [
        [3, "rain", "1", "duplicate row: same key and values as row 2"],
        [4, "rain", "1", conflict], [5, "rain", "2", conflict],
        [6, "rain", "x", "not a number: expected a numeric value or an empty cell"]]


def test_area_month_table_without_numeric_columns_is_unusable(tmp_path):
    path = write(tmp_path / "t.csv", "district,date,comment\nBaidoa,2020-01,dry\n")
    with pytest.raises(UnusableFileError, match="no numeric value column besides area and time"):
        read_table(path)


# --- XLSX workbooks ------------------------------------------------------------------------

def test_xlsx_with_several_sheets_is_refused_without_sheet_and_read_with_it(tmp_path):
    path = tmp_path / "book.xlsx"
    frame = pd.read_csv(write(tmp_path / "dtm.csv", DTM_ROWS))
    with pd.ExcelWriter(path) as book:
        pd.DataFrame({"about": ["DTM round export"]}).to_excel(book, sheet_name="README", index=False)
        frame.to_excel(book, sheet_name="Data", index=False)
    with pytest.raises(UnusableFileError) as caught:
        forecast.ingest([path], "dtm")
    assert str(caught.value).startswith(f"{path}: has 2 sheets ['README', 'Data']; say which to read")
    assert "--sheet" in caught.value.hint
    with pytest.raises(UnusableFileError, match=r"has no sheet 'Daten'; sheets: \['README', 'Data'\]"):
        forecast.ingest([path], "dtm", sheet="Daten")
    result = forecast.ingest([path], "dtm", sheet="Data")
    xr.testing.assert_identical(result.cube, forecast.ingest([tmp_path / "dtm.csv"], "dtm").cube)


def test_xlsx_rows_are_numbered_as_the_user_sees_them_in_the_sheet(tmp_path):
    frame = pd.read_csv(write(tmp_path / "dtm.csv", DTM_ROWS + "Bay,Baidoa,-3,2020-05-01,3\n"), dtype=str)
    frame.to_excel(tmp_path / "dtm.xlsx", index=False)
    result = read_dtm(tmp_path / "dtm.xlsx")
    assert quarantined(result) == [[5, "numPresentIdpInd", "-3", "negative count"]]


def test_blank_header_cells_are_named_by_position_and_dropped_off_the_allow_list(tmp_path):
    # Excel's CSV export writes trailing commas for formatted-but-empty columns.
    path = write(tmp_path / "rain.csv", "district,date,rain,,\nBaidoa,2020-01,1.5,,\n")
    result = read_table(path)
    assert result.table[["area", "variable", "value"]].values.tolist() == [["Baidoa", "rain", 1.5]]
    assert result.columns_dropped == ["(unnamed column 4)", "(unnamed column 5)"]


def test_header_naming_a_column_twice_is_unusable(tmp_path):
    path = write(tmp_path / "dtm.csv", "admin1Name,admin2Name,IDPs,Date,admin2Name\nBay,Baidoa,1,2020-01-01,x\n")
    with pytest.raises(UnusableFileError, match=r"the header names these columns more than once: \['admin2Name'\]"):
        read_dtm(path)


def test_csv_in_excel_windows_encoding_with_semicolons_reads_like_utf8(tmp_path):
    text = "admin1Name;admin2Name;IDPs;Date\nBay;Baïdoa;10;2020-01-01\n"
    (tmp_path / "cp1252.csv").write_bytes(text.encode("cp1252"))
    result = read_dtm(tmp_path / "cp1252.csv")
    assert result.table["area"].tolist() == ["Bay/Baïdoa"]
    assert result.table["value"].tolist() == [10.0]


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(st.tuples(st.sampled_from(["", "Baidoa", "baidoa ", "Luuq"]), st.sampled_from(["", "SO2401", "SO2606"]),
                          st.sampled_from(["", "SO24"])), max_size=40))
def test_area_combinations_are_resolved_once_each_in_order_of_appearance(rows):
    """Readers resolve each distinct (name, P-code, parent) once and spread the answer to its rows."""
    codes, distinct = _distinct_rows(pd.DataFrame(rows, columns=["n", "p", "q"], dtype=str))
    first_seen: dict = {}
    for row in rows:
        first_seen.setdefault(row, len(first_seen))
    assert list(codes) == [first_seen[row] for row in rows]
    assert distinct == list(first_seen)
