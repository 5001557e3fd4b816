"""What a release records: the audit-log entries of a release or a refusal, a released version's tags.

:func:`forecast.pipeline.release` joins them with the registry: it judges the gate
(:func:`~forecast.ethics.judge_gate`), and on a refusal calls :func:`record_refusal`; on a pass
it registers the model with :func:`release_tags`, records it with :func:`record_release` (or
undoes the registration when the log cannot take the entry) and moves the alias ``released``.
An earlier version is never changed: it keeps its tags, and the alias simply moves on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from forecast.errors import ForecastError
from forecast.ethics._audit import AuditLog, AuditLogError, Entry
from forecast.ethics._gate import GateReport
from forecast.ethics._review import _log

__all__ = ["Release", "ReleaseStatus", "NOT_RELEASED", "REGISTRY_DESCRIPTION", "check_release_request",
           "record_refusal", "release_tags", "record_release"]

#: The watermark on anything made with a model the gate has not released.
NOT_RELEASED = "NOT RELEASED — for review only"
RELEASE_KIND, REFUSED_KIND = "release", "release.refused"
#: The description of a registered model that ``forecast release`` creates.
REGISTRY_DESCRIPTION = ("Versions are registered by `forecast release` only, after the release gate passed; each "
                        "version's tags cite its gate report, reviewers and audit-log entry.")


@dataclass(frozen=True)
class Release:
    """What :func:`forecast.pipeline.release` did: the gate report, and the registered version when it passed."""

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


def check_release_request(name: str, by: str) -> tuple[str, str]:
    """The registered model's name and the releaser's, stripped; refused when either is empty."""
    if not name or not name.strip():
        raise ForecastError("the registered model's name is empty: pass --name, e.g. --name somalia-arrivals")
    if not by or not by.strip():
        raise ForecastError("say who releases (--by NAME)")
    return name.strip(), by.strip()


def record_refusal(report: GateReport, name: str, by: str, *, log: AuditLog | str | Path | None = None,
                   key=None) -> Release:
    """Append a ``release.refused`` entry listing the unmet conditions; a damaged log (itself an
    unmet condition) does not stop the refusal. Returns the :class:`Release` that registered nothing."""
    payload = {"run_id": report.run_id, "name": name, "gate_report_sha256": report.sha256(),
               "unmet": [f"{c.check}: {c.verdict}" for c in report.unmet]}
    seq = None
    try:
        seq = _log(log).append(REFUSED_KIND, by, payload, key=key).seq
    except AuditLogError:
        pass  # a broken log is itself an unmet condition; the refusal still stands
    return Release(report=report, name=name, audit_seq=seq)


def release_tags(report: GateReport, by: str, *, log: AuditLog | str | Path | None = None) -> dict[str, str]:
    """The tags of a released version: card hash, model digest, reviewers, gate report, policy, the
    audit log's last hash before the release (``audit_head``) and the log's path."""
    audit = _log(log)
    entries = audit.entries()
    head = entries[-1].hash if entries else ""
    reviewers = "; ".join(f"{role}: {', '.join(names)}" for role, names in report.reviewers.items())
    return {"card_sha256": report.card_sha256, "model_digest": report.model_digest, "reviewers": reviewers,
            "gate_report_sha256": report.sha256(), "policy_sha256": report.policy_sha256, "audit_head": head,
            "released_by": by, "backtest_run_id": report.backtest_run_id or "", "source_run_id": report.run_id,
            "audit_log": str(audit.path.resolve())}


def record_release(report: GateReport, name: str, version: str, by: str, head: str, *,
                   log: AuditLog | str | Path | None = None, key=None) -> Entry:
    """Append the ``release`` entry of version ``version`` of ``name``.

    Raises
    ------
    ForecastError
        The log cannot take the entry (the caller undoes the registration).
    """
    payload = {"run_id": report.run_id, "name": name, "version": str(version), "card_sha256": report.card_sha256,
               "model_digest": report.model_digest, "gate_report_sha256": report.sha256(),
               "policy_sha256": report.policy_sha256, "reviewers": report.reviewers, "audit_head": head}
    try:
        return _log(log).append(RELEASE_KIND, by, payload, key=key)
    except AuditLogError as error:
        raise ForecastError(f"the release could not be recorded in the audit log, so it was undone: {error}") from None
