"""The release gate: judged on a hand-made evidence bundle with no tracking store
(forecast.ethics.judge_gate), and by run id on a real tiny pipeline in MLflow
(forecast.pipeline.evaluate_gate / release and `forecast release`).

One synthetic backtest with triggers and fairness, a train run and its model card in a sqlite
store; each test reviews and releases its own copy of the train run.
"""

from __future__ import annotations

import json
from dataclasses import replace

import mlflow
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from forecast.cli import _console as cli
from forecast.cli import app
from forecast.errors import ForecastError
from forecast.ethics import NOT_RELEASED, AuditLog, Citation, judge_gate
from forecast.ethics._gate import FAIL, PASS, UNKNOWN, _automated, _fairness
from forecast.fairness import area_groups, fairness_report
from forecast.pipeline import evaluate_gate, release, release_status, start_review
from forecast.policy import load_policy
from forecast.cube import cube_table
from forecast.tracking import read_release_evidence

from _pipeline import copy_run, hand_made_evidence, policy_file, review_and_sign, tiny_pipeline

AUTHOR = "amina"
_policy_file = policy_file


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Backtest (triggers + fairness under the test policy), train run, model card; the model's files."""
    return tiny_pipeline(tmp_path_factory.mktemp("gate"))


@pytest.fixture
def env(pipeline, tmp_path):
    """A copy of the train run by AUTHOR (tags, card, model files), a reviews folder, a log, a model name."""
    return copy_run(pipeline, tmp_path, author=AUTHOR)


def _gate(env, **kw):
    return evaluate_gate(env["run"], tracking_uri=env["uri"], reviews_dir=env["reviews"], log=env["log"],
                         policy=kw.pop("policy", env["policy"]), **kw)


def _release(env, **kw):
    return release(env["run"], env["name"], by=kw.pop("by", "releaser"), tracking_uri=env["uri"],
                   reviews_dir=env["reviews"], log=env["log"], policy=kw.pop("policy", env["policy"]), **kw)


def _verdicts(report) -> dict[str, str]:
    return {c.check: c.verdict for c in report.conditions}


def _cli(env, *args, policy=None):
    cli.out.width = 250
    return CliRunner().invoke(app, ["release", env["run"], "--name", env["name"], "--by", "releaser",
                                    "--tracking-uri", env["uri"], "--reviews", str(env["reviews"]),
                                    "--log", str(env["log"]), "--policy", str(policy or env["policy_path"]), *args])


# --- refusal, then release ----------------------------------------------------------------------

def test_a_new_run_is_refused_listing_every_unmet_condition_and_nothing_is_registered(env):
    result = _cli(env)
    assert result.exit_code == 1, result.output
    assert "REFUSED" in result.output and "nothing registered" in result.output
    for check in ("checklist complete", "sign-offs valid"):
        assert f"fail: {check}" in result.output
    assert "no review of run" in result.output and "no valid technical approval" in result.output
    assert "Traceback" not in result.output
    assert env["client"].search_model_versions(f"name = '{env['name']}'") == []
    refused = AuditLog(env["log"]).find("release.refused", run_id=env["run"])
    assert len(refused) == 1 and refused[0].payload["name"] == env["name"]
    assert {"checklist complete: fail", "sign-offs valid: fail"} <= set(refused[0].payload["unmet"])
    # the automated checks that do pass are shown as passing, not hidden
    verdicts = _verdicts(_gate(env))
    assert verdicts["skill vs seasonal_naive (mase)"] == PASS and verdicts["model card unchanged"] == PASS
    assert verdicts["no identifying columns or microdata"] == PASS and verdicts["admin level allowed by sensitivity"] == PASS


def test_after_answers_and_two_non_author_sign_offs_it_registers_sets_released_and_loads(env, tmp_path):
    review_and_sign(env)
    report = _gate(env)
    assert report.passed, report.to_frame()[["check", "verdict", "measured"]]
    result = _cli(env)
    assert result.exit_code == 0, result.output
    assert f"RELEASED: {env['name']} version 1" in result.output
    client = env["client"]
    version = client.get_model_version_by_alias(env["name"], "released")
    assert (str(version.version), version.run_id) == ("1", env["run"])
    run = client.get_run(env["run"])
    assert version.tags["card_sha256"] == run.data.tags["card_sha256"]
    assert version.tags["reviewers"] == "technical: lena; ethics: omar"
    entry = AuditLog(env["log"]).find("release", run_id=env["run"])[0]
    assert entry.payload["version"] == "1" and version.tags["audit_entry"] == entry.hash
    assert entry.payload["gate_report_sha256"] == version.tags["gate_report_sha256"]
    assert {f.path for f in client.list_artifacts(env["run"], "release")} == {
        "release/gate_report_v1.md", "release/gate_report_v1.json"}
    mlflow.set_tracking_uri(env["uri"])
    try:
        model = mlflow.pyfunc.load_model(f"models:/{env['name']}@released")
        forecasts = model.predict(cube_table(env["cube"], months=24))
    finally:
        mlflow.set_tracking_uri(None)
    assert len(forecasts) == 12 * 3 and forecasts["point"].notna().all()
    assert release_status(env["run"], tracking_uri=env["uri"]).label == f"released: {env['name']} version 1"
    with pytest.raises(ForecastError, match="already released"):
        _release(env)


def test_the_author_alone_cannot_release_and_one_role_is_not_enough(env):
    review_and_sign(env, approvers=((AUTHOR, "technical"), (AUTHOR, "ethics")))
    outcome = _release(env)
    assert not outcome.released
    unmet = {c.check: c.measured for c in outcome.report.unmet}
    assert "sign-offs valid" in unmet and f"author {AUTHOR} is the only approver" in unmet["sign-offs valid"]


def test_releasing_a_new_version_never_changes_the_earlier_one(pipeline, tmp_path):
    first, second = copy_run(pipeline, tmp_path, "1", author=AUTHOR), copy_run(pipeline, tmp_path, "2", author=AUTHOR)
    second["name"] = first["name"]
    review_and_sign(first)
    assert _release(first).version == "1"
    client = pipeline["client"]
    before = client.get_model_version(first["name"], "1")
    review_and_sign(second)
    assert _release(second).version == "2"
    after = client.get_model_version(first["name"], "1")
    assert (after.tags, after.source, after.run_id) == (before.tags, before.source, before.run_id)
    assert str(client.get_model_version_by_alias(first["name"], "released").version) == "2"
    assert release_status(first["run"], tracking_uri=first["uri"]).label == NOT_RELEASED


# --- tampering ----------------------------------------------------------------------------------

def test_editing_the_card_file_after_sign_off_is_detected_and_refused(env):
    review_and_sign(env)
    env["client"].log_text(env["run"], "# Model card: tiny_lgbm\nAll good, trust me.\n", "model_card/model_card.md")
    outcome = _release(env)
    assert not outcome.released
    unmet = {c.check: c for c in outcome.report.unmet}
    assert unmet["model card unchanged"].verdict == FAIL
    assert "edited after it was written" in unmet["model card unchanged"].measured
    assert env["client"].search_model_versions(f"name = '{env['name']}'") == []


def test_a_regenerated_card_voids_the_sign_offs(env):
    review_and_sign(env)
    text = "# Model card: tiny_lgbm (regenerated)\n"
    import hashlib

    env["client"].log_text(env["run"], text, "model_card/model_card.md")
    env["client"].set_tag(env["run"], "card_sha256", hashlib.sha256(text.encode()).hexdigest())
    report = _gate(env)
    verdicts = _verdicts(report)
    assert verdicts["model card unchanged"] == PASS  # the file matches its new tag...
    assert verdicts["sign-offs valid"] == FAIL  # ...but nobody signed it
    signoffs = next(c for c in report.conditions if c.check == "sign-offs valid")
    assert "voided: the model card changed" in signoffs.measured


def test_a_hand_edited_audit_log_is_detected_and_refuses_release(env):
    review_and_sign(env)
    lines = env["log"].read_text().splitlines()
    entry = json.loads(lines[0])
    entry["actor"] = "someone-else"
    env["log"].write_text("\n".join([json.dumps(entry, separators=(",", ":")), *lines[1:]]) + "\n")
    result = _cli(env)
    assert result.exit_code == 1
    assert "fail: audit log verifies" in result.output
    assert "not recorded: the audit log is damaged" in result.output
    assert env["client"].search_model_versions(f"name = '{env['name']}'") == []


def test_cutting_a_release_from_the_end_of_the_log_is_detected_through_the_registry(pipeline, tmp_path):
    first = copy_run(pipeline, tmp_path, "1", author=AUTHOR)
    review_and_sign(first)
    assert _release(first).released
    lines = first["log"].read_text().splitlines()
    first["log"].write_text("\n".join(lines[:-1]) + "\n")  # the chain alone still verifies
    assert AuditLog(first["log"]).verify() == []
    second = copy_run(pipeline, tmp_path, "2", author=AUTHOR)
    audit = next(c for c in _gate(second).conditions if c.check == "audit log verifies")
    assert audit.verdict == FAIL and "not in the log" in audit.measured


# --- fairness: insufficient evidence vs fail --------------------------------------------------

def test_fairness_with_too_few_cases_is_insufficient_evidence_and_over_the_limit_is_fail(pipeline, tmp_path):
    result, cube, evaluation = pipeline["result"], pipeline["cube"], pipeline["evaluation"]
    signals = evaluation.signals
    signals = signals[(signals["route"] == "forecast") & signals["probability"].notna()]
    groups = area_groups(cube)
    few = load_policy(_policy_file(tmp_path / "few.yaml", minimums={"min_areas": 1, "min_events": 10_000,
                                                                       "min_alarms": 1, "min_rows": 5}))
    table = fairness_report(signals, result.scored, groups, policy=few, model=evaluation.model).disparities
    [hit] = [c for c in _fairness(few, table, "") if c.check == "hit_rate by access"]
    assert hit.verdict == UNKNOWN and "large enough" in hit.measured
    strict = load_policy(_policy_file(tmp_path / "strict.yaml", **{"metrics.hit_rate.max_difference": 0.0}))
    report = fairness_report(signals, result.scored, groups, policy=strict, model=evaluation.model)
    assert (report.disparities["status"] == "failed").any()  # the synthetic groups do differ
    [hit] = [c for c in _fairness(strict, report.disparities, "") if c.check == "hit_rate by access"]
    assert hit.verdict == FAIL and "gap" in hit.measured and "worst" in hit.measured
    # a grouping the policy names but the backtest never measured is not a pass either
    other = load_policy(_policy_file(tmp_path / "other.yaml", **{"release.fairness.groups": ["livelihood"]}))
    [missing] = _fairness(other, report.disparities, "")
    assert missing.verdict == UNKNOWN and "did not measure" in missing.measured


def test_fairness_judged_under_another_limit_is_not_reused(env, tmp_path):
    looser = load_policy(_policy_file(tmp_path / "looser.yaml", **{"metrics.hit_rate.max_difference": 0.9}))
    verdicts = _verdicts(_gate(env, policy=looser))
    assert verdicts["hit_rate by access"] == UNKNOWN


def test_a_run_without_fairness_evidence_is_insufficient_evidence(env):
    env["client"].set_tag(env["run"], "card_backtest_run_id", "0" * 32)
    report = _gate(env)
    verdicts = _verdicts(report)
    assert verdicts["disparities (forecast route)"] == UNKNOWN
    assert verdicts["skill vs seasonal_naive (mase)"] == UNKNOWN and not report.passed


# --- automated checks -------------------------------------------------------------------------

def test_automated_checks_pass_fail_and_lack_evidence_per_horizon():
    policy = load_policy()
    metrics = pd.DataFrame({"model": ["m"] * 3 + ["seasonal_naive"] * 3, "horizon": [1, 2, 3] * 2,
                            "mase": [0.9, 1.1, None, 1.0, 1.0, 1.0], "coverage80": [0.8, 0.95, 0.8, 0.8, 0.8, 0.8],
                            "level_ratio": [0.5, 0.5, 0.5, 1, 1, 1], "mean_level_ratio": [1.0, 1.2, 0.8, 1, 1, 1]})
    skill, coverage, level = _automated(policy, metrics, "m", "")
    assert skill.verdict == UNKNOWN and "no mase at horizon(s) 3" in skill.measured
    assert coverage.verdict == FAIL and "outside at h2" in coverage.measured
    assert (level.check, level.verdict) == ("level ratio (mean_level_ratio)", PASS)
    metrics.loc[2, "mase"] = 0.5
    skill, _, _ = _automated(policy, metrics, "m", "")
    assert skill.verdict == FAIL and "below at h2" in skill.measured
    assert [c.verdict for c in _automated(policy, None, "m", "no backtest")] == [UNKNOWN] * 3


def test_totals_are_judged_on_the_forecast_the_policy_names():
    """The shipped policy judges the mean forecast's totals; the median's quarter-sized totals
    would fail the same band, and a backtest from before the mean is evidence missing, not a pass."""
    policy = load_policy()
    metrics = pd.DataFrame({"model": ["m"] * 3, "horizon": [1, 2, 3], "mase": [0.9] * 3, "coverage80": [0.8] * 3,
                            "level_ratio": [0.26, 0.25, 0.2], "mean_level_ratio": [0.98, 1.1, 1.4]})
    level = _automated(policy, metrics, "m", "")[2]
    assert (level.verdict, level.required) == (FAIL, "0.75-1.33 at every horizon")
    assert level.measured.startswith("h1 0.98, h2 1.10, h3 1.40") and "outside at h3" in level.measured
    median = policy.model_copy(update={"release": policy.release.model_copy(update={
        "level_ratio": policy.release.level_ratio.model_copy(update={"metric": "level_ratio"})})})
    level = _automated(median, metrics, "m", "")[2]
    assert (level.check, level.verdict) == ("level ratio (level_ratio)", FAIL)
    assert "h1 0.26" in level.measured
    old = _automated(policy, metrics.drop(columns="mean_level_ratio"), "m", "")[2]
    assert old.verdict == UNKNOWN and "predates the mean forecast" in old.measured


def _between_the_baselines() -> pd.DataFrame:
    """A model that beats seasonal naive at every horizon but loses to naive."""
    return pd.DataFrame({"model": ["m"] * 3 + ["naive"] * 3 + ["seasonal_naive"] * 3, "horizon": [1, 2, 3] * 3,
                         "mase": [0.9] * 3 + [0.8] * 3 + [1.0] * 3, "coverage80": [0.8] * 9,
                         "level_ratio": [1.0] * 9, "mean_level_ratio": [1.0] * 9})


def test_a_stock_is_judged_against_naive_and_a_flow_against_seasonal_naive():
    policy, metrics = load_policy(), _between_the_baselines()
    stock = _automated(policy, metrics, "m", "", "idp_stock")[0]
    assert (stock.check, stock.verdict) == ("skill vs naive (mase)", FAIL)
    assert stock.measured == "h1 -0.12, h2 -0.12, h3 -0.12; below at h1, h2, h3"
    for target in ("arrivals", "departures", "returns"):
        flow = _automated(policy, metrics, "m", "", target)[0]
        assert (flow.check, flow.verdict, flow.measured) == ("skill vs seasonal_naive (mase)", PASS,
                                                             "h1 0.10, h2 0.10, h3 0.10")
    # a run that does not say its target is judged as arrivals, and the condition says so
    unsaid = _automated(policy, metrics, "m", "", None)[0]
    assert (unsaid.check, unsaid.verdict) == ("skill vs seasonal_naive (mase)", PASS)
    assert unsaid.measured.endswith("; the train run has no target tag: judged as arrivals (a flow)")
    missing = _automated(policy, metrics[metrics["model"] != "naive"], "m", "", "idp_stock")[0]
    assert missing.verdict == UNKNOWN and "naive is not in the backtest" in missing.measured
    assert _automated(policy, None, "m", "no backtest", "idp_stock")[0].check == "skill vs naive (mase)"


def test_the_gate_reads_the_train_run_s_target_and_the_policy_s_reference_for_its_kind(tmp_path):
    evidence = hand_made_evidence()
    backtest = replace(evidence.backtest, tables={**evidence.backtest.tables, "metrics.csv": _between_the_baselines()
                                                  .assign(model=lambda t: t["model"].replace("m", "tiny_lgbm"))})

    def judged(target, policy):
        tags = {**evidence.train.tags, "target": target}
        bundle = replace(evidence, train=replace(evidence.train, tags=tags), backtest=backtest)
        report = judge_gate(bundle, reviews_dir=tmp_path / "reviews", log=tmp_path / "log.jsonl", policy=policy)
        return {c.check: c.verdict for c in report.conditions if c.check.startswith("skill")}

    policy = load_policy(_policy_file(tmp_path / "policy.yaml", **{"release.skill.min_skill": {1: 0.0}}))
    assert judged("idp_stock", policy) == {"skill vs naive (mase)": FAIL}
    assert judged("arrivals", policy) == {"skill vs seasonal_naive (mase)": PASS}
    # the older single reference applies to every kind
    older = load_policy(_policy_file(tmp_path / "older.yaml", **{"release.skill.min_skill": {1: 0.0},
                                                                 "release.skill.reference": "seasonal_naive"}))
    assert judged("idp_stock", older) == {"skill vs seasonal_naive (mase)": PASS}


def test_a_policy_without_a_release_section_refuses(env, tmp_path):
    data = yaml.safe_load(env["policy_path"].read_text())
    del data["release"]
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(data))
    report = _gate(env, policy=load_policy(tmp_path / "bare.yaml"))
    assert _verdicts(report)["release policy"] == FAIL and not report.passed


# --- published outputs ------------------------------------------------------------------------

def test_identifying_columns_microdata_small_cells_and_a_too_fine_admin_level_fail(env, tmp_path):
    client = env["client"]
    leak = tmp_path / "leak"
    leak.mkdir()
    pd.DataFrame({"area": ["A"], "phone_number": ["+252 61 000"]}).to_csv(leak / "contacts.csv", index=False)
    pd.DataFrame({"area": ["A", "B"], "actual": [3.0, 120.0]}).to_csv(leak / "counts.csv", index=False)
    (leak / "quarantine.csv").write_text("file,row,field,value,reason\n")
    client.log_artifacts(env["run"], str(leak), "extra")
    client.log_dict(env["run"], {"admin_level": 3, "sensitivity": {"level": "high"}}, "manifest.json")
    conditions = {c.check: c for c in _gate(env).conditions}
    ident = conditions["no identifying columns or microdata"]
    assert ident.verdict == FAIL and "phone_number" in ident.measured and "quarantine.csv" in ident.measured
    small = conditions["small cells (k=5) withheld"]
    assert small.verdict == FAIL and "extra/counts.csv column 'actual': 1 cell(s)" in small.measured
    admin = conditions["admin level allowed by sensitivity"]
    assert admin.verdict == FAIL and admin.measured == "admin3, sensitivity high"


# --- watermark ----------------------------------------------------------------------------------

def test_predict_and_prioritize_flag_an_unreleased_model_and_name_the_released_one(env, tmp_path):
    cube_path = tmp_path / "cube.nc"
    env["cube"].to_netcdf(cube_path)
    runner = CliRunner()
    cli.out.width = 250
    args = ["--cube", str(cube_path), "--tracking-uri", env["uri"]]
    result = runner.invoke(app, ["predict", "--model", f"runs:/{env['run']}/model", "--out", str(tmp_path / "p.csv"),
                                 *args])
    assert result.exit_code == 0, result.output
    assert NOT_RELEASED in result.output
    assert set(pd.read_csv(tmp_path / "p.csv")["release_status"]) == {NOT_RELEASED}
    result = runner.invoke(app, ["prioritize", "--run", env["run"], "--out", str(tmp_path / "rank"), *args])
    assert result.exit_code == 0, result.output
    assert NOT_RELEASED in result.output
    [ranking] = (tmp_path / "rank").glob("*.csv")
    assert set(pd.read_csv(ranking)["release_status"]) == {NOT_RELEASED}
    review_and_sign(env)
    assert _release(env).released
    result = runner.invoke(app, ["predict", "--model", f"models:/{env['name']}@released", "--out",
                                 str(tmp_path / "q.csv"), *args])
    assert result.exit_code == 0, result.output
    assert NOT_RELEASED not in result.output
    assert set(pd.read_csv(tmp_path / "q.csv")["release_status"]) == {f"released: {env['name']} version 1"}


# --- clear errors -------------------------------------------------------------------------------

def test_release_errors_are_clear_for_unknown_runs_wrong_kinds_malformed_reviews_and_missing_policies(env, tmp_path):
    result = CliRunner().invoke(app, ["release", "f" * 32, "--name", "x", "--tracking-uri", env["uri"]])
    assert result.exit_code == 2 and "no MLflow train run" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["release", env["backtest"], "--name", "x", "--tracking-uri", env["uri"]])
    assert result.exit_code == 2 and "is a backtest run" in result.output
    start_review(env["run"], tracking_uri=env["uri"], reviews_dir=env["reviews"])
    (env["reviews"] / f"{env['run']}.yaml").write_text("run_id: [unclosed\n")
    result = _cli(env)
    assert result.exit_code == 2 and f"{env['run']}.yaml: the review is not valid YAML" in result.output
    assert "Traceback" not in result.output
    result = _cli(env, policy=tmp_path / "nope.yaml")
    assert result.exit_code == 2 and "nope.yaml" in result.output and "Traceback" not in result.output
    result = _cli(env, "--check")
    assert result.exit_code == 2  # still the malformed review
    assert CliRunner().invoke(app, ["release", env["run"], "--name", " ", "--tracking-uri", env["uri"]]).exit_code == 2


# --- on a hand-made evidence bundle: no tracking store ----------------------------------------

def test_the_gate_judges_a_hand_made_bundle_without_any_tracking_store(tmp_path):
    policy = load_policy(_policy_file(tmp_path / "policy.yaml"))
    report = judge_gate(hand_made_evidence(), reviews_dir=tmp_path / "reviews", log=tmp_path / "log.jsonl",
                        policy=policy)
    verdicts = _verdicts(report)
    for check in ("skill vs seasonal_naive (mase)", "coverage80", "level ratio (mean_level_ratio)", "hit_rate by access",
                  "no identifying columns or microdata", "small cells (k=5) withheld",
                  "admin level allowed by sensitivity", "model card unchanged", "audit log verifies"):
        assert verdicts[check] == PASS, (check, report.to_frame())
    assert verdicts["checklist complete"] == FAIL and verdicts["sign-offs valid"] == FAIL and not report.passed
    assert (report.run_id, report.backtest_run_id, report.model_digest) == ("t" * 32, "b" * 32, "d" * 64)


def test_a_hand_made_bundle_with_leaks_an_edited_card_and_a_cut_log_fails_each_condition(tmp_path):
    policy = load_policy(_policy_file(tmp_path / "policy.yaml"))
    leaks = {"extra/counts.csv": pd.DataFrame({"area": ["A", "B"], "actual": [3.0, 120.0]}),
             "extra/contacts.csv": pd.DataFrame({"area": ["A"], "phone_number": ["+252 61 000"]})}
    evidence = hand_made_evidence(extra_tables=leaks, manifest={"admin_level": 3, "sensitivity": {"level": "high"}})
    card = {**evidence.train.documents, "model_card/model_card.md": b"# edited\n"}
    log = AuditLog(tmp_path / "log.jsonl")
    citation = Citation("tiny", "1", "f" * 64, str(log.path.resolve()))
    evidence = replace(evidence, train=replace(evidence.train, documents=card), citations=(citation,))
    conditions = {c.check: c for c in judge_gate(evidence, reviews_dir=tmp_path, log=log, policy=policy).conditions}
    assert conditions["no identifying columns or microdata"].verdict == FAIL
    assert "phone_number" in conditions["no identifying columns or microdata"].measured
    small = conditions["small cells (k=5) withheld"]
    assert small.verdict == FAIL and "extra/counts.csv column 'actual': 1 cell(s)" in small.measured
    assert conditions["admin level allowed by sensitivity"].measured == "admin3, sensitivity high"
    assert conditions["admin level allowed by sensitivity"].verdict == FAIL
    assert "edited after it was written" in conditions["model card unchanged"].measured
    assert "tiny version 1 cites audit entry" in conditions["audit log verifies"].measured


def test_a_hand_made_bundle_without_a_backtest_is_insufficient_evidence_naming_why(tmp_path):
    policy = load_policy(_policy_file(tmp_path / "policy.yaml"))
    evidence = hand_made_evidence()
    bare = replace(evidence, backtest=None, source="no backtest of this spec")
    conditions = {c.check: c for c in judge_gate(bare, reviews_dir=tmp_path, log=tmp_path / "l", policy=policy).conditions}
    assert conditions["skill vs seasonal_naive (mase)"].verdict == UNKNOWN
    assert conditions["skill vs seasonal_naive (mase)"].measured == "no backtest metrics (no backtest of this spec)"
    assert conditions["disparities (forecast route)"].verdict == UNKNOWN


def test_the_evidence_read_from_mlflow_holds_every_run_the_gate_judges(env):
    evidence = read_release_evidence(env["run"], tracking_uri=env["uri"])
    assert evidence.backtest_run_id == env["backtest"] and evidence.children
    assert evidence.train.documents["model_card/model_card.md"] and evidence.train.json("manifest.json")
    assert "metrics.csv" in evidence.backtest.tables and evidence.model_digest
    judged = judge_gate(evidence, reviews_dir=env["reviews"], log=env["log"], policy=env["policy"])
    assert judged.conditions == _gate(env).conditions
