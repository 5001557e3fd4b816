"""Faults lose nothing and fake nothing: an ingest whose write fails or is cut short leaves the
previous outputs whole, and a cube beside a manifest that does not vouch for it is refused."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import forecast
import forecast.pipeline._ingest as ingest_module
from forecast.cli import app
from forecast.errors import UnusableFileError

runner = CliRunner()
HEADER = "admin1Name,admin2Name,numPresentIdpInd,reportingDate\n"


def _ingest(folder: Path, name: str, rows: str):
    path = folder / name
    path.write_text(HEADER + rows)
    return forecast.ingest([path], "dtm")


@pytest.fixture
def written(tmp_path):
    """A first ingest written to out/, and a second, different one ready to write over it."""
    first = _ingest(tmp_path, "first.csv", "Bay,Baidoa,10,2020-01-15\nBay,Baidoa,-1,2020-02-15\n")
    out = tmp_path / "out"
    first.write(out)
    second = _ingest(tmp_path, "second.csv", "Gedo,Luuq,7,2021-01-15\nGedo,Luuq,x,2021-02-15\n")
    return out, first, second


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.mark.parametrize("failing", ["quarantine", "manifest"])
def test_a_full_disk_during_the_write_leaves_the_previous_outputs_whole_and_no_partial_file(
        written, monkeypatch, failing):
    out, first, second = written
    before = _snapshot(out)

    def half_then_full(target):
        Path(target).write_text("source_file,row,fie")  # a truncated file that would parse
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    if failing == "quarantine":
        monkeypatch.setattr(ingest_module, "write_csv", lambda frame, target, **kw: half_then_full(target))
    else:
        monkeypatch.setattr(type(second.manifest), "write", lambda self, target: half_then_full(target))
    with pytest.raises(OSError):
        second.write(out)
    assert _snapshot(out) == before
    assert forecast.cube_hash(forecast.load_cube(out / "cube.nc")) == first.manifest.cube_hash


def test_a_full_disk_in_the_cli_exits_2_in_one_line(tmp_path, monkeypatch):
    path = tmp_path / "dtm.csv"
    path.write_text(HEADER + "Bay,Baidoa,10,2020-01-15\n")

    def full(self, target):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(forecast.io.Manifest, "write", full)
    result = runner.invoke(app, ["ingest", str(path), "-f", "dtm", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "No space left on device; nothing was left half-written" in result.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


def test_a_new_cube_beside_an_old_manifest_is_refused_by_every_reader(written):
    out, _, second = written
    forecast.save_cube(second.cube, out / "cube.nc")  # killed after the cube's rename, before the manifest's
    with pytest.raises(UnusableFileError, match="is not the cube its manifest describes"):
        forecast.load_cube(out / "cube.nc")
    with pytest.raises(UnusableFileError, match="is not the cube its manifest describes"):
        forecast.load_cube(out / "cube.nc", chunks={})
    result = runner.invoke(app, ["info", str(out / "cube.nc")])
    assert result.exit_code == 2 and "ingest the source files again" in result.output


def test_a_cube_changed_after_it_was_saved_is_refused(tmp_path):
    cube = forecast.make_panel(4, 12, seed=1)
    forecast.save_cube(cube, tmp_path / "panel.nc")
    changed = forecast.load_cube(tmp_path / "panel.nc")
    changed["arrivals"][0, 0] = 123456.0  # the stored hash kept, the content not
    changed.to_netcdf(tmp_path / "changed.nc", engine="h5netcdf")
    with pytest.raises(UnusableFileError, match="does not match the hash it was saved with"):
        forecast.load_cube(tmp_path / "changed.nc")


def test_a_rewrite_without_withheld_values_removes_the_old_withheld_list_and_leaves_nothing_else(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "withheld.csv").write_text("source_file,row,field,value,reason\nold.csv,2,x,1,old\n")
    _ingest(tmp_path, "dtm.csv", "Bay,Baidoa,10,2020-01-15\n").write(out)
    assert sorted(p.name for p in out.iterdir()) == ["cube.nc", "manifest.json", "quarantine.csv"]


class _FullDisk:
    """The os module as the audit log's appender sees it, on a disk that fills part-way."""

    def __init__(self, fail_at: str):
        self.fail_at = fail_at

    def __getattr__(self, name):
        return getattr(os, name)

    def write(self, fd, data):
        if self.fail_at == "write":
            os.write(fd, data[: len(data) // 2])  # half the line reaches the disk, then it is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    def fsync(self, fd):
        if self.fail_at == "fsync":
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.fsync(fd)


@pytest.mark.parametrize("fail_at", ["write", "fsync"])
def test_an_audit_append_on_a_full_disk_leaves_the_log_as_it_was(tmp_path, monkeypatch, fail_at):
    from forecast.ethics import AuditLog, AuditLogError
    from forecast.ethics import _durable

    path = tmp_path / "audit.log.jsonl"
    AuditLog(path).append("review.sign", "alice", {"run_id": "r1"})
    before = path.read_bytes()
    monkeypatch.setattr(_durable, "os", _FullDisk(fail_at))
    with pytest.raises(AuditLogError, match=r"cannot append \(No space left on device\); the log is as it was"):
        AuditLog(path).append("release", "ci", {"run_id": "r1"})
    assert path.read_bytes() == before
    monkeypatch.undo()
    assert [e.kind for e in AuditLog(path).entries()] == ["review.sign"]
    AuditLog(path).append("release", "ci", {"run_id": "r1"})  # the chain goes on, unbroken
    assert [e.seq for e in AuditLog(path).entries()] == [0, 1]
