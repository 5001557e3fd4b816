""""released" only through the gate: everything that shows a model as released checks the
registry's alias against the audit log's release entry, the model's files and its card.

The attacks: an alias set with MlflowClient outside `forecast release`; a model file changed
after the release; a card rewritten after it; a log whose release entry was cut. Each must make
predict and prioritize print NOT RELEASED, and say why.
"""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast.cli import _console as cli
from forecast.cli import app
from forecast.ethics import NOT_RELEASED
from forecast.pipeline import release, release_status
from forecast.tracking import load_trained, model_digest, use_store

from _pipeline import copy_run, review_and_sign, tiny_pipeline


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    return tiny_pipeline(tmp_path_factory.mktemp("verified"))


@pytest.fixture
def released(pipeline, tmp_path):
    """A copy of the train run, reviewed, signed and released through the gate."""
    env = copy_run(pipeline, tmp_path)
    review_and_sign(env)
    outcome = release(env["run"], env["name"], by="releaser", tracking_uri=env["uri"], reviews_dir=env["reviews"],
                      log=env["log"], policy=env["policy"])
    assert outcome.released, outcome.report.to_markdown()
    return {**env, "version": outcome.version}


def _status(env):
    return release_status(env["run"], tracking_uri=env["uri"], log=env["log"])


def test_a_version_released_by_the_gate_is_released(released):
    status = _status(released)
    assert status.released and status.label == f"released: {released['name']} version {released['version']}"
    assert status.why == ""


def test_an_alias_set_outside_the_gate_is_not_released_and_says_why(pipeline, tmp_path):
    env = copy_run(pipeline, tmp_path)
    client = mlflow.MlflowClient(tracking_uri=env["uri"])
    client.create_registered_model(env["name"])
    version = client.create_model_version(env["name"], f"runs:/{env['run']}/model", env["run"]).version
    client.set_registered_model_alias(env["name"], "released", version)
    status = _status(env)
    assert not status.released and status.label == NOT_RELEASED
    assert "cites no audit-log entry" in status.why
    # an audit_entry tag copied from a real release does not help either
    client.set_model_version_tag(env["name"], version, "audit_entry", "a" * 64)
    assert "not a release" in _status(env).why


def test_a_model_file_changed_after_the_release_is_not_released(released, tmp_path):
    client = mlflow.MlflowClient(tracking_uri=released["uri"])
    extra = tmp_path / "python_model.pkl"
    extra.write_bytes(b"not the reviewed model")
    client.log_artifact(released["run"], str(extra), "model")
    status = _status(released)
    assert not status.released and "model's files changed after" in status.why


def test_a_card_rewritten_after_the_release_is_not_released(released):
    client = mlflow.MlflowClient(tracking_uri=released["uri"])
    client.log_text(released["run"], "# Model card\n\nNothing to see.\n", "model_card/model_card.md")
    status = _status(released)
    assert not status.released and "model card changed after" in status.why


def test_a_card_html_rewritten_after_the_release_is_not_released(released):
    client = mlflow.MlflowClient(tracking_uri=released["uri"])
    client.log_text(released["run"], "<html><body>Nothing to see.</body></html>", "model_card/model_card.html")
    status = _status(released)
    assert not status.released and "model card's HTML changed after" in status.why


def test_a_log_without_the_release_entry_is_not_released(released):
    lines = released["log"].read_bytes().splitlines(keepends=True)
    released["log"].write_bytes(b"".join(lines[:-1]))  # the release entry was the last line
    status = _status(released)
    assert not status.released and "not a release" in status.why


def test_a_release_whose_audit_log_is_not_on_this_machine_cannot_be_confirmed(released, tmp_path):
    """The version's tag names the log it was released with; another machine without that file
    (and no ethics/audit.log.jsonl) cannot confirm it, and says so rather than trust the alias."""
    released["log"].rename(tmp_path / "elsewhere.jsonl")
    status = release_status(released["run"], tracking_uri=released["uri"])
    assert not status.released and "which is not on this machine" in status.why
    assert release_status(released["run"], tracking_uri=released["uri"], log=tmp_path / "elsewhere.jsonl").released


def test_predict_and_prioritize_print_not_released_for_a_tampered_release(released, tmp_path):
    cube_path = tmp_path / "cube.nc"
    released["cube"].to_netcdf(cube_path)
    client = mlflow.MlflowClient(tracking_uri=released["uri"])
    client.log_text(released["run"], "# Model card\n\nRewritten.\n", "model_card/model_card.md")
    cli.out.width = 250
    args = ["--cube", str(cube_path), "--tracking-uri", released["uri"]]
    result = CliRunner().invoke(app, ["predict", "--model", f"models:/{released['name']}@released",
                                      "--out", str(tmp_path / "p.csv"), *args])
    assert result.exit_code == 0, result.output
    assert NOT_RELEASED in result.output and "model card changed after" in result.output
    assert set(pd.read_csv(tmp_path / "p.csv")["release_status"]) == {NOT_RELEASED}
    result = CliRunner().invoke(app, ["prioritize", "--run", released["run"], "--out", str(tmp_path / "rank"), *args])
    assert result.exit_code == 0, result.output
    [ranking] = (tmp_path / "rank").glob("*.csv")
    assert set(pd.read_csv(ranking)["release_status"]) == {NOT_RELEASED}


def test_loading_the_released_model_leaves_its_files_as_reviewed(released):
    """On a local store MLflow writes ``registered_model_meta`` into the folder it loads a
    registered model from; that changed the digest and voided the review as a tamper."""
    before = model_digest(released["run"], tracking_uri=released["uri"])
    trained, run_id = load_trained(f"models:/{released['name']}@released", tracking_uri=released["uri"])
    assert run_id == released["run"] and trained is not None
    assert model_digest(released["run"], tracking_uri=released["uri"]) == before
    # a user loading it with MLflow directly: the bookkeeping file is not part of the model
    with use_store(released["uri"]):
        mlflow.pyfunc.load_model(f"models:/{released['name']}@released")
    assert model_digest(released["run"], tracking_uri=released["uri"]) == before
    assert _status(released).released
