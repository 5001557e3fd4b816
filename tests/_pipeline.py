"""A real tiny pipeline in MLflow, shared by the gate and report tests.

One synthetic backtest with triggers and fairness, a train run and its model card in a sqlite
store, judged under a copy of ``ethics/policy.yaml`` made judgeable on 12 synthetic areas.

Reviewers sign with keys of their own, the same for a name in every test (:func:`key_file`), so
that the test policy can pin the keyring's root (omar's key) as a real policy does: each copy of
the run gets an audit log whose keyring holds omar (ethics, the root) and lena (technical) and
which approves the test policy (:func:`copy_run`).
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import yaml
from mlflow.tracking import MlflowClient

from forecast.backtest import RollingOrigin, backtest
from forecast.datasets import make_panel
from forecast.ethics import CardInputs
from forecast.models import load_spec
from forecast.pipeline import assess, build_card, train, write_card
from forecast.policy import load_policy
from forecast.tracking import download_model, log_backtest, log_trained
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


#: The keyring's first key in every test log, pinned by the test policy.
ROOT_REVIEWER = "omar"
#: The reviewers each copy of the run starts with: name -> roles.
REVIEWERS = {"omar": ("ethics",), "lena": ("technical",)}
_KEYS = Path(tempfile.mkdtemp(prefix="forecast-test-keys-"))
_UNCHECKED = {"checked": False, "rationale": "not judged on 12 synthetic areas"}


def key_file(name: str) -> Path:
    """``name``'s private key (PEM; its public key beside it as ``<key_id>.pub``): seeded by the
    name, so the same in every test and every process."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from forecast.ethics import PublicKey

    path = _KEYS / f"{name}.pem"
    if not path.exists():
        private = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"forecast-test-key:{name}".encode()).digest())
        public = PublicKey.of(private.public_key())
        path.write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        (_KEYS / f"{public.key_id}.pub").write_bytes(public.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def public_key_file(name: str) -> Path:
    return _KEYS / f"{key_id(name)}.pub"


def key_id(name: str) -> str:
    from forecast.ethics import PublicKey, load_private_key

    return PublicKey.of(load_private_key(key_file(name)).public_key()).key_id


def enrol(log: Path, members: dict | None = None, *, policy=None) -> None:
    """Make sure the keyring of ``log`` holds ``members`` (name -> roles; default
    :data:`REVIEWERS`), omar first as its root, and that ``policy`` (if given) is the approved one."""
    from forecast.ethics import add_member, approve_policy, keyring

    ring = keyring(log)
    if ring.root is None:
        add_member(log, ROOT_REVIEWER, ["ethics"], public_key_file(ROOT_REVIEWER), key=key_file(ROOT_REVIEWER))
        ring = keyring(log)
    for name, roles in (REVIEWERS if members is None else members).items():
        if key_id(name) not in ring.members:
            add_member(log, name, list(roles), public_key_file(name), key=key_file(ROOT_REVIEWER))
    if policy is not None and (ring.approved is None or ring.approved.sha256 != policy.hash()):
        approve_policy(log, policy, by=ROOT_REVIEWER, key=key_file(ROOT_REVIEWER))


def policy_file(path: Path, **change) -> Path:
    """The repository's policy, made judgeable on 12 synthetic areas: small minimums, loose
    limits, gated groupings the synthetic panel has, the keyring root omar's test key.
    ``change`` edits it further."""
    data = yaml.safe_load((ROOT / "ethics/policy.yaml").read_text(encoding="utf-8"))
    data["minimums"] = {"min_areas": 1, "min_events": 1, "min_alarms": 1, "min_rows": 5}
    data["metrics"] = {"hit_rate": {"max_difference": 1.0}, **{metric: dict(_UNCHECKED) for metric in (
        "false_alarm_ratio", "mase", "selection_rate", "equalized_odds")}}
    data["review"]["signatures"]["keyring_root"] = key_id(ROOT_REVIEWER)
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


def tiny_pipeline(root: Path, *, cube=None, triggers_yaml: str = TRIGGERS, uri: str | None = None) -> dict:
    """Backtest (triggers + fairness under the test policy), train run, model card; the model's files.

    ``triggers_yaml``: the trigger file's text (default :data:`TRIGGERS`); ``uri``: the tracking
    store (default: a sqlite database in ``root``)."""
    (root / "spec.yaml").write_text(SPEC)
    (root / "triggers.yaml").write_text(triggers_yaml)
    policy_path = policy_file(root / "policy.yaml")
    policy = load_policy(policy_path)
    cube = make_panel(12, 48, seed=9, with_flows=True) if cube is None else cube
    spec, triggers = load_spec(root / "spec.yaml"), load_triggers(root / "triggers.yaml")
    result = backtest(cube, [spec], folds=RollingOrigin(n_origins=6, calibration_origins=8, min_train=12))
    evaluation, fairness, _ = assess(result, cube, triggers, ["forecast"], 5, policy)
    manifest = {"cube_hash": result.cube_hash, **MANIFEST}
    uri = uri or f"sqlite:///{root / 'mlflow.db'}"
    backtest_id = log_backtest(result, manifest=manifest, tracking_uri=uri, triggers=evaluation,
                               fairness=fairness, sample_areas=0)
    trained = train(cube, spec, calibration=RollingOrigin(n_origins=6, calibration_origins=0), triggers=triggers)
    train_id, _ = log_trained(trained, cube, manifest=manifest, tracking_uri=uri)
    card = build_card(train_id, card_inputs(), tracking_uri=uri)
    write_card(card, train_id, tracking_uri=uri)
    client = MlflowClient(tracking_uri=uri)
    model_dir = download_model(train_id, root / "model_files", client=client)
    return {"uri": uri, "root": root, "train": train_id, "backtest": backtest_id, "client": client,
            "model_dir": model_dir, "policy_path": policy_path, "policy": policy, "cube": cube, "result": result,
            "evaluation": evaluation, "trained": trained}


_names = iter(range(10_000))


def copy_run(pipeline: dict, tmp_path: Path, suffix: str = "", *, author: str = "amina") -> dict:
    """A copy of the train run by ``author`` (tags, params, metrics, both card files, manifest, model files),
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
        for path in ("model_card/model_card.md", "model_card/model_card.html", "manifest.json"):
            local = client.download_artifacts(pipeline["train"], path, tmp)
            client.log_artifact(run_id, local, str(Path(path).parent) if "/" in path else None)
    client.set_terminated(run_id)  # FINISHED, as a train run is once logged: readers of evidence take no other
    log = tmp_path / "audit.log.jsonl"
    enrol(log, policy=pipeline["policy"])
    return {**pipeline, "run": run_id, "reviews": tmp_path / f"reviews{suffix}", "log": log,
            "name": f"tiny-{next(_names)}"}


def review_and_sign(env: dict, *, approvers=(("lena", "technical"), ("omar", "ethics"))) -> None:
    """Start the review, answer every item by editing the file, and sign, each approver with their
    own key (added to the keyring, with the roles they sign in, when not in it yet)."""
    from forecast.pipeline import sign, start_review

    roles: dict[str, list[str]] = {}
    for name, role in approvers:
        roles.setdefault(name, []).append(role)
    enrol(env["log"], roles, policy=env["policy"])
    path = start_review(env["run"], tracking_uri=env["uri"], reviews_dir=env["reviews"])
    data = yaml.safe_load(path.read_text())
    for item in data["items"]:
        item.update(answer="yes", evidence="the run's artifacts", answered_by_name="lena")
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    for name, role in approvers:
        sign(env["run"], name, role, "approve", "", log=env["log"], tracking_uri=env["uri"],
             reviews_dir=env["reviews"], key=key_file(name))


def hand_made_evidence(*, model: str = "tiny_lgbm", card_md: bytes | None = b"# Model card: tiny_lgbm\n",
                       extra_tables: dict | None = None, manifest: dict | None = None, drop: tuple = ()):
    """An :class:`~forecast.ethics.Evidence` written by hand: a train run and its backtest as plain
    data, with no MLflow store behind them. ``drop`` leaves backtest artifacts out."""
    import hashlib
    import json
    from dataclasses import replace

    import pandas as pd

    from forecast.ethics import Evidence, RunRecord

    horizons = [1, 2, 3]
    metrics = pd.DataFrame([
        {"model": m, "horizon": h, "n": 60, "mase": mase + 0.1 * h, "rmsle": 0.5, "crps": 40.0 + h,
         "coverage80": 0.8, "width80": 120.0, "level_ratio": 0.3, "mean_level_ratio": 1.1,
         "skill_mase_vs_seasonal_naive": skill}
        for h in horizons
        for m, mase, skill in ((model, 0.7, 0.2), ("naive", 1.0, 0.0), ("seasonal_naive", 0.9, 0.0))])
    triggers = pd.DataFrame([
        {"trigger": "spike", "lead": lead, "route": "forecast", "events": 9, "signals": 11, "hit_rate": 0.667,
         "false_alarm_ratio": 0.45, "precision_at_5": 0.6, "recall_at_5": 0.33, "brier": 0.12, "brier_raw": 0.15,
         "brier_skill": 0.2, "activations": 11, "return_period": 2.5, "event_return_period": 3.0}
        for lead in (1, 3)])
    reliability = pd.DataFrame([
        {"trigger": "spike", "lead": lead, "route": "forecast", "kind": "calibrated", "predicted": p,
         "observed": p + 0.05, "n": 20} for lead in (1, 3) for p in (0.1, 0.5)])
    drift = pd.DataFrame([{"trigger": "spike", "lead": 1, "route": "forecast", "early": "2018-01 to 2018-06",
                           "signal_rate_early": 0.1, "signal_rate_late": 0.2, "event_rate_early": 0.1,
                           "event_rate_late": 0.15, "p_value": 0.4}])
    by_group = pd.DataFrame([
        {"trigger": "spike", "lead": lead, "group_column": "access", "group": group, "n_areas": 6, "n_events": 5,
         "n_alarms": 6, "hit_rate": rate, "false_alarm_ratio": 0.3, "mase": 0.8, "status": "ok"}
        for lead in (1, 3) for group, rate in (("accessible", 0.6), ("hard_to_reach", 0.8))])
    disparities = pd.DataFrame([
        {"trigger": "spike", "lead": lead, "group_column": "access", "metric": "hit_rate",
         "limit": "difference <= 1", "status": "ok", "difference": 0.2, "ratio": 0.75, "n_groups_compared": 2,
         "worst_group": "accessible", "worst_value": 0.6, "best_group": "hard_to_reach", "best_value": 0.8}
        for lead in (1, 3)])
    manifest = MANIFEST if manifest is None else manifest
    tables = {"metrics.csv": metrics, "triggers/metrics.csv": triggers, "triggers/reliability.csv": reliability,
              "triggers/drift.csv": drift, "fairness/forecast/fairness_by_group.csv": by_group,
              "fairness/forecast/fairness_disparities.csv": disparities}
    documents = {"manifest.json": json.dumps(manifest).encode(),
                 "fairness/forecast/summary.txt": b"fairness of the forecast route: passed (policy test-policy)\n"}
    tables = {k: v for k, v in tables.items() if k not in drop}
    documents = {k: v for k, v in documents.items() if k not in drop}
    backtest = RunRecord(
        "b" * 32, "1", 1_546_300_800_000,
        tags={"kind": "backtest", "cube_hash": "c" * 16, "fairness_passed": "yes", "fairness_passed_forecast": "yes"},
        params={"models": f"{model},naive,seasonal_naive", "n_origins": "6", "calibration_origins": "8", "step": "1",
                "min_train": "12", "refit_every": "1", "target": "arrivals",
                "trigger.spike": "80th percentile of arrivals, at least 50"},
        files=tuple([*tables, *documents]), tables=tables, documents=documents)
    train_docs = {"manifest.json": json.dumps(manifest).encode()}
    train_tags = {"kind": "train", "model": model, "spec_hash": "s" * 16, "cube_hash": "c" * 16,
                  "git_commit": "abc123", "forecast_version": "0.1.0", "sensitivity": "high", "target": "arrivals",
                  "mlflow.user": "amina"}
    if card_md is not None:
        train_docs["model_card/model_card.md"] = card_md
        train_tags["card_sha256"] = hashlib.sha256(card_md).hexdigest()
    train_tables = dict(extra_tables or {})
    train = RunRecord(
        "t" * 32, "1", 1_546_387_200_000, tags=train_tags,
        params={"estimator": "lightgbm", "horizons": "[1, 2, 3]", "quantiles": "[0.1, 0.5, 0.9]", "target": "arrivals"},
        metrics={"n_calibration_h1": 40.0, "n_calibration_h2": 38.0, "n_calibration_h3": 36.0},
        files=tuple([*train_docs, *train_tables, "model/MLmodel"]), tables=train_tables, documents=train_docs)
    if card_md is not None:  # the card was written from this backtest, as `forecast card` records it
        train = replace(train, tags={**train.tags, "card_backtest_digest": backtest.digest()})
    return Evidence(train=train, backtest=backtest, source="the backtest the model card cites",
                    model_digest="d" * 64)
