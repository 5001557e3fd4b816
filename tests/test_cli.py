"""The `forecast` command: verbs, output files, summaries and exit codes users script against."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

import forecast
import forecast.cli._console
from forecast.cli import app
from forecast.datasets import sample_files

ADM2 = sample_files()["areas"]
DTM = """admin1Name,admin2Name,numPresentIdpInd,reportingDate
Bay,Baidoa,1200,2020-01-15
Bay,Buur Hakaba,300,2020-01-15
Bay,Baidoa,1500,2020-03-20
Gedo,Luuq,-5,2020-03-20
"""


@pytest.fixture
def cli(monkeypatch):
    # A wide console, so that rich neither wraps nor cuts the names and paths asserted on
    # (pytest-xdist fixes COLUMNS=80 before forecast.cli creates its console).
    monkeypatch.setattr(forecast.cli._console, "out", Console(width=200))
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


@pytest.fixture
def dtm(tmp_path) -> Path:
    path = tmp_path / "dtm.csv"
    path.write_text(DTM)
    return path


def assert_refused(result, *needles: str) -> None:
    """Exit 2, the message on stderr with each needle, and no traceback anywhere."""
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stderr.lstrip().startswith("error: ")
    for needle in needles:
        assert needle in result.stderr
    assert "Traceback" not in result.output


def test_help_lists_each_verb_with_its_explanation(cli):
    result = cli("--help")
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  ") and line.split()}
    assert "Read raw files into a validated cube" in lines["ingest"]
    assert "Summarise a cube" in lines["info"]
    assert "--version" in result.stdout


def test_no_arguments_shows_the_help_instead_of_doing_anything(cli):
    result = cli()
    assert "Usage: forecast" in result.output and "ingest" in result.output and "info" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)  # no crash


def test_ingest_help_documents_every_option_and_the_exit_codes(cli):
    result = cli("ingest", "--help")
    assert result.exit_code == 0
    for option in ("--format", "--out", "--areas", "--aliases", "--columns", "--drop-column", "--sensitivity",
                   "--sensitivity-reason", "--sheet", "--lenient-hierarchy"):
        assert option in result.stdout
    assert "Exit status 0 on success, 2 when a file cannot be used" in " ".join(result.stdout.split())


def test_version_prints_the_distribution_and_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"displacement-forecast {forecast.__version__}"


def test_ingest_writes_cube_manifest_and_quarantine_and_prints_the_summary(cli, dtm, tmp_path):
    out = tmp_path / "out"
    result = cli("ingest", dtm, "--format", "dtm", "--areas", ADM2, "--out", out)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "cube 74 areas (admin2, keyed by pcode) x 3 months (2020-01 to 2020-03); sensitivity moderate" in text
    row = next(line for line in text.splitlines() if "dtm.csv" in line)
    assert [cell.strip() for cell in row.split("│")[1:6]] == ["dtm.csv", "dtm", "4", "3", "1"]
    assert "negative count (1)" in row
    assert "sensitivity: moderate (IDP counts at admin2)" in text
    for name in ("cube.nc", "manifest.json", "quarantine.csv"):
        assert f"{out / name}" in text
    manifest = forecast.Manifest.read(out / "manifest.json")
    assert forecast.cube_hash(forecast.load_cube(out / "cube.nc")) == manifest.cube_hash
    assert f"cube hash:   {manifest.cube_hash}" in text
    quarantine = pd.read_csv(out / "quarantine.csv")
    assert list(quarantine.columns) == ["source_file", "row", "field", "value", "reason"]
    assert quarantine[["row", "field", "value", "reason"]].values.tolist() == [
        [5, "numPresentIdpInd", -5, "negative count"]]


def test_ingest_writes_an_empty_quarantine_with_its_header_when_every_row_is_kept(cli, tmp_path):
    path = tmp_path / "dtm.csv"
    path.write_text("\n".join(DTM.splitlines()[:4]) + "\n")
    result = cli("ingest", path, "-f", "dtm", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "quarantine.csv").read_text().strip() == "source_file,row,field,value,reason"


def test_info_summarises_a_cube_and_the_manifest_beside_it(cli, dtm, tmp_path):
    cli("ingest", dtm, "-f", "dtm", "--out", tmp_path / "out")
    result = cli("info", tmp_path / "out" / "cube.nc")
    assert result.exit_code == 0, result.output
    assert "cube 2 areas (admin2, keyed by name) x 3 months (2020-01 to 2020-03)" in result.stdout
    assert "idp_stock" in result.stdout and "dtm.csv" in result.stdout
    assert "sensitivity: moderate" in result.stdout


def test_info_on_a_cube_without_a_manifest_shows_the_cube_only(cli, tmp_path):
    forecast.save_cube(forecast.make_panel(6, 4, seed=2), tmp_path / "panel.nc")
    result = cli("info", tmp_path / "panel.nc")
    assert result.exit_code == 0, result.output
    assert "cube 6 areas (admin2, keyed by pcode) x 4 months" in result.stdout
    # flows are records: the table says how many, and what share of origins x destinations x months they fill
    records = forecast.load_cube(tmp_path / "panel.nc").sizes["flow"]
    share = f"{records / (6 * 6 * 4):.0%}"
    assert re.search(rf"flows\s+│ origin x destination x time \({records:,} records\)\s+│ {share}", result.stdout), \
        result.stdout
    assert "rows_in" not in result.stdout


def test_info_on_a_missing_cube_exits_2_naming_it(cli, tmp_path):
    assert_refused(cli("info", tmp_path / "nothing.nc"), f"{tmp_path / 'nothing.nc'}: no such cube file")


@pytest.mark.parametrize("name, content, problem", [
    ("api.json", json.dumps({"isSuccess": False, "errorMessages": ["quota"]}), "is a failed DTM API response"),
    ("empty.csv", "", "the file is empty"),
    ("header.csv", "admin1Name,admin2Name,numPresentIdpInd,reportingDate\n", "has a header but no data rows"),
    ("fake.xlsx", "PK\x03\x04 not a zip", "is not a readable XLSX workbook"),
    ("layout.csv", "a,b\n1,2\n", "not a DTM layout"),
], ids=["failed-api", "empty", "header-only", "damaged-xlsx", "unknown-layout"])
def test_unusable_file_exits_2_with_one_message_naming_the_file(cli, tmp_path, name, content, problem):
    path = tmp_path / name
    path.write_text(content)
    result = cli("ingest", path, "-f", "dtm", "--out", tmp_path / "out")
    assert_refused(result, f"{path}: {problem}")
    assert not (tmp_path / "out" / "cube.nc").exists()


def test_missing_input_file_exits_2_naming_it(cli, tmp_path):
    assert_refused(cli("ingest", tmp_path / "nope.csv", "-f", "dtm", "--out", tmp_path / "out"),
                   f"{tmp_path / 'nope.csv'}: no such file")


def test_file_where_every_row_is_quarantined_exits_2_with_the_reasons(cli, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("admin1Name,admin2Name,numPresentIdpInd,reportingDate\nBay,Baidoa,-1,2020-01-01\n")
    assert_refused(cli("ingest", path, "-f", "dtm", "--out", tmp_path / "out"),
                   "no row of any input file was kept", str(path), "negative count (1)")


def test_out_naming_an_existing_file_exits_2(cli, dtm, tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    assert_refused(cli("ingest", dtm, "-f", "dtm", "--out", target), f"{target}: is a file")


def test_format_count_that_matches_neither_one_nor_each_file_exits_2(cli, dtm, tmp_path):
    result = cli("ingest", dtm, dtm, dtm, "-f", "dtm", "-f", "table", "--out", tmp_path / "out")
    assert_refused(result, "give one format for all files or one per file: 3 files, 2 formats")


def test_unknown_format_is_refused_by_the_option_parser(cli, dtm, tmp_path):
    result = cli("ingest", dtm, "-f", "csv", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "'csv' is not one of" in result.output and "Traceback" not in result.output


def test_identifying_column_exits_2_naming_it_and_drop_column_lets_the_file_in(cli, tmp_path):
    path = tmp_path / "survey.csv"
    path.write_text("admin1Name,admin2Name,numPresentIdpInd,reportingDate,phone_number\n"
                    "Bay,Baidoa,10,2020-01-15,+252610000001\n")
    refused = cli("ingest", path, "-f", "dtm", "--out", tmp_path / "out")
    assert_refused(refused, f"{path}: refused: column(s) that identify people: 'phone_number' (phone number)",
                   "--drop-column 'phone_number'")
    accepted = cli("ingest", path, "-f", "dtm", "--drop-column", "phone_number", "--out", tmp_path / "out")
    assert accepted.exit_code == 0, accepted.output
    record = forecast.Manifest.read(tmp_path / "out" / "manifest.json").files[0]
    assert record.dropped_on_request == {"phone_number": "phone number"}


def test_sensitivity_override_needs_a_reason_and_is_printed_and_recorded(cli, dtm, tmp_path):
    assert_refused(cli("ingest", dtm, "-f", "dtm", "--sensitivity", "low", "--out", tmp_path / "out"),
                   "needs a reason")
    result = cli("ingest", dtm, "-f", "dtm", "--sensitivity", "high", "--sensitivity-reason", "small camps",
                 "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "overridden from moderate: small camps" in result.stdout
    recorded = forecast.Manifest.read(tmp_path / "out" / "manifest.json").sensitivity
    assert (recorded.level, recorded.assessed, recorded.override_reason) == ("high", "moderate", "small camps")


def test_lenient_hierarchy_keeps_a_district_named_under_another_region(cli, tmp_path):
    path = tmp_path / "dtm.csv"
    path.write_text("admin1Name,admin2Name,numPresentIdpInd,reportingDate\nGedo,Baidoa,10,2020-01-15\n"
                    "Bay,Buur Hakaba,3,2020-01-15\n")
    strict = cli("ingest", path, "-f", "dtm", "--areas", ADM2, "--out", tmp_path / "strict")
    assert strict.exit_code == 0 and "admin hierarchy (1)" in strict.stdout
    lenient = cli("ingest", path, "-f", "dtm", "--areas", ADM2, "--lenient-hierarchy", "--out", tmp_path / "lenient")
    assert lenient.exit_code == 0
    assert forecast.Manifest.read(tmp_path / "lenient" / "manifest.json").files[0].rows_kept == 2


def test_columns_aliases_and_sheet_options_reach_the_readers(cli, tmp_path):
    frame = pd.DataFrame({"Region": ["Bay"], "District": ["Baydhaba"], "Displaced (total)": [10],
                          "Date": ["2020-01-15"]})
    with pd.ExcelWriter(tmp_path / "book.xlsx") as book:
        frame.to_excel(book, sheet_name="Notes", index=False)
        frame.to_excel(book, sheet_name="Data", index=False)
    (tmp_path / "cols.yaml").write_text("dtm:\n  idp_stock: [Displaced (total)]\n")
    (tmp_path / "aliases.csv").write_text("alias,pcode\nBaydhaba,SO2401\n")
    result = cli("ingest", tmp_path / "book.xlsx", "-f", "dtm", "--sheet", "Data", "--columns", tmp_path / "cols.yaml",
                 "--areas", ADM2, "--aliases", tmp_path / "aliases.csv", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    cube = forecast.load_cube(tmp_path / "out" / "cube.nc")
    assert float(cube["idp_stock"].sel(area="SO2401").item()) == 10.0


def test_several_files_with_one_format_each_build_one_cube(cli, tmp_path):
    files = sample_files()
    result = cli("ingest", files["flows"], files["fsnau"], "-f", "flows", "-f", "table", "--areas", ADM2,
                 "--aliases", files["aliases"], "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    manifest = forecast.Manifest.read(tmp_path / "out" / "manifest.json")
    assert [f.format for f in manifest.files] == ["flows", "table"]
    assert {"arrivals", "rainfall", "goat_price"} <= set(manifest.variables)
    assert "prmn_flows_district_month.csv" in result.stdout and "fsnau_district_month.csv" in result.stdout
    assert not (tmp_path / "out" / "withheld.csv").exists()  # no rules given: nothing withheld


def test_value_rules_withhold_values_keep_rows_and_list_each_value_with_its_reason(cli, tmp_path):
    table = tmp_path / "prices.csv"
    table.write_text("Region,District,date,goat_price,ndvi\n"
                     + "".join(f"Bay,Baidoa,2020-{m:02d},{100 + m},0.3\n" for m in range(1, 7))
                     + "Bay,Baidoa,2020-07,5000,-0.2\nBay,Baidoa,2020-08,0,0.2\nGedo,Luuq,2020-01,90,0.1\n",
                     encoding="utf-8")
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  goat_price: {positive: true, jump: 10}\n  ndvi: {min: 0, why: artefact}\n", encoding="utf-8")
    result = cli("ingest", table, "-f", "table", "--areas", ADM2, "--rules", rules, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    withheld = pd.read_csv(tmp_path / "out" / "withheld.csv")
    # row 8 (2020-07): the goat price jumped 48x and the NDVI is negative; row 9: a zero price
    assert list(zip(withheld["row"], withheld["field"])) == [(8, "goat_price"), (8, "ndvi"), (9, "goat_price")]
    assert withheld["reason"].tolist()[1] == "value withheld: below the plausible minimum 0 (artefact)"
    record = forecast.Manifest.read(tmp_path / "out" / "manifest.json").files[0]
    # row 8 has no value left: it is quarantined as a row too, so the rows still add up
    assert (record.rows_in, record.rows_kept, record.rows_quarantined, record.values_withheld) == (9, 8, 1, 3)
    quarantine = pd.read_csv(tmp_path / "out" / "quarantine.csv")
    assert quarantine["row"].tolist() == [8] and quarantine["reason"].str.startswith("no value left").all()
    cube = forecast.load_cube(tmp_path / "out" / "cube.nc")
    assert np.isnan(float(cube["goat_price"].sel(area="SO2401", time="2020-07-01").item()))
    assert float(cube["ndvi"].sel(area="SO2401", time="2020-08-01").item()) == 0.2  # the row kept its other value
    assert "3 value(s) withheld" in result.stdout


def test_value_rules_naming_a_variable_no_table_has_are_refused(cli, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  goat_prices: {positive: true}\n", encoding="utf-8")
    result = cli("ingest", sample_files()["fsnau"], "-f", "table", "--areas", ADM2, "--aliases",
                 sample_files()["aliases"], "--rules", rules, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "goat_prices" in result.output and "goat_price" in result.output
