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

__all__ = ["Release", "ReleaseStatus", "NOT_RELEASED", "REGISTRY_DESCRIPTION", "check_release_request",
           "record_refusal", "release_tags", "record_release", "verify_release"]

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
    #: Why a version the registry calls released is not (empty when nothing was claimed).
    why: str = ""

    @property
    def label(self) -> str:
        return f"released: {self.name} version {self.version}" if self.released else NOT_RELEASED


def verify_release(claim: ReleaseStatus, entry_hash: str | None, model_digest: str, card_sha256: str | None, *,
                   log: AuditLog | str | Path | None = None, card_html_sha256: str | None = None) -> ReleaseStatus:
    """``claim`` (the registry's alias says released) as it stands against the audit log.

    A version is released only through the gate: the log verifies, holds the ``release`` entry
    the version cites (its tag ``audit_entry``) for this name, version and run, and the model and
    its card still hash to what that entry recorded. An alias set by hand, a model file changed
    after the release, or a log cut or edited gives a status that is not released, saying why.
    """
    if not claim.released:
        return claim
    audit = AuditLog.of(log)

    def refused(why: str) -> ReleaseStatus:
        return ReleaseStatus(claim.run_id, False, claim.name, claim.version, why=why)

    what = f"{claim.name} version {claim.version}"
    if not entry_hash:
        return refused(f"{what} cites no audit-log entry: the alias was set outside `forecast release`")
    try:
        entries, problems = audit.inspect()
        problems = [p for p in problems if p.severity == "error"]
    except AuditLogError as error:
        return refused(f"the audit log cannot be read to confirm {what}: {error}")
    if problems:
        return refused(f"the audit log {audit.location} fails to verify ({problems[0]}): {what} cannot be confirmed")
    entry = next((e for e in entries if e.hash == entry_hash), None)
    if entry is None or entry.kind != RELEASE_KIND:
        return refused(f"{what} cites audit-log entry {entry_hash[:12]}, which is not a release in {audit.location}: "
                       "the alias was set outside `forecast release`, or this is not the log it was released with")
    recorded = entry.payload
    expected = {"name": claim.name, "version": str(claim.version), "run_id": claim.run_id}
    wrong = [k for k, v in expected.items() if str(recorded.get(k)) != v]
    if wrong:
        return refused(f"audit-log entry {entry.seq} released {recorded.get('name')} version "
                       f"{recorded.get('version')} of run {recorded.get('run_id')}, not {what} of run {claim.run_id}")
    if recorded.get("model_digest") != model_digest:
        return refused(f"the model's files changed after {what} was released (digest {model_digest[:12]}, "
                       f"released {str(recorded.get('model_digest'))[:12]})")
    if recorded.get("card_sha256") != card_sha256:
        return refused(f"the model card changed after {what} was released")
    if recorded.get("card_html_sha256") and recorded["card_html_sha256"] != card_html_sha256:
        return refused(f"the model card's HTML changed after {what} was released")
    return claim


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
        seq = AuditLog.of(log).append(REFUSED_KIND, by, payload, key=key).seq
    except AuditLogError:
        pass  # a broken log is itself an unmet condition; the refusal still stands
    return Release(report=report, name=name, audit_seq=seq)


def release_tags(report: GateReport, by: str, *, log: AuditLog | str | Path | None = None) -> dict[str, str]:
    """The tags of a released version: card hash, model digest, reviewers, gate report, policy, the
    audit log's last hash before the release (``audit_head``) and the log's path."""
    audit = AuditLog.of(log)
    entries = audit.entries()
    head = entries[-1].hash if entries else ""
    reviewers = "; ".join(f"{role}: {', '.join(names)}" for role, names in report.reviewers.items())
    return {"card_sha256": report.card_sha256, "card_html_sha256": report.card_html_sha256 or "",
            "model_digest": report.model_digest, "reviewers": reviewers,
            "gate_report_sha256": report.sha256(), "policy_sha256": report.policy_sha256, "audit_head": head,
            "released_by": by, "backtest_run_id": report.backtest_run_id or "", "source_run_id": report.run_id,
            "audit_log": audit.citation}


def record_release(report: GateReport, name: str, version: str, by: str, head: str, *,
                   log: AuditLog | str | Path | None = None, key=None) -> Entry:
    """Append the ``release`` entry of version ``version`` of ``name``.

    Raises
    ------
    ForecastError
        The log cannot take the entry (the caller undoes the registration).
    """
    payload = {"run_id": report.run_id, "name": name, "version": str(version), "card_sha256": report.card_sha256,
               "card_html_sha256": report.card_html_sha256,
               "model_digest": report.model_digest, "gate_report_sha256": report.sha256(),
               "policy_sha256": report.policy_sha256, "reviewers": report.reviewers, "audit_head": head}
    try:
        return AuditLog.of(log).append(RELEASE_KIND, by, payload, key=key)
    except AuditLogError as error:
        raise ForecastError(f"the release could not be recorded in the audit log, so it was undone: {error}") from None
