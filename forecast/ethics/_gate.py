"""The release gate: every condition a model must meet before it reaches users.

:func:`judge_gate` judges the evidence of a ``forecast train`` run (an
:class:`~forecast.ethics.Evidence`, read by :func:`forecast.tracking.read_release_evidence`)
against the policy (``ethics/policy.yaml``) and its review, one :class:`Condition` per line, each
``pass``, ``fail`` or ``insufficient evidence`` (never a pass by default):

- automated checks from the backtest behind the model card (skill against the policy's
  reference baseline for the run's kind of target, interval coverage, level ratio) and the fairness disparities of the
  route the model ranks areas with;
- published-output checks over every artifact of the train run and its backtest runs: no
  identifying column, no microdata (cube, quarantine), no count or forecast of 1 to k-1 people,
  no admin level finer than the data's sensitivity allows;
- the review: both card files still hash to what reviewers signed, the audit log verifies (its
  keyring refused no change), the policy judged by is the one in force (the latest approved
  by an ethics reviewer of the keyring the policy pins: a releaser's own file is not), the
  checklist is complete, the sign-offs are valid (:func:`~forecast.ethics.judge_review`).

:func:`forecast.pipeline.release` registers the model (alias ``released``) only when every
condition passes; what a release or a refusal records is :mod:`forecast.ethics._release`'s.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import pandas as pd

from forecast._names import ARRIVALS, SENSITIVITY_LEVELS
from forecast.errors import ForecastError
from forecast.ethics._audit import AuditLog
from forecast.ethics._card import card_integrity
from forecast.ethics._evidence import Citation, Evidence, RunRecord
from forecast.ethics._keyring import Keyring, keyring, policy_in_force
from forecast.ethics._review import REVIEWS_DIR, ReviewSubject, judge_review
from forecast.fairness import limit_text
from forecast.io import find_identifying
from forecast.policy import (
    admin_level_allowed,
    count_small_cells,
    people_columns,
    finest_admin_level,
    load_policy,
    manifest_sensitivity,
    published_name,
    small_cell_k,
)

__all__ = ["Condition", "GateReport", "judge_gate"]

Verdict = Literal["pass", "fail", "insufficient evidence"]
PASS, FAIL, UNKNOWN = "pass", "fail", "insufficient evidence"
#: Artifacts that are the data itself, never to be published with a model.
MICRODATA_NAMES = ("quarantine.csv", "cube.nc")
TABLE_SUFFIXES = (".csv", ".parquet")
#: MLflow's example rows beside a model (``input_example.json``, ``serving_input_example.json``).
EXAMPLE_SUFFIX = "input_example.json"


@dataclass(frozen=True)
class Condition:
    """One line of the gate: what is checked, the verdict, what was measured and what is required."""

    group: str
    check: str
    verdict: Verdict
    measured: str
    required: str
    rationale: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict == PASS


@dataclass(frozen=True)
class GateReport:
    """The gate's verdict on one train run: ``passed`` only when every condition passes."""

    run_id: str
    model: str
    backtest_run_id: str | None
    card_sha256: str | None
    model_digest: str
    policy_source: str
    policy_sha256: str
    evaluated: str
    conditions: tuple[Condition, ...]
    reviewers: dict[str, list[str]] = field(default_factory=dict)
    card_html_sha256: str | None = None  # tag card_html_sha256: a release records it beside the Markdown's

    @property
    def passed(self) -> bool:
        return bool(self.conditions) and all(c.passed for c in self.conditions)

    @property
    def unmet(self) -> list[Condition]:
        return [c for c in self.conditions if not c.passed]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(c) for c in self.conditions],
                            columns=["group", "check", "verdict", "measured", "required", "rationale"])

    def to_dict(self) -> dict:
        data = asdict(self)
        data["conditions"] = [asdict(c) for c in self.conditions]
        data["passed"] = self.passed
        return data

    def sha256(self) -> str:
        """SHA-256 of the report's canonical JSON: what the release tags and the audit log cite."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def to_markdown(self) -> str:
        verdict = "PASSED" if self.passed else f"REFUSED ({len(self.unmet)} condition(s) unmet)"
        lines = [f"# Release gate: {self.model} (run {self.run_id})", "",
                 f"Verdict: **{verdict}**, evaluated {self.evaluated} under policy {self.policy_source} "
                 f"(sha256 {self.policy_sha256[:12]}).", "",
                 f"Card sha256 {self.card_sha256 or '-'}; model digest {self.model_digest}; "
                 f"evidence: backtest run {self.backtest_run_id or '-'}.", "",
                 "| group | check | verdict | measured | required |", "| --- | --- | --- | --- | --- |"]
        for c in self.conditions:
            cells = [c.group, c.check, c.verdict, c.measured, c.required]
            lines.append("| " + " | ".join(str(x).replace("|", "\\|").replace("\n", " ") for x in cells) + " |")
        return "\n".join(lines) + "\n"


# --- automated checks ------------------------------------------------------------------------

def _by_horizon(rows: pd.DataFrame, column: str) -> dict[int, float]:
    if column not in rows:
        return {}
    return {int(h): float(v) for h, v in zip(rows["horizon"], rows[column]) if pd.notna(v)}


def _fmt(values: dict[int, float], digits: int = 2) -> str:
    return ", ".join(f"h{h} {v:.{digits}f}" for h, v in sorted(values.items())) or "-"


def _automated(policy, metrics: pd.DataFrame | None, model: str, evidence: str,
               target: str | None = None) -> list[Condition]:
    """Skill, coverage and level ratio; skill against the policy's reference for ``target``'s
    kind (no target: arrivals, a flow, and the skill condition says so)."""
    checks = policy.release
    group = "automated"
    reference = checks.skill.reference_for(target)
    unsaid = "" if target else f"; the train run has no target tag: judged as {ARRIVALS} (a flow)"
    if metrics is None:
        missing = f"no backtest metrics ({evidence})"
        return [Condition(group, name, UNKNOWN, missing + note, required, rationale)
                for name, note, required, rationale in (
            (f"skill vs {reference} ({checks.skill.metric})", unsaid, _skill_required(checks.skill),
             checks.skill.rationale),
            (f"coverage{checks.coverage.interval}", "", f"{checks.coverage.low:g}-{checks.coverage.high:g}",
             checks.coverage.rationale),
            (f"level ratio ({checks.level_ratio.metric})", "",
             f"{checks.level_ratio.low:g}-{checks.level_ratio.high:g}", checks.level_ratio.rationale))]
    mine = metrics[metrics["model"] == model]
    out = [_skill(checks.skill, reference, mine, metrics[metrics["model"] == reference], group, unsaid)]
    column = f"coverage{checks.coverage.interval}"
    out.append(_band(group, column, _by_horizon(mine, column), checks.coverage, f"no {column} in the backtest "
                     "metrics: backtest a spec with the interval's quantiles"))
    ratio = checks.level_ratio.metric
    why = ("; the backtest predates the mean forecast: backtest the spec again" if ratio == "mean_level_ratio"
           and "level_ratio" in mine else "")
    out.append(_band(group, f"level ratio ({ratio})", _by_horizon(mine, ratio), checks.level_ratio,
                     f"no {ratio} in the backtest metrics{why}"))
    return out


def _skill_required(skill) -> str:
    return ", ".join(f"h{h} >= {v:g}" for h, v in sorted(skill.min_skill.items()))


def _skill(skill, reference: str, mine: pd.DataFrame, ref: pd.DataFrame, group: str, note: str = "") -> Condition:
    name, required = f"skill vs {reference} ({skill.metric})", _skill_required(skill)
    model_loss, ref_loss = _by_horizon(mine, skill.metric), _by_horizon(ref, skill.metric)
    values, missing = {}, []
    for h in sorted(skill.min_skill):
        if h in model_loss and h in ref_loss and ref_loss[h] > 0:
            values[h] = 1.0 - model_loss[h] / ref_loss[h]
        else:
            missing.append(h)
    if missing:
        what = (f"{reference} is not in the backtest" if ref.empty else
                f"no {skill.metric} at horizon(s) {', '.join(map(str, missing))}")
        return Condition(group, name, UNKNOWN, f"{_fmt(values)}; {what}{note}", required, skill.rationale)
    low = [h for h, v in values.items() if v < skill.min_skill[h] - 1e-12]
    measured = _fmt(values) + (f"; below at h{', h'.join(map(str, low))}" if low else "") + note
    return Condition(group, name, FAIL if low else PASS, measured, required, skill.rationale)


def _band(group: str, name: str, values: dict[int, float], band, missing: str) -> Condition:
    required = f"{band.low:g}-{band.high:g} at every horizon"
    if not values:
        return Condition(group, name, UNKNOWN, missing, required, band.rationale)
    out = [h for h, v in values.items() if not band.low - 1e-12 <= v <= band.high + 1e-12]
    measured = _fmt(values) + (f"; outside at h{', h'.join(map(str, out))}" if out else "")
    return Condition(group, name, FAIL if out else PASS, measured, required, band.rationale)


def _fairness(policy, table: pd.DataFrame | None, evidence: str) -> list[Condition]:
    gate, group = policy.release.fairness, "fairness"
    route = gate.route
    rationale = f"{gate.rationale} Limits and minimum group sizes: the policy's metrics and minimums."
    if table is None:
        return [Condition(group, f"disparities ({route} route)", UNKNOWN,
                          f"no fairness/{route}/fairness_disparities.csv ({evidence})",
                          "a backtest run with --triggers (fairness is assessed with the trigger)", rationale)]
    out = []
    checked = [m for m in table["metric"].unique() if policy.limit(m).checked]
    for column in gate.groups:
        measured = table[table["group_column"] == column]
        if measured.empty:
            out.append(Condition(group, f"fairness by {column}", UNKNOWN, f"the backtest did not measure groups "
                                 f"by {column!r} (an area attribute of the cube: forecast ingest --attributes)",
                                 "every grouping the policy names", rationale))
            continue
        for metric in checked:
            rows = measured[measured["metric"] == metric]
            name, required = f"{metric} by {column}", limit_text(policy.limit(metric))
            if rows.empty:
                out.append(Condition(group, name, UNKNOWN, "not measured", required, rationale))
                continue
            stale = rows[rows["limit"].astype(str) != required]
            if not stale.empty:
                out.append(Condition(group, name, UNKNOWN, f"judged under another limit ({stale['limit'].iloc[0]}): "
                                     "rerun forecast backtest --triggers under the current policy", required,
                                     rationale))
                continue
            status = rows["status"].astype(str)
            failed, unjudged = rows[status == "failed"], rows[status.str.startswith("cannot judge")]
            if not failed.empty:
                verdict, shown = FAIL, failed
            elif not unjudged.empty:
                verdict, shown = UNKNOWN, unjudged
            else:
                verdict, shown = PASS, rows
            out.append(Condition(group, name, verdict, _disparity_text(shown, verdict), required, rationale))
    return out


def _where(r) -> str:
    return f"{r['trigger']} lead {int(r['lead'])}" if pd.notna(r.get("lead")) else "forecasts"


def _disparity_text(rows: pd.DataFrame, verdict: str) -> str:
    """The worst trigger x lead in words (group sizes, gap or ratio, worst and best group), then
    the other leads in the same state."""
    if verdict == UNKNOWN:
        first = rows.iloc[0]
        text = f"{_where(first)}: {str(first['status']).split(';')[0].removeprefix('cannot judge: ')}"
    else:
        by_ratio = "ratio" in str(rows["limit"].iloc[0]) and "difference" not in str(rows["limit"].iloc[0])
        order = rows.sort_values("ratio" if by_ratio else "difference", ascending=by_ratio, na_position="last")
        first = order.iloc[0]
        gap = f"ratio {first['ratio']:.2f}" if by_ratio else f"gap {first['difference']:.2f}"
        text = f"{_where(first)}: {gap} over {int(first['n_groups_compared'])} groups"
        if pd.notna(first.get("worst_group")) and pd.notna(first.get("worst_value")):
            text += (f", worst {first['worst_group']} {first['worst_value']:.2f} vs best {first['best_group']} "
                     f"{first['best_value']:.2f}")
        rows = order
    others = [_where(r) for _, r in rows.iloc[1:].iterrows()]
    return text + (f" (also {', '.join(others)})" if others else "")


# --- published-output checks -----------------------------------------------------------------

def _example_rows(raw: bytes | None) -> pd.DataFrame | None:
    """The rows of an MLflow model's example (``input_example.json`` in pandas' split form, or
    ``serving_input_example.json`` wrapping it in ``dataframe_split``); None when it holds none."""
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("dataframe_split"), dict):
        data = data["dataframe_split"]
    if not (isinstance(data, dict) and isinstance(data.get("columns"), list) and isinstance(data.get("data"), list)):
        return None
    try:
        return pd.DataFrame(data["data"], columns=data["columns"])
    except ValueError:
        return None


def _published(policy, runs: list[RunRecord], manifest: dict | None, target: str | None = None) -> list[Condition]:
    checks, group = policy.release, "published outputs"
    k = small_cell_k(policy)
    identifying, microdata, small, read = [], [], [], 0
    for run in runs:
        run_id = run.run_id
        for path in run.files:
            name = Path(path).name
            if name in MICRODATA_NAMES or path.endswith(".nc"):
                microdata.append(f"{run_id[:8]}:{path}")
                continue
            if path.startswith("model/"):  # the model's files: only its example rows are a table
                table = _example_rows(run.documents.get(path)) if path.endswith(EXAMPLE_SUFFIX) else None
            elif path.endswith(TABLE_SUFFIXES):
                table = run.table(path)
            else:
                continue
            if table is None:
                continue
            read += 1
            for column, why in find_identifying([str(c) for c in table.columns]).items():
                identifying.append(f"{run_id[:8]}:{path} column {column!r} ({why})")
            for column in people_columns(table.columns, target):
                n = count_small_cells(table[column], k)
                if n:
                    small.append(f"{run_id[:8]}:{path} column {column!r}: {n} cell(s) of 1-{k - 1}")
    out = [
        Condition(group, "no identifying columns or microdata",
                  FAIL if identifying or microdata else PASS,
                  "; ".join(identifying + [f"{m} is data, not a result" for m in microdata])
                  or f"{read} tables read, none identifying; no cube or quarantine file",
                  "no column that identifies people; no cube, quarantine or raw rows among the artifacts",
                  "IDP data identifies people at risk: only aggregated results leave the pipeline"),
        Condition(group, f"small cells (k={k}) withheld", FAIL if small else PASS,
                  "; ".join(small[:4]) + (f"; and {len(small) - 4} more" if len(small) > 4 else "")
                  if small else f"no count of 1-{k - 1} in {read} tables",
                  f"counts and forecasts of 1 to {k - 1} people blanked", checks.small_cell.rationale),
    ]
    level = manifest_sensitivity(manifest)
    admin = (manifest or {}).get("admin_level")
    name = "admin level allowed by sensitivity"
    if level is None or admin is None:
        out.append(Condition(group, name, UNKNOWN, "the train run has no manifest.json with the sensitivity and "
                             "admin level: train from a cube written by `forecast ingest`",
                             "admin level <= finest for the sensitivity", checks.admin_level.rationale))
    else:
        allowed = finest_admin_level(level, policy)
        verdict = PASS if admin_level_allowed(admin, level, policy) else FAIL
        out.append(Condition(group, name, verdict, f"admin{admin}, sensitivity {level}",
                             f"admin{allowed} or coarser" if allowed is not None else f"no rule for {level}",
                             checks.admin_level.rationale))
    return out


# --- review ----------------------------------------------------------------------------------

def _card_intact(train: RunRecord, backtest: RunRecord | None) -> Condition:
    """The card files and the backtest it was written from are what reviewers signed (:func:`card_integrity`)."""
    name = "model card unchanged"
    required = "model_card.md and .html hash to card_sha256, card_html_sha256; the backtest to card_backtest_digest"
    rationale = "reviewers sign the card and the evidence it was written from; either edited afterwards was never reviewed"
    if not train.tags.get("card_sha256"):
        return Condition("review", name, FAIL, "no model card", f"run `forecast card {train.run_id}`", rationale)
    intact, measured = card_integrity(train, backtest)
    return Condition("review", name, PASS if intact else FAIL, measured, required, rationale)


def _log_intact(log: AuditLog, citations: tuple[Citation, ...], ring: Keyring) -> Condition:
    """The chain verifies, its keyring refused no change, and every release the registry says it
    recorded in this log is still in it (a chain cannot show that lines were cut from its end;
    the registry's ``audit_entry`` and ``audit_log`` tags can)."""
    entries, found = log.inspect()
    problems = [str(p) for p in found if p.severity == "error"]
    problems += [f"seq {seq}: {message}" for seq, message in ring.problems]
    if not problems:
        present = {e.hash for e in entries}
        here = log.citation
        for v in citations:
            if v.audit_entry and v.audit_log == here and v.audit_entry not in present:
                problems.append(f"{v.name} version {v.version} cites audit entry {v.audit_entry[:12]}, which is not "
                                "in the log: entries were removed from its end, or another log is in use")
    measured = (f"{len(problems)} problem(s), first: {problems[0]}" if problems
                else f"{len(entries)} entries, chain intact, every release the registry cites present")
    return Condition("review", "audit log verifies", FAIL if problems else PASS, measured,
                     f"{published_name(log.location)}: no edited, removed or reordered entry, no refused keyring change",
                     "sign-offs are only as good as the log that holds them")


def _in_force(policy, ring: Keyring) -> Condition:
    """The policy judged by is the one approved in the log: not the releaser's choice of file."""
    ok, measured = policy_in_force(policy, ring)
    return Condition("review", "policy in force", PASS if ok else FAIL, measured,
                     "the policy's sha256 is the latest approved (policy.approve) by an ethics reviewer of the keyring "
                     "it pins", "the release policy is the organisation's decision, not the releaser's: a model is "
                     "judged under the policy approved in the audit log, and a changed policy waits for its approval")


def _review(state, policy) -> list[Condition]:
    rules = policy.review
    needed = rules.needed() if rules is not None else {}
    checklist = Condition(
        "review", "checklist complete", FAIL if state.checklist_problems else PASS,
        "; ".join(state.checklist_problems) or "every item answered, no blocking item answered no",
        "every item answered with evidence; no blocking item answered no",
        "the checklists (ethics/checklists) are the questions a model must answer before it is used")
    approvals = ", ".join(f"{role}: {', '.join(names) or 'none'}" for role, names in state.valid_approvals.items())
    signoffs = Condition(
        "review", "sign-offs valid", FAIL if state.sign_off_problems else PASS,
        "; ".join(state.sign_off_problems) + (f" (valid: {approvals})" if state.sign_off_problems else "")
        if state.sign_off_problems else approvals,
        ", ".join(f"{n} {role}" for role, n in needed.items()) + " approval(s) by different people, not only the "
        f"author, not older than {rules.expire_days} days, signed with the reviewer's keyring key for "
        f"{', '.join(rules.signatures.required_for) or 'no'} data" if rules is not None
        else "a review section in the policy",
        rules.approvals.rationale if rules is not None else "")
    return [checklist, signoffs]


# --- the gate --------------------------------------------------------------------------------

def _sensitivity(tags: dict, manifest: dict | None) -> str | None:
    """The data's sensitivity for the review rules: the more sensitive of the run's tag and its
    manifest, so that a tag edited down does not lift the need for signed sign-offs."""
    levels = [level for level in (tags.get("sensitivity"), manifest_sensitivity(manifest)) if level in SENSITIVITY_LEVELS]
    return max(levels, key=SENSITIVITY_LEVELS.index, default=None)


def judge_gate(evidence: Evidence, *, reviews_dir: str | Path = REVIEWS_DIR, log: AuditLog | str | Path | None = None,
               policy=None, now: datetime | None = None) -> GateReport:
    """Judge a train run's evidence against every release condition; nothing is written.

    Parameters
    ----------
    evidence : Evidence
        The train run (tags, artifact files, tables, ``manifest.json``, the card file), the
        backtest behind its card and that backtest's child runs, the model's digest and the
        registry's citations of the audit log (:func:`forecast.tracking.read_release_evidence`).
    reviews_dir : path
        Where the review records are (``ethics/reviews``).
    log : AuditLog or path, optional
        The audit log holding the sign-offs (default ``ethics/audit.log.jsonl``).
    policy : Policy, optional
        Default: :func:`forecast.policy.load_policy` (``ethics/policy.yaml``).
    now : datetime, optional
        For sign-off expiry (default: now, UTC).

    Returns
    -------
    GateReport

    Raises
    ------
    ForecastError
        The evidence has no model digest, or the run's review file is malformed; every other
        problem is a condition that does not pass.
    """
    train = evidence.train
    if evidence.model_digest is None:
        raise ForecastError(f"the evidence of run {train.run_id} has no model digest: read it with "
                            "forecast.tracking.read_release_evidence")
    policy = load_policy() if policy is None else policy
    audit = AuditLog.of(log)
    now = datetime.now(timezone.utc) if now is None else now
    tags = train.tags
    subject = ReviewSubject(train.run_id, tags.get("card_sha256"), evidence.model_digest, tags.get("mlflow.user"),
                            _sensitivity(tags, train.json("manifest.json")), tags.get("card_html_sha256"),
                            tags.get("card_backtest_run_id"), tags.get("card_backtest_digest"))
    ring = keyring(audit, root=policy.review.signatures.keyring_root if policy.review is not None else None)
    state = judge_review(subject, reviews_dir=reviews_dir, log=audit, policy=policy, now=now)
    backtest, source = evidence.backtest, evidence.source
    conditions: list[Condition] = []
    if policy.release is None:
        conditions.append(Condition("automated", "release policy", FAIL, f"{policy.source} has no release "
                                    "section", "thresholds for skill, coverage, level ratio, small cells and "
                                    "admin level", "release thresholds have no defaults in code"))
    else:
        metrics = backtest.table("metrics.csv") if backtest else None
        conditions += _automated(policy, metrics, tags.get("model", ""), source, tags.get("target"))
        where = f"fairness/{policy.release.fairness.route}/fairness_disparities.csv"
        conditions += _fairness(policy, backtest.table(where) if backtest else None, source)
        runs = [train, *([backtest, *evidence.children] if backtest else [])]
        conditions += _published(policy, runs, train.json("manifest.json"), tags.get("target"))
    conditions.append(_card_intact(train, backtest))
    conditions.append(_log_intact(audit, evidence.citations, ring))
    conditions.append(_in_force(policy, ring))
    conditions += _review(state, policy)
    return GateReport(run_id=train.run_id, model=tags.get("model", ""), backtest_run_id=evidence.backtest_run_id,
                      card_sha256=tags.get("card_sha256"), model_digest=evidence.model_digest,
                      policy_source=published_name(policy.source), policy_sha256=policy.hash(),
                      evaluated=now.isoformat(timespec="seconds"), conditions=tuple(conditions),
                      reviewers={role: list(names) for role, names in state.valid_approvals.items()},
                      card_html_sha256=tags.get("card_html_sha256"))
