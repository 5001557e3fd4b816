"""Ingest end to end, through the public API and the CLI: real PRMN rows (the shipped sample),
DTM and HXL layouts, identifying columns, and the command line's exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import forecast
from forecast.errors import IdentifyingDataError

SAMPLE = forecast.datasets.sample_files()
PRMN = SAMPLE["flows"]  # UNHCR PRMN movements, aggregated to district-month (datasets/data/somalia/README.md)
ADM2 = SAMPLE["areas"]

DTM_ROWS = """admin0Name,admin1Name,admin2Name,numPresentIdpInd,reportingDate,yearReportingDate,monthReportingDate,roundNumber,operation,assessmentType
Somalia,Bay,Baidoa,1200,2020-01-15,2020,1,1,Op,BA
Somalia,Bay,Burhakaba,300,2020-01-15,2020,1,1,Op,BA
Somalia,Bay,Baidoa,1500,2020-03-20,2020,3,2,Op,BA
Somalia,Bay,Burhakaba,350,2020-03-20,2020,3,2,Op,BA
Somalia,Gedo,Luuq,80,2020-06-02,2020,6,3,Op,BA
Somalia,Bay,Baidoa,-5,2020-06-02,2020,6,3,Op,BA
"""
HXL_ROWS = """Round,Date,IDPs,District,Region
#round+code,#date+reported,#affected+idps,#adm2+name,#adm1+name
1,2020-01-15,1200,Baidoa,Bay
1,2020-01-15,300,Burhakaba,Bay
2,2020-03-20,1500,Baidoa,Bay
2,2020-03-20,350,Burhakaba,Bay
3,2020-06-02,80,Luuq,Gedo
3,2020-06-02,-5,Baidoa,Bay
"""


@pytest.fixture(scope="module")
def prmn():
    return forecast.ingest([PRMN], "flows", areas=ADM2)


def test_prmn_ingest_gives_74_districts_by_96_months_with_exact_accounting(prmn):
    assert prmn.cube.sizes["area"] >= 74
    assert prmn.cube.sizes["time"] == 96
    record = prmn.manifest.files[0]
    assert record.rows_in == 22_786
    assert record.rows_in == record.rows_kept + record.rows_quarantined
    assert len(prmn.quarantine) == record.rows_quarantined
    assert prmn.quarantine["row"].is_unique


def test_prmn_unmatched_names_are_quarantined_with_their_reason(prmn):
    q = prmn.quarantine
    unmatched = q[q["reason"].str.startswith("unknown area name")]
    assert {"Badhan", "Dhahar", "0"} <= set(unmatched["value"])
    assert (unmatched["reason"].str.contains("matches no admin")).all()


def test_prmn_arrivals_equal_the_kept_individuals(prmn):
    import pandas as pd

    raw = pd.read_csv(PRMN, dtype=str, keep_default_na=False)
    kept = raw.drop(index=prmn.quarantine["row"].to_numpy() - 2)
    assert float(prmn.cube["arrivals"].sum()) == kept["Number of Individuals"].astype(int).sum()


def test_dtm_without_pcodes_is_keyed_by_name_and_months_between_rounds_stay_missing(tmp_path):
    path = tmp_path / "dtm.csv"
    path.write_text(DTM_ROWS)
    result = forecast.ingest([path], "dtm")
    cube = result.cube
    assert cube.attrs["area_key"] == "name"
    assert result.manifest.area_key == "name"
    stock = cube["idp_stock"].to_pandas()
    assert list(stock.index) == ["Bay/Baidoa", "Bay/Burhakaba", "Gedo/Luuq"]
    assert stock.loc["Bay/Baidoa", "2020-01-01"] == 1200
    assert stock.loc["Bay/Baidoa", "2020-03-01"] == 1500
    assert np.isnan(stock.loc["Bay/Baidoa", "2020-02-01"])  # between rounds: missing, not 0
    assert np.isnan(stock.loc["Bay/Baidoa", "2020-06-01"])  # its row was negative: quarantined
    assert not bool(cube["idp_stock_observed"].sel(area="Bay/Baidoa", time="2020-02-01"))
    q = result.quarantine
    assert q[["row", "field", "reason"]].values.tolist() == [[7, "numPresentIdpInd", "negative count"]]


def test_dtm_csv_and_its_hxl_tagged_copy_give_identical_cubes(tmp_path):
    (tmp_path / "dtm.csv").write_text(DTM_ROWS)
    (tmp_path / "hxl.csv").write_text(HXL_ROWS)
    plain = forecast.ingest([tmp_path / "dtm.csv"], "dtm")
    tagged = forecast.ingest([tmp_path / "hxl.csv"], "hxl")
    xr.testing.assert_identical(plain.cube, tagged.cube)
    assert plain.manifest.cube_hash == tagged.manifest.cube_hash


def test_ingest_refuses_a_file_with_identifying_columns_naming_them(tmp_path):
    path = tmp_path / "survey.csv"
    path.write_text("admin1Name,admin2Name,numPresentIdpInd,reportingDate,phone_number,Head of household name\n"
                    "Bay,Baidoa,10,2020-01-01,+252610000000,Someone\n")
    with pytest.raises(IdentifyingDataError) as caught:
        forecast.ingest([path], "dtm")
    message = str(caught.value)
    assert message.startswith(f"{path}: refused: column(s) that identify people:")
    assert "'phone_number' (phone number)" in message
    assert "'Head of household name' (person name)" in message


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "forecast.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02binary\xff" * 50, b"a,b\n1,2\n",
                                     b"admin1Name,numPresentIdpInd,reportingDate,phone_number\nBay,1,2020-01-01,1\n"],
                         ids=["empty", "binary", "unknown-layout", "identifying"])
def test_cli_ingest_exits_2_naming_the_file_without_traceback_when_file_is_unusable(tmp_path, content):
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    done = _cli("ingest", str(path), "--format", "dtm", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert done.returncode == 2
    assert str(path) in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_cli_ingest_writes_cube_manifest_and_quarantine_and_prints_a_summary(tmp_path):
    (tmp_path / "dtm.csv").write_text(DTM_ROWS)
    done = _cli("ingest", "dtm.csv", "-f", "dtm", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("cube.nc", "manifest.json", "quarantine.csv"):
        assert (tmp_path / "out" / name).is_file()
    assert "3 areas" in done.stdout and "6 months" in done.stdout
    manifest = forecast.Manifest.read(tmp_path / "out" / "manifest.json")
    assert (manifest.files[0].rows_in, manifest.files[0].rows_kept, manifest.files[0].rows_quarantined) == (6, 5, 1)
    assert forecast.cube_hash(forecast.load_cube(tmp_path / "out" / "cube.nc")) == manifest.cube_hash


def test_cli_version_and_help_describe_the_tool(tmp_path):
    version = _cli("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("displacement-forecast ")
    help_text = _cli("--help", cwd=tmp_path).stdout
    assert "ingest" in help_text and "info" in help_text


def test_a_workbook_with_mixed_date_cells_gives_the_same_cube_as_its_csv_copy(prmn, tmp_path):
    # UNHCR's PRMN workbook mixes dd/mm/yyyy strings with Excel dates in 'Month End'
    import pandas as pd

    raw = pd.read_csv(PRMN, dtype=str, keep_default_na=False)
    dates = pd.to_datetime(raw["Month End"])
    month_end = [d.strftime("%d/%m/%Y") if i % 2 else d.to_pydatetime() for i, d in enumerate(dates)]
    book = raw.assign(**{"Month End": month_end, "Number of Individuals": raw["Number of Individuals"].astype(int)})
    xlsx = tmp_path / "prmn.xlsx"
    book.to_excel(xlsx, index=False)
    result = forecast.ingest([xlsx], "flows", areas=ADM2)
    record = result.manifest.files[0]
    assert (record.rows_in, record.rows_kept) == (22_786, prmn.manifest.files[0].rows_kept)
    assert result.manifest.cube_hash == prmn.manifest.cube_hash
