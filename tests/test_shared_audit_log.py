"""With a tracking server, the audit log lives on it: every client of the team reads and appends
one chain, so a release made on one machine is confirmed on any other.

The server is real (``mlflow server`` on 127.0.0.1 with a sqlite backend, as a team runs it); a
"machine" is a working folder with nothing of another's files in it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from forecast.cli import app
from forecast.ethics import AuditLog, AuditLogError
from forecast.pipeline import release, release_status
from forecast.tracking import RegistryLogStore, open_audit_log
from forecast.tracking._transport import ALLOW_ENV

from _pipeline import TRIGGERS, copy_run, enrol, review_and_sign, tiny_pipeline
from _server import mlflow_server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("team_server")) as uri:
        yield uri


@pytest.fixture(autouse=True)
def _no_ambient_store(monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def _entries(uri: str, name: str) -> dict[int, dict]:
    """seq -> the line, as the server holds it."""
    client = MlflowClient(tracking_uri=uri)
    found = client.search_registered_models(filter_string=f"name LIKE 'forecast-audit.{name}.%'", max_results=1000)
    return {int(m.name.rsplit(".", 1)[1]): json.loads("".join(v for k, v in sorted(m.tags.items())
                                                              if k.startswith("forecast.audit.line.")))
            for m in found}


def _cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_a_release_made_on_one_machine_is_confirmed_on_another_and_a_cut_is_seen_by_both(
        server, tmp_path, monkeypatch):
    machine_a, machine_b = tmp_path / "a", tmp_path / "b"
    machine_a.mkdir(), machine_b.mkdir()
    monkeypatch.chdir(machine_a)
    monkeypatch.setenv(ALLOW_ENV, "a test server on loopback, no credentials")  # the basic-auth server: test_remote_tracking
    pipeline = tiny_pipeline(machine_a, uri=server, triggers_yaml=TRIGGERS.replace("[1, 3]", "[1]"))
    env = copy_run(pipeline, machine_a)
    shared = open_audit_log(None, tracking_uri=server)  # a server as tracking URI: the shared log by default
    assert isinstance(shared.store, RegistryLogStore) and shared.location == "mlflow:audit"
    enrol(shared, policy=env["policy"])
    review_and_sign({**env, "log": shared})
    outcome = release(env["run"], env["name"], by="releaser", tracking_uri=server, reviews_dir=env["reviews"],
                      policy=env["policy"])  # no log given: the shared one
    assert outcome.released, outcome.report.to_markdown()
    client = MlflowClient(tracking_uri=server)
    assert client.get_model_version(env["name"], outcome.version).tags["audit_log"] == "mlflow:audit"
    assert not (machine_a / "ethics").exists()  # nothing of the review or release went to a local file
    kinds = [line["kind"] for _, line in sorted(_entries(server, "audit").items())]
    assert kinds[-3:] == ["review.sign", "review.sign", "release"]

    monkeypatch.chdir(machine_b)  # another machine: no audit log file, nothing of machine a
    status = release_status(env["run"], tracking_uri=server)
    assert status.released, status.why
    answer = _cli("audit", "verify", "--tracking-uri", server)
    assert answer.exit_code == 0, answer.output
    assert f"{len(kinds)} entries, chain intact" in answer.output

    # cutting the release entry off the end of the shared log: a shorter chain, still intact by itself
    client.delete_registered_model(f"forecast-audit.audit.{len(kinds) - 1:08d}")
    status = release_status(env["run"], tracking_uri=server)
    assert not status.released
    assert "which is not a release in mlflow:audit" in status.why
    monkeypatch.chdir(machine_a)
    assert not release_status(env["run"], tracking_uri=server).released


def _append(uri: str, log: str, n: int, who: str) -> list[str]:
    code = ("import sys\nfrom forecast.tracking import open_audit_log\n"
            f"log = open_audit_log({log!r}, tracking_uri={uri!r})\n"
            f"for i in range({n}):\n    log.append('test', {who!r}, {{'i': i}})\n")
    return [sys.executable, "-c", code]


def test_clients_appending_at_once_each_get_their_own_seq_and_the_chain_holds(server, tmp_path):
    writers = [subprocess.Popen(_append(server, "mlflow:race", 5, f"client-{w}"), cwd=tmp_path,
                                stderr=subprocess.PIPE) for w in range(4)]
    outcomes = [(w.wait(timeout=300), w.communicate()[1].decode()[-2000:]) for w in writers]
    assert [rc for rc, _ in outcomes] == [0, 0, 0, 0], outcomes
    log = open_audit_log("mlflow:race", tracking_uri=server)
    assert log.verify() == []
    entries = log.entries()
    assert [e.seq for e in entries] == list(range(20))
    assert sorted((e.actor, e.payload["i"]) for e in entries) == sorted(
        (f"client-{w}", i) for w in range(4) for i in range(5))


def test_an_edited_a_deleted_or_a_foreign_entry_on_the_server_is_reported_where_it_stands(server):
    log = open_audit_log("mlflow:tamper", tracking_uri=server)
    for i in range(5):
        log.append("release", "ci", {"run_id": f"r{i}"})
    client = MlflowClient(tracking_uri=server)
    line = _entries(server, "tamper")[1]
    line["payload"]["run_id"] = "someone-else"
    client.set_registered_model_tag("forecast-audit.tamper.00000001", "forecast.audit.line.000",
                                    json.dumps(line, sort_keys=True, separators=(",", ":")))
    client.delete_registered_model("forecast-audit.tamper.00000003")
    client.create_registered_model("forecast-audit.tamper.00000005", tags={"note": "not an audit line"})
    codes = {(p.line, p.code) for p in log.verify() if p.severity == "error"}
    assert (2, "edited") in codes  # the entry of seq 1 is the log's second line
    assert any(code == "removed" for _, code in codes)
    assert (5, "unreadable") in codes  # seq 5 stands on line 5, after the gap
    with pytest.raises(AuditLogError, match="refusing to append to a broken audit log"):
        log.append("release", "ci", {"run_id": "r9"})
    answer = _cli("audit", "verify", "--log", "mlflow:tamper", "--tracking-uri", server)
    assert answer.exit_code == 1, answer.output
    assert "problems in mlflow:tamper" in answer.output and "edited" in answer.output


def test_a_log_is_named_by_a_path_or_by_mlflow_and_a_local_store_keeps_its_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert open_audit_log(None, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}").path.as_posix() == \
        "ethics/audit.log.jsonl"
    assert open_audit_log(tmp_path / "mine.jsonl").path == tmp_path / "mine.jsonl"
    assert open_audit_log("mlflow", tracking_uri="http://127.0.0.1:9").location == "mlflow:audit"
    given = AuditLog(tmp_path / "given.jsonl")
    assert open_audit_log(given, tracking_uri="http://127.0.0.1:9") is given
    with pytest.raises(AuditLogError, match="a shared log's name is 1-64 letters"):
        open_audit_log("mlflow:../etc", tracking_uri="http://127.0.0.1:9")


def test_an_unreachable_server_is_one_clear_error_without_the_password(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    answer = _cli("audit", "verify", "--log", "mlflow:audit", "--tracking-uri", "http://amina:s3cret@127.0.0.1:9")
    assert answer.exit_code == 2, answer.output
    assert "cannot read the shared audit log on http://127.0.0.1:9" in answer.output
    assert "s3cret" not in answer.output and "Traceback" not in answer.output
