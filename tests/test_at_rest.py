"""Security in proportion to sensitivity (issue 19 §5): outputs of high and severe data are their
owner's alone whatever the umask, and severe cubes and row tables are encrypted at rest with a
data key (FORECAST_DATA_KEY / FORECAST_DATA_KEY_FILE), read back transparently with it and
refused in one line without it."""

from __future__ import annotations

import io
import json
import os
import re
import stat
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import xarray as xr
from cryptography.fernet import Fernet
from typer.testing import CliRunner

import forecast
import forecast.io
from forecast.cli import app
from forecast.datasets import make_panel, sample_files
from forecast.errors import ForecastError, UnusableFileError

from _pipeline import SPEC, TRIGGERS

ADM2 = sample_files()["areas"]
BASE = "admin1Name,admin2Name,numPresentIdpInd,reportingDate"
# two kept rows and one quarantined (a negative count), so quarantine.csv holds a user's row
ROWS = "Bay,Baidoa,1200,2020-01-15\nBay,Buur Hakaba,300,2020-01-15\nBay,Baidoa,-1,2020-02-15\n"
KEY_VARS = ("FORECAST_DATA_KEY", "FORECAST_DATA_KEY_FILE")
runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_key_and_a_usual_umask(monkeypatch):
    """Every test starts without a data key and under umask 022 (files 0644), restored after."""
    for name in KEY_VARS:
        monkeypatch.delenv(name, raising=False)
    before = os.umask(0o022)
    yield
    os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _dtm(folder: Path, header: str = BASE, rows: str = ROWS) -> Path:
    path = folder / "dtm.csv"
    path.write_text(f"{header}\n{rows}", encoding="utf-8")
    return path


def _ingest(folder: Path, level: str):
    """An admin2 DTM file ingested at ``level``: severe by a recorded override, high by its sex
    breakdown, low as admin1 totals (the levels forecast/io/_privacy.py assigns)."""
    if level == "high":
        return forecast.ingest([_dtm(folder, f"{BASE},Males,Females", ROWS.replace("\n", ",1,1\n"))], "dtm",
                               areas=ADM2)
    if level == "low":
        return forecast.ingest([_dtm(folder, "admin1Name,numPresentIdpInd,reportingDate",
                                     "Bay,1500,2020-01-15\nBay,-1,2020-02-15\n")], "dtm", areas=ADM2)
    return forecast.ingest([_dtm(folder)], "dtm", areas=ADM2, sensitivity="severe",
                           sensitivity_reason="district counts of a besieged area")


def _key(monkeypatch) -> bytes:
    key = Fernet.generate_key()
    monkeypatch.setenv("FORECAST_DATA_KEY", key.decode())
    return key


# --- owner-only files -----------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o000])
@pytest.mark.parametrize("level", ["high", "severe"])
def test_high_and_severe_ingest_outputs_are_the_owners_alone_whatever_the_umask(tmp_path, level, umask):
    result = _ingest(tmp_path, level)
    assert result.manifest.sensitivity.level == level
    out = tmp_path / "out"
    out.mkdir(mode=0o755)  # a folder that was there: it holds the dataset, so it becomes the owner's too
    os.umask(umask)
    paths = result.write(out)
    assert {"cube", "manifest", "quarantine"} <= set(paths)
    assert _mode(out) == 0o700
    files = list(out.iterdir())
    assert {p.name for p in files} == {"cube.nc", "manifest.json", "quarantine.csv"}
    assert {p.name: _mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert forecast.cube_hash(forecast.load_cube(out / "cube.nc")) == result.manifest.cube_hash


def test_an_ingest_folder_the_toolkit_creates_for_severe_data_is_0700_with_its_new_parents(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    out = mine / "new" / "severe"
    _ingest(tmp_path, "severe").write(out)
    assert (_mode(mine / "new"), _mode(out)) == (0o700, 0o700)
    assert _mode(mine) == 0o755  # a folder that was there (the user's) keeps its mode


def test_low_sensitivity_outputs_keep_the_modes_the_umask_gives(tmp_path):
    result = _ingest(tmp_path, "low")
    assert result.manifest.sensitivity.level == "low"
    out = tmp_path / "out"
    result.write(out)
    assert _mode(out) == 0o755
    assert {p.name: _mode(p) for p in out.iterdir()} == {n: 0o644 for n in ("cube.nc", "manifest.json",
                                                                            "quarantine.csv")}


def test_rewriting_a_severe_ingest_over_open_files_leaves_none_readable_by_others(tmp_path):
    out = tmp_path / "out"
    _ingest(tmp_path, "low").write(out)  # a low ingest first: its files are 0644
    _ingest(tmp_path, "severe").write(out)
    assert _mode(out) == 0o700 and all(_mode(p) == 0o600 for p in out.iterdir())


# --- encrypted at rest ----------------------------------------------------------------------------

def test_a_severe_cube_and_quarantine_with_a_key_hold_no_plaintext_and_read_back_equal(tmp_path, monkeypatch):
    plain = tmp_path / "plain"
    result = _ingest(tmp_path, "severe")
    result.write(plain)  # no key: owner-only, unencrypted
    _key(monkeypatch)
    sealed = tmp_path / "sealed"
    result.write(sealed)
    pcodes = [str(a) for a in result.cube["area"].values]
    assert all(re.fullmatch(r"SO\d+", p) for p in pcodes)
    for name in ("cube.nc", "quarantine.csv"):
        raw = (sealed / name).read_bytes()
        assert raw.startswith(b"FCENC1\n"), name
        assert not raw.startswith((b"\x89HDF", b"CDF")), name
        for text in (*pcodes, "Baidoa", "source_file", "negative", "numPresentIdpInd"):
            assert text.encode() not in raw, (name, text)
    assert (plain / "cube.nc").read_bytes().startswith(b"\x89HDF")
    assert forecast.io.read_at_rest(sealed / "quarantine.csv") == (plain / "quarantine.csv").read_bytes()
    quarantine = pd.read_csv(io.BytesIO(forecast.io.read_at_rest(sealed / "quarantine.csv")))
    assert quarantine["reason"].tolist() == ["negative count"]
    xr.testing.assert_identical(forecast.load_cube(sealed / "cube.nc"), forecast.load_cube(plain / "cube.nc"))
    assert forecast.cube_hash(forecast.load_cube(sealed / "cube.nc", chunks={})) == result.manifest.cube_hash
    manifests = {f: json.loads((f / "manifest.json").read_text(encoding="utf-8")) for f in (plain, sealed)}
    assert (manifests[plain]["encrypted"], manifests[sealed]["encrypted"]) == (False, True)
    assert manifests[sealed]["cube_hash"] == manifests[plain]["cube_hash"] == result.manifest.cube_hash
    assert forecast.Manifest.read(sealed / "manifest.json").encrypted is True
    assert all(_mode(p) == 0o600 for p in sealed.iterdir()) and _mode(sealed) == 0o700


def test_withheld_values_of_severe_data_are_encrypted_too(tmp_path, monkeypatch):
    (tmp_path / "dtm.csv").write_text(f"{BASE}\nBay,Baidoa,1200,2020-01-15\n", encoding="utf-8")
    (tmp_path / "rain.csv").write_text("district,date,rain\nBaidoa,2020-01,3.5\nBaidoa,2020-02,-4\n")
    (tmp_path / "rules.yaml").write_text("rules:\n  rain: {min: 0}\n")
    result = forecast.ingest([tmp_path / "dtm.csv", tmp_path / "rain.csv"], ["dtm", "table"], areas=ADM2,
                             rules=tmp_path / "rules.yaml", sensitivity="severe", sensitivity_reason="test")
    assert len(result.withheld)
    _key(monkeypatch)
    paths = result.write(tmp_path / "out")
    raw = paths["withheld"].read_bytes()
    assert raw.startswith(b"FCENC1\n") and b"rain.csv" not in raw and b"plausible minimum" not in raw
    withheld = forecast.io.read_at_rest(paths["withheld"]).decode("utf-8")
    assert "rain.csv" in withheld and "plausible minimum" in withheld
    assert _mode(paths["withheld"]) == 0o600


def test_a_key_file_works_as_the_key_and_high_data_are_not_encrypted(tmp_path, monkeypatch):
    key_file = tmp_path / "data.key"
    key_file.write_text(Fernet.generate_key().decode() + "\n")
    monkeypatch.setenv("FORECAST_DATA_KEY_FILE", str(key_file))
    severe, high = tmp_path / "severe", tmp_path / "high"
    result = _ingest(tmp_path, "severe")
    result.write(severe)
    _ingest(tmp_path, "high").write(high)
    assert (severe / "cube.nc").read_bytes().startswith(b"FCENC1\n")
    assert (high / "cube.nc").read_bytes().startswith(b"\x89HDF")  # encryption is for severe data
    assert json.loads((high / "manifest.json").read_text())["encrypted"] is False
    assert forecast.cube_hash(forecast.load_cube(severe / "cube.nc")) == result.manifest.cube_hash


@pytest.mark.parametrize("key", ["missing", "wrong"])
def test_an_encrypted_cube_without_its_key_is_refused_in_one_line_naming_the_file_and_the_variable(
        tmp_path, monkeypatch, key):
    _key(monkeypatch)
    out = tmp_path / "out"
    _ingest(tmp_path, "severe").write(out)
    if key == "missing":
        monkeypatch.delenv("FORECAST_DATA_KEY")
    else:
        monkeypatch.setenv("FORECAST_DATA_KEY", Fernet.generate_key().decode())
    with pytest.raises(UnusableFileError) as caught:
        forecast.load_cube(out / "cube.nc")
    assert str(out / "cube.nc") in str(caught.value) and "FORECAST_DATA_KEY" in str(caught.value)
    with pytest.raises(ForecastError, match="FORECAST_DATA_KEY"):
        forecast.io.read_at_rest(out / "quarantine.csv")
    result = runner.invoke(app, ["info", str(out / "cube.nc")])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert str(out / "cube.nc") in result.output and "FORECAST_DATA_KEY" in result.output


def test_a_malformed_key_stops_the_ingest_before_anything_is_written_and_is_not_echoed(tmp_path, monkeypatch):
    monkeypatch.setenv("FORECAST_DATA_KEY", "not-a-fernet-key-s3cret")
    out = tmp_path / "out"
    result = runner.invoke(app, ["ingest", str(_dtm(tmp_path)), "-f", "dtm", "--areas", str(ADM2), "--out", str(out),
                                 "--sensitivity", "severe", "--sensitivity-reason", "test"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "FORECAST_DATA_KEY" in result.output and "s3cret" not in result.output
    assert not out.exists()


def test_the_cli_says_once_that_a_key_would_encrypt_severe_data_and_is_quiet_otherwise(tmp_path, monkeypatch):
    args = ["ingest", str(_dtm(tmp_path)), "-f", "dtm", "--areas", str(ADM2)]
    severe = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--sensitivity", "severe",
                                 "--sensitivity-reason", "test"])
    assert severe.exit_code == 0, severe.output
    notes = [line for line in severe.output.splitlines() if "FORECAST_DATA_KEY" in line]
    assert len(notes) == 1 and "encrypt" in notes[0]
    moderate = runner.invoke(app, [*args, "--out", str(tmp_path / "b")])
    assert moderate.exit_code == 0 and "FORECAST_DATA_KEY" not in moderate.output
    _key(monkeypatch)
    keyed = runner.invoke(app, [*args, "--out", str(tmp_path / "c"), "--sensitivity", "severe",
                                "--sensitivity-reason", "test"])
    assert keyed.exit_code == 0 and "FORECAST_DATA_KEY" not in keyed.output
    info = runner.invoke(app, ["info", str(tmp_path / "c" / "cube.nc")])
    assert info.exit_code == 0, info.output


# --- the files the pipeline writes from such data --------------------------------------------------

@pytest.mark.parametrize("level, file_mode, folder_mode", [("severe", 0o600, 0o700), ("high", 0o600, 0o700),
                                                           ("moderate", 0o644, 0o755), (None, 0o644, 0o755)])
def test_the_csv_writer_makes_high_and_severe_files_owner_only(tmp_path, level, file_mode, folder_mode):
    folder = forecast.io.make_folder(tmp_path / "ranked", level)
    path = folder / "ranking.csv"
    forecast.io.write_csv(pd.DataFrame({"area": ["SO2401"], "n": [3]}), path, index=False, sensitivity=level)
    assert (_mode(folder), _mode(path)) == (folder_mode, file_mode)
    assert pd.read_csv(path)["area"].tolist() == ["SO2401"]


def test_a_report_of_severe_data_is_written_owner_only(tmp_path, monkeypatch):
    from forecast.report import _render, write_report

    monkeypatch.setattr(_render, "to_html", lambda report, **kw: "<html>ranking</html>")
    path = write_report(SimpleNamespace(meta={"sensitivity": "severe"}), tmp_path / "reports" / "report.html")
    assert path.read_text() == "<html>ranking</html>"
    assert (_mode(path.parent), _mode(path)) == (0o700, 0o600)
    low = write_report(SimpleNamespace(meta={"sensitivity": "low"}), tmp_path / "open" / "report.html")
    assert (_mode(low.parent), _mode(low)) == (0o755, 0o644)


@pytest.mark.parametrize("fmt", ["hxl", "csv"])
def test_an_export_of_severe_data_is_written_owner_only(tmp_path, fmt):
    from forecast.report import Export, write_export

    frame = pd.DataFrame({"admin2_pcode": ["SO2401"], "arrivals_median": [120]})
    meta = {"sensitivity": "severe", "small_cells": {"withheld_by_table": {"forecasts": 0, "ranking": 0}}}
    paths = write_export(Export(forecasts=frame, ranking=frame, tags={}, metadata=meta, released=True),
                         tmp_path / "export" / fmt, fmt)
    assert len(paths) == 3 and _mode(paths[0].parent) == 0o700
    assert {p.name: _mode(p) for p in paths} == {p.name: 0o600 for p in paths}


def test_prioritize_from_a_severe_cube_writes_an_owner_only_ranking(tmp_path, monkeypatch):
    cube = make_panel(12, 48, seed=9, with_flows=True)
    cube.attrs["sensitivity"] = "severe"
    forecast.save_cube(cube, tmp_path / "data" / "cube.nc")
    assert (_mode(tmp_path / "data"), _mode(tmp_path / "data" / "cube.nc")) == (0o700, 0o600)
    (tmp_path / "spec.yaml").write_text(SPEC)
    (tmp_path / "triggers.yaml").write_text(TRIGGERS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    trained = runner.invoke(app, ["train", "--cube", str(tmp_path / "data" / "cube.nc"), "--spec", "spec.yaml",
                                  "--triggers", "triggers.yaml"])
    assert trained.exit_code == 0, trained.output
    run_id = re.search(r"MLflow run ([0-9a-f]{32})", trained.output).group(1)
    ranked = runner.invoke(app, ["prioritize", "--run", run_id, "--lead", "3", "--out", "out/ranked"])
    assert ranked.exit_code == 0, ranked.output
    saved = list((tmp_path / "out" / "ranked").iterdir())
    assert len(saved) == 1 and _mode(saved[0]) == 0o600
    assert (_mode(tmp_path / "out"), _mode(tmp_path / "out" / "ranked")) == (0o700, 0o700)


@pytest.mark.parametrize("level, private", [("severe", True), ("high", True), ("moderate", False)])
def test_a_local_mlflow_store_of_high_or_severe_runs_is_the_owners_alone(tmp_path, monkeypatch, level, private):
    """MLflow writes its database and artifacts itself, under the process's umask: logging a
    high or severe backtest or model makes them owner-only (the umask is 077 while it logs)."""
    from forecast.backtest import RollingOrigin, backtest
    from forecast.models import load_spec
    from forecast.pipeline import train
    from forecast.tracking import log_backtest, log_trained

    (tmp_path / "spec.yaml").write_text(SPEC)
    spec, cube = load_spec(tmp_path / "spec.yaml"), make_panel(6, 36, seed=2)
    result = backtest(cube, [spec], folds=RollingOrigin(n_origins=2, calibration_origins=2, min_train=12))
    store = tmp_path / "store"
    store.mkdir()
    monkeypatch.chdir(store)  # MLflow's default artifact root beside a sqlite store: ./mlruns
    uri, manifest = f"sqlite:///{store / 'mlflow.db'}", {"sensitivity": {"level": level}}
    log_backtest(result, manifest=manifest, tracking_uri=uri, sample_areas=0)
    trained = train(cube, spec, calibration=RollingOrigin(n_origins=6, calibration_origins=0))
    log_trained(trained, cube, manifest=manifest, tracking_uri=uri)
    assert os.umask(0o022) == 0o022  # the caller's umask is given back
    made = [p for p in store.rglob("*")]
    assert made and any(p.suffix == ".parquet" for p in made)
    readable = [str(p.relative_to(store)) for p in made if p.stat().st_mode & 0o077]
    assert (readable == []) == private, readable[:5]


def test_owner_only_blocks_open_at_once_in_two_threads_keep_the_umask_until_the_last_ends():
    # the umask is the process's: the first block to end gave back the caller's 022 while the
    # other was still writing, and that block's files were readable by everyone
    import threading

    from forecast.io import owner_only_process

    first_in, first_out = threading.Event(), threading.Event()
    inside = {}

    def first():
        with owner_only_process("high"):
            first_in.set()
            assert second_in.wait(timeout=10)
        first_out.set()

    def second():
        assert first_in.wait(timeout=10)
        with owner_only_process("severe"):
            second_in.set()
            assert first_out.wait(timeout=10)
            current = os.umask(0o077)  # reading the umask means setting it: put the same back
            os.umask(current)
            inside["after the first ended"] = current

    second_in = threading.Event()
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inside == {"after the first ended": 0o077}
    assert os.umask(0o022) == 0o022  # the caller's, once both ended
