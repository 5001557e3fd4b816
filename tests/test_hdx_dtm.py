"""The DTM files people download from HDX: the DTM API's columns under an HXL hashtag row.

The header and hashtag rows below are those of HDX's "Global IOM DTM data" exports (written by
OCHA's HDX DTM pipeline from the DTM API v2: ``global-iom-dtm-from-api-admin2.csv``, and the
later ``...-admin-0-to-2.csv`` with ``adminLevel`` and ``operationStatus``). They tag the
reporting date's year and month ``#date+year+reported`` and ``#date+month+reported``: parts of
the date, not dates of their own. The rows are made up, with Somalia's COD P-codes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

import forecast
from forecast.cli import app
from forecast.cube import load_cube
from forecast.io import read_hxl

ADM2 = forecast.datasets.sample_files()["areas"]

HDX_ADMIN2 = (
    "id,operation,admin0Name,admin0Pcode,admin1Name,admin1Pcode,admin2Name,admin2Pcode,numPresentIdpInd,"
    "reportingDate,yearReportingDate,monthReportingDate,roundNumber,assessmentType",
    "#id+code,#operation+name,#country+name,#country+code,#adm1+name,#adm1+code,#adm2+name,#adm2+code,"
    "#affected+idps,#date+reported,#date+year+reported,#date+month+reported,#round+code,#assessment+type",
)
HDX_ADMIN0_TO_2 = (
    "id,operation,admin0Name,admin0Pcode,admin1Name,admin1Pcode,admin2Name,admin2Pcode,adminLevel,"
    "numPresentIdpInd,reportingDate,yearReportingDate,monthReportingDate,roundNumber,assessmentType,operationStatus",
    "#id+code,#operation+name,#country+name,#country+code,#adm1+name,#adm1+code,#adm2+name,#adm2+code,#adm+level,"
    "#affected+idps,#date+reported,#date+year+reported,#date+month+reported,#round+code,#assessment+type,"
    "#operation+status",
)
# (admin1 name, admin1 pcode, admin2 name, admin2 pcode, IDPs, reporting date, round)
RECORDS = [
    ("Bay", "SO24", "Baidoa", "SO2401", 1200, "2020-01-31", 1),
    ("Gedo", "SO26", "Luuq", "SO2606", 80, "2020-01-31", 1),
    ("Gedo", "SO26", "Baardheere", "SO2602", 410, "2020-01-31", 1),
    ("Bay", "SO24", "Baidoa", "SO2401", 1500, "2020-03-31", 2),
    ("Gedo", "SO26", "Luuq", "SO2606", 95, "2020-03-31", 2),
    ("Gedo", "SO26", "Belet Xaawo", "SO2603", 60, "2020-03-31", 2),
    ("Bay", "SO24", "Baidoa", "SO2401", 1650, "2020-06-30", 3),
    ("Gedo", "SO26", "Baardheere", "SO2602", 520, "2020-06-30", 3),
]


def hdx_rows(layout: tuple[str, str], records=RECORDS, *, year=None, month=None) -> list[str]:
    """Data rows in ``layout``; ``year``/``month`` map a record's index to the part written instead."""
    header = layout[0].split(",")
    rows = []
    for i, (adm1, p1, adm2, p2, idps, date, round_) in enumerate(records):
        day = pd.Timestamp(date)
        cells = {"id": str(5000 + i), "operation": "Drought response", "admin0Name": "Somalia",
                 "admin0Pcode": "SOM", "admin1Name": adm1, "admin1Pcode": p1, "admin2Name": adm2,
                 "admin2Pcode": p2, "adminLevel": "2", "numPresentIdpInd": str(idps),
                 "reportingDate": f"{date}T00:00:00", "yearReportingDate": (year or {}).get(i, str(day.year)),
                 "monthReportingDate": (month or {}).get(i, str(day.month)), "roundNumber": str(round_),
                 "assessmentType": "BA", "operationStatus": "Active"}
        rows.append(",".join(cells[c] for c in header))
    return rows


def write_twins(folder: Path, layout: tuple[str, str], **parts) -> tuple[Path, Path]:
    """The HDX file (header, hashtag row, rows) and its plain twin (the API's header, no tags)."""
    rows = hdx_rows(layout, **parts)
    tagged, plain = folder / "hdx_dtm.csv", folder / "api_dtm.csv"
    tagged.write_text("\n".join([*layout, *rows]) + "\n", encoding="utf-8")
    plain.write_text("\n".join([layout[0], *rows]) + "\n", encoding="utf-8")
    return tagged, plain


def cli_ingest(path: Path, fmt: str, out: Path) -> dict:
    result = CliRunner().invoke(app, ["ingest", str(path), "--format", fmt, "--areas", str(ADM2), "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    quarantine = pd.read_csv(out / "quarantine.csv", dtype={"value": str}, keep_default_na=False)
    return {"cube": load_cube(out / "cube.nc"), "manifest": manifest, "quarantine": quarantine}


@pytest.mark.parametrize("layout", [HDX_ADMIN2, HDX_ADMIN0_TO_2], ids=["admin2", "admin0-to-2"])
def test_hdx_dtm_export_ingests_into_the_same_cube_as_its_api_csv_twin(tmp_path, layout):
    tagged_file, plain_file = write_twins(tmp_path, layout)
    tagged = cli_ingest(tagged_file, "hxl", tmp_path / "hxl")
    plain = cli_ingest(plain_file, "dtm", tmp_path / "dtm")

    xr.testing.assert_identical(tagged["cube"], plain["cube"])
    assert tagged["manifest"]["cube_hash"] == plain["manifest"]["cube_hash"]
    stock = tagged["cube"]["idp_stock"].to_pandas()
    assert stock.loc["SO2401", "2020-01-01"] == 1200
    assert stock.loc["SO2401", "2020-03-01"] == 1500
    assert stock.loc["SO2602", "2020-06-01"] == 520
    assert float(tagged["cube"]["idp_stock"].sum()) == sum(r[4] for r in RECORDS)
    record = tagged["manifest"]["files"][0]
    assert (record["rows_in"], record["rows_kept"], record["rows_quarantined"]) == (len(RECORDS), len(RECORDS), 0)
    # the date parts are read as parts of the reporting date, beside it; the same fields as the API's names give
    assert record["columns_kept"] == plain["manifest"]["files"][0]["columns_kept"]
    assert {k: record["columns_kept"][k] for k in ("reporting_date", "year", "month", "operation")} == {
        "reporting_date": "reportingDate", "year": "yearReportingDate", "month": "monthReportingDate",
        "operation": "operation"}


@pytest.mark.parametrize(("part", "written", "date", "expected"),
                         [("yearReportingDate", "2019", "2020-03-31T00:00:00", "year 2020"),
                          ("monthReportingDate", "4", "2020-03-31T00:00:00", "month 3")])
def test_hdx_dtm_row_is_quarantined_naming_field_and_row_when_a_date_part_disagrees_with_its_date(
        tmp_path, part, written, date, expected):
    wrong = {3: written}  # record 3 (Baidoa, round 2) is file row 6: header row 1, hashtag row 2
    tagged_file, plain_file = write_twins(tmp_path, HDX_ADMIN2, **{"year" if "year" in part else "month": wrong})
    tagged = cli_ingest(tagged_file, "hxl", tmp_path / "hxl")

    assert tagged["quarantine"][["row", "field", "value", "reason"]].values.tolist() == [[
        6, part, written,
        f"date part disagrees with the date: {part} is the {part[:-len('ReportingDate')]} of reportingDate {date} "
        f"({expected}); which is right cannot be told: fix the row, or drop the column with --drop-column {part}"]]
    record = tagged["manifest"]["files"][0]
    assert (record["rows_in"], record["rows_kept"], record["rows_quarantined"]) == (len(RECORDS), len(RECORDS) - 1, 1)
    assert record["quarantine_reasons"] == {"date part disagrees with the date": 1}
    stock = tagged["cube"]["idp_stock"].to_pandas()
    assert pd.isna(stock.loc["SO2401", "2020-03-01"])  # its only row was quarantined: missing, not 0
    assert stock.loc["SO2606", "2020-03-01"] == 95

    # the plain twin quarantines the same record (one row earlier: no hashtag row) into the same cube
    plain = cli_ingest(plain_file, "dtm", tmp_path / "dtm")
    assert plain["quarantine"][["row", "field", "value"]].values.tolist() == [[5, part, written]]
    assert tagged["manifest"]["cube_hash"] == plain["manifest"]["cube_hash"]


def test_hdx_dtm_row_is_kept_when_a_date_part_is_empty_or_names_its_month(tmp_path):
    tagged_file, _ = write_twins(tmp_path, HDX_ADMIN2, year={0: ""}, month={1: "January", 3: "Mar"})
    result = read_hxl(tagged_file)
    assert result.quarantine.empty
    assert result.rows_kept == len(RECORDS)


def test_hdx_dtm_file_with_only_the_year_and_month_parts_places_rows_by_them(tmp_path):
    header = "admin1Name,admin2Name,numPresentIdpInd,yearReportingDate,monthReportingDate"
    tags = "#adm1+name,#adm2+name,#affected+idps,#date+year+reported,#date+month+reported"
    path = tmp_path / "parts.csv"
    path.write_text(f"{header}\n{tags}\nBay,Baidoa,1200,2020,1\nBay,Baidoa,1500,2020,3\nBay,Baidoa,7,2020,13\n",
                    encoding="utf-8")
    result = read_hxl(path)
    assert result.table["time"].tolist() == [pd.Timestamp("2020-01-01"), pd.Timestamp("2020-03-01")]
    assert result.quarantine[["row", "field", "reason"]].values.tolist() == [
        [5, "yearReportingDate/monthReportingDate", "unreadable year/month"]]
