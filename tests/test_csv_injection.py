"""CSV formula injection: every CSV we write prefixes a formula-like text cell with ``'`` (OWASP),
so a spreadsheet shows an area name such as ``=HYPERLINK(...)`` as text and runs nothing."""

from __future__ import annotations

import csv
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import forecast
from forecast.cli import app
from forecast.cube import save_cube
from forecast.datasets import make_panel
from forecast.io import neutralise_cells, write_csv

from _pipeline import SPEC, TRIGGERS

LINK = '=HYPERLINK("http://evil","x")'
SUM = "@SUM(1+1)"
CMD = "=cmd|' /C calc'!A0"


# --- neutralise_cells ----------------------------------------------------------------------

@pytest.mark.parametrize("text", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", LINK, CMD, "-", "+"])
def test_neutralise_cells_prefixes_a_quote_when_a_text_cell_starts_like_a_formula(text):
    out = neutralise_cells(pd.DataFrame({"name": [text, "Baidoa"]}))
    assert out["name"].tolist() == ["'" + text, "Baidoa"]


@pytest.mark.parametrize("text", ["-5", "-0.25", "+3", "1e-3", "-1.5E+03", "-.5", "0", "Baidoa", "a=b", "#adm2+name"])
def test_neutralise_cells_leaves_text_alone_when_it_is_a_plain_number_or_starts_harmlessly(text):
    assert neutralise_cells(pd.DataFrame({"v": [text]}))["v"].tolist() == [text]


def test_neutralise_cells_leaves_numeric_columns_untouched_when_they_hold_negatives():
    frame = pd.DataFrame({"anomaly": [-0.25, -5.0, np.nan], "count": pd.array([-1, 2, None], dtype="Int64"),
                          "flag": [True, False, True]})
    out = neutralise_cells(frame)
    pd.testing.assert_frame_equal(out, frame)
    assert out is not frame  # a copy


def test_neutralise_cells_leaves_missing_values_and_quoted_cells_alone():
    frame = pd.DataFrame({"name": [None, np.nan, "'=already", "=x"]}, dtype=object)
    out = neutralise_cells(frame)["name"].tolist()
    assert out[0] is None and np.isnan(out[1])
    assert out[2:] == ["'=already", "'=x"]
    assert frame["name"].tolist()[3] == "=x"  # the input is not changed


def test_neutralise_cells_prefixes_headers_and_index_when_they_start_like_a_formula():
    frame = pd.DataFrame({"=evil": [1], "-5": [2], "ok": [3]}, index=pd.Index(["@idx"], name="+name"))
    out = neutralise_cells(frame)
    assert list(out.columns) == ["'=evil", "-5", "ok"]
    assert list(out.index) == ["'@idx"] and out.index.name == "'+name"
    assert out.iloc[0].tolist() == [1, 2, 3]


def test_neutralise_cells_handles_a_series_an_index_and_categorical_text():
    series = neutralise_cells(pd.Series(["=a", "b"], name="@n"))
    assert series.tolist() == ["'=a", "b"] and series.name == "'@n"
    assert list(neutralise_cells(pd.Index(["+x", "y"]))) == ["'+x", "y"]
    cats = neutralise_cells(pd.DataFrame({"g": pd.Categorical(["-grp", "ok", "-grp"])}))["g"]
    assert cats.tolist() == ["'-grp", "ok", "'-grp"]


def test_write_csv_writes_the_neutralised_frame_when_given_a_path_or_none(tmp_path):
    frame = pd.DataFrame({"area_name": [LINK, "Baidoa"], "anomaly": [-0.5, 1.0]})
    path = tmp_path / "t.csv"
    write_csv(frame, path, index=False)
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["area_name", "anomaly"], ["'" + LINK, "-0.5"], ["Baidoa", "1.0"]]
    assert write_csv(frame, None, index=False) == path.read_text(encoding="utf-8")


# --- end to end ----------------------------------------------------------------------------

def test_prioritize_ranking_csv_holds_a_neutralised_area_name_when_the_gazetteer_name_is_a_formula(
        tmp_path, monkeypatch):
    cube = make_panel(12, 48, seed=9, with_flows=True)
    names = cube["area_name"].values.astype(object)
    names[0] = LINK  # as a user's gazetteer would name the area in the cube
    regions = cube["region"].values.astype(object)
    regions[regions == regions[0]] = SUM
    cube = cube.assign_coords(area_name=("area", names.astype(str)), region=("area", regions.astype(str)))
    save_cube(cube, tmp_path / "cube.nc")
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "triggers.yaml").write_text(TRIGGERS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    res = CliRunner().invoke(app, ["train", "--cube", "cube.nc", "--spec", "spec.yaml", "--triggers", "triggers.yaml"])
    assert res.exit_code == 0, res.output
    run_id = re.search(r"MLflow run ([0-9a-f]{32})", res.output).group(1)
    res = CliRunner().invoke(app, ["prioritize", "--run", run_id, "--lead", "3"])
    assert res.exit_code == 0, res.output
    saved = tmp_path / "out" / "prioritize" / f"prioritize_{run_id[:8]}_spike_lead3.csv"
    with saved.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    by_area = {row["area"]: row for row in rows}
    assert by_area["XY0101"]["area_name"] == "'" + LINK
    assert by_area["XY0101"]["region"] == "'" + SUM
    assert by_area["XY0102"]["area_name"] == "District 0102"
    assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for row in rows for cell in row.values())


DTM_ROWS = f"""admin0Name,admin1Name,admin2Name,numPresentIdpInd,reportingDate,yearReportingDate,monthReportingDate,roundNumber,operation,assessmentType
Somalia,Bay,Baidoa,1200,2020-01-15,2020,1,1,Op,BA
Somalia,Bay,Burhakaba,"{CMD.replace('"', '""')}",2020-01-15,2020,1,1,Op,BA
Somalia,Bay,Baidoa,1500,2020-03-20,2020,3,2,Op,BA
"""


def test_ingest_quarantine_csv_neutralises_a_raw_value_when_a_count_cell_is_a_formula(tmp_path):
    path = tmp_path / "dtm.csv"
    path.write_text(DTM_ROWS, encoding="utf-8")
    result = forecast.ingest([path], "dtm")
    assert CMD in set(result.quarantine["value"])  # the ledger in memory keeps the value as read
    paths = result.write(tmp_path / "out")
    with paths["quarantine"].open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    values = [row["value"] for row in rows]
    assert "'" + CMD in values and CMD not in values
