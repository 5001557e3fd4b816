"""Area attributes (fairness groups) read from a table and carried into the cube along `area`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

import forecast
import forecast.cli._console
from forecast.cli import app
from forecast.datasets import load_somalia, sample_files
from forecast.errors import DataQualityWarning, IdentifyingDataError, UnusableFileError
from forecast.io import Gazetteer, NameKeys, read_attributes

ADM2 = sample_files()["areas"]
ALIASES = sample_files()["aliases"]  # has Baydhaba -> SO2401 (Baidoa)
DTM = """admin1Name,admin2Name,numPresentIdpInd,reportingDate
Bay,Baidoa,1200,2020-01-15
Bay,Buur Hakaba,300,2020-01-15
Gedo,Luuq,80,2020-03-02
"""


@pytest.fixture(scope="module")
def gazetteer() -> Gazetteer:
    return Gazetteer.from_file(ADM2, aliases=ALIASES)


@pytest.fixture
def write(tmp_path):
    def write(text: str, name: str = "attributes.csv"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def test_read_attributes_keys_rows_by_pcode_when_the_file_has_a_pcode_column(gazetteer, write):
    result = read_attributes(write("pcode,region\nSO2401,Bay\nSO2801,Lower Juba\n"), gazetteer, 2)
    assert result.table["region"].to_dict() == {"SO2401": "Bay", "SO2801": "Lower Juba"}
    assert (result.ledger.rows_in, result.rows_kept, result.ledger.rows_quarantined) == (2, 2, 0)
    assert result.columns_kept == {"pcode": "pcode", "region": "region"}


def test_read_attributes_resolves_names_through_the_gazetteer_and_its_alias_table(gazetteer, write):
    path = write("name,access\nBaydhaba,hard-to-reach\nkismayo,accessible\nBUUR HAKABA,accessible\n")
    result = read_attributes(path, gazetteer, 2)
    assert result.table["access"].to_dict() == {
        "SO2401": "hard-to-reach", "SO2801": "accessible", "SO2402": "accessible"}


def test_read_attributes_makes_numeric_columns_float_and_others_text_when_values_are_empty(gazetteer, write):
    path = write("pcode,Settlement Type,population,score\n"
                 "SO2401, urban ,1200,0.00015052344528096456\n"
                 "SO2801,,,-2.5\n"
                 "SO2402,rural,n/a,\n")
    result = read_attributes(path, gazetteer, 2)
    assert result.kinds == {"settlement_type": "text", "population": "number", "score": "number"}
    table = result.table
    assert table["settlement_type"].tolist() == ["urban", "", "rural"]
    assert table["population"].dtype == np.float64
    np.testing.assert_array_equal(table["population"].to_numpy(), [1200.0, np.nan, np.nan])
    # numbers as written, to the last digit
    assert table.loc["SO2401", "score"] == 0.00015052344528096456
    assert result.columns_kept["settlement_type"] == "Settlement Type"


def test_read_attributes_keeps_a_mostly_numeric_column_as_text_with_a_warning_naming_the_row(gazetteer, write):
    path = write("pcode,population\nSO2401,1200\nSO2801,\"1,500\"\nSO2402,300\n")
    with pytest.warns(DataQualityWarning, match=r"attributes\.csv: column 'population' is kept as text because "
                      r"row 3 has '1,500', which is not a number \(1 of 3 values are not\)"):
        result = read_attributes(path, gazetteer, 2)
    assert result.kinds == {"population": "text"}
    assert result.table["population"].tolist() == ["1200", "1,500", "300"]


def test_read_attributes_quarantines_unknown_repeated_and_other_level_areas_with_reasons(gazetteer, write):
    path = write("pcode,name,region\n"
                 "SO2401,,Bay\n"          # row 2: kept
                 "SO9999,,Nowhere\n"      # row 3: unknown P-code
                 ",Atlantis,Nowhere\n"    # row 4: unknown name
                 "SO24,,Bay\n"            # row 5: admin1 P-code
                 ",Gedo,Gedo\n"           # row 6: admin1 name
                 ",Baydhaba,Bay\n"        # row 7: Baidoa again, by its alias
                 "SO2401,,Bay\n"          # row 8: Baidoa again, by P-code
                 "SO2801,,Lower Juba\n")  # row 9: kept
    result = read_attributes(path, gazetteer, 2)
    assert sorted(result.table.index) == ["SO2401", "SO2801"]
    quarantine = result.quarantine
    assert quarantine[["row", "field", "value"]].values.tolist() == [
        [3, "pcode", "SO9999"], [4, "name", "Atlantis"], [5, "pcode", "SO24"], [6, "name", "Gedo"],
        [7, "name", "Baydhaba"], [8, "pcode", "SO2401"]]
    reasons = dict(zip(quarantine["row"], quarantine["reason"]))
    assert reasons[3] == "unknown P-code: 'SO9999' is not an admin2 area in som_adm2.geojson"
    assert reasons[4].startswith("unknown area name: 'Atlantis' matches no admin2 area")
    assert reasons[5] == ("area at another admin level: Bay (SO24) is an admin1 area; "
                          "the cube's areas are admin2")
    assert reasons[6] == ("area at another admin level: Gedo (SO26) is an admin1 area; "
                          "the cube's areas are admin2")
    for row in (7, 8):
        assert reasons[row] == ("duplicate area: Baidoa (SO2401) is given first in row 2; "
                                "later rows for it are not used")
    ledger = result.ledger
    assert (ledger.rows_in, result.rows_kept, ledger.rows_quarantined) == (8, 2, 6)
    assert ledger.reasons() == {"area at another admin level": 2, "duplicate area": 2,
                                "unknown P-code": 1, "unknown area name": 1}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["SO2401", "SO2801", "SO24", "SO9999", "", "Baydhaba", "Luuq", "Gedo"]),
                min_size=1, max_size=12))
def test_read_attributes_accounts_for_every_row_whatever_the_keys(gazetteer, tmp_path, keys):
    path = tmp_path / "keys.csv"
    rows = [f"{k},,1" if k.startswith("SO") else f",{k},1" for k in keys]
    path.write_text("pcode,name,value\n" + "\n".join(rows) + "\n")
    result = read_attributes(path, gazetteer, 2)
    assert result.ledger.rows_in == len(keys) == result.rows_kept + result.ledger.rows_quarantined
    assert len(result.quarantine) == result.ledger.rows_quarantined
    assert result.table.index.is_unique


@pytest.mark.parametrize("column", ["admin_level", "parent_pcode", "area", "Area Name", "admin1Pcode",
                                    "admin2_name", "neighbours", "time"])
def test_read_attributes_refuses_a_reserved_column_name_naming_file_and_column(gazetteer, write, column):
    path = write(f"pcode,region,{column}\nSO2401,Bay,x\n")
    with pytest.raises(UnusableFileError) as info:
        read_attributes(path, gazetteer, 2)
    message = str(info.value)
    assert message.startswith(f"{path}: column '{column}' cannot be an area attribute: the name is reserved")
    assert f"--drop-column '{column}'" in message


def test_read_attributes_refuses_identifying_columns_like_every_reader_unless_dropped(gazetteer, write):
    path = write("pcode,region,contact phone\nSO2401,Bay,+252610000001\n")
    with pytest.raises(IdentifyingDataError) as info:
        read_attributes(path, gazetteer, 2)
    assert str(info.value).startswith(
        f"{path}: refused: column(s) that identify people: 'contact phone' (phone number)")
    result = read_attributes(path, gazetteer, 2, drop_columns=["contact phone"])
    assert list(result.table.columns) == ["region"]
    assert result.dropped_on_request == {"contact phone": "phone number"}


def test_read_attributes_refuses_a_table_without_an_area_key_or_without_attributes(gazetteer, write):
    with pytest.raises(UnusableFileError, match=r"needs a 'pcode' or 'name' column .*\['district', 'region'\]"):
        read_attributes(write("district,region\nBaidoa,Bay\n"), gazetteer, 2)
    with pytest.raises(UnusableFileError, match="no attribute columns besides the area key"):
        read_attributes(write("pcode\nSO2401\n"), gazetteer, 2)
    with pytest.raises(UnusableFileError, match="columns 'region' and 'Region' both give 'region'"):
        read_attributes(write("pcode,region,Region\nSO2401,Bay,Bay\n"), gazetteer, 2)


def test_ingest_puts_attributes_on_area_with_nan_and_empty_text_for_areas_not_listed(tmp_path, write):
    dtm = write(DTM, "dtm.csv")
    attrs = write("name,settlement,population\nBaidoa,urban,315679\nLuuq,rural,\nAtlantis,rural,1\n")
    result = forecast.ingest([dtm], "dtm", areas=ADM2, attributes=attrs)
    cube = result.cube
    assert cube["settlement"].dims == ("area",) and cube["population"].dtype == np.float64
    assert cube["settlement"].sel(area="SO2401").item() == "urban"
    assert cube["settlement"].sel(area="SO1101").item() == ""  # Borama: no row
    assert np.isnan(cube["population"].sel(area="SO1101").item())
    assert np.isnan(cube["population"].sel(area="SO2503").item())  # Luuq: listed, no value
    record = result.manifest.files[-1]
    assert (record.path, record.format, record.admin_level) == (str(attrs), "attributes", 2)
    assert (record.rows_in, record.rows_kept, record.rows_quarantined) == (3, 2, 1)
    assert record.quarantine_reasons == {"unknown area name": 1}
    assert "72 of 74 admin2 areas have no row: their attributes are NaN / ''" in record.notes
    assert result.quarantine["source_file"].tolist() == [str(attrs)]
    assert result.manifest.cube_hash == forecast.cube_hash(cube)
    # NaN and "" survive NetCDF: the saved cube has the manifest's hash
    paths = result.write(tmp_path / "out")
    assert forecast.cube_hash(forecast.load_cube(paths["cube"])) == result.manifest.cube_hash


def test_ingest_refuses_an_attribute_the_gazetteer_csv_already_gives(tmp_path, write):
    gaz = write("pcode,name,admin_level,parent_pcode,region\nXY,Country,0,,\nXY01,North,1,XY,North\n"
                "XY0101,Riverside,2,XY01,North\n", "gaz.csv")
    table = write("pcode,date,rain\nXY0101,2020-01-01,3\n", "rain.csv")
    attrs = write("pcode,region,access\nXY0101,North,accessible\n")
    with pytest.raises(UnusableFileError, match=r"attributes\.csv: column\(s\) 'region' \(as 'region'\) already"):
        forecast.ingest([table], "table", areas=gaz, attributes=attrs)


def test_ingest_without_gazetteer_matches_attribute_names_to_the_cube_name_keys(write):
    dtm = write(DTM, "dtm.csv")
    attrs = write("name,settlement\nBaidoa,urban\nBay/Buur Hakaba,rural\nBay,rural\n")
    result = forecast.ingest([dtm], "dtm", attributes=attrs)
    assert dict(zip(result.cube["area"].values, result.cube["settlement"].values)) == {
        "Bay/Baidoa": "urban", "Bay/Buur Hakaba": "rural", "Gedo/Luuq": ""}
    assert result.quarantine["reason"].tolist() == [
        "area at another admin level: 'Bay' is an admin1 area; the cube's areas are admin2"]


def test_read_attributes_by_name_keys_does_not_add_areas_to_the_cube(write):
    keys = NameKeys()
    forecast.read_dtm(write(DTM, "dtm.csv"), resolver=keys)
    before = keys.areas_at(2)
    result = read_attributes(write("name,settlement\nNowhere,urban\n"), keys, 2)
    pd.testing.assert_frame_equal(keys.areas_at(2), before)
    assert result.rows_kept == 0 and result.ledger.rows_quarantined == 1


def test_cli_ingest_attributes_option_puts_them_on_the_cube_and_in_the_manifest(monkeypatch, tmp_path, write):
    monkeypatch.setattr(forecast.cli._console, "out", Console(width=200))
    dtm = write(DTM, "dtm.csv")
    attrs = write("pcode,region,settlement\nSO2401,Bay,urban\nSO2402,Bay,rural\nSO0000,?,?\n")
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(dtm), "-f", "dtm", "--areas", str(ADM2),
                                 "--attributes", str(attrs), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "attributes.csv" in result.stdout and "attributes" in result.stdout
    cube = forecast.load_cube(tmp_path / "out" / "cube.nc")
    assert cube["settlement"].sel(area="SO2402").item() == "rural"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    record = manifest["files"][-1]
    assert (record["format"], record["rows_in"], record["rows_kept"], record["rows_quarantined"]) == (
        "attributes", 3, 2, 1)
    quarantine = pd.read_csv(tmp_path / "out" / "quarantine.csv")
    assert quarantine["reason"].str.startswith("unknown P-code: 'SO0000'").tolist() == [True]

    refused = runner.invoke(app, ["ingest", str(dtm), "-f", "dtm", "--areas", str(ADM2),
                                  "--attributes", str(write("pcode,admin_level\nSO2401,2\n", "bad.csv")),
                                  "--out", str(tmp_path / "out2")])
    assert refused.exit_code == 2
    assert f"{tmp_path / 'bad.csv'}: column 'admin_level' cannot be an area attribute" in " ".join(
        refused.stderr.split())


def test_load_somalia_carries_district_attributes_on_area():
    cube = load_somalia()
    names = ["region", "zone", "livelihood", "settlement", "population", "idp_share_2014"]
    assert all(cube[n].dims == ("area",) for n in names)
    assert "access" not in cube.coords  # the sources say nothing about access; not invented
    baidoa = cube.sel(area="SO2401")
    assert baidoa["area_name"].item() == "Baidoa"
    assert [baidoa[n].item() for n in names[:4]] == ["Bay", "South-Central", "agropastoral", "rural"]
    assert baidoa["population"].item() == 315679.0
    assert baidoa["idp_share_2014"].item() == 0.0654779063542396
    assert cube["settlement"].sel(area="SO2201").item() == "urban"  # Banadir (Mogadishu)
    assert set(cube["zone"].values) == {"Puntland-Somaliland", "South-Central"}
    assert (cube["region"].values == cube["admin1_name"].values).all()
    assert not cube["population"].isnull().any() and not cube["idp_share_2014"].isnull().any()
