"""Identities and the gate: a review means who it says (issue 19 §1).

One test per attack the gate used to let through: one person signing both roles; a sign-off
under another's name with the wrong key; ``Root`` standing in for the author ``root``; a log
rewritten with recomputed hashes; a hand-written ``review.sign`` line; a keyring change signed
by a non-member; a release under a policy nobody approved; a null limit. Most run on a hand-made
evidence bundle (no tracking store); the release command runs on the real tiny pipeline.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace

import pytest
import yaml
from typer.testing import CliRunner

from forecast.cli import _console as cli_console
from forecast.cli import app
from forecast.errors import ForecastError
from forecast.ethics import AuditLog, ReviewSubject, generate_key, judge_gate, judge_review, new_review, sign_review
from forecast.policy import load_policy

from _pipeline import (
    copy_run,
    enrol,
    hand_made_evidence,
    key_file,
    key_id,
    policy_file,
    review_and_sign,
    tiny_pipeline,
)

GENESIS = "0" * 64


@pytest.fixture
def policy(tmp_path):
    """The test policy: signatures required for high and severe data, keyring root omar's key."""
    return load_policy(policy_file(tmp_path / "policy.yaml"))


@pytest.fixture
def bundle(tmp_path, policy):
    """A hand-made train run (high data, author amina), its review answered, and an audit log whose
    keyring holds omar (ethics, root) and lena (technical) and which approves the test policy."""
    evidence = hand_made_evidence()
    train = evidence.train
    subject = ReviewSubject(train.run_id, train.tags["card_sha256"], evidence.model_digest, "amina", "high",
                            backtest_digest=train.tags["card_backtest_digest"])
    reviews, log = tmp_path / "reviews", tmp_path / "audit.log.jsonl"
    path = new_review(subject, reviews_dir=reviews)
    data = yaml.safe_load(path.read_text())
    for item in data["items"]:
        item.update(answer="yes", evidence="the run's artifacts", answered_by_name="lena")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    enrol(log, policy=policy)
    return {"evidence": evidence, "subject": subject, "reviews": reviews, "log": log, "policy": policy}


def _sign(b, name, role, *, key="own", subject=None):
    return sign_review(subject or b["subject"], name, role, "approve", log=b["log"], reviews_dir=b["reviews"],
                       key=key_file(name) if key == "own" else key)


def _gate(b, **kw):
    report = judge_gate(kw.pop("evidence", b["evidence"]), reviews_dir=b["reviews"], log=b["log"],
                        policy=kw.pop("policy", b["policy"]))
    return report, {c.check: c for c in report.conditions}


def _state(b, subject=None):
    return judge_review(subject or b["subject"], reviews_dir=b["reviews"], log=b["log"], policy=b["policy"])


def _verify(log, policy_path, *args):
    cli_console.out.width = 250
    return CliRunner().invoke(app, ["audit", "verify", "--log", str(log), "--policy", str(policy_path), *args])


def _canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _rechain(objs: list[dict]) -> bytes:
    """What a forger without any private key writes: every seq, prev and hash recomputed, the
    signatures left as they were."""
    prev = GENESIS
    for seq, obj in enumerate(objs):
        obj.update(seq=seq, prev=prev)
        obj["hash"] = hashlib.sha256(_canonical({k: v for k, v in obj.items()
                                                 if k not in ("hash", "signature")})).hexdigest()
        prev = obj["hash"]
    return b"".join(_canonical(obj) + b"\n" for obj in objs)


def _forged_sign_off(b, actor: str, role: str) -> dict:
    """A ``review.sign`` entry written by hand for the bundle's current review."""
    genuine = next(json.loads(line) for line in b["log"].read_text().splitlines()
                   if json.loads(line)["kind"] == "review.sign")
    return {"time": genuine["time"], "kind": "review.sign", "actor": actor,
            "payload": {**genuine["payload"], "role": role}}


def test_the_genuine_bundle_is_released_when_both_reviewers_sign_with_their_keys(bundle):
    _sign(bundle, "lena", "technical")
    _sign(bundle, "omar", "ethics")
    report, _ = _gate(bundle)
    assert report.passed, report.to_frame()[["check", "verdict", "measured"]]
    assert report.reviewers == {"technical": ["lena"], "ethics": ["omar"]}


# --- 3. one person, one role; the author by identity ----------------------------------------------

def test_one_person_signing_both_roles_is_refused(bundle):
    enrol(bundle["log"], {"kim": ("technical", "ethics")})
    _sign(bundle, "kim", "technical")
    _sign(bundle, "kim", "ethics")
    state = _state(bundle)
    assert state.valid_approvals == {"technical": ["kim"], "ethics": []} and not state.approved
    assert ("approval by kim as ethics not counted: kim already approved as technical (one person fills one role "
            "of a review)") in state.problems
    _, conditions = _gate(bundle)
    assert conditions["sign-offs valid"].verdict == "fail"
    # unsigned, where the data needs no signature: the same person under two spellings
    low = replace(bundle["subject"], sensitivity="low")
    sign_review(low, "Lena", "technical", "approve", log=bundle["log"], reviews_dir=bundle["reviews"])
    sign_review(low, "lena ", "ethics", "approve", log=bundle["log"], reviews_dir=bundle["reviews"])
    assert "approval by lena as ethics not counted: lena already approved as technical" in " ".join(
        _state(bundle, low).problems)


def test_root_is_the_author_root(bundle):
    subject = replace(bundle["subject"], author="root", sensitivity="low")
    for name, role in (("Root", "technical"), ("ＲＯＯＴ", "ethics")):  # one person, the author, twice
        sign_review(subject, name, role, "approve", log=bundle["log"], reviews_dir=bundle["reviews"])
    state = _state(bundle, subject)
    assert "the run's author root is the only approver" in state.problems and not state.approved
    from forecast.ethics import identity

    assert identity("Root") == identity(" root ") == identity("ｒｏｏｔ") == "root"


# --- 1 and 2. the keyring and signed sign-offs ------------------------------------------------------

def test_a_sign_off_under_another_name_with_the_wrong_key_is_refused(bundle, tmp_path):
    _sign(bundle, "lena", "technical")
    with pytest.raises(ForecastError, match="is lena's in the keyring .*not omar's"):
        _sign(bundle, "omar", "ethics", key=key_file("lena"))  # the command refuses it outright
    forged = _forged_sign_off(bundle, "omar", "ethics")
    AuditLog(bundle["log"]).append("review.sign", "omar", forged["payload"], key=key_file("lena"))
    state = _state(bundle)
    assert any(p.startswith("approval by omar not counted: signed with the key of lena") for p in state.problems)
    assert state.valid_approvals["ethics"] == []
    report, _ = _gate(bundle)
    assert not report.passed
    result = _verify(bundle["log"], bundle["policy"].source)
    assert result.exit_code == 1 and "signed-by-another" in result.output
    # a key outside the keyring does not count either, nor a key in a role it does not hold
    generate_key(tmp_path / "stranger.pem")
    AuditLog(bundle["log"]).append("review.sign", "omar", forged["payload"], key=tmp_path / "stranger.pem")
    enrol(bundle["log"], {"tom": ("technical",)})
    AuditLog(bundle["log"]).append("review.sign", "tom", forged["payload"], key=key_file("tom"))
    problems = " ".join(_state(bundle).problems)
    assert "which is not in the keyring" in problems and "tom's key holds the role(s) technical only" in problems


def test_a_log_rewritten_with_recomputed_hashes_is_detected_by_the_gate_and_audit_verify(bundle, tmp_path):
    _sign(bundle, "lena", "technical")
    objs = [json.loads(line) for line in bundle["log"].read_text().splitlines()]
    forged = _forged_sign_off(bundle, "omar", "ethics")
    bundle["log"].write_bytes(_rechain([*objs[:-1], forged, objs[-1]]))  # inserted before lena's, all re-hashed
    problems = [p for p in AuditLog(bundle["log"]).verify() if p.severity == "error"]
    assert [p.code for p in problems] == ["bad-signature"]  # lena's entry: her signature no longer matches
    _, conditions = _gate(bundle)
    assert conditions["audit log verifies"].verdict == "fail" and "bad-signature" in conditions[
        "audit log verifies"].measured
    result = _verify(bundle["log"], bundle["policy"].source)
    assert result.exit_code == 1 and "bad-signature" in result.output
    # rewritten from scratch under the forger's own keys: the policy's pinned root tells
    from forecast.ethics import add_member, approve_policy

    keys = {name: tmp_path / "forger" / f"{name}.pem" for name in ("mallory", "lena2")}
    pubs = {name: generate_key(path).path for name, path in keys.items()}
    scratch = tmp_path / "scratch.jsonl"
    add_member(scratch, "omar", ["ethics"], pubs["mallory"], key=keys["mallory"])
    add_member(scratch, "lena", ["technical"], pubs["lena2"], key=keys["mallory"])
    with pytest.raises(ForecastError, match="pins the keyring root"):
        approve_policy(scratch, bundle["policy"], by="omar", key=keys["mallory"])
    bundle["log"] = scratch
    _sign(bundle, "lena", "technical", key=keys["lena2"])
    _sign(bundle, "omar", "ethics", key=keys["mallory"])
    report, conditions = _gate(bundle)
    assert not report.passed and conditions["policy in force"].verdict == "fail"
    assert f"the policy pins {key_id('omar')}" in conditions["policy in force"].measured
    result = _verify(scratch, bundle["policy"].source)
    assert result.exit_code == 1 and "keyring-root" in result.output


def test_a_hand_written_review_sign_line_is_detected(bundle, tmp_path):
    _sign(bundle, "lena", "technical")
    objs = [json.loads(line) for line in bundle["log"].read_text().splitlines()]
    forged = _forged_sign_off(bundle, "omar", "ethics")
    bundle["log"].write_bytes(_rechain([*objs, forged]))  # appended at the end: the chain alone still verifies
    assert [p for p in AuditLog(bundle["log"]).verify() if p.severity == "error"] == []
    report, conditions = _gate(bundle)
    assert not report.passed and conditions["sign-offs valid"].verdict == "fail"
    assert "approval by omar not counted: unsigned" in conditions["sign-offs valid"].measured
    result = _verify(bundle["log"], bundle["policy"].source)
    assert "unsigned-sign-off" in result.output
    # the same line claiming omar's key: its signature cannot be made without his private key
    claimed = {**forged, "key_id": key_id("omar"), "signature": "ab" * 64}
    bundle["log"].write_bytes(_rechain([*objs, claimed]))
    result = _verify(bundle["log"], bundle["policy"].source)
    assert result.exit_code == 1 and "bad-signature" in result.output
    assert _gate(bundle)[1]["audit log verifies"].verdict == "fail"


def test_a_keyring_change_signed_by_a_non_member_is_refused(bundle, tmp_path):
    from forecast.ethics import add_member, keyring, load_public_keys

    generate_key(tmp_path / "k" / "mallory.pem")
    [mallory] = load_public_keys(tmp_path / "k").values()
    with pytest.raises(ForecastError, match="keyring.add by mallory refused: signed with key .* not in the keyring"):
        add_member(bundle["log"], "mallory", ["ethics"], mallory.path, key=tmp_path / "k" / "mallory.pem")
    with pytest.raises(ForecastError, match="whose key holds technical only: it needs the ethics role"):
        add_member(bundle["log"], "mallory", ["ethics"], mallory.path, key=key_file("lena"))
    # written past the command: the replay refuses it all the same
    from cryptography.hazmat.primitives import serialization

    raw = mallory.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    payload = {"name": "mallory", "roles": ["ethics", "technical"], "key_id": mallory.key_id, "public_key": raw.hex()}
    AuditLog(bundle["log"]).append("keyring.add", "mallory", payload, key=tmp_path / "k" / "mallory.pem")
    ring = keyring(bundle["log"])
    assert mallory.key_id not in ring.members and "mallory" not in {m.name for m in ring.members.values()}
    assert any("keyring.add by mallory refused" in message for _, message in ring.problems)
    _sign(bundle, "lena", "technical")
    sign_review(bundle["subject"], "mallory", "ethics", "approve", log=bundle["log"], reviews_dir=bundle["reviews"],
                key=tmp_path / "k" / "mallory.pem")
    report, conditions = _gate(bundle)
    assert not report.passed and conditions["audit log verifies"].verdict == "fail"
    assert "keyring.add by mallory refused" in conditions["audit log verifies"].measured
    assert _state(bundle).valid_approvals["ethics"] == []
    result = _verify(bundle["log"], bundle["policy"].source)
    assert result.exit_code == 1 and "keyring-refused" in result.output


def test_the_keyring_commands_bootstrap_pin_and_approve(tmp_path):
    cli_console.out.width = 250
    log, run = tmp_path / "audit.log.jsonl", CliRunner().invoke
    pub = {name: generate_key(tmp_path / "keys" / f"{name}.pem").path for name in ("omar", "lena")}
    first = run(app, ["review", "keyring", "add", "omar", "--role", "ethics", "--public-key", str(pub["omar"]),
                      "--key", str(tmp_path / "keys" / "omar.pem"), "--log", str(log)])
    assert first.exit_code == 0, first.output
    root = pub["omar"].stem
    assert f"this is the keyring's first key: pin it in the policy (review.signatures.keyring_root: {root})" in (
        " ".join(first.output.split()))
    second = run(app, ["review", "keyring", "add", "lena", "--role", "technical", "--public-key", str(pub["lena"]),
                       "--key", str(tmp_path / "keys" / "omar.pem"), "--log", str(log)])
    assert second.exit_code == 0 and "signed by omar" in second.output
    unpinned = policy_file(tmp_path / "unpinned.yaml", **{"review.signatures.keyring_root": None})
    refused = run(app, ["review", "approve-policy", str(unpinned), "--by", "omar", "--key",
                        str(tmp_path / "keys" / "omar.pem"), "--log", str(log)])
    assert refused.exit_code == 2 and f"set review.signatures.keyring_root: {root}" in " ".join(refused.output.split())
    pinned = policy_file(tmp_path / "pinned.yaml", **{"review.signatures.keyring_root": root})
    by_lena = run(app, ["review", "approve-policy", str(pinned), "--by", "lena", "--key",
                        str(tmp_path / "keys" / "lena.pem"), "--log", str(log)])
    assert by_lena.exit_code == 2 and "it needs the ethics role" in by_lena.output
    ok = run(app, ["review", "approve-policy", str(pinned), "--by", "omar", "--key",
                   str(tmp_path / "keys" / "omar.pem"), "--log", str(log)])
    assert ok.exit_code == 0 and "approved by omar" in ok.output
    listed = run(app, ["review", "keyring", "list", "--log", str(log), "--policy", str(pinned)])
    assert listed.exit_code == 0, listed.output
    assert "lena" in listed.output and f"{root} (root)" in listed.output and "approved by omar" in listed.output


# --- 4. the policy is not the releaser's choice ------------------------------------------------------

@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    return tiny_pipeline(tmp_path_factory.mktemp("identities"))


def test_release_under_an_unapproved_policy_is_refused(pipeline, tmp_path):
    env = copy_run(pipeline, tmp_path, author="amina")
    review_and_sign(env)
    lax = policy_file(tmp_path / "lax.yaml", **{"release.level_ratio.low": 0.0001, "release.skill.min_skill": {1: -99.0}})
    cli_console.out.width = 250

    def release(policy_path, *args):
        return CliRunner().invoke(app, ["release", env["run"], "--name", env["name"], "--by", "releaser",
                                        "--tracking-uri", env["uri"], "--reviews", str(env["reviews"]),
                                        "--log", str(env["log"]), "--policy", str(policy_path), *args])

    result = release(lax)
    text = " ".join(result.output.split())
    assert result.exit_code == 1 and "fail: policy in force" in text and "REFUSED" in text
    assert f"lax.yaml (sha256 {load_policy(lax).hash()[:12]}) has not been approved" in text
    assert "forecast review approve-policy lax.yaml --by NAME --key KEY" in text
    assert env["client"].search_model_versions(f"name = '{env['name']}'") == []
    # a changed policy takes effect only after its own signed approval
    approved = CliRunner().invoke(app, ["review", "approve-policy", str(lax), "--by", "omar", "--key",
                                        str(key_file("omar")), "--log", str(env["log"])])
    assert approved.exit_code == 0, approved.output
    checked = release(lax, "--check")
    assert checked.exit_code == 0 and "every condition passes" in checked.output, checked.output
    earlier = release(env["policy_path"], "--check")  # no longer the latest approved: not in force
    assert earlier.exit_code == 1 and "fail: policy in force" in earlier.output and "has not been approved" in (
        " ".join(earlier.output.split()))


def test_a_null_limit_is_refused_when_the_policy_is_loaded(tmp_path):
    path = policy_file(tmp_path / "null.yaml", **{"metrics.mase": {"max_difference": None, "min_ratio": None}})
    with pytest.raises(ForecastError) as error:
        load_policy(path)
    assert str(error.value).startswith(f"{path}: invalid fairness policy")
    assert "metrics.mase.max_difference: null is not a limit (it would skip the check)" in str(error.value)
    data = yaml.safe_load(path.read_text())
    del data["metrics"]["mase"]
    (tmp_path / "missing.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ForecastError, match="metrics.mase: missing: give its limit, or `checked: false` with a "
                                            "rationale"):
        load_policy(tmp_path / "missing.yaml")
    data["metrics"]["mase"] = {"checked": False}
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ForecastError, match="checked: false needs a rationale"):
        load_policy(tmp_path / "bare.yaml")
    data["metrics"]["mase"] = {"checked": False, "rationale": "reported only while groups are this small"}
    (tmp_path / "explicit.yaml").write_text(yaml.safe_dump(data))
    assert not load_policy(tmp_path / "explicit.yaml").limit("mase").checked  # said out loud: not checked
    assert load_policy().limit("selection_rate").checked is False  # the shipped policy says so too
