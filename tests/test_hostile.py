"""The hostile-file corpus: each file an adversary or a broken export could hand to `forecast
ingest`, and what must happen instead of a traceback, a hang, a blow-up or a silently wrong cube.

Every class of issue 19's probe has a case here; add a case when a new one is found. Each case
says what a user is told: an UnusableFileError / exit status 2 naming the file, or the row
quarantined with the rule that refused it (the rows still add up).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import forecast
from forecast.cli import app
from forecast.cube import flow_table
from forecast.errors import CubeError, ForecastError, UnusableFileError
from forecast.io import Gazetteer, Limits, read_dtm, using_limits

DTM_HEADER = "admin1Name,admin2Name,numPresentIdpInd,reportingDate\n"
FLOWS_HEADER = ("Current (Arrival) Region,Current (Arrival) District,Previous (Departure) Region,"
                "Previous (Departure) District,Reason,Month End,Number of Individuals\n")
runner = CliRunner()


def dtm_file(folder: Path, *rows: str, name: str = "dtm.csv") -> Path:
    path = folder / name
    path.write_text(DTM_HEADER + "".join(r + "\n" for r in rows))
    return path


def quarantined(path: Path, **limits) -> pd.DataFrame:
    result = forecast.ingest([path], "dtm", limits=limits or None)
    assert result.manifest.files[0].rows_in == result.manifest.files[0].rows_kept + len(result.quarantine)
    return result


def cli_ingest(*args: str):
    result = runner.invoke(app, ["ingest", *args])
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.output
    return result


# -- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "reason"), [
    ("0001-01-01", "date before 1990-01"),
    ("1899-12-30", "date before 1990-01"),
    ("43831", "an Excel day number, not a date: 43831 would be 2020-01-01"),
    ("2099-01-01", "date in the future: after 2024-06, the current month"),
    ("9999-12-31", "date in the future"),
    ("202413", "unreadable date"),
])
def test_a_date_outside_the_limits_quarantines_its_row_with_the_rule_not_a_traceback(tmp_path, value, reason):
    path = dtm_file(tmp_path, f"Bay,Baidoa,10,{value}", "Bay,Baidoa,12,2020-02-15")
    result = quarantined(path, today="2024-06")
    (row,) = result.quarantine.itertuples()
    assert (row.row, row.field, row.value) == (2, "reportingDate", value)
    assert row.reason.startswith(reason)
    assert str(result.cube.time.values[0])[:7] == str(result.cube.time.values[-1])[:7] == "2020-02"


def test_the_future_is_the_current_month_for_observations_and_later_for_a_forecast_export(tmp_path):
    path = dtm_file(tmp_path, "Bay,Baidoa,10,2024-06-30", "Bay,Baidoa,12,2024-07-01")
    result = quarantined(path, today="2024-06")
    assert result.quarantine["value"].tolist() == ["2024-07-01"]
    assert "--limit future_months=N" in result.quarantine["reason"].iloc[0]
    assert len(quarantined(path, today="2024-06", future_months=1).quarantine) == 0
    hxl = tmp_path / "forecasts.hxl.csv"
    hxl.write_text("area,month,median\n#adm2+code,#date+forecast,#affected+arrivals+median\n"
                   "SO2401,2024-09,100\nSO2401,2031-01,100\n")
    with using_limits({"today": "2024-06"}):
        read = forecast.io.read_hxl(hxl)
    assert read.quarantine["value"].tolist() == ["2031-01"]
    assert "the last month a forecast may name" in read.quarantine["reason"].iloc[0]


def test_year_and_month_columns_obey_the_same_limits(tmp_path):
    path = tmp_path / "parts.csv"
    path.write_text("admin1Name,admin2Name,numPresentIdpInd,yearReportingDate,monthReportingDate\n"
                    "Bay,Baidoa,10,2020,3\nBay,Baidoa,11,2090,3\n")
    result = quarantined(path, today="2024-06")
    assert result.quarantine["reason"].iloc[0].startswith("date in the future: after 2024-06")


# -- counts, spans and sizes ----------------------------------------------------------------


@pytest.mark.parametrize("count", ["1e308", "99999999999", "50000001"])
def test_an_implausible_count_is_quarantined_not_summed_into_the_cube(tmp_path, count):
    path = dtm_file(tmp_path, f"Bay,Baidoa,{count},2020-01-15", "Bay,Baidoa,12,2020-02-15")
    result = quarantined(path)
    assert result.quarantine["reason"].iloc[0].startswith("implausible count: more than 50,000,000 people")
    assert float(result.cube["idp_stock"].max()) == 12
    assert len(quarantined(path, max_count=1e309).quarantine) == 0  # the documented override


def test_a_small_file_spanning_a_century_is_refused_naming_the_rows_at_either_end(tmp_path):
    path = tmp_path / "flows.csv"
    path.write_text(FLOWS_HEADER + "Bay,Baidoa,Gedo,Luuq,Conflict,1990-01-31,10\n"
                    "Bay,Baidoa,Gedo,Luuq,Conflict,2100-12-31,10\n")
    with pytest.raises(CubeError, match=r"the rows span 1332 months \(1990-01 in .*flows.csv row 2 to "
                                        r"2100-12 in .*flows.csv row 3\), more than the limit max_months=600"):
        forecast.ingest([path], "flows", limits={"today": "2100-12"})
    result = cli_ingest(str(path), "-f", "flows", "--out", str(tmp_path / "out"), "--limit", "today=2100-12")
    assert result.exit_code == 2 and "--limit max_months=N" in result.output


def test_flows_past_the_cell_limit_are_refused_with_their_size(tmp_path):
    path = tmp_path / "flows.csv"
    path.write_text(FLOWS_HEADER + "Bay,Baidoa,Gedo,Luuq,Conflict,2020-01-31,10\n"
                    "Bay,Baidoa,Gedo,Luuq,Conflict,2020-12-31,10\n"
                    "Gedo,Luuq,Bay,Baidoa,Conflict,2020-06-30,10\n")
    # stored as 3 records, but the flow features work on routes x months: 2 x 12
    with pytest.raises(CubeError, match=r"the flows would need 2 x 12 = 24 cells \(routes x months.* "
                                        r"max_flow_cells=20"):
        forecast.ingest([path], "flows", limits={"max_flow_cells": 20})
    cube = forecast.ingest([path], "flows").cube
    assert (cube.sizes["time"], cube.sizes["flow"]) == (12, 3)
    with using_limits({"max_flow_cells": 20}), pytest.raises(CubeError, match=r"a dense view of the flows would "
                                                                             r"need 2 x 2 x 12 = 48 cells"):
        flow_table(cube).dense()


def _workbook(extra_text: str = "") -> bytes:
    buffer = io.BytesIO()
    pd.DataFrame({"admin1Name": ["Bay", "Bay"], "admin2Name": ["Baidoa", "Baidoa" + extra_text],
                  "numPresentIdpInd": [5, 6], "reportingDate": ["2020-01-15", "2020-02-15"]}).to_excel(buffer, index=False)
    return buffer.getvalue()


def test_a_workbook_that_unpacks_past_the_limit_is_refused_before_it_is_opened(tmp_path):
    bomb = tmp_path / "bomb.xlsx"
    source = zipfile.ZipFile(io.BytesIO(_workbook()))
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        for item in source.infolist():
            archive.writestr(item, source.read(item.filename), compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("xl/padding.bin", b"\0" * (300 << 20), compress_type=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 1 << 20  # 300 MiB of zeros pack into well under 1 MiB
    with pytest.raises(UnusableFileError, match=r"would unpack to 300 MiB .* max_unpacked_bytes=268,435,456"):
        read_dtm(bomb)
    small = tmp_path / "small.xlsx"
    small.write_bytes(_workbook())
    with using_limits({"max_unpacked_bytes": 1000}), pytest.raises(UnusableFileError, match="would unpack"):
        read_dtm(small)


def test_a_cell_past_the_length_limit_quarantines_its_row_keeping_only_its_start(tmp_path):
    book = tmp_path / "long.xlsx"
    book.write_bytes(_workbook("x" * 20_000))
    result = forecast.ingest([book], "dtm")
    (row,) = result.quarantine.itertuples()
    assert (row.row, row.field) == (3, "admin2Name")
    assert row.value.startswith("Baidoaxxx") and len(row.value) <= 80
    assert row.reason.startswith("a value longer than 10,000 characters: 20,006 characters (limit max_cell_chars")
    assert result.manifest.files[0].quarantine_reasons == {"a value longer than 10,000 characters": 1}
    assert list(result.cube.area.values) == ["Bay/Baidoa"]


# -- nesting, gazetteers and P-codes ---------------------------------------------------------

DEEP = "[" * 100_000 + "]" * 100_000


def test_json_nested_beyond_reading_is_an_unusable_file_for_data_and_for_boundaries(tmp_path):
    data = tmp_path / "deep.json"
    data.write_text(DEEP)
    with pytest.raises(UnusableFileError, match="nests its JSON too deeply"):
        read_dtm(data)
    boundaries = tmp_path / "deep.geojson"
    boundaries.write_text('{"type": "FeatureCollection", "features": ' + DEEP + "}")
    with pytest.raises(UnusableFileError, match="nests its JSON too deeply"):
        Gazetteer.from_file(boundaries)


@pytest.mark.parametrize("option", ["--columns", "--rules"])
def test_yaml_nested_beyond_reading_exits_2_naming_the_file(tmp_path, option):
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + DEEP + "\n")
    path = dtm_file(tmp_path, "Bay,Baidoa,10,2020-01-15")
    result = cli_ingest(str(path), "-f", "dtm", option, str(deep), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "deep.yaml" in result.output


@pytest.mark.parametrize("loader", ["load_spec", "load_triggers"])
def test_a_spec_or_trigger_file_nested_beyond_reading_is_a_toolkit_error(tmp_path, loader):
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + DEEP + "\n")
    with pytest.raises(ForecastError, match="deep.yaml"):
        getattr(forecast, loader)(deep)


GAZETTEER = "pcode,name,admin_level,parent_pcode\n"


@pytest.mark.parametrize(("rows", "message"), [
    ("SO24,Bay,1,SO24\nSO2401,Baidoa,2,SO24\n", r"'SO24' \(admin1\) names 'SO24' \(admin1\) as its parent.*own parent"),
    ("SO24,Bay,1,\nSO2401,Baidoa,2,SO2402\nSO2402,Burhakaba,2,SO2401\n", r"'SO2401' \(admin2\) names 'SO2402' \(admin2\)"),
    ("SO24,Bay,1,SO2401\nSO2401,Baidoa,2,SO24\n", r"'SO24' \(admin1\) names 'SO2401' \(admin2\)"),
])
def test_a_gazetteer_whose_parents_loop_is_refused_not_followed_for_ever(tmp_path, rows, message):
    path = tmp_path / "areas.csv"
    path.write_text(GAZETTEER + rows)
    with pytest.raises(UnusableFileError, match=message):
        Gazetteer.from_file(path)


def _feature(pcode, name: str) -> dict:
    return {"type": "Feature", "properties": {"ADM1_PCODE": "SO24", "ADM1_EN": "Bay", "ADM2_PCODE": pcode,
                                              "ADM2_EN": name},
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}


@pytest.mark.parametrize(("features", "message"), [
    ([("SO2401", "Baidoa"), ("SO2401", "Burhakaba")], r"feature 2: P-code 'SO2401' \(ADM2_PCODE\) is already"),
    ([(["SO2401", "SO2402"], "Baidoa"), ("SO2402", "Burhakaba")], r"feature 1: property 'ADM2_PCODE' is a list"),
    ([("SO 24/01", "Baidoa")], r"not P-codes .*'SO 24/01'"),
])
def test_a_boundary_file_that_would_merge_or_invent_areas_is_refused(tmp_path, features, message):
    path = tmp_path / "areas.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [_feature(*f) for f in features]}))
    with pytest.raises(UnusableFileError, match=message):
        Gazetteer.from_file(path)


def test_a_list_given_as_a_p_code_is_quarantined_when_areas_are_keyed_by_name(tmp_path):
    path = tmp_path / "dtm.json"
    path.write_text(json.dumps([
        {"admin1Pcode": "SO24", "admin2Pcode": ["SO2401", "SO2402"], "numPresentIdpInd": 5, "reportingDate": "2020-01-15"},
        {"admin1Pcode": "SO24", "admin2Pcode": "SO2401", "numPresentIdpInd": 6, "reportingDate": "2020-02-15"}]))
    result = quarantined(path)
    assert result.quarantine["reason"].tolist() == ["not a P-code: letters and digits, with - _ or . inside (admin2)"]
    assert list(result.cube.area.values) == ["SO2401"]


def test_aliases_without_a_gazetteer_are_refused_not_ignored(tmp_path):
    aliases = tmp_path / "aliases.csv"
    aliases.write_text("alias,pcode\nBaydhabo,SO2401\n")
    path = dtm_file(tmp_path, "Bay,Baydhabo,10,2020-01-15")
    with pytest.raises(ForecastError, match="aliases map spelling variants to a gazetteer's P-codes"):
        forecast.ingest([path], "dtm", aliases=aliases)
    result = cli_ingest(str(path), "-f", "dtm", "--aliases", str(aliases), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and not (tmp_path / "out").exists()


# -- outputs and the limits themselves -------------------------------------------------------


def test_an_output_folder_under_a_file_exits_2_without_a_traceback(tmp_path):
    path = dtm_file(tmp_path, "Bay,Baidoa,10,2020-01-15")
    (tmp_path / "taken").write_text("a file")
    for out in ("taken", "taken/cube"):
        done = subprocess.run([sys.executable, "-m", "forecast.cli", "ingest", str(path), "-f", "dtm",
                               "--out", str(tmp_path / out)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and "taken" in done.stderr


def test_changed_limits_are_recorded_in_the_manifest_and_unknown_ones_refused(tmp_path):
    path = dtm_file(tmp_path, "Bay,Baidoa,10,2020-01-15")
    result = cli_ingest(str(path), "-f", "dtm", "--out", str(tmp_path / "out"), "--limit", "max_count=1e9",
                        "--limit", "max_months=24")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["limits"] == {"max_count": 1e9, "max_months": 24}
    assert forecast.ingest([path], "dtm").manifest.limits == {}
    for bad, message in (["max_rows=5", "unknown limit"], ["max_count", "NAME=VALUE"], ["max_count=lots", "a number"],
                         ["first_month=soon", "a month such as 2020-01"], ["max_months=-1", ">= 0"]):
        result = cli_ingest(str(path), "-f", "dtm", "--out", str(tmp_path / "x"), "--limit", bad)
        assert result.exit_code == 2 and message in result.output, (bad, result.output)


def test_limits_apply_inside_using_limits_only():
    with using_limits({"max_count": 10}) as inside:
        assert forecast.io.current_limits() is inside and inside.max_count == 10
    assert forecast.io.current_limits() == Limits()


@settings(max_examples=40, deadline=None, database=None)
@given(value=st.one_of(
    st.integers(min_value=-10**20, max_value=10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.dates(min_value=pd.Timestamp("0001-01-01").date()).map(str),
    st.text(alphabet="0123456789-/.: TZe+", max_size=24),
))
def test_any_date_or_count_text_is_kept_or_quarantined_never_a_traceback(tmp_path_factory, value):
    folder = tmp_path_factory.mktemp("fuzz")
    path = dtm_file(folder, f"Bay,Baidoa,{value},{value}", "Bay,Luuq,7,2020-01-15")
    result = forecast.ingest([path], "dtm", limits={"today": "2024-06"})
    record = result.manifest.files[0]
    assert record.rows_in == record.rows_kept + record.rows_quarantined == 2
    stock = result.cube["idp_stock"].values
    assert (stock[~pd.isna(stock)] <= 50_000_000).all()
    assert str(result.cube.time.values[0]) >= "1990" and str(result.cube.time.values[-1]) <= "2024-07"
