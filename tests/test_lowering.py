"""Lowering a dataset's sensitivity is an ethics reviewer's signed decision, not a typed reason.

A lower level loosens every rule downstream (file modes, encryption, the admin level published,
which tracking server may take the runs), so ingest takes it only with a ``sensitivity.lower``
entry of the audit log, signed by an ethics reviewer of the pinned keyring, for exactly these
files and levels. Raising a level stays a reason away.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import forecast
from forecast.cli import app
from forecast.errors import ForecastError
from forecast.ethics import AuditLog, approve_lowering
from forecast.policy import load_policy

from _pipeline import enrol, key_file, policy_file

BASE = "admin1Name,admin2Name,numPresentIdpInd,reportingDate,Partner"
ROWS = ["Bay,Baidoa,1200,2020-01-15,A", "Bay,Buur Hakaba,300,2020-01-15,B"]
REASON = "district totals already published on HDX"


@pytest.fixture
def setting(tmp_path):
    """A moderate DTM file (a partner column), a log whose keyring holds omar (ethics) and lena
    (technical), and a policy pinning omar's key as the keyring's root."""
    path = tmp_path / "dtm.csv"
    path.write_text("\n".join([BASE, *ROWS]) + "\n", encoding="utf-8")
    policy = load_policy(policy_file(tmp_path / "policy.yaml"))
    log = tmp_path / "audit.log.jsonl"
    enrol(log, policy=policy)
    assessed = forecast.ingest([path], "dtm")
    assessed.write(tmp_path / "assessed")
    manifest = json.loads((tmp_path / "assessed" / "manifest.json").read_text())
    assert manifest["sensitivity"]["assessed"] == "moderate"
    return {"path": path, "policy": policy, "log": log, "manifest": manifest, "root": tmp_path}


def _ingest(s, **kw):
    return forecast.ingest([s["path"]], "dtm", sensitivity="low", sensitivity_reason=REASON, audit_log=s["log"],
                           policy=s["policy"], **kw)


def test_a_reason_alone_no_longer_lowers_a_level(setting):
    with pytest.raises(ForecastError, match="an ethics reviewer's signed decision"):
        _ingest(setting)
    # raising it still needs only a reason
    raised = forecast.ingest([setting["path"]], "dtm", sensitivity="high", sensitivity_reason="small camps")
    assert raised.manifest.sensitivity.level == "high" and raised.manifest.sensitivity.approval is None


def test_a_signed_lowering_is_applied_and_recorded_with_its_signer(setting):
    entry = approve_lowering(setting["log"], setting["manifest"], "low", REASON, by="Omar", key=key_file("omar"),
                             policy=setting["policy"])
    result = _ingest(setting, approval=entry.hash)
    recorded = result.manifest.sensitivity
    assert (recorded.level, recorded.assessed, recorded.approval, recorded.approved_by) == (
        "low", "moderate", entry.hash, "omar")
    assert result.cube.attrs["sensitivity"] == "low"


def test_only_an_ethics_reviewer_of_the_keyring_signs_a_lowering(setting, tmp_path):
    with pytest.raises(ForecastError, match="holds the role"):  # lena is a technical reviewer
        approve_lowering(setting["log"], setting["manifest"], "low", REASON, by="lena", key=key_file("lena"),
                         policy=setting["policy"])
    with pytest.raises(ForecastError, match="omar's key"):  # lena's name on omar's key
        approve_lowering(setting["log"], setting["manifest"], "low", REASON, by="lena", key=key_file("omar"),
                         policy=setting["policy"])
    with pytest.raises(ForecastError, match="not in the keyring"):
        approve_lowering(setting["log"], setting["manifest"], "low", REASON, by="mallory", key=key_file("mallory"),
                         policy=setting["policy"])
    # a lowering written by hand (unsigned) into the log does not count either
    forged = AuditLog(setting["log"]).append("sensitivity.lower", "omar",
                                             {"files": sorted(f["sha256"] for f in setting["manifest"]["files"]),
                                              "assessed": "moderate", "level": "low", "reason": REASON})
    with pytest.raises(ForecastError, match="does not count"):
        _ingest(setting, approval=forged.hash)


def test_an_approval_holds_for_its_files_and_levels_only(setting):
    entry = approve_lowering(setting["log"], setting["manifest"], "low", REASON, by="omar", key=key_file("omar"),
                             policy=setting["policy"])
    setting["path"].write_text("\n".join([BASE, *ROWS, "Bay,Qansax Dheere,40,2020-01-15,C"]) + "\n")
    with pytest.raises(ForecastError, match="other files"):
        _ingest(setting, approval=entry.hash)
    with pytest.raises(ForecastError, match="no sensitivity.lower entry"):
        _ingest(setting, approval="0" * 64)


def test_the_commands_sign_a_lowering_and_ingest_with_it(setting):
    runner, s = CliRunner(), setting
    signed = runner.invoke(app, ["review", "lower-sensitivity", str(s["root"] / "assessed" / "manifest.json"),
                                 "--to", "low", "--reason", REASON, "--by", "omar", "--key", str(key_file("omar")),
                                 "--log", str(s["log"]), "--policy", str(s["policy"].source)])
    assert signed.exit_code == 0, signed.output
    approval = signed.output.split("--approval ")[1].split()[0]
    base = ["ingest", str(s["path"]), "-f", "dtm", "--sensitivity", "low", "--sensitivity-reason", REASON,
            "--audit-log", str(s["log"])]
    refused = runner.invoke(app, [*base, "--out", str(s["root"] / "refused")])
    assert refused.exit_code == 2 and "signed decision" in refused.output and "Traceback" not in refused.output
    assert not (s["root"] / "refused").exists()
    lowered = runner.invoke(app, [*base, "--approval", approval, "--policy", str(s["policy"].source),
                                  "--out", str(s["root"] / "lowered")])
    assert lowered.exit_code == 0, lowered.output
    recorded = forecast.Manifest.read(s["root"] / "lowered" / "manifest.json").sensitivity
    assert (recorded.level, recorded.approval, recorded.approved_by) == ("low", approval, "omar")
