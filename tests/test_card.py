"""The model card: built from a hand-made evidence bundle with no tracking store
(forecast.ethics.card_from_evidence), and by run id on a real tiny pipeline in MLflow
(forecast.pipeline.build_card / write_card and `forecast card`)."""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient
from pydantic import ValidationError
from typer.testing import CliRunner

from forecast.backtest import RollingOrigin, backtest
from forecast.cli import app
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.ethics import (
    DEFAULT_REVIEW_STATUS,
    CardInputs,
    ModelCard,
    card_from_evidence,
    load_card_inputs,
)
from forecast.models import load_spec
from forecast.pipeline import assess, build_card, train, write_card
from forecast.policy import ethics_file, load_policy
from forecast.tracking import log_backtest, log_trained, read_card_evidence
from forecast.triggers import load_triggers

from _pipeline import SPEC, TRIGGERS, hand_made_evidence  # the tiny spec and trigger the MLflow tests share

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("Model details", "Intended use", "Out-of-scope uses", "Users", "Data", "Evaluation design",
            "Metrics against baselines", "Calibration", "Trigger evaluation", "Fairness", "Limitations",
            "Ethical considerations", "Caveats", "Implementation plan", "Review status")


def _inputs(**change) -> dict:
    data = yaml.safe_load((ROOT / "models/cards/lightgbm_median.yaml").read_text(encoding="utf-8"))
    data["model"] = "tiny_lgbm"
    data.update(change)
    return data


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A backtest with triggers and fairness, and a train run of the same spec, in one sqlite store."""
    root = tmp_path_factory.mktemp("card")
    (root / "spec.yaml").write_text(SPEC)
    (root / "triggers.yaml").write_text(TRIGGERS)
    cube = make_panel(12, 48, seed=9, with_flows=True)
    spec, triggers = load_spec(root / "spec.yaml"), load_triggers(root / "triggers.yaml")
    result = backtest(cube, [spec], folds=RollingOrigin(n_origins=6, calibration_origins=8, min_train=12))
    evaluation, fairness, _ = assess(result, cube, triggers, ["forecast"], 5)
    manifest = {"cube_hash": result.cube_hash, "admin_level": 2, "dims": {"area": 12, "time": 48},
                "time_range": ["2016-01", "2019-12"], "variables": ["arrivals", "conflict_events"],
                "sensitivity": {"level": "moderate", "assessed": "moderate", "reasons": ["admin2 counts"]},
                "files": [{"path": "/data/prmn.csv", "format": "flows", "rows_in": 1000, "rows_kept": 990,
                           "rows_quarantined": 10}]}
    uri = f"sqlite:///{root / 'mlflow.db'}"
    backtest_id = log_backtest(result, manifest=manifest, tracking_uri=uri, triggers=evaluation,
                               fairness=fairness, sample_areas=0)
    trained = train(cube, spec, calibration=RollingOrigin(n_origins=6, calibration_origins=0), triggers=triggers)
    train_id, _ = log_trained(trained, cube, manifest=manifest, tracking_uri=uri)
    return {"uri": uri, "root": root, "backtest": backtest_id, "train": train_id,
            "inputs": CardInputs.model_validate(_inputs())}


@pytest.fixture(scope="module")
def card(runs) -> ModelCard:
    return build_card(runs["train"], runs["inputs"], tracking_uri=runs["uri"])


def _copy_run(client, run, *, tags=None, drop=(), parent=None):
    """A copy of ``run`` (tags, params, top-level artifacts and folders not in ``drop``)."""
    # another experiment: the copies must not become the latest evidence of the real train run
    found = client.get_experiment_by_name("copies")
    new = client.create_run(found.experiment_id if found else client.create_experiment("copies"))
    run_id = new.info.run_id
    merged = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
    merged.update(tags or {})
    if parent:
        merged["mlflow.parentRunId"] = parent
    for k, v in merged.items():
        client.set_tag(run_id, k, v)
    for k, v in run.data.params.items():
        client.log_param(run_id, k, v)
    for k, v in run.data.metrics.items():
        client.log_metric(run_id, k, v)
    with tempfile.TemporaryDirectory() as tmp:
        for item in Path(client.download_artifacts(run.info.run_id, "", tmp)).iterdir():
            if item.name in drop:
                continue
            if item.is_dir():
                client.log_artifacts(run_id, str(item), item.name)
            else:
                client.log_artifact(run_id, str(item))
    client.set_terminated(run_id)
    return run_id


def _copy_backtest(runs, drop=(), tags=None) -> str:
    client = MlflowClient(tracking_uri=runs["uri"])
    parent = client.get_run(runs["backtest"])
    new = _copy_run(client, parent, drop=drop, tags=tags)
    child = client.search_runs([parent.info.experiment_id], filter_string=(
        f"tags.mlflow.parentRunId = '{runs['backtest']}' and tags.model = 'tiny_lgbm'"))[0]
    _copy_run(client, child, drop=("fan_charts", "forecasts.parquet", "feature_importance.png"), parent=new)
    return new


def test_card_has_every_section_and_the_logged_numbers(card, runs):
    md = card.to_markdown()
    headings = re.findall(r"^## \d+\. (.+)$", md, flags=re.M)
    assert headings == list(SECTIONS)
    assert md.splitlines()[2] == f"> **Review status: {DEFAULT_REVIEW_STATUS}**"
    client = MlflowClient(tracking_uri=runs["uri"])
    child = client.search_runs([client.get_run(runs["backtest"]).info.experiment_id], filter_string=(
        f"tags.mlflow.parentRunId = '{runs['backtest']}' and tags.model = 'tiny_lgbm'"))[0]
    for metric in ("mase_h1", "rmsle_h3", "coverage80_h2"):
        assert f"{child.data.metrics[metric]:,.3f}" in md, metric
    assert f"{child.data.metrics['crps_h1']:,.1f}" in md
    train_run = client.get_run(runs["train"])
    for value in (train_run.data.tags["spec_hash"], train_run.data.tags["cube_hash"], runs["train"],
                  runs["backtest"], train_run.data.tags["git_commit"], "moderate", "prmn.csv"):
        assert value in md
    assert card.evaluation["baselines"] == ["naive", "seasonal_naive", "moving_average", "ewm", "historical_mean"]
    assert {r["model"] for r in card.metrics} == {"tiny_lgbm", *card.evaluation["baselines"]}
    assert {(r["trigger"], r["lead"], r["route"]) for r in card.triggers["table"]} == {
        ("spike", 1, "forecast"), ("spike", 3, "forecast")}
    by_group = card.fairness["by_group"]
    assert by_group and {"n_areas", "n_events", "status"} <= set(by_group[0])
    assert card.fairness["verdicts"]["forecast"] == client.get_run(runs["backtest"]).data.tags["fairness_passed_forecast"]
    for line in card.fairness["failures"]["forecast"]:
        assert line in md
    assert "Who reads the output:" in md and "Nobody is denied assistance" in md


def test_card_hash_is_stable_across_builds_and_changes_with_an_input(card, runs):
    again = build_card(runs["train"], runs["inputs"], tracking_uri=runs["uri"])
    assert again.sha256() == card.sha256() == hashlib.sha256(card.to_markdown().encode()).hexdigest()
    changed = CardInputs.model_validate(_inputs(owner="Another team"))
    assert build_card(runs["train"], changed, tracking_uri=runs["uri"]).sha256() != card.sha256()
    reviewed = build_card(runs["train"], runs["inputs"], tracking_uri=runs["uri"], review_status="approved")
    assert reviewed.sha256() != card.sha256()


@pytest.mark.parametrize("field, value, message", [
    ("users", [], "users: must list at least one item"),
    ("intended_use", "  ", "intended_use: must not be empty"),
    ("caveats", ["fine", "TODO: write the caveats"], "caveats: placeholder text 'TODO'"),
    ("limitations", ["tbd"], "limitations: placeholder text 'tbd'"),
    ("owner", "<fill in the owner>", "owner: placeholder text '<fill'"),
    ("contact", "Lorem ipsum", "contact: placeholder text 'Lorem'"),
    ("ethical_considerations", ["see ..."], "ethical_considerations: placeholder text '...'"),
])
def test_card_inputs_are_rejected_naming_the_field_when_empty_or_placeholder(field, value, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        CardInputs.model_validate(_inputs(**{field: value}))


def test_load_card_inputs_names_file_and_field_when_missing_unknown_or_placeholder(tmp_path):
    data = _inputs(typo_field="x")
    del data["caveats"]
    data["implementation_plan"] = {**data["implementation_plan"], "when_wrong": "FIXME"}
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ForecastError) as error:
        load_card_inputs(path)
    text = str(error.value)
    assert text.startswith(f"{path}: ")
    assert "field 'caveats': required field missing" in text
    assert "field 'typo_field': unknown field" in text
    assert "field 'implementation_plan.when_wrong': when_wrong: placeholder text 'FIXME'" in text
    with pytest.raises(ForecastError, match="not found"):
        load_card_inputs(tmp_path / "absent.yaml")


def test_shipped_card_inputs_for_lightgbm_median_quote_the_readme_measurements():
    """The card's human-written limits quote the README's backtest of the model: a re-measure
    that leaves the card behind fails here, not in front of a reviewer."""
    inputs = load_card_inputs(ROOT / "models/cards/lightgbm_median.yaml")
    assert inputs.model == "lightgbm_median"
    text = " ".join(json.dumps(inputs.model_dump()).split())
    row = next(line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| lightgbm_median |"))
    cells = [c.strip().strip("*") for c in row.strip("|").split("|")]
    mase_h1, mase_h6, level_h1 = cells[1], cells[3], cells[-1]
    for fact in (f"MASE {mase_h1} at horizon 1", f"{mase_h6} at horizon 6", f"level ratio {level_h1} at horizon 1",
                 "PRMN", "fairness"):
        assert fact in text, fact


def test_build_card_fails_naming_the_section_when_the_backtest_has_no_trigger_evaluation(runs):
    bare = _copy_backtest(runs, drop=("triggers",))
    with pytest.raises(ForecastError, match=r"section 'Trigger evaluation'.*run forecast backtest with --triggers"):
        build_card(runs["train"], runs["inputs"], backtest_run_id=bare, tracking_uri=runs["uri"])
    client = MlflowClient(tracking_uri=runs["uri"])
    no_fairness = _copy_backtest(runs)
    for key in [k for k in client.get_run(no_fairness).data.tags if k.startswith("fairness_passed")]:
        client.delete_tag(no_fairness, key)
    with pytest.raises(ForecastError, match=r"section 'Fairness'.*run forecast backtest with --triggers"):
        build_card(runs["train"], runs["inputs"], backtest_run_id=no_fairness, tracking_uri=runs["uri"])


def test_build_card_fails_clearly_when_no_backtest_matches_the_spec_and_data(runs):
    client = MlflowClient(tracking_uri=runs["uri"])
    other = _copy_run(client, client.get_run(runs["train"]), tags={"spec_hash": "0" * 16},
                      drop=("model",))
    with pytest.raises(ForecastError, match="no backtest of this spec on this data: run forecast backtest "
                                            r"--spec .* --triggers .* first"):
        build_card(other, runs["inputs"], tracking_uri=runs["uri"])
    with pytest.raises(ForecastError, match="is a backtest run"):
        build_card(runs["backtest"], runs["inputs"], tracking_uri=runs["uri"])
    with pytest.raises(ForecastError, match="card inputs are for model 'lightgbm_median'"):
        build_card(runs["train"], load_card_inputs(ROOT / "models/cards/lightgbm_median.yaml"),
                   tracking_uri=runs["uri"])


def test_card_html_is_self_contained_and_escapes_inputs(runs):
    inputs = CardInputs.model_validate(_inputs(intended_use="<script>alert('x')</script> & more"))
    html = build_card(runs["train"], inputs, tracking_uri=runs["uri"]).to_html()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in html
    assert "<style>" in html and not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "<link" not in html


def test_write_card_logs_markdown_html_and_the_hash_tag(card, runs):
    digest, paths = write_card(card, runs["train"], tracking_uri=runs["uri"])
    assert digest == card.sha256()
    client = MlflowClient(tracking_uri=runs["uri"])
    assert client.get_run(runs["train"]).data.tags["card_sha256"] == digest
    names = {f.path for f in client.list_artifacts(runs["train"], "model_card")}
    assert names == {"model_card/model_card.md", "model_card/model_card.html"}
    local = client.download_artifacts(runs["train"], "model_card/model_card.md", str(runs["root"]))
    assert hashlib.sha256(Path(local).read_bytes()).hexdigest() == digest
    assert paths["markdown"].endswith("model_card/model_card.md")
    with pytest.raises(ForecastError, match="this card is about run"):
        write_card(card, runs["backtest"], tracking_uri=runs["uri"])


def test_cli_card_prints_the_hash_and_writes_files_then_exits_2_on_an_unknown_run(runs, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("COLUMNS", "250")
    (tmp_path / "models/cards").mkdir(parents=True)
    (tmp_path / "models/cards/tiny_lgbm.yaml").write_text(yaml.safe_dump(_inputs()))
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["card", runs["train"], "--out", "out", "--tracking-uri", runs["uri"]])
    assert res.exit_code == 0, res.output
    digest = re.search(r"sha256 ([0-9a-f]{64})", res.output).group(1)
    assert hashlib.sha256((tmp_path / "out/model_card.md").read_bytes()).hexdigest() == digest
    assert (tmp_path / "out/model_card.html").is_file() and "model_card/model_card.html" in res.output
    res = CliRunner().invoke(app, ["card", "f" * 32, "--tracking-uri", runs["uri"]])
    assert res.exit_code == 2
    assert "no MLflow train run" in res.output and "Traceback" not in res.output


def test_the_card_templates_are_the_one_copy_in_the_ethics_folder():
    from forecast.ethics._card import TEMPLATES

    assert TEMPLATES == ethics_file("templates")
    for name in ("model_card.md.j2", "model_card.html.j2"):
        assert (TEMPLATES / name).read_bytes() == (ROOT / "ethics/templates" / name).read_bytes(), name


# --- from a hand-made evidence bundle: no tracking store -----------------------------------------

def test_a_card_is_built_from_a_hand_made_bundle_without_any_tracking_store():
    evidence = hand_made_evidence()
    card = card_from_evidence(evidence, CardInputs.model_validate(_inputs()))
    md = card.to_markdown()
    assert re.findall(r"^## \d+\. (.+)$", md, flags=re.M) == list(SECTIONS)
    assert card.details["train_run_id"] == "t" * 32 and card.details["backtest_run_id"] == "b" * 32
    assert card.details["date"] == "2019-01-02 00:00 UTC"
    assert card.evaluation["baselines"] == ["naive", "seasonal_naive"]
    assert [r["model"] for r in card.metrics[:3]] == ["tiny_lgbm", "naive", "seasonal_naive"]  # the model first
    assert card.calibration["n_calibration"] == {1: 40, 2: 38, 3: 36}
    assert card.triggers["k"] == "5" and card.fairness["policy"] == "test-policy"
    assert card.fairness["failures"] == {"forecast": []}
    assert card.data["sensitivity"] == "high" and card.data["months"] == "2016-01 to 2019-12"
    assert "| 1 | **tiny_lgbm** | 60 | 0.800 |" in md and "prmn.csv" in md
    assert card.sha256() == card_from_evidence(evidence, CardInputs.model_validate(_inputs())).sha256()


def _with_target(evidence, target: str):
    """The bundle with the train run forecasting ``target``, its backtest scoring skill against both baselines."""
    from dataclasses import replace

    metrics = evidence.backtest.tables["metrics.csv"]
    naive = metrics[metrics["model"] == "naive"].set_index("horizon")["mase"]
    metrics = metrics.assign(skill_mase_vs_naive=1.0 - metrics["mase"] / metrics["horizon"].map(naive))
    train = replace(evidence.train, tags={**evidence.train.tags, "target": target},
                    params={**evidence.train.params, "target": target})
    return replace(evidence, train=train,
                   backtest=replace(evidence.backtest, tables={**evidence.backtest.tables, "metrics.csv": metrics}))


@pytest.mark.parametrize(("params", "said"), [
    ({}, None),                                                            # a backtest from before the option
    ({"calibration_refit_every": "1"}, None),                              # the same cycle as the scored origins
    ({"calibration_refit_every": "2"}, "1 origin(s) (the calibration origins every 2); horizons"),
])
def test_the_card_says_when_the_calibration_origins_were_refitted_on_a_cycle_of_their_own(params, said):
    from dataclasses import replace

    evidence = hand_made_evidence()
    evidence = replace(evidence, backtest=replace(evidence.backtest, params={**evidence.backtest.params, **params}))
    card = card_from_evidence(evidence, CardInputs.model_validate(_inputs()))
    md, html = card.to_markdown(), card.to_html()
    if said is None:
        assert "calibration origins every" not in md and "calibration origins every" not in html
        assert "refit every\n1 origin(s); horizons" in md
    else:
        assert said in md.replace("\n", " ") and said in html.replace("\n", " ")


@pytest.mark.parametrize(("target", "reference", "kind", "skill"), [
    ("arrivals", "seasonal naive", "flow", "0.200"),  # the backtest's skill_mase_vs_seasonal_naive
    ("idp_stock", "naive", "stock", "0.273"),         # 1 - 0.8 / 1.1 at h1
])
def test_the_card_shows_skill_against_the_gate_s_reference_for_the_target_s_kind(target, reference, kind, skill):
    card = card_from_evidence(_with_target(hand_made_evidence(), target), CardInputs.model_validate(_inputs()))
    assert card.evaluation["skill_reference"] == reference.replace(" ", "_") and card.evaluation["target_kind"] == kind
    md, html = card.to_markdown(), card.to_html()
    assert f"| level ratio | mean level ratio | skill vs {reference} |" in md
    assert f"skill = 1 - MASE / MASE of {reference}, the release gate's\nreference for a {kind} target" in md
    assert f"<th>skill vs {reference}</th>" in html
    assert re.search(rf"^\| 1 \| \*\*tiny_lgbm\*\* \|.* \| {skill} \|$", md, flags=re.M), md
    other = "seasonal naive" if reference == "naive" else "naive"
    assert f"skill vs {other} |" not in md and f"MASE of {other}," not in md


def test_the_card_reads_the_reference_from_the_policy_it_is_given(tmp_path):
    data = yaml.safe_load((ROOT / "ethics/policy.yaml").read_text(encoding="utf-8"))
    data["release"]["skill"]["reference"] = "naive"  # the older single form: every kind
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    policy = load_policy(tmp_path / "policy.yaml")
    card = card_from_evidence(_with_target(hand_made_evidence(), "arrivals"), CardInputs.model_validate(_inputs()),
                              policy=policy)
    assert card.evaluation["skill_reference"] == "naive" and "| skill vs naive |" in card.to_markdown()
    del data["release"]
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ForecastError, match=r"section 'Metrics against baselines': the skill reference"):
        card_from_evidence(hand_made_evidence(), CardInputs.model_validate(_inputs()),
                           policy=load_policy(tmp_path / "bare.yaml"))


@pytest.mark.parametrize("drop, message", [
    (("triggers/metrics.csv",), r"section 'Trigger evaluation'.*run forecast backtest with --triggers"),
    (("manifest.json",), r"section 'Data': the cube's manifest \(manifest.json\) in backtest run b{32} is missing"),
    (("metrics.csv",), r"section 'Metrics against baselines'"),
    (("fairness/forecast/summary.txt",), r"section 'Fairness': the fairness summary of route forecast"),
])
def test_a_hand_made_bundle_missing_a_piece_names_the_section(drop, message):
    with pytest.raises(ForecastError, match=message):
        card_from_evidence(hand_made_evidence(drop=drop), CardInputs.model_validate(_inputs()))


def test_a_bundle_without_a_backtest_says_why_and_inputs_of_another_model_are_refused():
    evidence = hand_made_evidence()
    bare = type(evidence)(train=evidence.train, source="no backtest of this spec on this data: run ...")
    with pytest.raises(ForecastError, match="no backtest of this spec on this data"):
        card_from_evidence(bare, CardInputs.model_validate(_inputs()))
    with pytest.raises(ForecastError, match="card inputs are for model 'lightgbm_median'"):
        card_from_evidence(evidence, load_card_inputs(ROOT / "models/cards/lightgbm_median.yaml"))


def test_the_card_of_the_evidence_read_from_mlflow_is_the_card_build_card_makes(card, runs):
    evidence = read_card_evidence(runs["train"], tracking_uri=runs["uri"])
    assert evidence.backtest_run_id == runs["backtest"]
    assert {"metrics.csv", "triggers/metrics.csv", "triggers/reliability.csv"} <= set(evidence.backtest.tables)
    assert card_from_evidence(evidence, runs["inputs"]).to_markdown() == card.to_markdown()
