"""The release gate of a train run by its id: read the evidence, judge it, register only on a pass."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from forecast.errors import ForecastError
from forecast.ethics import (
    REGISTRY_DESCRIPTION,
    REVIEWS_DIR,
    DEFAULT_LOG,
    AuditLog,
    GateReport,
    Release,
    ReleaseStatus,
    check_release_request,
    judge_gate,
    record_refusal,
    record_release,
    release_tags,
    verify_release,
)
from forecast.tracking import (
    card_file_sha256,
    delete_version,
    get_run,
    log_gate_report,
    model_digest,
    open_audit_log,
    read_release_evidence,
    register_version,
    released_version,
    set_released,
    version_tags,
)
from forecast.tracking import release_status as registry_status
from forecast.tracking import shared_log_name

__all__ = ["evaluate_gate", "release", "release_status"]

_PURPOSE = "the gate releases runs of `forecast train --triggers ...`"


def release_status(run_id: str, *, tracking_uri: str | None = None,
                   log: AuditLog | str | Path | None = None) -> ReleaseStatus:
    """Whether ``run_id``'s model is released, as everything that shows "released" must ask.

    The registry's alias ``released`` is only a claim: it holds when the audit log holds the
    release entry the version cites, and the model's files and its card still hash to what
    that entry recorded (:func:`forecast.ethics.verify_release`). Otherwise the status is NOT
    RELEASED, with ``status.why``.

    ``log`` defaults to the log the version was released with (its tag ``audit_log``): the
    team's shared log on the tracking server (``mlflow:audit``), or a file when that file is
    here, else ``ethics/audit.log.jsonl``.
    """
    claim = registry_status(run_id, tracking_uri=tracking_uri)
    if not claim.released:
        return claim
    tags = version_tags(claim.name, claim.version, tracking_uri=tracking_uri)
    if log is None and shared_log_name(tags.get("audit_log")) is not None:
        log = open_audit_log(tags["audit_log"], tracking_uri=tracking_uri)  # every client reads the one log
    elif log is None:
        named = Path(tags.get("audit_log") or DEFAULT_LOG)
        log = named if named.is_file() else DEFAULT_LOG
        if not Path(log).is_file():  # a release made on another machine: its log is not here
            return ReleaseStatus(run_id, False, claim.name, claim.version,
                                 why=f"{claim.name} version {claim.version} was released with the audit log {named}, "
                                     f"which is not on this machine: its release cannot be confirmed here")
    return verify_release(claim, tags.get("audit_entry"), model_digest(run_id, tracking_uri=tracking_uri),
                          card_file_sha256(run_id, tracking_uri=tracking_uri),
                          log=open_audit_log(log, tracking_uri=tracking_uri),
                          card_html_sha256=card_file_sha256(run_id, tracking_uri=tracking_uri,
                                                            path="model_card/model_card.html"))


def evaluate_gate(run_id: str, *, tracking_uri: str | None = None, reviews_dir: str | Path = REVIEWS_DIR,
                  log: AuditLog | str | Path | None = None, policy=None, now: datetime | None = None) -> GateReport:
    """Judge a train run against every release condition; nothing is registered or logged.

    Parameters
    ----------
    run_id : str
        A ``forecast train --triggers ...`` run with a model card.
    tracking_uri : str, optional
    reviews_dir : path
        Where the review records are (``ethics/reviews``).
    log : AuditLog or path or str, optional
        The audit log holding the sign-offs: a file, or ``"mlflow:audit"``, the team's shared log
        on the tracking server. Default: the shared log when ``tracking_uri`` is a server, else
        ``ethics/audit.log.jsonl`` (:func:`forecast.tracking.open_audit_log`).
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
        The run is unknown or not a train run, or its review file is malformed; every other
        problem is a condition that does not pass.
    """
    evidence = read_release_evidence(run_id, tracking_uri=tracking_uri)
    return judge_gate(evidence, reviews_dir=reviews_dir, log=open_audit_log(log, tracking_uri=tracking_uri),
                      policy=policy, now=now)


def release(run_id: str, name: str, *, by: str, tracking_uri: str | None = None,
            reviews_dir: str | Path = REVIEWS_DIR, log: AuditLog | str | Path | None = None, policy=None,
            now: datetime | None = None, key=None) -> Release:
    """Evaluate the gate; register and alias the model only when every condition passes.

    On a pass: a new version of the registered model ``name`` (created if new) from the run's
    ``model/``, tagged ``card_sha256``, ``model_digest``, ``reviewers``, ``gate_report_sha256``,
    ``policy_sha256`` and ``audit_head`` (the log's last hash before the release); the alias
    ``released`` moves to it; a ``release`` entry is appended to the audit log and the gate
    report is logged to the run (``release/gate_report_v<version>.md`` and ``.json``). On a
    refusal: nothing is registered; a ``release.refused`` entry lists the unmet conditions.
    ``log`` is as in :func:`evaluate_gate`; the version's tag ``audit_log`` names it for every
    later :func:`release_status`.

    Returns
    -------
    Release
        ``outcome.released``, ``outcome.version`` and ``outcome.model_uri`` when it passed.

    Raises
    ------
    ForecastError
        The run is unknown, the name is empty, the run is already the released version, or
        the audit log cannot take the entry (the release is then undone).
    """
    name, by = check_release_request(name, by)
    log = open_audit_log(log, tracking_uri=tracking_uri)  # one log for the gate, the tags and the entry
    get_run(run_id, kind="train", tracking_uri=tracking_uri, purpose=_PURPOSE)
    current = released_version(name, tracking_uri=tracking_uri)
    if current is not None and current[1] == run_id:
        raise ForecastError(f"run {run_id} is already released as {name} version {current[0]}")
    report = evaluate_gate(run_id, tracking_uri=tracking_uri, reviews_dir=reviews_dir, log=log, policy=policy,
                           now=now)
    if not report.passed:
        return record_refusal(report, name, by, log=log, key=key)
    tags = release_tags(report, by, log=log)
    version = register_version(run_id, name, tags, description=REGISTRY_DESCRIPTION, tracking_uri=tracking_uri)
    try:
        entry = record_release(report, name, version, by, tags["audit_head"], log=log, key=key)
    except ForecastError:
        delete_version(name, version, tracking_uri=tracking_uri)
        raise
    model_uri = set_released(name, version, entry.hash, tracking_uri=tracking_uri)
    log_gate_report(run_id, version, report.to_markdown(), report.to_dict(), tracking_uri=tracking_uri)
    return Release(report=report, name=name, version=version, model_uri=model_uri, audit_seq=entry.seq)
