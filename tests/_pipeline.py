"""A real tiny pipeline in MLflow, shared by the gate and report tests.

One synthetic backtest with triggers and fairness, a train run and its model card in a sqlite
store, judged under a copy of ``ethics/policy.yaml`` made judgeable on 12 synthetic areas.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient

from forecast.pipeline._assess import assess
from forecast.pipeline._train import train
from forecast.backtest import RollingOrigin, backtest
from forecast.datasets import make_panel
from forecast.ethics import build_card, write_card
from forecast.ethics._card import CardInputs
from forecast.ethics._review import _download_model
from forecast.policy._policy import load_policy
from forecast.models._spec import load_spec
from forecast.tracking import log_backtest, log_trained
from forecast.triggers import load_triggers

ROOT = Path(__file__).resolve().parents[1]
SPEC = """\
name: tiny_lgbm
estimator: lightgbm
horizons: [1, 2, 3]
params: {n_estimators: 20, num_leaves: 7, min_child_samples: 5, max_bin: 31}
"""
TRIGGERS = """\
triggers:
  - name: spike
    kind: percentile
    value: 80
    floor: 50
    min_history: 6
    leads: [1, 3]
    probability: 0.4
"""
MANIFEST = {"admin_level": 2, "dims": {"area": 12, "time": 48}, "time_range": ["2016-01", "2019-12"],
            "variables": ["arrivals"], "sensitivity": {"level": "high", "assessed": "high", "reasons": ["admin2 flows"]},
            "files": [{"path": "/data/prmn.csv", "format": "flows", "rows_in": 10, "rows_kept": 10,
                       "rows_quarantined": 0}]}


def policy_file(path: Path, **change) -> Path:
    """The repository's policy, made judgeable on 12 synthetic areas: small minimums, loose
    limits, gated groupings the synthetic panel has. ``change`` edits it further."""
    data = yaml.safe_load((ROOT / "ethics/policy.yaml").read_text(encoding="utf-8"))
    data["minimums"] = {"min_areas": 1, "min_events": 1, "min_alarms": 1, "min_rows": 5}
    data["metrics"] = {"hit_rate": {"max_difference": 1.0, "min_ratio": None},
                       "false_alarm_ratio": {"max_difference": None, "min_ratio": None},
                       "mase": {"max_difference": None, "min_ratio": None},
                       "selection_rate": {"max_difference": None, "min_ratio": None},
                       "equalized_odds": {"max_difference": None, "min_ratio": None}}
    release_ = data["release"]
    release_["skill"]["min_skill"] = {1: -10.0}
    release_["coverage"].update(low=0.0, high=1.0)
    release_["level_ratio"].update(low=0.01, high=100.0)
    release_["fairness"]["groups"] = ["access"]
    for key, value in change.items():
        target = data
        *parents, last = key.split(".")
        for p in parents:
            target = target[p]
        target[last] = value
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def card_inputs() -> CardInputs:
    inputs = yaml.safe_load((ROOT / "models/cards/lightgbm_median.yaml").read_text(encoding="utf-8"))
    inputs["model"] = "tiny_lgbm"
    return CardInputs.model_validate(inputs)


def tiny_pipeline(root: Path, *, cube=None) -> dict:
    """Backtest (triggers + fairness under the test policy), train run, model card; the model's files."""
    (root / "spec.yaml").write_text(SPEC)
    (root / "triggers.yaml").write_text(TRIGGERS)
    policy_path = policy_file(root / "policy.yaml")
    policy = load_policy(policy_path)
    cube = make_panel(12, 48, seed=9, with_flows=True) if cube is None else cube
    spec, triggers = load_spec(root / "spec.yaml"), load_triggers(root / "triggers.yaml")
    result = backtest(cube, [spec], folds=RollingOrigin(n_origins=6, calibration_origins=8, min_train=12))
    evaluation, fairness, _ = assess(result, cube, triggers, ["forecast"], 5, policy)
    manifest = {"cube_hash": result.cube_hash, **MANIFEST}
    uri = f"sqlite:///{root / 'mlflow.db'}"
    backtest_id = log_backtest(result, manifest=manifest, tracking_uri=uri, triggers=evaluation,
                               fairness=fairness, sample_areas=0)
    trained = train(cube, spec, calibration=RollingOrigin(n_origins=6, calibration_origins=0), triggers=triggers)
    train_id, _ = log_trained(trained, cube, manifest=manifest, tracking_uri=uri)
    card = build_card(train_id, card_inputs(), tracking_uri=uri)
    write_card(card, train_id, tracking_uri=uri)
    client = MlflowClient(tracking_uri=uri)
    model_dir = _download_model(client, train_id, str(root / "model_files"))
    return {"uri": uri, "root": root, "train": train_id, "backtest": backtest_id, "client": client,
            "model_dir": model_dir, "policy_path": policy_path, "policy": policy, "cube": cube, "result": result,
            "evaluation": evaluation, "trained": trained}


_names = iter(range(10_000))


def copy_run(pipeline: dict, tmp_path: Path, suffix: str = "", *, author: str = "amina") -> dict:
    """A copy of the train run by ``author`` (tags, params, metrics, card, manifest, model files),
    with a reviews folder, an audit log and a model name of its own."""
    import tempfile

    from mlflow.entities import Metric, Param

    client = pipeline["client"]
    source = client.get_run(pipeline["train"])
    tags = {k: v for k, v in source.data.tags.items() if not k.startswith("mlflow.")}
    run_id = client.create_run(source.info.experiment_id, tags={**tags, "mlflow.user": author}).info.run_id
    client.log_batch(run_id, metrics=[Metric(k, v, 0, 0) for k, v in source.data.metrics.items()],
                     params=[Param(k, v) for k, v in source.data.params.items()])
    client.log_artifacts(run_id, str(pipeline["model_dir"]), "model")
    with tempfile.TemporaryDirectory() as tmp:
        for path in ("model_card/model_card.md", "manifest.json"):
            local = client.download_artifacts(pipeline["train"], path, tmp)
            client.log_artifact(run_id, local, str(Path(path).parent) if "/" in path else None)
    return {**pipeline, "run": run_id, "reviews": tmp_path / f"reviews{suffix}", "log": tmp_path / "audit.log.jsonl",
            "name": f"tiny-{next(_names)}"}


def review_and_sign(env: dict, *, approvers=(("lena", "technical"), ("omar", "ethics"))) -> None:
    """Start the review, answer every item by editing the file, and sign."""
    from forecast.ethics import sign
    from forecast.ethics._review import start_review

    path = start_review(env["run"], tracking_uri=env["uri"], reviews_dir=env["reviews"])
    data = yaml.safe_load(path.read_text())
    for item in data["items"]:
        item.update(answer="yes", evidence="the run's artifacts", answered_by_name="lena")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    for name, role in approvers:
        sign(env["run"], name, role, "approve", "", log=env["log"], tracking_uri=env["uri"],
             reviews_dir=env["reviews"])
