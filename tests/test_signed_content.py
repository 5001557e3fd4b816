"""Every part of what reviewers sign is hashed: both card files, the backtest the card cites, the
answers and their evidence (issue 19 §1).

Each attack changes one part after the sign-offs and must leave the model unreleased, saying
what changed: a rewritten ``model_card.html`` (with or without a recomputed tag), an answer or
its evidence edited in the review file, the card's backtest re-pointed to another run or its
tables edited, and a sign-off written before sign-offs were bound to all of these.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from forecast.errors import ForecastError
from forecast.ethics import AuditLog, read_review
from forecast.pipeline import evaluate_gate, release, review_state, sign

from _pipeline import copy_run, key_file, review_and_sign, tiny_pipeline

HTML = "model_card/model_card.html"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Backtest (triggers + fairness under the test policy), train run, model card; the model's files."""
    return tiny_pipeline(tmp_path_factory.mktemp("signed"))


@pytest.fixture
def env(pipeline, tmp_path):
    """A copy of the train run (both card files), a reviews folder, an audit log, a model name."""
    return copy_run(pipeline, tmp_path)


@pytest.fixture
def signed(env):
    """The copy, reviewed and approved by both roles: the gate would release it as it stands."""
    review_and_sign(env)
    return env


def _release(env):
    return release(env["run"], env["name"], by="releaser", tracking_uri=env["uri"], reviews_dir=env["reviews"],
                   log=env["log"], policy=env["policy"])


def _gate(env):
    return evaluate_gate(env["run"], tracking_uri=env["uri"], reviews_dir=env["reviews"], log=env["log"],
                         policy=env["policy"])


def _state(env):
    return review_state(env["run"], tracking_uri=env["uri"], reviews_dir=env["reviews"], log=env["log"],
                        policy=env["policy"])


def _refused(env) -> dict:
    """Release the run, expecting a refusal with nothing registered; the unmet conditions by check."""
    outcome = _release(env)
    assert not outcome.released, outcome.report.to_markdown()
    assert env["client"].search_model_versions(f"name = '{env['name']}'") == []
    return {c.check: c for c in outcome.report.unmet}


def _voided(env, why: str) -> None:
    """Both approvals are void for ``why``, in the review state and in the gate's sign-off condition,
    and the way out is said: a new review."""
    state = _state(env)
    assert not state.approved
    for name in ("lena", "omar"):
        assert any(p.startswith(f"approval by {name} voided: {why}") for p in state.problems), state.problems
    assert f"forecast review start {env['run']} --restart" in " ".join(state.problems)
    unmet = _refused(env)
    assert f"approval by lena voided: {why}" in unmet["sign-offs valid"].measured


# --- both card files ----------------------------------------------------------------------------

def test_the_card_html_is_tagged_with_its_sha256_and_the_sign_off_binds_it(pipeline, signed):
    client = pipeline["client"]
    with tempfile.TemporaryDirectory() as tmp:
        html = Path(client.download_artifacts(signed["run"], HTML, tmp)).read_bytes()
    tags = client.get_run(signed["run"]).data.tags
    assert tags["card_html_sha256"] == hashlib.sha256(html).hexdigest()
    payloads = [e.payload for e in AuditLog(signed["log"]).entries() if e.kind == "review.sign"]
    review = read_review(signed["run"], reviews_dir=signed["reviews"])
    assert (review.card_html_sha256, review.backtest_run_id) == (tags["card_html_sha256"], pipeline["backtest"])
    for payload in payloads:
        assert payload["card_sha256"] == tags["card_sha256"]
        assert payload["card_html_sha256"] == tags["card_html_sha256"]
        assert payload["backtest_run_id"] == tags["card_backtest_run_id"] == pipeline["backtest"]
        assert payload["answers_sha256"] == review.answers_sha256()


def test_a_card_html_rewritten_after_sign_off_is_refused_naming_the_card(signed):
    signed["client"].log_text(signed["run"], "<html><body>All good, trust me.</body></html>", HTML)
    unmet = _refused(signed)
    card = unmet["model card unchanged"].measured
    assert HTML in card and "card_html_sha256" in card and "edited after it was written" in card


def test_a_card_html_rewritten_with_its_tag_recomputed_voids_the_sign_offs(signed):
    text = "<html><body>All good, trust me.</body></html>"
    signed["client"].log_text(signed["run"], text, HTML)
    signed["client"].set_tag(signed["run"], "card_html_sha256", hashlib.sha256(text.encode()).hexdigest())
    _voided(signed, "the card's HTML (model_card.html) changed after it was signed")
    with pytest.raises(ForecastError, match=r"the model card's HTML of run \w+ changed since the review started"):
        sign(signed["run"], "lena", "technical", "approve", log=signed["log"], tracking_uri=signed["uri"],
             reviews_dir=signed["reviews"], key=key_file("lena"))


def test_a_card_html_without_its_tag_is_refused(signed):
    signed["client"].delete_tag(signed["run"], "card_html_sha256")
    unmet = _refused(signed)
    assert f"{HTML} has no tag card_html_sha256" in unmet["model card unchanged"].measured


# --- the answers and their evidence -------------------------------------------------------------

@pytest.mark.parametrize("change", [
    {"evidence": "nothing: the artifacts were never looked at"},
    {"answer": "n/a", "evidence": "does not apply"},
    {"answered_by_name": "someone else"},
], ids=["evidence", "answer", "answered_by_name"])
def test_an_answer_or_its_evidence_edited_after_sign_off_voids_the_approvals(signed, change):
    path = signed["reviews"] / f"{signed['run']}.yaml"
    data = yaml.safe_load(path.read_text())
    data["items"][3].update(change)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    _voided(signed, "the answers changed after it was signed")


# --- the evidence: the backtest the card cites ----------------------------------------------------

def _copy_backtest(env) -> str:
    """Another FINISHED backtest run with the same tags, parameters and artifacts: evidence the
    gate would judge just the same, but not what the reviewers read."""
    from mlflow.entities import Param

    client = env["client"]
    source = client.get_run(env["backtest"])
    tags = {k: v for k, v in source.data.tags.items() if not k.startswith("mlflow.")}
    run_id = client.create_run(source.info.experiment_id, tags=tags).info.run_id
    client.log_batch(run_id, params=[Param(k, v) for k, v in source.data.params.items()])
    with tempfile.TemporaryDirectory() as tmp:
        client.log_artifacts(run_id, client.download_artifacts(env["backtest"], "", tmp))
    client.set_terminated(run_id, "FINISHED")
    return run_id


def test_re_pointing_the_cards_backtest_after_sign_off_voids_the_approvals(signed):
    other = _copy_backtest(signed)
    signed["client"].set_tag(signed["run"], "card_backtest_run_id", other)
    _voided(signed, "the card's evidence changed after it was signed: it now cites another backtest run "
                    "(tag card_backtest_run_id)")


# --- sign-offs from before --------------------------------------------------------------------------

def test_a_sign_off_that_does_not_cover_the_answers_is_voided(env):
    review_and_sign(env, approvers=())  # the review, answered, not signed
    review = read_review(env["run"], reviews_dir=env["reviews"])
    tags = env["client"].get_run(env["run"]).data.tags
    log = AuditLog(env["log"])
    for name, role in (("lena", "technical"), ("omar", "ethics")):  # as sign-offs were written before
        log.append("review.sign", name, {
            "run_id": env["run"], "card_sha256": tags["card_sha256"], "model_digest": review.model_digest,
            "checklists_hash": review.checklists_hash, "role": role, "decision": "approve", "comment": "",
            "review_started": review.started}, key=key_file(name))
    _voided(env, "it was signed before sign-offs covered the answers, the card's HTML and its backtest")


def test_a_backtest_table_edited_after_the_sign_offs_is_refused_and_recording_its_new_digest_voids_them(
        signed, tmp_path):
    """The card cites its backtest by run id and by digest (its tables, documents, metrics, tags):
    a better-looking metrics.csv written over the backtest's after the sign-offs is caught by the
    gate; setting the card's tag to the new digest voids every approval instead."""
    from forecast.tracking import read_card_evidence

    client, backtest = signed["client"], signed["backtest"]
    original = Path(client.download_artifacts(backtest, "metrics.csv", str(tmp_path)))
    kept = original.read_bytes()
    frame = pd.read_csv(original)
    frame["mase"] = frame["mase"] * 0.5
    edited = tmp_path / "edited" / "metrics.csv"
    edited.parent.mkdir()
    frame.to_csv(edited, index=False)
    client.log_artifact(backtest, str(edited))
    try:
        unmet = _refused(signed)
        assert "the card was written from" in unmet["model card unchanged"].measured
        assert "sign-offs valid" not in unmet  # the approvals stand for the evidence they saw; that evidence is gone
        now = read_card_evidence(signed["run"], backtest_run_id=backtest, tracking_uri=signed["uri"]).backtest.digest()
        assert now != client.get_run(signed["run"]).data.tags["card_backtest_digest"]
        client.set_tag(signed["run"], "card_backtest_digest", now)
        _voided(signed, "the backtest the card was written from changed after it was signed")
    finally:
        original.write_bytes(kept)
        client.log_artifact(backtest, str(original))


def test_a_runs_digest_follows_its_tables_metrics_and_tags_but_not_mlflows_bookkeeping():
    from dataclasses import replace

    from _pipeline import hand_made_evidence

    backtest = hand_made_evidence().backtest
    digest = backtest.digest()
    assert replace(backtest, tags={**backtest.tags, "mlflow.note.content": "looked at it"}).digest() == digest
    assert replace(backtest, tags={**backtest.tags, "fairness_passed": "no"}).digest() != digest
    assert replace(backtest, metrics={"mase_h1": 0.7}).digest() != digest
    frame = backtest.tables["metrics.csv"].copy()
    frame.loc[0, "mase"] = 0.1
    assert replace(backtest, tables={**backtest.tables, "metrics.csv": frame}).digest() != digest
    assert replace(backtest, hashes={"metrics.csv": "0" * 64}).digest() != digest  # stored bytes win over content
