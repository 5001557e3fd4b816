"""The model card: built from a train run's evidence, rendered to Markdown and HTML, hashed.

A card is about one ``forecast train`` run. Its evidence is a ``forecast backtest --triggers``
parent run of the same spec (``spec_hash``) on the same data (``cube_hash``);
:func:`forecast.tracking.read_card_evidence` reads both into an :class:`~forecast.ethics.Evidence`
and :func:`card_from_evidence` builds the card from it, with no tracking store involved. What no
run can know (intended use, users, limitations, ethical considerations, the implementation plan)
comes from a reviewed YAML per model, ``models/cards/<model>.yaml``, loaded into
:class:`CardInputs`.

Sections follow Mitchell et al., "Model Cards for Model Reporting" (FAT* 2019), extended with
the humanitarian items: data sensitivity and lineage, trigger evaluation, fairness by group
with group sizes, the implementation plan and the review status. No section is ever left as a
placeholder: a missing piece raises :class:`~forecast.errors.ForecastError` naming the section.
The SHA-256 of the Markdown is the identity reviewers sign.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from forecast._names import ARRIVALS, target_kind
from forecast.errors import ForecastError
from forecast.ethics._evidence import Evidence, RunRecord
from forecast.policy import ethics_file, load_policy, shipped_file

__all__ = ["CardInputs", "ImplementationPlan", "ModelCard", "card_from_evidence", "resolve_card_inputs",
           "load_card_inputs", "DEFAULT_REVIEW_STATUS", "CARD_INPUTS_DIR", "TEMPLATES", "CARD_HTML", "CARD_FILES",
           "card_integrity"]

DEFAULT_REVIEW_STATUS = "NOT REVIEWED — not for operational use"
CARD_INPUTS_DIR = Path("models/cards")
TEMPLATES = ethics_file("templates")
BASELINE_NAMES = ("naive", "seasonal_naive", "moving_average", "ewm", "historical_mean")
#: Text that marks an unfinished field; matched case-insensitively anywhere in a string.
_PLACEHOLDER = re.compile(r"\b(?:todo|tbd|fixme|xxx)\b|\.\.\.|…|lorem|<fill", re.IGNORECASE)
_METRIC_COLUMNS = ("mase", "rmsle", "crps", "coverage80", "width80", "level_ratio", "mean_level_ratio",
                   "skill_mase_vs_seasonal_naive", "skill_mase_vs_naive")


def _check_text(cls, value, info):
    """Reject empty strings and lists and placeholder text, naming the field."""
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        raise ValueError(f"{info.field_name}: must list at least one item")
    for item in items:
        if not str(item).strip():
            raise ValueError(f"{info.field_name}: must not be empty")
        found = _PLACEHOLDER.search(str(item))
        if found:
            raise ValueError(f"{info.field_name}: placeholder text {found.group(0)!r}; write the real content")
    return [str(i).strip() for i in items] if isinstance(value, list) else str(value).strip()


class ImplementationPlan(BaseModel):
    """How the model's output is used once released, and what happens when it is wrong."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    readers: str
    action: str
    when_wrong: str
    review_again: str

    _text = field_validator("*")(_check_text)


class CardInputs(BaseModel):
    """The human-authored sections of a model card: every field required, none a placeholder.

    Examples
    --------
    >>> inputs = load_card_inputs("models/cards/lightgbm_median.yaml")  # doctest: +SKIP
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    owner: str
    contact: str
    intended_use: str
    out_of_scope_uses: list[str]
    users: list[str]
    limitations: list[str]
    ethical_considerations: list[str]
    caveats: list[str]
    implementation_plan: ImplementationPlan

    _text = field_validator("model", "owner", "contact", "intended_use", "out_of_scope_uses", "users",
                            "limitations", "ethical_considerations", "caveats")(_check_text)


def _field_errors(error: ValidationError) -> str:
    lines = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            message = "required field missing"
        elif e["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; fields: " + ", ".join(CardInputs.model_fields) + ")"
        lines.append(f"field {where!r}: {message}")
    return "; ".join(lines)


def load_card_inputs(path: str | Path) -> CardInputs:
    """Read and check ``models/cards/<model>.yaml``; errors name the file and every bad field."""
    path = Path(path)
    if not path.is_file():
        raise ForecastError(f"model card inputs {path} not found: write it (copy models/cards/lightgbm_median.yaml "
                            "and replace every answer) or pass --inputs")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, RecursionError) as error:
        raise ForecastError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ForecastError(f"{path}: expected a mapping of card fields, got {type(data).__name__}")
    try:
        return CardInputs.model_validate(data)
    except ValidationError as error:
        raise ForecastError(f"{path}: {_field_errors(error)}") from None


@dataclass(frozen=True)
class ModelCard:
    """Every section's data; render with :meth:`to_markdown` / :meth:`to_html`, identify with :meth:`sha256`.

    Tables are lists of dicts (one per row) so the card is plain data.
    """

    details: dict
    inputs: CardInputs
    data: dict
    evaluation: dict
    metrics: list[dict]
    calibration: dict
    triggers: dict
    fairness: dict
    review_status: str = DEFAULT_REVIEW_STATUS
    sections: tuple[str, ...] = field(default=(
        "Model details", "Intended use", "Out-of-scope uses", "Users", "Data", "Evaluation design",
        "Metrics against baselines", "Calibration", "Trigger evaluation", "Fairness", "Limitations",
        "Ethical considerations", "Caveats", "Implementation plan", "Review status"))

    @property
    def train_run_id(self) -> str:
        return self.details["train_run_id"]

    def _context(self) -> dict:
        return {"card": self, "d": self.details, "i": self.inputs, "plan": self.inputs.implementation_plan}

    def to_markdown(self) -> str:
        """The card as Markdown (the signed text)."""
        return _environment(html=False).get_template("model_card.md.j2").render(**self._context())

    def to_html(self) -> str:
        """The card as one self-contained HTML page (inline CSS, every value escaped)."""
        return _environment(html=True).get_template("model_card.html.j2").render(**self._context())

    def sha256(self) -> str:
        """SHA-256 of the Markdown's UTF-8 bytes: the identity reviewers sign."""
        return hashlib.sha256(self.to_markdown().encode("utf-8")).hexdigest()


def _num(value, digits: int = 3) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-" if value is None or value == "" else str(value)
    if v != v:
        return "-"
    if v in (float("inf"), float("-inf")):
        return "never" if v > 0 else "-inf"
    return f"{v:,.{digits}f}"


def _cell(value) -> str:
    """A Markdown table cell: no pipes or line breaks."""
    return str(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _environment(html: bool):
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=html,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters["num"] = _num
    env.filters["cell"] = (lambda v: v) if html else _cell
    return env


# --- from the evidence -----------------------------------------------------------------------

def _need(value, section: str, what: str, fix: str):
    if value is None or (hasattr(value, "__len__") and len(value) == 0):
        raise ForecastError(f"model card section {section!r}: {what} is missing; {fix}")
    return value


def _records(frame: pd.DataFrame, columns) -> list[dict]:
    frame = frame[[c for c in columns if c in frame.columns]]
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
            for row in frame.to_dict("records")]


def resolve_card_inputs(inputs: CardInputs | str | Path | None, model: str, run_id: str) -> CardInputs:
    """The human-authored sections for the card of run ``run_id``, which trained ``model``.

    ``inputs`` may be a :class:`CardInputs`, a path (read with :func:`load_card_inputs`) or None
    (``models/cards/<model>.yaml`` under the working folder when there is one, else the inputs the
    toolkit ships for ``model``); inputs written for another model are refused.
    """
    if inputs is None:
        # the user's own copy in the working folder first, else the toolkit's shipped inputs
        own = CARD_INPUTS_DIR / f"{model}.yaml"
        inputs = own if own.is_file() else shipped_file(model, subfolder="cards", kind="model card input")
    if not isinstance(inputs, CardInputs):
        inputs = load_card_inputs(inputs)
    if inputs.model != model:
        raise ForecastError(f"card inputs are for model {inputs.model!r} but run {run_id} trained {model!r}: "
                            f"pass models/cards/{model}.yaml")
    return inputs


def card_from_evidence(evidence: Evidence, inputs: CardInputs | str | Path | None = None, *,
                       review_status: str = DEFAULT_REVIEW_STATUS, policy=None) -> ModelCard:
    """Build the model card of a train run from its evidence (no tracking store involved).

    Parameters
    ----------
    evidence : Evidence
        The train run and its backtest parent run with the backtest's tables and documents
        (``metrics.csv``, ``manifest.json``, ``triggers/*.csv``, ``fairness/<route>/...``), as
        :func:`forecast.tracking.read_card_evidence` reads them.
    inputs : CardInputs, path or None
        The human-authored sections (see :func:`resolve_card_inputs`).
    review_status : str
        Shown at the top as a watermark and in the last section.
    policy : Policy, optional
        Names the baseline the skill column compares with, per kind of target (its
        ``release.skill.reference``, as the release gate reads it); default
        :func:`forecast.policy.load_policy` (``ethics/policy.yaml``).

    Returns
    -------
    ModelCard

    Raises
    ------
    ForecastError
        Naming the section and what is missing, e.g. a backtest without ``--triggers``.
    """
    train, backtest = evidence.train, evidence.backtest
    model = train.tags.get("model", "")
    inputs = resolve_card_inputs(inputs, model, train.run_id)
    if backtest is None:
        raise ForecastError(evidence.source or f"no backtest behind train run {train.run_id}: run forecast backtest "
                            "--triggers models/triggers.yaml on the cube the model was trained on")
    details = _details(train)
    data = _data(train, backtest)
    metrics_table = backtest.table("metrics.csv")
    _need(metrics_table, "Metrics against baselines", f"backtest run {backtest.run_id} metrics.csv",
          "rerun forecast backtest")
    evaluation, metrics = _evaluation(backtest, metrics_table, model)
    _skill_reference(evaluation, metrics, details["target"], load_policy() if policy is None else policy)
    triggers = _triggers(backtest)
    calibration = _calibration(train, metrics, model, triggers)
    fairness = _fairness(backtest)
    details["backtest_run_id"] = backtest.run_id
    details["backtest_digest"] = backtest.digest()  # reviewers sign it; the gate recomputes it (card_integrity)
    return ModelCard(details=details, inputs=inputs, data=data, evaluation=evaluation, metrics=metrics,
                     calibration=calibration, triggers=triggers, fairness=fairness,
                     review_status=_check_status(review_status))


#: Where the card's HTML is logged on its train run.
CARD_HTML = "model_card/model_card.html"
#: The card's files, each with the tag holding the SHA-256 that reviewers signed.
CARD_FILES = {"model_card/model_card.md": "card_sha256", CARD_HTML: "card_html_sha256"}


def card_integrity(train: RunRecord, backtest: RunRecord | None) -> tuple[bool, str]:
    """``(intact, what was measured)``: both card files hash to their tags (reviewers read either;
    a card with neither the HTML nor its tag, one written by hand, is judged by its Markdown), and
    the backtest the card was written from still has the digest it recorded (tag
    ``card_backtest_digest``). No backtest is the automated conditions' to report."""
    found = [_card_file(train, path, tag) for path, tag in CARD_FILES.items()]
    if backtest is not None:
        found.append(_evidence_intact(train, backtest))
    problems = [text for intact, text in found if not intact]
    return not problems, "; ".join(problems or [text for _, text in found if text])


def _card_file(train: RunRecord, path: str, tag: str) -> tuple[bool, str]:
    tagged, card = train.tags.get(tag), train.documents.get(path)
    if card is None:
        intact = not tagged and tag != "card_sha256"
        return intact, "" if intact else f"the card artifact {path} is missing"
    actual = hashlib.sha256(card).hexdigest()
    if actual != tagged:
        return False, (f"{path} has no tag {tag}: rewrite the card (forecast card {train.run_id})" if not tagged else
                       f"{path} hashes to {actual[:12]}, the signed tag {tag} says {tagged[:12]}: edited after it was "
                       "written")
    return True, f"{Path(path).name} sha256 {actual[:12]}"


def _evidence_intact(train: RunRecord, backtest: RunRecord) -> tuple[bool, str]:
    recorded, actual = train.tags.get("card_backtest_digest"), backtest.digest()
    if not recorded:
        return False, (f"the card does not record the digest of its backtest (tag card_backtest_digest): write it "
                       f"again (forecast card {train.run_id}) and review it")
    if actual != recorded:
        return False, (f"backtest run {backtest.run_id} hashes to {actual[:12]}, the card was written from "
                       f"{recorded[:12]}: its tables, metrics or tags changed after the card was written")
    return True, f"backtest digest {actual[:12]}"


def _check_status(status: str) -> str:
    if not str(status).strip():
        raise ForecastError("model card section 'Review status': the status is empty")
    return str(status).strip()


def _details(train: RunRecord) -> dict:
    tags, params = train.tags, train.params
    section = "Model details"
    for key in ("model", "spec_hash", "git_commit", "forecast_version"):
        _need(tags.get(key), section, f"tag {key!r} of train run {train.run_id}", "retrain with forecast train")
    _need(params.get("estimator"), section, "parameter 'estimator'", "retrain with forecast train")
    spec = {k: v for k, v in sorted(params.items()) if not k.startswith("trigger.")}
    return {"name": tags["model"], "estimator": params["estimator"], "spec_hash": tags["spec_hash"],
            "git_commit": tags["git_commit"], "forecast_version": tags["forecast_version"],
            "version": f"{tags['forecast_version']} at commit {tags['git_commit']}",
            "train_run_id": train.run_id, "experiment_id": train.experiment_id,
            "date": datetime.fromtimestamp(train.start_time / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "target": tags.get("target") or params.get("target", ""), "horizons": params.get("horizons", ""),
            "quantiles": params.get("quantiles", ""), "spec": spec,
            "triggers": {k.removeprefix("trigger."): v for k, v in sorted(params.items()) if k.startswith("trigger.")}}


def _data(train: RunRecord, backtest: RunRecord) -> dict:
    section = "Data"
    manifest = backtest.json("manifest.json")
    _need(manifest, section, f"the cube's manifest (manifest.json) in backtest run {backtest.run_id}",
          "run forecast backtest on a cube with its manifest.json beside it (as forecast ingest writes it)")
    sources = [{"file": Path(str(f.get("path", ""))).name, "format": f.get("format", ""),
                "rows_in": f.get("rows_in"), "rows_kept": f.get("rows_kept"),
                "rows_quarantined": f.get("rows_quarantined")} for f in manifest.get("files") or []]
    _need(sources, section, "the manifest's source files and row counts", "ingest the data with forecast ingest")
    time_range = _need(manifest.get("time_range"), section, "the manifest's time range", "ingest again")
    dims = manifest.get("dims") or {}
    _need(dims.get("area"), section, "the manifest's number of areas", "ingest again")
    sensitivity = manifest.get("sensitivity") or {}
    return {"cube_hash": train.tags.get("cube_hash"),
            "sensitivity": _need(train.tags.get("sensitivity"), section, "the sensitivity tag", "retrain"),
            "sensitivity_reasons": list(sensitivity.get("reasons") or []),
            "sources": sources, "months": f"{time_range[0]} to {time_range[1]}", "n_months": dims.get("time"),
            "n_areas": dims["area"], "admin_level": manifest.get("admin_level"),
            "variables": list(manifest.get("variables") or []), "cube_path": train.tags.get("cube_path", "")}


def _evaluation(backtest: RunRecord, table: pd.DataFrame, model: str) -> tuple[dict, list[dict]]:
    params = backtest.params
    models = [m for m in params.get("models", "").split(",") if m]
    baselines = [m for m in models if m in BASELINE_NAMES]
    _need(baselines, "Evaluation design", "baselines in the backtest", "run forecast backtest with --baselines")
    _need(table[table["model"] == model], "Metrics against baselines",
          f"rows of {model} in the backtest metrics", "run forecast backtest with this spec")
    horizons = sorted(int(h) for h in table["horizon"].unique())
    evaluation = {"n_origins": params.get("n_origins"), "calibration_origins": params.get("calibration_origins"),
                  "step": params.get("step"), "min_train": params.get("min_train"),
                  "refit_every": params.get("refit_every"),
                  "calibration_refit_every": params.get("calibration_refit_every", params.get("refit_every")),
                  "horizons": horizons, "baselines": baselines,
                  "models": models, "target": params.get("target", "")}
    for key in ("n_origins", "calibration_origins"):
        _need(evaluation[key], "Evaluation design", f"backtest parameter {key!r}", "rerun forecast backtest")
    order = {m: i for i, m in enumerate([model, *baselines])}
    rows = table[table["model"].isin(order)].copy()
    rows["order"] = rows["model"].map(order)
    rows = rows.sort_values(["horizon", "order"])
    for column in _METRIC_COLUMNS:  # a backtest from before a metric existed: its cells say "-"
        if column not in rows:
            rows[column] = float("nan")
    return evaluation, _records(rows, ("horizon", "model", "n", *_METRIC_COLUMNS))


def _skill_reference(evaluation: dict, metrics: list[dict], target: str, policy) -> None:
    """Name the baseline of the skill column, the release gate's for this kind of target (a run
    without a target is taken to forecast arrivals, as the gate takes it), and fill the column."""
    _need(policy.release, "Metrics against baselines", f"the skill reference (policy {policy.source} has no "
          "release section)", "use a policy whose release.skill.reference names a baseline per target kind")
    reference = policy.release.skill.reference_for(target)
    evaluation.update(skill_reference=reference, target_kind=target_kind(target or ARRIVALS))
    for row in metrics:
        row["skill"] = row.get(f"skill_mase_vs_{reference}")


def _triggers(backtest: RunRecord) -> dict:
    section, fix = "Trigger evaluation", "run forecast backtest with --triggers models/triggers.yaml"
    metrics = backtest.table("triggers/metrics.csv")
    _need(metrics, section, f"the trigger evaluation (triggers/metrics.csv) of backtest run {backtest.run_id}", fix)
    reliability = backtest.table("triggers/reliability.csv")
    _need(reliability, "Calibration", "the trigger reliability table (triggers/reliability.csv)", fix)
    drift = backtest.table("triggers/drift.csv")
    _need(drift, section, "the drift table (triggers/drift.csv)", fix)
    k = next((c.removeprefix("precision_at_") for c in metrics.columns if c.startswith("precision_at_")), None)
    definitions = {k_.removeprefix("trigger."): v for k_, v in sorted(backtest.params.items())
                   if k_.startswith("trigger.")}
    _need(definitions, section, "the trigger definitions (parameters trigger.<name>)", fix)
    columns = ("trigger", "lead", "route", "events", "signals", "hit_rate", "false_alarm_ratio",
               f"precision_at_{k}", f"recall_at_{k}", "brier", "brier_raw", "brier_skill", "activations",
               "return_period", "event_return_period")
    rel = reliability.assign(gap=(reliability["predicted"] - reliability["observed"]).abs() * reliability["n"])
    gaps = rel.groupby(["trigger", "lead", "route", "kind"], sort=False)[["gap", "n"]].sum().reset_index()
    gaps["mean_abs_gap"] = gaps["gap"] / gaps["n"]
    return {"k": k, "definitions": definitions, "table": _records(metrics, columns),
            "drift": _records(drift, ("trigger", "lead", "route", "early", "signal_rate_early", "signal_rate_late",
                                      "event_rate_early", "event_rate_late", "p_value")),
            "reliability": _records(gaps, ("trigger", "lead", "route", "kind", "n", "mean_abs_gap"))}


def _calibration(train: RunRecord, metrics: list[dict], model: str, triggers: dict) -> dict:
    coverage = [{"horizon": r["horizon"], "n": r.get("n"), "coverage80": r.get("coverage80"),
                 "width80": r.get("width80")} for r in metrics if r["model"] == model]
    _need([r for r in coverage if r["coverage80"] is not None], "Calibration",
          "the 80% interval coverage of the model", "backtest a spec with quantiles 0.1 and 0.9")
    n_cal = {int(k.removeprefix("n_calibration_h")): int(v) for k, v in train.metrics.items()
             if k.startswith("n_calibration_h")}
    _need(n_cal, "Calibration", "the trained model's calibration counts (n_calibration_h*)", "retrain")
    brier = [{k: r[k] for k in ("trigger", "lead", "route", "brier_raw", "brier", "brier_skill")}
             for r in triggers["table"]]
    return {"coverage": coverage, "n_calibration": dict(sorted(n_cal.items())), "brier": brier,
            "reliability": triggers["reliability"]}


def _fairness(backtest: RunRecord) -> dict:
    section, fix = "Fairness", "run forecast backtest with --triggers models/triggers.yaml"
    tags = backtest.tags
    _need(tags.get("fairness_passed"), section, f"the fairness verdict (tag fairness_passed) of backtest run "
          f"{backtest.run_id}", fix)
    verdicts = {k.removeprefix("fairness_passed_"): v for k, v in sorted(tags.items())
                if k.startswith("fairness_passed_")}
    _need(verdicts, section, "the per-route verdicts (tags fairness_passed_<route>)", fix)
    route = "forecast" if "forecast" in verdicts else next(iter(verdicts))
    by_group = backtest.table(f"fairness/{route}/fairness_by_group.csv")
    _need(by_group, section, f"the by-group table (fairness/{route}/fairness_by_group.csv)", fix)
    failures, policy = {}, ""
    for name in verdicts:
        text = backtest.text(f"fairness/{name}/summary.txt")
        _need(text, section, f"the fairness summary of route {name} (fairness/{name}/summary.txt)", fix)
        lines = text.splitlines()
        found = re.search(r"\(policy (.+)\)\s*$", lines[0]) if lines else None
        policy = policy or (found.group(1) if found else "")
        failures[name] = [line.strip().removeprefix("failed: ") for line in lines if line.strip().startswith("failed:")]
    columns = ("trigger", "lead", "group_column", "group", "n_areas", "n_events", "n_alarms", "hit_rate",
               "false_alarm_ratio", "mase", "status")
    return {"overall": tags["fairness_passed"], "verdicts": verdicts, "route": route, "policy": policy,
            "by_group": _records(by_group, columns), "failures": failures}
