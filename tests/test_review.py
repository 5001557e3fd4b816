"""Review records and sign-offs: on a hand-made review subject with no tracking store
(forecast.ethics), and by run id on a real train run (forecast.pipeline and `forecast review`)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pathlib import Path

from forecast.backtest import RollingOrigin
from forecast.cli import app
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.ethics import AuditLog, ReviewSubject, judge_review, new_review, read_review, sign_review
from forecast.models import load_spec
from forecast.pipeline import answer, review_state, sign, start_review, train
from forecast.policy import Policy, ethics_file, load_policy
from forecast.tracking import download_model, log_trained, model_digest, read_review_subject

REPO_POLICY = Path(__file__).resolve().parents[1] / "ethics/policy.yaml"

SPEC = """\
name: tiny_lgbm
estimator: lightgbm
horizons: [1, 2, 3]
params: {n_estimators: 10, num_leaves: 7, min_child_samples: 5, max_bin: 31}
"""
AUTHOR = "amina"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A real train run in a sqlite store, its card logged as `forecast card` does, and its model files."""
    root = tmp_path_factory.mktemp("review")
    (root / "spec.yaml").write_text(SPEC)
    cube = make_panel(8, 36, seed=3)
    trained = train(cube, load_spec(root / "spec.yaml"), calibration=RollingOrigin(n_origins=4, calibration_origins=0))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    run_id, _ = log_trained(trained, cube, tracking_uri=uri)
    client = MlflowClient(tracking_uri=uri)
    card = "# Model card: tiny_lgbm\n"
    client.log_text(run_id, card, "model_card/model_card.md")
    client.set_tag(run_id, "card_sha256", hashlib.sha256(card.encode()).hexdigest())
    model_dir = download_model(run_id, root / "model_files", client=client)
    return {"uri": uri, "root": root, "train": run_id, "model_dir": model_dir, "client": client}


@pytest.fixture
def env(base, tmp_path):
    """A fresh copy of the train run (so tests may change its card or model), a reviews folder and a log."""
    client = base["client"]
    source = client.get_run(base["train"])
    tags = {k: v for k, v in source.data.tags.items() if not k.startswith("mlflow.")}
    run_id = client.create_run(source.info.experiment_id, tags={**tags, "mlflow.user": AUTHOR}).info.run_id
    client.log_artifacts(run_id, str(base["model_dir"]), "model")
    return {"uri": base["uri"], "run": run_id, "reviews": tmp_path / "reviews", "log": tmp_path / "audit.log.jsonl",
            "client": client}


def _start(env, **kw):
    return start_review(env["run"], tracking_uri=env["uri"], reviews_dir=env["reviews"], **kw)


def _answer_all(env, role=None, value="yes"):
    """Answer every item (of ``role``) by editing the review file, as a reviewer may."""
    path = env["reviews"] / f"{env['run']}.yaml"
    data = yaml.safe_load(path.read_text())
    for item in data["items"]:
        if role is None or item["answered_by"] == role:
            item.update(answer=value, evidence="see the run's artifacts", answered_by_name="someone")
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _sign(env, reviewer, role, decision="approve", **kw):
    return sign(env["run"], reviewer, role, decision, kw.pop("comment", ""), log=env["log"], tracking_uri=env["uri"],
                reviews_dir=env["reviews"], **kw)


def _state(env, **kw):
    return review_state(env["run"], tracking_uri=env["uri"], reviews_dir=env["reviews"], log=env["log"], **kw)


def test_model_digest_is_the_same_for_the_logged_model_and_a_copy_of_its_files(base, env):
    assert model_digest(base["train"], client=base["client"]) == model_digest(env["run"], tracking_uri=env["uri"])
    subject = read_review_subject(env["run"], tracking_uri=env["uri"])
    assert (subject.model_digest, subject.author) == (model_digest(base["train"], client=base["client"]), AUTHOR)


def test_start_answer_sign_round_trip(env):
    path = _start(env)
    assert path == env["reviews"] / f"{env['run']}.yaml"
    data = yaml.safe_load(path.read_text())
    card = env["client"].get_run(env["run"]).data.tags["card_sha256"]
    assert data["run_id"] == env["run"] and data["card_sha256"] == card
    assert data["model_digest"] == model_digest(env["run"], client=env["client"])
    first = data["items"][0]
    assert set(first) == {"id", "question", "evidence_asked", "answered_by", "blocking", "answer", "evidence",
                          "answered_by_name"}
    assert first["answer"] is None and first["evidence"] is None
    item = first["id"]
    done = answer(env["run"], item, "n/a", "no such data here", by="lena", reviews_dir=env["reviews"])
    assert (done.answer, done.evidence, done.answered_by_name) == ("n/a", "no such data here", "lena")
    assert read_review(env["run"], reviews_dir=env["reviews"]).item(item).answer == "n/a"
    entry = _sign(env, "lena", "ethics", "reject", comment="not ready")
    assert (entry.kind, entry.actor) == ("review.sign", "lena")
    assert entry.payload == {"run_id": env["run"], "card_sha256": card, "model_digest": data["model_digest"],
                             "checklists_hash": data["checklists_hash"], "role": "ethics", "decision": "reject",
                             "comment": "not ready", "review_started": data["started"]}
    assert AuditLog(env["log"]).verify() == []


def test_start_refuses_without_card_or_twice(env):
    env["client"].delete_tag(env["run"], "card_sha256")
    with pytest.raises(ForecastError, match=f"run `forecast card {env['run']}` first"):
        _start(env)
    env["client"].set_tag(env["run"], "card_sha256", "a" * 64)
    _start(env)
    with pytest.raises(ForecastError, match="already exists.*--restart"):
        _start(env)


def test_answer_needs_evidence_and_suggests_close_item_ids(env):
    _start(env)
    item = read_review(env["run"], reviews_dir=env["reviews"]).items[0].id
    with pytest.raises(ForecastError, match="answer 'yes' needs the evidence"):
        answer(env["run"], item, "yes", " ", by="x", reviews_dir=env["reviews"])
    with pytest.raises(ForecastError, match="'n/a' needs the reason the item does not apply"):
        answer(env["run"], item, "n/a", None, by="x", reviews_dir=env["reviews"])
    with pytest.raises(ForecastError, match="no item 'dseg.problem.needs_base'; did you mean dseg.problem.needs_based"):
        answer(env["run"], "dseg.problem.needs_base", "no", None, by="x", reviews_dir=env["reviews"])
    assert answer(env["run"], item, "no", None, by="x", reviews_dir=env["reviews"]).answer == "no"


def test_sign_refuses_approval_with_unanswered_or_blocking_no_items_of_the_role(env):
    _start(env)
    with pytest.raises(ForecastError, match=r"cannot approve run .* as technical reviewer:\n  unanswered: "):
        _sign(env, "omar", "technical")
    _answer_all(env, "technical")
    blocking = next(i for i in read_review(env["run"], reviews_dir=env["reviews"]).items
                    if i.answered_by == "technical" and i.blocking)
    answer(env["run"], blocking.id, "no", None, by="omar", reviews_dir=env["reviews"])
    with pytest.raises(ForecastError, match=f"blocking, answered no: {blocking.id}"):
        _sign(env, "omar", "technical")
    with pytest.raises(ForecastError, match="role must be one of technical, ethics; got 'legal'"):
        _sign(env, "omar", "legal")
    assert not env["log"].exists()


def test_review_state_approved_with_two_non_author_approvals_of_both_roles(env):
    _start(env)
    state = _state(env)
    assert not state.approved and not state.checklist_complete
    assert "no valid ethics approval (1 needed)" in state.problems
    _answer_all(env)
    _sign(env, "omar", "technical")
    _sign(env, "lena", "ethics")
    state = _state(env)
    assert state.problems == [] and state.approved and state.checklist_complete
    assert state.valid_approvals == {"technical": ["omar"], "ethics": ["lena"]}
    assert state.unanswered == [] and state.blocking_no == []


def test_review_state_refuses_the_author_as_only_approver(env):
    _start(env)
    _answer_all(env)
    _sign(env, AUTHOR, "technical")
    _sign(env, AUTHOR, "ethics")
    assert _state(env).problems == [f"the run's author {AUTHOR} is the only approver"]
    _sign(env, "lena", "ethics")
    assert _state(env).approved


def test_review_state_voids_approvals_when_the_card_or_the_model_changes(env):
    _start(env)
    _answer_all(env)
    _sign(env, "omar", "technical")
    _sign(env, "lena", "ethics")
    env["client"].set_tag(env["run"], "card_sha256", "b" * 64)
    state = _state(env)
    assert "approval by omar voided: the model card changed after it was signed" in state.problems
    assert state.valid_approvals == {"technical": [], "ethics": []} and not state.approved
    with pytest.raises(ForecastError, match="the model card of run .* changed since the review started"):
        _sign(env, "omar", "technical")


def test_review_state_voids_approvals_when_the_model_changes(env, tmp_path):
    _start(env)
    _answer_all(env)
    _sign(env, "omar", "technical")
    (tmp_path / "extra.txt").write_text("retrained")
    env["client"].log_artifact(env["run"], str(tmp_path / "extra.txt"), "model")
    state = _state(env)
    assert "approval by omar voided: the model changed" in state.problems


def test_review_state_expires_approvals(env):
    _start(env)
    _answer_all(env)
    _sign(env, "omar", "technical")
    _sign(env, "lena", "ethics")
    later = datetime.now(timezone.utc) + timedelta(days=200)
    day = (datetime.now(timezone.utc) + timedelta(days=180)).date().isoformat()
    state = _state(env, now=later)
    assert f"approval by omar expired on {day}" in state.problems and not state.approved


def test_rejection_blocks_until_a_new_review(env):
    path = _start(env)
    _answer_all(env)
    _sign(env, "omar", "technical")
    _sign(env, "lena", "ethics", "reject")
    _sign(env, "lena2", "ethics")
    state = _state(env)
    assert any(p.startswith("rejected by lena (ethics) on ") and p.endswith(
        f"a new review is needed (forecast review start {env['run']} --restart)") for p in state.problems)
    assert not state.approved
    _start(env, restart=True)
    assert len(list(env["reviews"].glob(f"{env['run']}.*.yaml"))) == 1 and path.exists()
    _answer_all(env)
    state = _state(env)
    assert not any("rejected" in p for p in state.problems)  # sign-offs of the old review do not count
    assert state.valid_approvals == {"technical": [], "ethics": []}
    _sign(env, "omar", "technical")
    _sign(env, "lena", "ethics")
    assert _state(env).approved


def test_review_state_not_approved_when_the_audit_log_is_tampered(env):
    _start(env)
    _answer_all(env)
    _sign(env, "omar", "technical")
    _sign(env, "lena", "ethics")
    lines = env["log"].read_text().splitlines()
    first = json.loads(lines[0])
    first["payload"]["comment"] = "edited"
    env["log"].write_text("\n".join([json.dumps(first)] + lines[1:]) + "\n")
    state = _state(env)
    assert not state.approved and any("fails to verify" in p for p in state.problems)
    assert state.valid_approvals == {"technical": [], "ethics": []}


def test_review_rules_in_both_policies_and_required(env):
    assert ethics_file("policy.yaml").read_bytes() == REPO_POLICY.read_bytes()  # the one copy
    rules = load_policy(REPO_POLICY).review
    assert rules.needed() == {"technical": 1, "ethics": 1} and rules.expire_days == 180
    assert len(rules.approvals.rationale) > 10 and len(rules.expiry.rationale) > 10
    _start(env)
    state = _state(env, policy=Policy())
    assert any("has no review section" in p for p in state.problems)


def test_malformed_review_yaml_names_file_and_item(env):
    path = _start(env)
    data = yaml.safe_load(path.read_text())
    data["items"][1]["answer"] = "yes"
    data["items"][1]["answered_by_name"] = "x"
    data["items"][2]["answr"] = "no"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ForecastError) as error:
        read_review(env["run"], reviews_dir=env["reviews"])
    text = str(error.value)
    assert text.startswith(f"{path}: invalid review")
    assert f"item {data['items'][1]['id']!r}: answered 'yes' without evidence: give the evidence" in text
    assert f"item {data['items'][2]['id']!r} answr: unknown key" in text


# --- CLI ------------------------------------------------------------------------------------

def _cli(env, *args):
    return CliRunner().invoke(app, ["review", *args])


def test_cli_happy_path(env):
    run, reviews, log, uri = env["run"], str(env["reviews"]), str(env["log"]), env["uri"]
    result = _cli(env, "start", run, "--reviews", reviews, "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    assert f"review of run {run}: " in result.output and "items to answer" in result.output
    items = read_review(run, reviews_dir=reviews).items
    result = _cli(env, "answer", run, items[0].id, "--answer", "n/a", "--evidence", "no flows", "--by", "lena",
                  "--reviews", reviews)
    assert result.exit_code == 0, result.output
    assert f"{items[0].id}: n/a (by lena)" in result.output
    _answer_all(env)
    for who, role in (("omar", "technical"), ("lena", "ethics")):
        result = _cli(env, "sign", run, "--reviewer", who, "--role", role, "--decision", "approve", "--comment", "ok",
                      "--log", log, "--reviews", reviews, "--tracking-uri", uri)
        assert result.exit_code == 0, result.output
        assert f"approve by {who} ({role}) recorded in {log}" in result.output
    result = _cli(env, "status", run, "--log", log, "--reviews", reviews, "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    assert f"run {run}: approved" in result.output


def test_cli_status_exits_1_listing_problems(env):
    _start(env)
    result = _cli(env, "status", env["run"], "--log", str(env["log"]), "--reviews", str(env["reviews"]),
                  "--tracking-uri", env["uri"])
    assert result.exit_code == 1
    assert "not approved" in result.output and "no valid ethics approval (1 needed)" in result.output


def test_cli_errors_exit_2_with_the_message(env):
    reviews, uri = str(env["reviews"]), env["uri"]
    result = _cli(env, "start", "0" * 32, "--reviews", reviews, "--tracking-uri", uri)
    assert result.exit_code == 2 and f"no MLflow train run {'0' * 32!r}" in result.output
    assert "Traceback" not in result.output
    path = _start(env)
    result = _cli(env, "answer", env["run"], "dseg.problem.needs_base", "--answer", "no", "--by", "x",
                  "--reviews", reviews)
    assert result.exit_code == 2 and "did you mean dseg.problem.needs_based" in result.output
    path.write_text(path.read_text() + "extra_key: 1\n")
    result = _cli(env, "status", env["run"], "--reviews", reviews, "--tracking-uri", uri,
                  "--log", str(env["log"]))
    assert result.exit_code == 2 and f"{path}: invalid review" in result.output
    assert "extra_key: unknown key" in result.output
    result = _cli(env, "sign", env["run"], "--reviewer", "x", "--role", "legal", "--decision", "approve")
    assert result.exit_code == 2 and "legal" in result.output


@pytest.mark.parametrize("edit, message", [
    (lambda r: r["expiry"].pop("rationale"), "review.expiry.rationale: Field required"),
    (lambda r: r["approvals"].update(ethics=0), "review.approvals.ethics: Input should be greater than or equal to 1"),
    (lambda r: r.update(expire=3), "review.expire: unknown key"),
])
def test_review_rules_errors_name_the_field(tmp_path, edit, message):
    data = yaml.safe_load(REPO_POLICY.read_text())
    edit(data["review"])
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ForecastError, match=message):
        load_policy(path)


def test_review_state_says_no_review_yet(env):
    state = _state(env)
    assert state.checklist_problems == [f"no review of run {env['run']}: start one with "
                                        f"`forecast review start {env['run']}`"]
    assert state.sign_off_problems == ["no valid technical approval (1 needed)", "no valid ethics approval (1 needed)"]
    assert not state.approved


def test_cli_sign_with_a_key_writes_a_signed_entry_that_verifies(env, tmp_path):
    from forecast.ethics import generate_key

    public = generate_key(tmp_path / "lena.pem")
    _start(env)
    _answer_all(env, "ethics")
    result = _cli(env, "sign", env["run"], "--reviewer", "lena", "--role", "ethics", "--decision", "approve",
                  "--key", str(tmp_path / "lena.pem"), "--log", str(env["log"]), "--reviews", str(env["reviews"]),
                  "--tracking-uri", env["uri"])
    assert result.exit_code == 0, result.output
    assert f"signed with key {public.key_id}" in result.output
    assert AuditLog(env["log"], public_keys=public.path, require_signatures=True).verify() == []


# --- on a hand-made subject: no tracking store ----------------------------------------------

def test_a_review_of_a_hand_made_subject_runs_without_any_tracking_store(tmp_path):
    subject = ReviewSubject("r" * 32, "c" * 64, "d" * 64, author=AUTHOR)
    reviews, log = tmp_path / "reviews", tmp_path / "audit.log.jsonl"
    path = new_review(subject, reviews_dir=reviews)
    assert read_review(subject.run_id, reviews_dir=reviews).model_digest == "d" * 64
    state = judge_review(subject, reviews_dir=reviews, log=log)
    assert not state.approved and state.unanswered
    data = yaml.safe_load(path.read_text())
    for item in data["items"]:
        item.update(answer="yes", evidence="the run's artifacts", answered_by_name="lena")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    sign_review(subject, "omar", "technical", "approve", log=log, reviews_dir=reviews)
    sign_review(subject, "lena", "ethics", "approve", log=log, reviews_dir=reviews)
    assert judge_review(subject, reviews_dir=reviews, log=log).approved
    changed = ReviewSubject(subject.run_id, subject.card_sha256, "e" * 64, author=AUTHOR)
    assert "approval by omar voided: the model changed" in judge_review(changed, reviews_dir=reviews, log=log).problems
    with pytest.raises(ForecastError, match="the model of run r+ changed since the review started"):
        sign_review(changed, "omar", "technical", "approve", log=log, reviews_dir=reviews)
    with pytest.raises(ForecastError, match="has no model card"):
        new_review(ReviewSubject("s" * 32, None, "d" * 64), reviews_dir=reviews)
