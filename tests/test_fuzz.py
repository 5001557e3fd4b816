"""Fuzzing the readers: whatever a file holds, the toolkit either reads it with every row
accounted for, or stops with one UnusableFileError naming the file; never another exception."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import forecast
from forecast.cli import app
from forecast.datasets import dtm_export, make_panel, sample_files
from forecast.errors import CubeError, ForecastError, UnusableFileError
from forecast.io import Gazetteer, read_acled, read_dtm, read_flows, read_hxl, read_table

READERS = {"dtm": read_dtm, "hxl": read_hxl, "flows": read_flows, "acled": read_acled, "table": read_table}
FORMATS = list(READERS)
SOMALIA = Gazetteer.from_file(sample_files()["areas"], aliases=sample_files()["aliases"])
FUZZ = {"deadline": None, "database": None,
        "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                  HealthCheck.data_too_large]}


def only_unusable_file_errors(path: Path) -> None:
    """Every reader keyed by name, then ingest against the Somalia gazetteer in each format whose
    layout matched (and ACLED, whose points need the gazetteer's polygons)."""
    matched = ["acled"]
    for fmt, reader in READERS.items():
        try:
            reader(path)
            matched.append(fmt)
        except UnusableFileError as err:
            assert str(err).startswith(f"{path}: ")
    for fmt in dict.fromkeys(matched):
        try:
            forecast.ingest([path], fmt, areas=SOMALIA)
        except UnusableFileError as err:
            assert str(err).startswith(f"{path}: ")
        except ForecastError:  # e.g. no row kept: a CubeError
            pass


def head(path: Path, lines: int) -> bytes:
    return b"".join(path.read_bytes().splitlines(keepends=True)[:lines])


def _xlsx_bytes() -> bytes:
    buffer = io.BytesIO()
    pd.DataFrame({"admin1Name": ["Bay", "Gedo"], "admin2Name": ["Baidoa", "Luuq"], "numPresentIdpInd": [5, 6],
                  "reportingDate": ["2020-01-15", "2020-02-15"]}).to_excel(buffer, index=False)
    return buffer.getvalue()


SEEDS = {
    "flows.csv": head(sample_files()["flows"], 12),
    "fsnau.csv": head(sample_files()["fsnau"], 12),
    "ipc.csv": head(sample_files()["ipc"], 12),
    "dtm.csv": (b"admin1Name,admin2Name,numPresentIdpInd,reportingDate,roundNumber,Males\n"
                b"Bay,Baidoa,1200,2020-01-15,1,600\nGedo,Luuq,80,15/03/2020,2,40\n"),
    "hxl.csv": (b"Region,District,IDPs,Date\n#adm1+name,#adm2+name,#affected+idps,#date+reported\n"
                b"Bay,Baidoa,10,2020-01-15\nGedo,Luuq,7,2020-02-15\n"),
    "acled.csv": b"event_id_cnty,event_date,latitude,longitude,fatalities\nA1,2020-02-01,3.11,43.65,1\n",
    "envelope.json": json.dumps({"isSuccess": True, "result": [
        {"admin1Name": "Bay", "admin2Name": "Baidoa", "numPresentIdpInd": 5, "reportingDate": "2020-01-15"}]}).encode(),
    "book.xlsx": _xlsx_bytes(),
}

mutations = st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 12), st.binary(max_size=6)),
                     min_size=1, max_size=5)


def mutate(data: bytes, edits) -> bytes:
    """Replace ``length`` bytes at each position with the given bytes."""
    out = bytearray(data)
    for position, length, insert in edits:
        position %= len(out) + 1
        out[position:position + length] = insert
    return bytes(out)


# --- (a) arbitrary content raises only our error --------------------------------------------

@settings(max_examples=60, **FUZZ)
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_are_read_or_refused_as_unusable(tmp_path, data):
    path = tmp_path / "input.csv"
    path.write_bytes(data)
    only_unusable_file_errors(path)


@settings(max_examples=60, **FUZZ)
@given(text=st.text(max_size=300), suffix=st.sampled_from([".csv", ".json", ".xlsx", ".txt"]))
def test_arbitrary_text_is_read_or_refused_as_unusable(tmp_path, text, suffix):
    path = tmp_path / f"input{suffix}"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    only_unusable_file_errors(path)


@settings(max_examples=50, **FUZZ)
@given(seed=st.sampled_from(sorted(SEEDS)), edits=mutations)
def test_mutated_real_files_are_read_or_refused_as_unusable(tmp_path, seed, edits):
    path = tmp_path / seed
    path.write_bytes(mutate(SEEDS[seed], edits))
    only_unusable_file_errors(path)


COLUMNS = ["admin1Name", "admin2Name", "admin2Pcode", "numPresentIdpInd", "reportingDate", "yearReportingDate",
           "monthReportingDate", "roundNumber", "Males", "Month End", "Current (Arrival) District",
           "Current (Arrival) Region", "Previous (Departure) District", "Number of Individuals", "Reason",
           "event_date", "latitude", "longitude", "event_id", "fatalities", "district", "y", "m", "rainfall", "x",
           "", " "]
TAGS = ["#adm1+name", "#adm2+name", "#adm2+code", "#affected+idps", "#affected+idps+f", "#date+reported",
        "#date+year", "#date+month", "#round", "#", "#a b", "#contact+phone", ""]
CELLS = ["", " ", "Baidoa", "Baydhaba", "Bay", "Gedo", "Luuq", "SO2401", "SO24", "5", "-1", "1.5", "x",
         "2020-01-15", "2020-01-28", "15/13/2020", "March 2020", "3.11", "43.65", "nan", "inf", "1e400", "0", "2020",
         "13", "#adm1+name"]


@st.composite
def csv_layouts(draw) -> bytes:
    """Plausible headers from the known column names, an optional hashtag row, plausible cells."""
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=7, unique=True))
    width = len(header)
    lines = [header]
    if draw(st.booleans()):
        lines.append(draw(st.lists(st.sampled_from(TAGS), min_size=width, max_size=width)))
    rows = draw(st.lists(st.lists(st.sampled_from(CELLS), min_size=width, max_size=width), min_size=1, max_size=8))
    for row in rows:  # now and then a ragged row
        lines.append(row if draw(st.integers(0, 5)) else row[: draw(st.integers(0, width))] + ["extra"])
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    return buffer.getvalue().encode()


@settings(max_examples=60, **FUZZ)
@given(data=csv_layouts())
def test_plausible_csv_layouts_are_read_or_refused_as_unusable(tmp_path, data):
    path = tmp_path / "input.csv"
    path.write_bytes(data)
    only_unusable_file_errors(path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False) | st.text(max_size=4)
    | st.sampled_from(["Bay", "Baidoa", "2020-01-15", "5"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["admin1Name", "admin2Name", "numPresentIdpInd", "reportingDate", "result", "x"]), inner,
        max_size=4),
    max_leaves=8)


@settings(max_examples=60, **FUZZ)
@given(payload=st.one_of(json_values, st.lists(json_values, max_size=4),
                         st.fixed_dictionaries({"isSuccess": json_values, "result": st.lists(json_values, max_size=4)})))
def test_arbitrary_json_structures_are_read_or_refused_as_unusable(tmp_path, payload):
    path = tmp_path / "api.json"
    path.write_text(json.dumps(payload))
    only_unusable_file_errors(path)


# --- (b) corrupted DTM exports: every row is accounted for ---------------------------------

CORRUPTIONS = {
    "reportingDate": ["31/02/2020", "2020-13-01", "soon", "", "1899-01-01"],
    "numPresentIdpInd": ["-5", "12.5", "many", "", " ", "1,200", "inf"],
    "admin2Pcode": ["XY9999", "", "xy0101", "XY01"],
    "admin2Name": ["Atlantis", "", "district 0101"],
    "admin1Pcode": ["XY02", "XY99", ""],
    "roundNumber": ["", "R1", "99"],
}
edits = st.lists(st.one_of(
    st.tuples(st.just("cell"), st.integers(0, 10**4), st.sampled_from(sorted(CORRUPTIONS)), st.integers(0, 10)),
    st.tuples(st.just("duplicate"), st.integers(0, 10**4), st.integers(0, 10**4), st.just(0)),
    st.tuples(st.just("ragged"), st.integers(0, 10**4), st.integers(0, 12), st.just(0)),
    st.tuples(st.just("blank"), st.integers(0, 10**4), st.just(0), st.just(0)),
), max_size=10)


def corrupt(table: pd.DataFrame, changes) -> list[list[str]]:
    rows = table.astype(str).values.tolist()
    header = list(table.columns)
    for kind, i, what, k in changes:
        i %= len(rows)
        if kind == "cell" and len(rows[i]) == len(header):
            choices = CORRUPTIONS[what]
            rows[i][header.index(what)] = choices[k % len(choices)]
        elif kind == "duplicate":
            rows.insert(what % (len(rows) + 1), list(rows[i]))
        elif kind == "ragged":
            rows[i] = rows[i][:what] if what < len(header) else rows[i] + ["surplus"]
        elif kind == "blank":
            rows[i] = [""] * len(header) if i % 2 else []
    return rows


def gazetteer_of(panel) -> Gazetteer:
    areas = pd.DataFrame({"area": panel["area"].values, "area_name": panel["area_name"].values,
                          "admin_level": 2, "parent_pcode": panel["admin1_pcode"].values})
    regions = (pd.DataFrame({"area": panel["admin1_pcode"].values, "area_name": panel["admin1_name"].values})
               .drop_duplicates().assign(admin_level=1, parent_pcode="XY"))
    country = pd.DataFrame({"area": ["XY"], "area_name": ["Synthetic Country"], "admin_level": [0],
                            "parent_pcode": [""]})
    return Gazetteer(areas=pd.concat([country, regions, areas], ignore_index=True), source="synthetic.csv")


@settings(max_examples=40, **FUZZ)
@given(n_areas=st.integers(2, 8), n_months=st.integers(2, 8), seed=st.integers(0, 1000), changes=edits,
       as_hxl=st.booleans(), keyed_by_name=st.booleans())
def test_every_row_of_a_corrupted_dtm_export_is_kept_or_quarantined_once(tmp_path, n_areas, n_months, seed,
                                                                         changes, as_hxl, keyed_by_name):
    panel = make_panel(n_areas, n_months, seed=seed, with_flows=False)
    table = dtm_export(panel)
    header = list(table.columns)
    rows = corrupt(table, changes)
    lines = [header] + ([["#adm0+name", "#adm0+code", "#adm1+name", "#adm1+code", "#adm2+name", "#adm2+code",
                          "#affected+idps", "#date+reported", "#date+year", "#date+month", "#round",
                          "#operation", "#meta+assessment"]] if as_hxl else []) + rows
    path = tmp_path / "dtm.csv"
    with path.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(lines)
    first = 3 if as_hxl else 2  # record numbers as the user sees them: header row is 1
    records = set(range(first, first + len(rows)))
    resolver = None if keyed_by_name else gazetteer_of(panel)
    result = (read_hxl if as_hxl else read_dtm)(path, resolver=resolver)

    quarantine = result.quarantine
    kept_rows = set(result.table["source_row"])
    assert result.ledger.rows_in == len(rows)
    assert result.ledger.rows_in == result.rows_kept + result.ledger.rows_quarantined
    assert quarantine["row"].is_unique and len(quarantine) == result.ledger.rows_quarantined
    assert set(quarantine["row"]) <= records and kept_rows <= records
    assert not set(quarantine["row"]) & kept_rows
    for row, field, value in quarantine[["row", "field", "value"]].itertuples(index=False):
        record = rows[row - first]
        if field in header and len(record) == len(header):
            assert value == record[header.index(field)], (row, field)
    stock = header.index("numPresentIdpInd")
    for row, value in result.table[["source_row", "value"]].itertuples(index=False):
        assert value == float(rows[row - first][stock].replace(",", ""))  # kept values are the file's own

    try:
        ingested = forecast.ingest([path], "hxl" if as_hxl else "dtm", areas=resolver)
    except CubeError as err:
        assert result.rows_kept == 0 and "no row of any input file was kept" in str(err)
        return
    record = ingested.manifest.files[0]
    assert (record.rows_in, record.rows_kept, record.rows_quarantined) == (
        len(rows), result.rows_kept, result.ledger.rows_quarantined)
    assert sum(record.quarantine_reasons.values()) == record.rows_quarantined
    assert int(ingested.cube["idp_stock_observed"].sum()) <= record.rows_kept


# --- (c) the command line never shows a traceback -------------------------------------------

@settings(max_examples=40, **FUZZ)
@given(seed=st.sampled_from(sorted(SEEDS)), edits=mutations, fmt=st.sampled_from(FORMATS),
       with_areas=st.booleans())
def test_cli_ingest_of_a_fuzzed_file_exits_0_or_2_without_a_traceback(tmp_path, seed, edits, fmt, with_areas):
    path = tmp_path / seed
    path.write_bytes(mutate(SEEDS[seed], edits))
    args = ["ingest", str(path), "--format", fmt, "--out", str(tmp_path / "out")]
    if with_areas:
        args += ["--areas", str(sample_files()["areas"])]
    result = CliRunner().invoke(app, args)
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert "error: " in result.stderr
    else:
        assert (tmp_path / "out" / "manifest.json").is_file()


def test_cli_process_on_a_damaged_workbook_exits_2_naming_it_without_a_traceback(tmp_path):
    path = tmp_path / "damaged.xlsx"
    path.write_bytes(mutate(SEEDS["book.xlsx"], [(200, 400, b"\x00garbage")]))
    done = subprocess.run([sys.executable, "-m", "forecast.cli", "ingest", str(path), "-f", "flows",
                           "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert f"{path}: is not a readable XLSX workbook" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00\x00", b"{}", b"[]", b"PK\x03\x04", b"a\n#\n",
                                     b"admin1Name\n\n\n", b'"unterminated\n1,2\n'],
                         ids=["empty", "bom32", "object", "list", "zip-magic", "hxl-hash", "blank-rows", "quote"])
def test_known_edge_cases_are_unusable_for_every_reader(tmp_path, content):
    path = tmp_path / "edge.csv"
    path.write_bytes(content)
    for fmt, reader in READERS.items():
        with pytest.raises(UnusableFileError) as caught:
            reader(path)
        assert str(caught.value).startswith(f"{path}: "), fmt
