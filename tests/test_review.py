"""Review records and sign-offs: on a hand-made review subject with no tracking store
(forecast.ethics), and by run id on a real train run (forecast.pipeline and `forecast review`)."""

from __future__ import annotations

import csv
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
    client.set_terminated(run_id)  # FINISHED: a review is of a train run that finished
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
                             "comment": "not ready", "review_started": data["started"],
                             # the rest of what is signed: the HTML card, the backtest the card cites, the answers
                             "card_html_sha256": None, "backtest_run_id": None, "backtest_digest": None,
                             "answers_sha256": read_review(env["run"], reviews_dir=env["reviews"]).answers_sha256()}
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
    _sign(env, AUTHOR, "ethics")  # one person fills one role of a review: this one does not count
    assert _state(env).problems == [f"approval by {AUTHOR} as ethics not counted: {AUTHOR} already approved as "
                                    "technical (one person fills one role of a review)",
                                    "no valid ethics approval (1 needed)",
                                    f"the run's author {AUTHOR} is the only approver"]
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


# --- many answers at once, questions in status, the checklist page ------------------------

def _template(env, name="answers.csv", *args):
    path = env["reviews"].parent / name
    result = _cli(env, "answer", env["run"], "--template", str(path), "--reviews", str(env["reviews"]), *args)
    assert result.exit_code == 0, result.output
    return path


def _write_csv(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _fill_csv(path, fill=lambda row: row.update(answer="yes", evidence="the run's artifacts",
                                                   answered_by_name="lena")):
    """Fill an answers file as a reviewer does in a spreadsheet; the rows written."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        fill(row)
    _write_csv(path, rows)
    return rows


def test_answers_template_has_one_row_per_open_item_with_its_question(env):
    _start(env)
    review = read_review(env["run"], reviews_dir=env["reviews"])
    answer(env["run"], review.items[0].id, "no", None, by="x", reviews_dir=env["reviews"])
    path = _template(env)
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "answered_by", "blocking", "question", "evidence_asked", "answer", "evidence",
                             "answered_by_name"]
    open_items = {i.id: i for i in review.items[1:]}
    assert [r["id"] for r in rows] == sorted(open_items, key=lambda i: open_items[i].answered_by != "technical")
    first = open_items[rows[0]["id"]]
    assert rows[0]["question"] == " ".join(first.question.split()) and rows[0]["answer"] == ""
    result = _cli(env, "answer", env["run"], "--template", str(path), "--reviews", str(env["reviews"]))
    assert result.exit_code == 2 and "exists (it may hold answers not yet recorded)" in result.output
    ethics = _template(env, "ethics.yaml", "--role", "ethics", "--all")
    data = yaml.safe_load(ethics.read_text())
    assert data["run_id"] == env["run"] and data["checklists_hash"] == review.checklists_hash
    assert {a["answered_by"] for a in data["answers"]} == {"ethics"}
    assert len(data["answers"]) == sum(1 for i in review.items if i.answered_by == "ethics")


def test_answer_from_file_rejects_the_whole_file_naming_the_file_row_and_field(env):
    path = _start(env)
    before = path.read_bytes()
    answers = _template(env)
    rows = _fill_csv(answers)
    rows[1].update(evidence=" ")                      # row 3: yes without evidence
    rows[2].update(answer="maybe")                    # row 4
    rows[3].update(id="dseg.problem.needs_base")      # row 5: a typo
    rows[4].update(answer="n/a", answered_by_name="")  # row 6: nobody answered
    rows[5].update(answered_by="legal")               # row 7: a read-only column changed
    _write_csv(answers, rows)
    result = _cli(env, "answer", env["run"], "--from", str(answers), "--reviews", str(env["reviews"]))
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"{answers}: 5 problem(s); nothing was recorded" in text
    assert f"row 3 (item {rows[1]['id']}), evidence: answer 'yes' needs the evidence (an artifact, a document)" in text
    assert f"row 4 (item {rows[2]['id']}), answer: must be one of yes, no, n/a; got 'maybe'" in text
    assert ("row 5 (item dseg.problem.needs_base), id: the review has no item 'dseg.problem.needs_base'; "
            "did you mean dseg.problem.needs_based") in text
    assert (f"row 6 (item {rows[4]['id']}), answered_by_name: empty: say who answers (or pass --by NAME)") in text
    assert f"row 7 (item {rows[5]['id']}), answered_by: says 'legal', the review says" in text
    assert path.read_bytes() == before  # nothing written
    rows[3].update(id=rows[2]["id"])                  # now answered twice
    _write_csv(answers, rows)
    result = _cli(env, "answer", env["run"], "--from", str(answers), "--reviews", str(env["reviews"]))
    assert f"row 5 (item {rows[2]['id']}), id: item {rows[2]['id']} is answered twice (also row 4)" in result.output
    assert path.read_bytes() == before


def test_answer_from_file_rejects_unknown_columns_and_rows_sorted_on_one_column(env):
    from forecast.ethics import answer_from_file

    _start(env)
    answers = _template(env)
    text = answers.read_text().replace("answered_by_name", "answerd_by_name", 1)
    (answers.parent / "typo.csv").write_text(text)
    with pytest.raises(ForecastError, match=r"typo.csv: the header: unknown column\(s\) 'answerd_by_name' "
                                            r"\(a typo\?"):
        answer_from_file(env["run"], answers.parent / "typo.csv", reviews_dir=env["reviews"])
    rows = _fill_csv(answers)
    questions = [r["question"] for r in rows]
    _fill_csv(answers, lambda row: row.update(question=questions[(questions.index(row["question"]) + 1) % len(rows)]))
    with pytest.raises(ForecastError, match=r"row 2 \(item .*\), question: says .* the review says .*: was the file "
                                            r"sorted on one column, or written for another review\?"):
        answer_from_file(env["run"], answers, reviews_dir=env["reviews"])
    assert read_review(env["run"], reviews_dir=env["reviews"]).items[0].answer is None


def test_answer_from_yaml_takes_yes_and_no_as_words_blank_rows_stay_open_and_by_fills_names(env):
    from forecast.ethics import answer_from_file

    _start(env)
    path = _template(env, "answers.yaml")
    data = yaml.safe_load(path.read_text())
    first, second, third = data["answers"][:3]
    first.update(answer=True, evidence="doc p. 3")    # what `answer: yes` reads as
    second.update(answer=False)                       # `answer: no`
    third.update(answer="N/A", evidence="no flows here", answered_by_name="omar")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    done = answer_from_file(env["run"], path, by="lena", reviews_dir=env["reviews"])
    assert [(i.id, i.answer, i.answered_by_name) for i in done] == [
        (first["id"], "yes", "lena"), (second["id"], "no", "lena"), (third["id"], "n/a", "omar")]
    review = read_review(env["run"], reviews_dir=env["reviews"])
    assert sum(i.answer is None for i in review.items) == len(review.items) - 3
    data["run_id"] = "another"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ForecastError, match="run_id is 'another', the review's is .*written for another review"):
        answer_from_file(env["run"], path, by="lena", reviews_dir=env["reviews"])


def test_cli_answer_needs_exactly_one_of_item_from_or_template(env):
    _start(env)
    reviews = str(env["reviews"])
    result = _cli(env, "answer", env["run"], "--reviews", reviews)
    assert result.exit_code == 2 and "give one of ITEM, --from FILE or --template FILE; got none" in result.output
    result = _cli(env, "answer", env["run"], "dseg.problem.needs_based", "--from", "a.csv", "--reviews", reviews)
    assert result.exit_code == 2 and "got ITEM and --from" in result.output
    result = _cli(env, "answer", env["run"], "dseg.problem.needs_based", "--by", "x", "--reviews", reviews)
    assert result.exit_code == 2 and "needs --answer (yes, no or n/a) and --by NAME" in result.output
    result = _cli(env, "answer", env["run"], "--from", "answers.txt", "--reviews", reviews)
    assert result.exit_code == 2 and "answers.txt: an answers file is .csv or .yaml" in result.output


def test_cli_status_shows_the_question_of_each_open_item(env):
    _start(env)
    _answer_all(env, "technical")
    result = _cli(env, "status", env["run"], "--log", str(env["log"]), "--reviews", str(env["reviews"]),
                  "--tracking-uri", env["uri"])
    assert result.exit_code == 1
    review = read_review(env["run"], reviews_dir=env["reviews"])
    ethics = [i for i in review.items if i.answered_by == "ethics"]
    assert f"open items ({len(ethics)}), with their questions:" in result.output
    for item in ethics:
        assert " ".join(item.question.split()) in result.output
    technical = next(i for i in review.items if i.answered_by == "technical")
    assert " ".join(technical.question.split()) not in result.output
    assert f"forecast review answer {env['run']} --template answers.csv" in result.output


def test_checklist_page_links_to_the_card_anchors_when_the_card_has_them(tmp_path):
    from forecast.ethics import RunFiles, checklist_page

    subject = ReviewSubject("r" * 32, "c" * 64, "d" * 64, author=AUTHOR)
    new_review(subject, reviews_dir=tmp_path)
    review = read_review(subject.run_id, reviews_dir=tmp_path)
    train = RunFiles(subject.run_id, "train", str(tmp_path / "artifacts"),
                     ("model_card/model_card.html", "feature_importance.csv", "triggers/triggers.yaml"))
    backtest = RunFiles("b" * 32, "backtest", "s3://bucket/b", ("fairness/forecast/summary.txt",
                                                                "triggers/metrics.csv"))
    card = '<h2 id="fairness">10. Fairness</h2><h2 id="intended-use">2. Intended use</h2>'
    page = checklist_page(review, runs=[train, backtest], card_html=card)
    base = (tmp_path / "artifacts").resolve().as_uri()
    assert f'<a href="{base}/model_card/model_card.html#fairness">card §10 Fairness</a>' in page
    assert f'<a href="{base}/model_card/model_card.html#intended-use">card §2 Intended use</a>' in page
    assert f'<a href="{base}/feature_importance.csv">train: feature_importance.csv</a>' in page
    assert "<li>backtest: fairness/forecast/summary.txt</li>" in page  # s3: named, not linked
    no_anchors = checklist_page(review, runs=[train], card_html=None)
    assert (f'<a href="{base}/model_card/model_card.html#:~:text=3.%20Out%2Dof%2Dscope%20uses">'
            "card §3 Out-of-scope uses</a>") in no_anchors
    assert '<a href="#dseg.data.coverage">dseg.data.coverage</a>' in no_anchors  # an item citing another


# --- on the real tiny pipeline: a review in five commands, and the checklist page -------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Backtest with triggers and fairness, train run and its model card (HTML too), in MLflow."""
    from _pipeline import tiny_pipeline

    return tiny_pipeline(tmp_path_factory.mktemp("tiny"))


def test_a_review_completes_in_five_commands_and_the_gate_sees_it_complete(tiny, tmp_path):
    from _pipeline import copy_run, key_file

    from forecast.pipeline import evaluate_gate

    env = copy_run(tiny, tmp_path, author=AUTHOR)
    run, answers = env["run"], tmp_path / "answers.csv"
    where = ["--reviews", str(env["reviews"])]
    store = ["--tracking-uri", env["uri"]]
    commands = [
        ["review", "start", run, *where, *store],
        ["review", "answer", run, "--template", str(answers), *where],
        ["review", "answer", run, "--from", str(answers), *where],
        ["review", "sign", run, "--reviewer", "lena", "--role", "technical", "--decision", "approve",
         "--key", str(key_file("lena")), "--log", str(env["log"]), *where, *store],  # high data: signed sign-offs
        ["review", "sign", run, "--reviewer", "omar", "--role", "ethics", "--decision", "approve",
         "--key", str(key_file("omar")), "--log", str(env["log"]), *where, *store],
    ]
    assert len(commands) <= 5
    for n, command in enumerate(commands):
        if n == 2:  # between the commands, the reviewers fill the file (a spreadsheet, an editor)
            _fill_csv(answers, lambda row: row.update(
                answer="yes", evidence=f"see the card and {row['evidence_asked'][:40]}",
                answered_by_name="lena" if row["answered_by"] == "technical" else "omar"))
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 0, (command, result.output)
    state = review_state(run, tracking_uri=env["uri"], reviews_dir=env["reviews"], log=env["log"])
    assert state.approved and state.checklist_complete, state.problems
    assert state.valid_approvals == {"technical": ["lena"], "ethics": ["omar"]}
    report = evaluate_gate(run, tracking_uri=env["uri"], reviews_dir=env["reviews"], log=env["log"],
                           policy=tiny["policy"])
    review = {c.check: c.verdict for c in report.conditions if c.group == "review"}
    assert set(review.values()) == {"pass"} and {"checklist complete", "sign-offs valid"} <= set(review)
    assert report.passed, report.to_frame()[["check", "verdict", "measured"]]


def test_cli_checklist_writes_every_question_its_evidence_links_and_the_answers_escaped(tiny, tmp_path):
    run, uri, reviews = tiny["train"], tiny["uri"], tmp_path / "reviews"
    start_review(run, tracking_uri=uri, reviews_dir=reviews)
    review = read_review(run, reviews_dir=reviews)
    item = next(i for i in review.items if i.id == "technical_review.baselines.trigger_skill")
    answer(run, item.id, "yes", "<script>alert(1)</script> & triggers/metrics.csv", by="<b>lena</b>",
           reviews_dir=reviews)
    out = tmp_path / "page" / "review.html"
    result = _cli(None, "checklist", run, "--out", str(out), "--reviews", str(reviews), "--tracking-uri", uri,
                  "--log", str(tmp_path / "audit.log.jsonl"))
    assert result.exit_code == 0, result.output
    assert f"wrote the review of run {run} to {out}" in result.output
    page = out.read_text(encoding="utf-8")
    from markupsafe import escape

    for i in review.items:  # every question, escaped as jinja2's autoescape does
        assert str(escape(i.question)) in page, i.id
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; triggers/metrics.csv" in page
    assert "by &lt;b&gt;lena&lt;/b&gt;" in page and "Not approved" in page
    def base(run_id):  # a store in a local folder: file: URIs a browser opens
        uri = tiny["client"].get_run(run_id).info.artifact_uri
        return uri if uri.startswith("file:") else Path(uri).resolve().as_uri()

    card = f"{base(run)}/model_card/model_card.html"
    assert f'<a href="{card}">' in page
    assert f'<a href="{card}#:~:text=9.%20Trigger%20evaluation">card §9 Trigger evaluation</a>' in page
    backtest = base(tiny["backtest"])
    assert f'<a href="{backtest}/triggers/metrics.csv">backtest: triggers/metrics.csv</a>' in page
    assert "<link" not in page and " src=" not in page  # self-contained
    result = _cli(None, "checklist", "0" * 32, "--reviews", str(reviews), "--tracking-uri", uri)
    assert result.exit_code == 2 and "no review of run" in result.output
