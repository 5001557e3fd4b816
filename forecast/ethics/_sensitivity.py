"""Lowering a dataset's sensitivity: an ethics reviewer's signed decision, not a free-text reason.

Ingest assesses a level from what the files hold (:mod:`forecast.io._privacy`); everything
downstream (who may read the files, what is encrypted, which admin level is published, which
server may take the runs) follows it. Raising it is always allowed, with a reason. Lowering it
loosens every one of those rules, so it takes a ``sensitivity.lower`` entry in the audit log,
signed by an ethics reviewer of the keyring the policy pins, naming the files (their SHA-256),
the level assessed and the level granted::

    entry = approve_lowering(log, manifest, "moderate", "counts aggregated by the cluster lead",
                             by="omar", key="keys/omar.pem", policy=policy)
    # then: forecast ingest ... --sensitivity moderate --approval <entry.hash>

and :func:`check_lowering` (called by :func:`forecast.pipeline.ingest`) accepts it only for those
same files and levels. The manifest records the entry's hash and its signer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from forecast._names import SENSITIVITY_LEVELS
from forecast.errors import ForecastError
from forecast.ethics._audit import AuditLog, Entry, PublicKey
from forecast.ethics._keyring import _private, attest, identity, keyring
from forecast.policy import Policy, load_policy

__all__ = ["LOWER_KIND", "lowers", "approve_lowering", "check_lowering"]

LOWER_KIND = "sensitivity.lower"
_HOW = ("`forecast review lower-sensitivity MANIFEST --to LEVEL --reason TEXT --by NAME --key KEY` "
        "(an ethics reviewer of the keyring)")


def lowers(level: str | None, assessed: str) -> bool:
    """Whether ``level`` is below the ``assessed`` one (a lowering needs a signed approval)."""
    return level is not None and SENSITIVITY_LEVELS.index(level) < SENSITIVITY_LEVELS.index(assessed)


def _root(policy) -> str:
    """The keyring root the policy (a Policy, a path, or None: ethics/policy.yaml) pins."""
    policy = policy if isinstance(policy, Policy) else load_policy(policy)
    root = policy.review.signatures.keyring_root if policy.review is not None else None
    if not root:
        raise ForecastError(f"{policy.source}: the policy pins no keyring root (review.signatures.keyring_root), so "
                            "no reviewer can be told from a forger: a sensitivity level cannot be lowered until the "
                            "keyring is started and pinned (see `forecast review keyring --help`)")
    return root


def _payload(files: Iterable[str], assessed: str, level: str, reason: str = "") -> dict:
    return {"files": sorted(files), "assessed": assessed, "level": level, **({"reason": reason} if reason else {})}


def approve_lowering(log: AuditLog | str | Path | None, manifest: Mapping, level: str, reason: str, *, by: str,
                     key, policy=None) -> Entry:
    """Append the signed ``sensitivity.lower`` entry that lets the files of ``manifest`` (a
    manifest as ``forecast ingest`` wrote it) be ingested at ``level``.

    Raises
    ------
    ForecastError
        ``level`` is not below the assessed level, the reason is empty, the policy pins no
        keyring, or ``key`` is not an ethics reviewer's of that keyring under the name ``by``.
    """
    assessed = (manifest.get("sensitivity") or {}).get("assessed")
    if level not in SENSITIVITY_LEVELS or assessed not in SENSITIVITY_LEVELS:
        raise ForecastError(f"levels are {', '.join(SENSITIVITY_LEVELS)}: got {level!r}, the manifest assessed "
                            f"{assessed!r}")
    if not lowers(level, assessed):
        raise ForecastError(f"{level} is not below the assessed level {assessed}: raising a level needs no approval "
                            "(forecast ingest --sensitivity LEVEL --sensitivity-reason TEXT)")
    if not reason.strip():
        raise ForecastError("say why the level may be lowered (--reason): the reviewer's reason is what is signed")
    files = [f["sha256"] for f in manifest.get("files", []) if f.get("sha256")]
    if not files:
        raise ForecastError("the manifest names no file with its SHA-256: ingest the files first, then approve")
    log = AuditLog.of(log)
    ring = keyring(log, root=_root(policy))
    if ring.root_problem():
        raise ForecastError(f"{log.location}: {ring.root_problem()}")
    private = _private(key)
    member = ring.members.get(PublicKey.of(private.public_key()).key_id)
    if member is None or member.identity != identity(by) or "ethics" not in member.roles:
        whose = ("a key that is not in the keyring" if member is None else
                 f"{member.name}'s key" if member.identity != identity(by) else
                 f"{member.name}'s key, which holds the role(s) {', '.join(member.roles)} only")
        raise ForecastError(f"{log.location}: a lowering is signed by an ethics reviewer of the keyring with their own key; "
                            f"{by} signs with {whose} (see `forecast review keyring list --log {log.location}`)")
    return log.append(LOWER_KIND, member.name, _payload(files, assessed, level, reason.strip()), key=private)


def _signer_problem(entry: Entry, ring) -> str | None:
    root_problem = ring.root_problem()
    if root_problem:
        return root_problem
    found = attest(entry, ring, "ethics", required=True, level="this")
    if found.problem:
        return found.problem.replace("approval by", "the lowering signed by")
    return None


def check_lowering(log: AuditLog | str | Path | None, approval: str | None, files: Iterable[str], assessed: str,
                   level: str, *, policy=None) -> Entry:
    """The ``sensitivity.lower`` entry ``approval`` (its hash) when it grants ``level`` for
    exactly these ``files`` (SHA-256) assessed at ``assessed``, signed by an ethics reviewer of
    the pinned keyring, in a log that verifies.

    Raises
    ------
    ForecastError
        No approval, or one that does not hold (the message says which part, and how to get one).
    """
    if not approval:
        raise ForecastError(f"lowering the sensitivity from {assessed} to {level} is an ethics reviewer's signed "
                            f"decision, not a reason typed here: ask one to run {_HOW}, then ingest again with "
                            "--sensitivity LEVEL --approval HASH")
    log = AuditLog.of(log)
    entries, problems = log.inspect()
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ForecastError(f"{log.location} fails to verify ({errors[0]}): its approvals cannot be trusted; run "
                            "`forecast audit verify`")
    entry = next((e for e in entries if e.hash == approval.strip()), None)
    if entry is None or entry.kind != LOWER_KIND:
        raise ForecastError(f"{log.location} has no sensitivity.lower entry {approval.strip()[:16]}: pass --audit-log, "
                            f"the log it was written to, or ask for one with {_HOW}")
    wanted, granted = _payload(files, assessed, level), entry.payload
    differs = [k for k in ("files", "assessed", "level") if granted.get(k) != wanted[k]]
    if differs:
        what = {"files": "other files (their SHA-256 differ)", "assessed": f"data assessed {granted.get('assessed')}",
                "level": f"level {granted.get('level')}"}
        raise ForecastError(f"approval {entry.hash[:16]} was granted for {', '.join(what[k] for k in differs)}; this "
                            f"ingest lowers {assessed} to {level}: ask for an approval of these files ({_HOW})")
    problem = _signer_problem(entry, keyring(log, root=_root(policy)))
    if problem:
        raise ForecastError(f"approval {entry.hash[:16]} does not count: {problem}")
    return entry

