"""The release gate: every condition a model must meet before it reaches users, then the registry.

:func:`evaluate_gate` judges a ``forecast train`` run against the policy (``ethics/policy.yaml``)
and its review, one :class:`Condition` per line, each ``pass``, ``fail`` or ``insufficient
evidence`` (never a pass by default):

- automated checks from the backtest behind the model card (skill against the policy's
  reference baseline, interval coverage, level ratio) and the fairness disparities of the
  route the model ranks areas with;
- published-output checks over every artifact of the train run and its backtest runs: no
  identifying column, no microdata (cube, quarantine), no observed count of 1 to k-1 people,
  no admin level finer than the data's sensitivity allows;
- the review: the card file still hashes to what reviewers signed, the audit log verifies,
  the checklist is complete, the sign-offs are valid (:func:`~forecast.ethics.review_state`).

:func:`release` registers the model in the MLflow registry and points the alias ``released``
at the new version only when every condition passes; a refusal registers nothing. Both are
appended to the audit log. An earlier version is never changed: it keeps its tags, and the
alias simply moves to the new one.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import pandas as pd

from forecast.errors import ForecastError
from forecast.ethics._audit import DEFAULT_LOG, AuditLog, AuditLogError
from forecast.ethics._review import REVIEWS_DIR, model_digest, review_state

__all__ = ["Condition", "GateReport", "Release", "ReleaseStatus", "evaluate_gate", "release", "release_status",
           "RELEASED_ALIAS", "NOT_RELEASED"]

Verdict = Literal["pass", "fail", "insufficient evidence"]
PASS, FAIL, UNKNOWN = "pass", "fail", "insufficient evidence"
RELEASED_ALIAS = "released"
#: The watermark on anything made with a model the gate has not released.
NOT_RELEASED = "NOT RELEASED — for review only"
RELEASE_KIND, REFUSED_KIND = "release", "release.refused"
#: Columns of published tables that hold observed counts of people (small cells are withheld).
#: (Rates and forecasts are not counts: ``observed`` in a reliability table is a frequency.)
COUNT_COLUMNS = ("actual", "last_value", "arrivals", "departures", "idps", "returnees", "individuals",
                 "households")
#: Artifacts that are the data itself, never to be published with a model.
MICRODATA_NAMES = ("quarantine.csv", "cube.nc")
TABLE_SUFFIXES = (".csv", ".parquet")


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


@dataclass(frozen=True)
class Release:
    """What :func:`release` did: the gate report, and the registered version when it passed."""

    report: GateReport
    name: str
    version: str | None = None
    model_uri: str | None = None
    audit_seq: int | None = None

    @property
    def released(self) -> bool:
        return self.version is not None


@dataclass(frozen=True)
class ReleaseStatus:
    """Whether a train run's model is the released version of a registered model."""

    run_id: str
    released: bool
    name: str | None = None
    version: str | None = None

    @property
    def label(self) -> str:
        return f"released: {self.name} version {self.version}" if self.released else NOT_RELEASED


# --- evidence --------------------------------------------------------------------------------

class _Runs:
    """Artifacts of MLflow runs, downloaded once into a temporary folder."""

    def __init__(self, client, folder: Path):
        self.client, self.folder = client, folder

    def files(self, run_id: str, path: str | None = None) -> list[str]:
        out = []
        for info in self.client.list_artifacts(run_id, path):
            out += self.files(run_id, info.path) if info.is_dir else [info.path]
        return out

    def local(self, run_id: str, path: str) -> Path:
        return Path(self.client.download_artifacts(run_id, path, str(self.folder / run_id)))

    def table(self, run_id: str, path: str) -> pd.DataFrame | None:
        try:
            local = self.local(run_id, path)
        except Exception:  # MLflow raises several types for a missing artifact
            return None
        return pd.read_parquet(local) if path.endswith(".parquet") else pd.read_csv(local)


def _evidence_run(client, train) -> tuple[str | None, str]:
    """The backtest behind the card (tag ``card_backtest_run_id``), else the latest matching one."""
    from forecast.ethics._card import _find_backtest

    tagged = train.data.tags.get("card_backtest_run_id")
    if tagged:
        return tagged, "the backtest the model card cites"
    try:
        return _find_backtest(client, train), "the latest backtest of this spec on this data"
    except ForecastError as error:
        return None, str(error)


# --- automated checks ------------------------------------------------------------------------

def _by_horizon(rows: pd.DataFrame, column: str) -> dict[int, float]:
    if column not in rows:
        return {}
    return {int(h): float(v) for h, v in zip(rows["horizon"], rows[column]) if pd.notna(v)}


def _fmt(values: dict[int, float], digits: int = 2) -> str:
    return ", ".join(f"h{h} {v:.{digits}f}" for h, v in sorted(values.items())) or "-"


def _automated(policy, metrics: pd.DataFrame | None, model: str, evidence: str) -> list[Condition]:
    checks = policy.release
    group = "automated"
    if metrics is None:
        missing = f"no backtest metrics ({evidence})"
        return [Condition(group, name, UNKNOWN, missing, required, rationale) for name, required, rationale in (
            (f"skill vs {checks.skill.reference} ({checks.skill.metric})", _skill_required(checks.skill),
             checks.skill.rationale),
            (f"coverage{checks.coverage.interval}", f"{checks.coverage.low:g}-{checks.coverage.high:g}",
             checks.coverage.rationale),
            ("level ratio", f"{checks.level_ratio.low:g}-{checks.level_ratio.high:g}", checks.level_ratio.rationale))]
    mine = metrics[metrics["model"] == model]
    out = [_skill(checks.skill, mine, metrics[metrics["model"] == checks.skill.reference], group)]
    column = f"coverage{checks.coverage.interval}"
    out.append(_band(group, column, _by_horizon(mine, column), checks.coverage, f"no {column} in the backtest "
                     "metrics: backtest a spec with the interval's quantiles"))
    out.append(_band(group, "level ratio", _by_horizon(mine, "level_ratio"), checks.level_ratio,
                     "no level_ratio in the backtest metrics"))
    return out


def _skill_required(skill) -> str:
    return ", ".join(f"h{h} >= {v:g}" for h, v in sorted(skill.min_skill.items()))


def _skill(skill, mine: pd.DataFrame, ref: pd.DataFrame, group: str) -> Condition:
    name, required = f"skill vs {skill.reference} ({skill.metric})", _skill_required(skill)
    model_loss, ref_loss = _by_horizon(mine, skill.metric), _by_horizon(ref, skill.metric)
    values, missing = {}, []
    for h in sorted(skill.min_skill):
        if h in model_loss and h in ref_loss and ref_loss[h] > 0:
            values[h] = 1.0 - model_loss[h] / ref_loss[h]
        else:
            missing.append(h)
    if missing:
        what = (f"{skill.reference} is not in the backtest" if ref.empty else
                f"no {skill.metric} at horizon(s) {', '.join(map(str, missing))}")
        return Condition(group, name, UNKNOWN, f"{_fmt(values)}; {what}", required, skill.rationale)
    low = [h for h, v in values.items() if v < skill.min_skill[h] - 1e-12]
    measured = _fmt(values) + (f"; below at h{', h'.join(map(str, low))}" if low else "")
    return Condition(group, name, FAIL if low else PASS, measured, required, skill.rationale)


def _band(group: str, name: str, values: dict[int, float], band, missing: str) -> Condition:
    required = f"{band.low:g}-{band.high:g} at every horizon"
    if not values:
        return Condition(group, name, UNKNOWN, missing, required, band.rationale)
    out = [h for h, v in values.items() if not band.low - 1e-12 <= v <= band.high + 1e-12]
    measured = _fmt(values) + (f"; outside at h{', h'.join(map(str, out))}" if out else "")
    return Condition(group, name, FAIL if out else PASS, measured, required, band.rationale)


def _fairness(policy, table: pd.DataFrame | None, evidence: str) -> list[Condition]:
    from forecast.fairness._metrics import _limit_text

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
            name, required = f"{metric} by {column}", _limit_text(policy.limit(metric))
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

def _published(policy, runs: _Runs, run_ids: Iterable[str], manifest: dict | None,
               target: str | None = None) -> list[Condition]:
    from forecast.io._privacy import find_identifying

    checks, group = policy.release, "published outputs"
    k = checks.small_cell.k
    counts = {*COUNT_COLUMNS, *([target] if target else [])}
    identifying, microdata, small, read = [], [], [], 0
    for run_id in run_ids:
        for path in runs.files(run_id):
            name = Path(path).name
            if name in MICRODATA_NAMES or path.endswith(".nc"):
                microdata.append(f"{run_id[:8]}:{path}")
                continue
            if not path.endswith(TABLE_SUFFIXES) or path.startswith("model/"):
                continue
            table = runs.table(run_id, path)
            if table is None:
                continue
            read += 1
            for column, why in find_identifying([str(c) for c in table.columns]).items():
                identifying.append(f"{run_id[:8]}:{path} column {column!r} ({why})")
            for column in (c for c in table.columns if str(c) in counts):
                values = pd.to_numeric(table[column], errors="coerce")
                n = int(((values > 0) & (values < k)).sum())
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
                  f"observed counts of 1 to {k - 1} people blanked", checks.small_cell.rationale),
    ]
    finest = checks.admin_level.finest
    level = (manifest or {}).get("sensitivity", {}).get("level")
    admin = (manifest or {}).get("admin_level")
    name = "admin level allowed by sensitivity"
    if level is None or admin is None:
        out.append(Condition(group, name, UNKNOWN, "the train run has no manifest.json with the sensitivity and "
                             "admin level: train from a cube written by `forecast ingest`",
                             "admin level <= finest for the sensitivity", checks.admin_level.rationale))
    else:
        allowed = finest.get(level)
        verdict = PASS if allowed is not None and int(admin) <= int(allowed) else FAIL
        out.append(Condition(group, name, verdict, f"admin{admin}, sensitivity {level}",
                             f"admin{allowed} or coarser" if allowed is not None else f"no rule for {level}",
                             checks.admin_level.rationale))
    return out


# --- review ----------------------------------------------------------------------------------

def _card_intact(runs: _Runs, run_id: str, tagged: str | None) -> Condition:
    name, required = "model card unchanged", "model_card/model_card.md hashes to the tag card_sha256"
    rationale = "reviewers sign the card's SHA-256; a card edited afterwards was never reviewed"
    if not tagged:
        return Condition("review", name, FAIL, "no model card", f"run `forecast card {run_id}`", rationale)
    try:
        actual = hashlib.sha256(runs.local(run_id, "model_card/model_card.md").read_bytes()).hexdigest()
    except Exception:  # MLflow raises several types for a missing artifact
        return Condition("review", name, FAIL, "the card artifact model_card/model_card.md is missing",
                         required, rationale)
    if actual != tagged:
        return Condition("review", name, FAIL, f"the card file hashes to {actual[:12]}, the signed tag says "
                         f"{tagged[:12]}: edited after it was written", required, rationale)
    return Condition("review", name, PASS, f"sha256 {actual[:12]}", required, rationale)


def _log_intact(log: AuditLog, client) -> Condition:
    """The chain verifies, and every release the registry says it recorded in this log is still
    in it (a chain cannot show that lines were cut from its end; the registry's ``audit_entry``
    and ``audit_log`` tags can)."""
    problems = [str(p) for p in log.verify() if p.severity == "error"]
    entries = log.entries(check=False)
    if not problems:
        present = {e.hash for e in entries}
        try:
            versions = client.search_model_versions()
        except Exception:  # a store without a registry cites nothing
            versions = []
        here = str(log.path.resolve())
        for v in versions:
            cited = v.tags.get("audit_entry")
            if cited and v.tags.get("audit_log") == here and cited not in present:
                problems.append(f"{v.name} version {v.version} cites audit entry {cited[:12]}, which is not in the "
                                "log: entries were removed from its end, or another log is in use")
    measured = (f"{len(problems)} problem(s), first: {problems[0]}" if problems
                else f"{len(entries)} entries, chain intact, every release the registry cites present")
    return Condition("review", "audit log verifies", FAIL if problems else PASS, measured,
                     f"{log.path}: no edited, removed or reordered entry",
                     "sign-offs are only as good as the log that holds them")


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
        ", ".join(f"{n} {role}" for role, n in needed.items()) + " approval(s), not only the author, "
        f"not older than {rules.expire_days} days" if rules is not None else "a review section in the policy",
        rules.approvals.rationale if rules is not None else "")
    return [checklist, signoffs]


# --- the gate --------------------------------------------------------------------------------

def _log(log) -> AuditLog:
    return log if isinstance(log, AuditLog) else AuditLog(DEFAULT_LOG if log is None else log)


def evaluate_gate(run_id: str, *, tracking_uri: str | None = None, reviews_dir: str | Path = REVIEWS_DIR,
                  log: AuditLog | str | Path | None = None, policy=None, now: datetime | None = None
                  ) -> GateReport:
    """Judge a train run against every release condition; nothing is registered or logged.

    Parameters
    ----------
    run_id : str
        A ``forecast train --triggers ...`` run with a model card.
    tracking_uri : str, optional
    reviews_dir : path
        Where the review records are (``ethics/reviews``).
    log : AuditLog or path, optional
        The audit log holding the sign-offs (default ``ethics/audit.log.jsonl``).
    policy : Policy, optional
        Default: :func:`forecast.fairness.load_policy` (``ethics/policy.yaml``).
    now : datetime, optional
        For sign-off expiry (default: now, UTC).

    Raises
    ------
    ForecastError
        The run is unknown or not a train run, or its review file is malformed; every other
        problem is a condition that does not pass.
    """
    from forecast.policy._policy import load_policy
    from forecast.tracking import get_run

    client, train = get_run(run_id, kind="train", tracking_uri=tracking_uri,
                            purpose="the gate releases runs of `forecast train --triggers ...`")
    policy = load_policy() if policy is None else policy
    audit = _log(log)
    now = datetime.now(timezone.utc) if now is None else now
    tags = train.data.tags
    model = tags.get("model", "")
    digest = model_digest(client, run_id)
    state = review_state(run_id, tracking_uri=tracking_uri, reviews_dir=reviews_dir, log=audit, policy=policy,
                         now=now)
    conditions: list[Condition] = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = _Runs(client, Path(tmp))
        backtest_id, evidence = _evidence_run(client, train)
        backtest_ids = []
        if backtest_id is not None:
            try:
                get_run(backtest_id, kind="backtest", client=client, purpose="the gate's evidence is a backtest run")
            except ForecastError as error:
                backtest_id, evidence = None, str(error)
        if backtest_id is not None:
            children = client.search_runs([train.info.experiment_id],
                                          filter_string=f"tags.mlflow.parentRunId = '{backtest_id}'")
            backtest_ids = [backtest_id, *(c.info.run_id for c in children)]
        if policy.release is None:
            conditions.append(Condition("automated", "release policy", FAIL, f"{policy.source} has no release "
                                        "section", "thresholds for skill, coverage, level ratio, small cells and "
                                        "admin level", "release thresholds have no defaults in code"))
        else:
            metrics = runs.table(backtest_id, "metrics.csv") if backtest_id else None
            conditions += _automated(policy, metrics, model, evidence)
            where = f"fairness/{policy.release.fairness.route}/fairness_disparities.csv"
            conditions += _fairness(policy, runs.table(backtest_id, where) if backtest_id else None, evidence)
            manifest = _manifest(runs, run_id)
            conditions += _published(policy, runs, [run_id, *backtest_ids], manifest, tags.get("target"))
        conditions.append(_card_intact(runs, run_id, tags.get("card_sha256")))
    conditions.append(_log_intact(audit, client))
    conditions += _review(state, policy)
    return GateReport(run_id=run_id, model=model, backtest_run_id=backtest_id, card_sha256=tags.get("card_sha256"),
                      model_digest=digest, policy_source=str(policy.source), policy_sha256=policy.hash(),
                      evaluated=now.isoformat(timespec="seconds"), conditions=tuple(conditions),
                      reviewers={role: list(names) for role, names in state.valid_approvals.items()})


def _manifest(runs: _Runs, run_id: str) -> dict | None:
    try:
        return json.loads(runs.local(run_id, "manifest.json").read_text(encoding="utf-8"))
    except Exception:  # missing artifact or unreadable JSON: the admin-level check says so
        return None


def release(run_id: str, name: str, *, by: str, tracking_uri: str | None = None,
            reviews_dir: str | Path = REVIEWS_DIR, log: AuditLog | str | Path | None = None, policy=None,
            now: datetime | None = None, key=None) -> Release:
    """Evaluate the gate; register and alias the model only when every condition passes.

    On a pass: a new version of the registered model ``name`` (created if new) from the run's
    ``model/``, tagged ``card_sha256``, ``model_digest``, ``reviewers``, ``gate_report_sha256``,
    ``policy_sha256`` and ``audit_head`` (the log's last hash before the release); the alias
    ``released`` moves to it; a ``release`` entry is appended to the audit log and the gate
    report is logged to the run (``release/gate_report.md`` and ``.json``). On a refusal:
    nothing is registered; a ``release.refused`` entry lists the unmet conditions.

    Raises
    ------
    ForecastError
        The run is unknown, the name is empty, the run is already the released version, or
        the audit log cannot take the entry (the release is then undone).
    """
    import mlflow

    from forecast.tracking import get_run, use_store as _store

    if not name or not name.strip():
        raise ForecastError("the registered model's name is empty: pass --name, e.g. --name somalia-arrivals")
    if not by or not by.strip():
        raise ForecastError("say who releases (--by NAME)")
    name, by = name.strip(), by.strip()
    audit = _log(log)
    client, _ = get_run(run_id, kind="train", tracking_uri=tracking_uri,
                        purpose="the gate releases runs of `forecast train --triggers ...`")
    current = _released_version(client, name)
    if current is not None and current.run_id == run_id:
        raise ForecastError(f"run {run_id} is already released as {name} version {current.version}")
    report = evaluate_gate(run_id, tracking_uri=tracking_uri, reviews_dir=reviews_dir, log=audit, policy=policy,
                           now=now)
    gate_sha = report.sha256()
    if not report.passed:
        payload = {"run_id": run_id, "name": name, "gate_report_sha256": gate_sha,
                   "unmet": [f"{c.check}: {c.verdict}" for c in report.unmet]}
        seq = None
        try:
            seq = audit.append(REFUSED_KIND, by, payload, key=key).seq
        except AuditLogError:
            pass  # a broken log is itself an unmet condition; the refusal still stands
        return Release(report=report, name=name, audit_seq=seq)
    entries = audit.entries()
    head = entries[-1].hash if entries else ""
    reviewers = "; ".join(f"{role}: {', '.join(names)}" for role, names in report.reviewers.items())
    tags = {"card_sha256": report.card_sha256, "model_digest": report.model_digest, "reviewers": reviewers,
            "gate_report_sha256": gate_sha, "policy_sha256": report.policy_sha256, "audit_head": head,
            "released_by": by, "backtest_run_id": report.backtest_run_id or "", "source_run_id": run_id,
            "audit_log": str(audit.path.resolve())}
    with _store(tracking_uri):
        new_model = _registered(client, name) is None
        version = mlflow.register_model(f"runs:/{run_id}/model", name, tags=tags)
    if new_model:
        client.update_registered_model(name, description="Versions are registered by `forecast release` only, "
                                       "after the release gate passed; each version's tags cite its gate report, "
                                       "reviewers and audit-log entry.")
    try:
        entry = audit.append(RELEASE_KIND, by, {"run_id": run_id, "name": name, "version": str(version.version),
                                                "card_sha256": report.card_sha256, "model_digest": report.model_digest,
                                                "gate_report_sha256": gate_sha, "policy_sha256": report.policy_sha256,
                                                "reviewers": report.reviewers, "audit_head": head}, key=key)
    except AuditLogError as error:
        client.delete_model_version(name, version.version)
        raise ForecastError(f"the release could not be recorded in the audit log, so it was undone: {error}") from None
    client.set_registered_model_alias(name, RELEASED_ALIAS, version.version)
    client.set_model_version_tag(name, version.version, "audit_entry", entry.hash)
    client.log_text(run_id, report.to_markdown(), f"release/gate_report_v{version.version}.md")
    client.log_dict(run_id, report.to_dict(), f"release/gate_report_v{version.version}.json")
    return Release(report=report, name=name, version=str(version.version),
                   model_uri=f"models:/{name}@{RELEASED_ALIAS}", audit_seq=entry.seq)


def _registered(client, name: str):
    try:
        return client.get_registered_model(name)
    except Exception:  # MLflow raises RestException / MlflowException for an unknown name
        return None


def _released_version(client, name: str):
    try:
        return client.get_model_version_by_alias(name, RELEASED_ALIAS)
    except Exception:  # no such model, or no alias yet
        return None


def release_status(run_id: str, *, tracking_uri: str | None = None, client=None) -> ReleaseStatus:
    """Whether ``run_id``'s model is the version an alias ``released`` points at."""
    import mlflow

    client = client or mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        versions = client.search_model_versions(f"run_id = '{run_id}'")
    except Exception:  # a store without a registry: nothing is released
        return ReleaseStatus(run_id, False)
    for v in versions:
        current = _released_version(client, v.name)
        if current is not None and str(current.version) == str(v.version):
            return ReleaseStatus(run_id, True, v.name, str(v.version))
    return ReleaseStatus(run_id, False)
