"""Review records and sign-offs: reviewers answer the checklists and approve or reject a run.

What is reviewed is a :class:`ReviewSubject` (:func:`forecast.tracking.read_review_subject`; the
run-id based calls are :mod:`forecast.pipeline`'s ``start_review``, ``sign``, ``review_state``).
Its review is a YAML file, ``ethics/reviews/<run_id>.yaml``, written by :func:`new_review` from
the checklists and answered with :func:`answer` (or by editing the file; it is validated on every
read). :func:`sign_review` appends a ``review.sign`` entry to the audit log, bound to what
reviewers read (:data:`BOUND`: both card files, the model, the cited backtest and its digest) and
to their answers. :func:`judge_review` applies the policy's ``review:`` rules: a change to any of
these voids earlier sign-offs, both roles must approve, the author is never the only approver, a
rejection blocks until a new review, approvals expire.

Who signed is a person, not a string (:mod:`forecast.ethics._keyring`): a sign-off signed by a
key of the keyring is its member's, and must name that member; for data whose sensitivity the
policy lists in ``review.signatures.required_for`` only such sign-offs count, in a role the key
holds. One person fills one role of a review (a second role's approval does not count), and the
author is matched by identity (:func:`~forecast.ethics._keyring.identity`: ``Root`` is ``root``).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from forecast.errors import ForecastError
from forecast.ethics._audit import AuditLog, Entry, PublicKey, load_private_key
from forecast.ethics._checklists import ROLES, checklists_hash, load_checklists
from forecast.ethics._keyring import attest, identity, keyring
from forecast.policy import load_policy

__all__ = ["REVIEWS_DIR", "ReviewItem", "Review", "ReviewState", "ReviewSubject", "new_review", "answer",
           "check_sign_off", "sign_review", "judge_review", "read_review"]

#: Where review records live (relative to the working folder).
REVIEWS_DIR = Path("ethics/reviews")
ANSWERS = ("yes", "no", "n/a")
DECISIONS = ("approve", "reject")
SIGN_KIND = "review.sign"
#: What a sign-off is bound to besides the answers: field -> (its name, why an approval it changed under is void).
BOUND = {"card_sha256": ("model card", "the model card changed after it was signed"),
         "card_html_sha256": ("model card's HTML", "the card's HTML (model_card.html) changed after it was signed"),
         "model_digest": ("model", "the model changed"),
         "backtest_run_id": ("card's backtest", "the card's evidence changed after it was signed: it now cites "
                             "another backtest run (tag card_backtest_run_id)"),
         "backtest_digest": ("card's evidence", "the backtest the card was written from changed after it was signed "
                             "(tag card_backtest_digest: its tables, documents, metrics or tags)")}
# libyaml when present: a review has a hundred items and is read on every answer
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class ReviewItem(BaseModel):
    """One checklist item of a review, with its answer (``None`` until answered)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    question: str
    evidence_asked: str
    answered_by: Literal["technical", "ethics"]
    blocking: bool
    answer: Literal["yes", "no", "n/a"] | None = None
    evidence: str | None = None
    answered_by_name: str | None = None

    @model_validator(mode="after")
    def _answer_complete(self) -> ReviewItem:
        if self.answer is None:
            if self.evidence or self.answered_by_name:
                raise ValueError("has evidence or answered_by_name but no answer (yes, no or n/a)")
            return self
        if self.answer in ("yes", "n/a") and not (self.evidence or "").strip():
            why = "the reason it does not apply" if self.answer == "n/a" else "the evidence"
            raise ValueError(f"answered {self.answer!r} without evidence: give {why}")
        if not (self.answered_by_name or "").strip():
            raise ValueError("answered without answered_by_name (who answered)")
        return self


class Review(BaseModel):
    """The review record of one train run (the YAML file)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    card_sha256: str
    model_digest: str
    checklists_hash: str
    started: str
    card_html_sha256: str | None = None
    backtest_run_id: str | None = None
    backtest_digest: str | None = None
    items: list[ReviewItem]

    def item(self, item_id: str) -> ReviewItem:
        for item in self.items:
            if item.id == item_id:
                return item
        ids = [i.id for i in self.items]
        close = difflib.get_close_matches(item_id, ids, n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; items: {', '.join(ids[:5])}, ..."
        raise ForecastError(f"the review of run {self.run_id} has no item {item_id!r}{hint}")

    def answers_sha256(self) -> str:
        """SHA-256 of every item's answer, evidence and answerer (canonical JSON, by id): what an
        approval vouches for, so that an answer or its evidence edited afterwards voids it."""
        rows = sorted(({"id": i.id, "answer": i.answer, "evidence": i.evidence, "answered_by_name": i.answered_by_name}
                       for i in self.items), key=lambda row: row["id"])
        text = json.dumps(rows, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def changed(self, subject: ReviewSubject) -> list[str]:
        """The fields of :data:`BOUND` on which the run now differs from what this review answered."""
        return [name for name in BOUND if getattr(subject, name) != getattr(self, name)]


@dataclass(frozen=True)
class ReviewState:
    """Where the review of a run stands; ``approved`` is True only when ``problems`` is empty."""

    run_id: str
    card_sha256: str | None
    model_digest: str
    checklist_complete: bool
    unanswered: list[str] = field(default_factory=list)
    blocking_no: list[str] = field(default_factory=list)
    valid_approvals: dict[str, list[str]] = field(default_factory=dict)
    checklist_problems: list[str] = field(default_factory=list)
    sign_off_problems: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        """Everything that blocks release: the checklist's problems, then the sign-offs'."""
        return [*self.checklist_problems, *self.sign_off_problems]

    @property
    def approved(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ReviewSubject:
    """What a review is about: a train run, the SHA-256 of its model card (None: no card yet), the
    digest of its model's files, who ran it (the author never approves alone), the data's
    sensitivity (tag ``sensitivity``: whether sign-offs must be signed; None: unknown), and what
    reviewers also read: the card's HTML and its backtest (``card_html_sha256``, ``card_backtest_run_id``,
    ``card_backtest_digest``: :meth:`RunRecord.digest` of the backtest when the card was written)."""

    run_id: str
    card_sha256: str | None
    model_digest: str
    author: str | None = None
    sensitivity: str | None = None
    card_html_sha256: str | None = None
    backtest_run_id: str | None = None
    backtest_digest: str | None = None


def _card_sha256(subject: ReviewSubject) -> str:
    if not subject.card_sha256:
        raise ForecastError(f"run {subject.run_id} has no model card (tag card_sha256); run "
                            f"`forecast card {subject.run_id}` first")
    return subject.card_sha256


# --- the review file ----------------------------------------------------------------------

def _path(run_id: str, reviews_dir: str | Path) -> Path:
    return Path(reviews_dir) / f"{run_id}.yaml"


def _now() -> datetime:
    return datetime.now(timezone.utc)


def new_review(subject: ReviewSubject, *, reviews_dir: str | Path = REVIEWS_DIR, restart: bool = False) -> Path:
    """Write the review record of a train run from the checklists, every item unanswered.

    Parameters
    ----------
    subject : ReviewSubject
        The train run; it must have a model card (``card_sha256``).
    reviews_dir : path
        Where review records live (``ethics/reviews``).
    restart : bool
        Start a new review when one exists (needed after a rejection); the old file is kept,
        renamed ``<run_id>.<time>.yaml``.

    Returns
    -------
    Path
        ``<reviews_dir>/<run_id>.yaml``.
    """
    run_id = subject.run_id
    _card_sha256(subject)
    path = _path(run_id, reviews_dir)
    if path.exists():
        if not restart:
            raise ForecastError(f"{path}: a review of run {run_id} already exists; answer it, or start a new one with "
                                f"`forecast review start {run_id} --restart` (the old file is kept)")
        path.rename(path.with_name(f"{run_id}.{_now().strftime('%Y%m%dT%H%M%S%fZ')}.yaml"))
    checklists = load_checklists()
    items = [ReviewItem(id=i.id, question=i.question, evidence_asked=i.evidence, answered_by=i.answered_by,
                        blocking=i.blocking) for c in checklists for i in c.items]
    review = Review(run_id=run_id, checklists_hash=checklists_hash(checklists), started=_now().isoformat(),
                    items=items, **{name: getattr(subject, name) for name in BOUND})
    _write(review, path)
    return path


def read_review(run_id: str, *, reviews_dir: str | Path = REVIEWS_DIR) -> Review:
    """Read and validate the review record of a run; errors name the file and the item."""
    path = _path(run_id, reviews_dir)
    if not path.is_file():
        raise ForecastError(f"{path}: no review of run {run_id}; start one with `forecast review start {run_id}`")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except (yaml.YAMLError, RecursionError) as error:
        raise ForecastError(f"{path}: the review is not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise ForecastError(f"{path}: a review is a mapping with run_id, card_sha256, ..., items; "
                            f"got {type(data).__name__}")
    try:
        review = Review(**data)
    except ValidationError as error:
        lines = [f"  {_where(e['loc'], data)}: {_message(e)}" for e in error.errors()]
        raise ForecastError(f"{path}: invalid review\n" + "\n".join(lines)) from None
    if review.run_id != run_id:
        raise ForecastError(f"{path}: the file reviews run {review.run_id}, not {run_id}")
    return review


def _where(loc: tuple, data: dict) -> str:
    if len(loc) >= 2 and loc[0] == "items" and isinstance(loc[1], int):
        items = data.get("items") or []
        name = items[loc[1]].get("id") if loc[1] < len(items) and isinstance(items[loc[1]], dict) else None
        where = f"item {name!r}" if name else f"items[{loc[1]}]"
        return " ".join([where, ".".join(map(str, loc[2:]))]).strip()
    return ".".join(map(str, loc)) or "review"


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown key (a typo? it would otherwise be silently ignored)"
    if error["type"] == "missing":
        return "missing (required)"
    if error["type"] == "value_error":  # a whole-item rule; its input is the whole item
        return error["msg"].removeprefix("Value error, ")
    return f"{error['msg']}, got {error.get('input')!r}"


def _write(review: Review, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("# Review record written by `forecast review start`; answer items with `forecast review answer`\n"
            "# or edit answer (yes, no, n/a), evidence and answered_by_name here.\n")
    text += yaml.dump(review.model_dump(mode="json"), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    tmp = path.with_suffix(".yaml.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def answer(run_id: str, item_id: str, answer: str, evidence: str | None, *, by: str,
           reviews_dir: str | Path = REVIEWS_DIR) -> ReviewItem:
    """Record the answer to one item: ``yes`` / ``n/a`` need evidence (for n/a, the reason).

    Many answers at once: :func:`forecast.ethics.answer_from_file` (the same rules)."""
    review = read_review(run_id, reviews_dir=reviews_dir)
    item = review.item(item_id)
    problem = _answer_problem(answer, evidence, by)
    if problem is not None:
        field_, message = problem
        raise ForecastError({"answer": f"answer {message}", "answered_by_name": "say who answers (by=NAME)",
                             "evidence": f"item {item_id}: {message}"}[field_])
    updated = _answered(item, answer, evidence, by)
    review.items[review.items.index(item)] = updated
    _write(review, _path(run_id, reviews_dir))
    return updated


def _answer_problem(answer: str, evidence: str | None, by: str | None) -> tuple[str, str] | None:
    """What is wrong with an answer, as ``(field, message)``, or None: the one rule of answers,
    one at a time or from a file (``answer``, ``answered_by_name``, ``evidence``)."""
    if answer not in ANSWERS:
        return "answer", f"must be one of {', '.join(ANSWERS)}; got {answer!r}"
    if not by or not by.strip():
        return "answered_by_name", "empty: say who answers"
    if answer in ("yes", "n/a") and not (evidence or "").strip():
        need = "the reason the item does not apply" if answer == "n/a" else "the evidence (an artifact, a document)"
        return "evidence", f"answer {answer!r} needs {need}"
    return None


def _answered(item: ReviewItem, answer: str, evidence: str | None, by: str) -> ReviewItem:
    """The item with its answer, after :func:`_answer_problem` found nothing wrong."""
    return item.model_copy(update={"answer": answer, "evidence": (evidence or "").strip() or None,
                                   "answered_by_name": by.strip()})


# --- sign-offs ----------------------------------------------------------------------------

def check_sign_off(reviewer: str, role: str, decision: str) -> None:
    """Refuse a sign-off with an unknown role or decision or without a reviewer's name."""
    if role not in ROLES:
        raise ForecastError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    if decision not in DECISIONS:
        raise ForecastError(f"decision must be one of {', '.join(DECISIONS)}; got {decision!r}")
    if not reviewer or not reviewer.strip():
        raise ForecastError("the reviewer's name is empty")


def sign_review(subject: ReviewSubject, reviewer: str, role: str, decision: str, comment: str = "", *, key=None,
                log: AuditLog | str | Path | None = None, reviews_dir: str | Path = REVIEWS_DIR) -> Entry:
    """Append a ``review.sign`` entry to the audit log, bound to the run's current card and model.

    Refuses to approve while items of the reviewer's role are unanswered or a blocking one is
    answered "no", or when the card or model changed since the review started.

    Returns
    -------
    Entry
        The audit-log entry written.
    """
    check_sign_off(reviewer, role, decision)
    run_id = subject.run_id
    _card_sha256(subject)
    review = read_review(run_id, reviews_dir=reviews_dir)
    if decision == "approve":
        if changed := review.changed(subject):
            raise ForecastError(f"the {BOUND[changed[0]][0]} of run {run_id} changed since the review started; start "
                                f"a new review with `forecast review start {run_id} --restart`")
        mine = [i for i in review.items if i.answered_by == role]
        open_items = [i.id for i in mine if i.answer is None]
        blocking = [i.id for i in mine if i.blocking and i.answer == "no"]
        if open_items or blocking:
            lines = ([f"  unanswered: {i}" for i in open_items] + [f"  blocking, answered no: {i}" for i in blocking])
            raise ForecastError(f"cannot approve run {run_id} as {role} reviewer:\n" + "\n".join(lines)
                                + f"\n  answer them with `forecast review answer {run_id} ITEM ...`, or reject")
    payload = {"run_id": run_id, **{name: getattr(subject, name) for name in BOUND},
               "checklists_hash": review.checklists_hash, "answers_sha256": review.answers_sha256(), "role": role,
               "decision": decision, "comment": comment, "review_started": review.started}
    log = AuditLog.of(log)
    if key is not None:
        _check_own_key(log, key, reviewer, role)
    return log.append(SIGN_KIND, reviewer.strip(), payload, key=key)


def _check_own_key(log: AuditLog, key, reviewer: str, role: str) -> None:
    """Refuse to sign with a keyring key under another name, or in a role it does not hold: such a
    sign-off would never count, and under another name it reads as a forgery."""
    private = load_private_key(key) if isinstance(key, str | Path) else key
    if not hasattr(private, "public_key"):
        return  # not a key at all: AuditLog.append says so
    member = keyring(log).members.get(PublicKey.of(private.public_key()).key_id)
    if member is None:
        return
    if member.identity != identity(reviewer):
        raise ForecastError(f"the key {member.key_id} is {member.name}'s in the keyring of {log.location}, not "
                            f"{reviewer.strip()}'s: sign as {member.name}, or with your own key")
    if role not in member.roles:
        raise ForecastError(f"{member.name}'s key holds the role(s) {', '.join(member.roles)}, not {role}: an ethics "
                            f"reviewer adds the role with `forecast review keyring add` (a key of its own)")


def judge_review(subject: ReviewSubject, *, reviews_dir: str | Path = REVIEWS_DIR,
                 log: AuditLog | str | Path | None = None, policy=None, now: datetime | None = None) -> ReviewState:
    """Apply the review rules to a run; ``state.approved`` is True only when nothing is wrong.

    Parameters
    ----------
    subject : ReviewSubject
        The train run, its card's hash, its model's digest and its author.
    reviews_dir : path
    log : AuditLog or path, optional
        The audit log holding the sign-offs (default ``ethics/audit.log.jsonl``).
    policy : Policy, optional
        Default: :func:`forecast.policy.load_policy`; its ``review`` section holds the rules.
    now : datetime, optional
        For sign-off expiry (default: now, UTC).

    Raises
    ------
    ForecastError
        Only when the review file is invalid; every unmet rule (no review yet included) is a
        readable line of ``state.problems``.
    """
    run_id, card, author, digest = subject.run_id, subject.card_sha256, subject.author, subject.model_digest
    policy = load_policy() if policy is None else policy
    if not _path(run_id, reviews_dir).is_file():
        needed = policy.review.needed() if policy.review is not None else {}
        return ReviewState(run_id=run_id, card_sha256=card, model_digest=digest, checklist_complete=False,
                           valid_approvals={role: [] for role in ROLES},
                           checklist_problems=[f"no review of run {run_id}: start one with "
                                               f"`forecast review start {run_id}`"],
                           sign_off_problems=[f"no valid {role} approval ({n} needed)" for role, n in needed.items()]
                           or ["no sign-off: there is no review"])
    review = read_review(run_id, reviews_dir=reviews_dir)
    now = _now() if now is None else now
    problems: list[str] = []  # the checklist's
    if card is None:
        problems.append(f"run {run_id} has no model card: run `forecast card {run_id}`")
    unanswered = [i.id for i in review.items if i.answer is None]
    blocking_no = [i.id for i in review.items if i.blocking and i.answer == "no"]
    if unanswered:
        problems.append(f"{len(unanswered)} checklist item(s) unanswered: {', '.join(unanswered[:5])}"
                        + (", ..." if len(unanswered) > 5 else ""))
    problems += [f"blocking item {i} answered no" for i in blocking_no]
    if changed := review.changed(subject):
        problems.append(f"the review answered an earlier {' and '.join(BOUND[name][0] for name in changed)}; start "
                        f"a new review (forecast review start {run_id} --restart)")
    valid: dict[str, list[str]] = {role: [] for role in ROLES}
    signing, approvers, notes = _sign_offs(subject, review, AuditLog.of(log), policy, now, valid)
    if policy.review is None:
        signing.append(f"the policy {policy.source} has no review section: no approval rules, no model is approved")
    else:
        for role, needed in policy.review.needed().items():
            have = len(valid[role])
            if have < needed:  # why approvals in this role did not count, then what is missing
                signing += notes[role]
                signing.append(f"no valid {role} approval ({needed} needed)" if have == 0
                               else f"{have} valid {role} approval(s), {needed} needed")
    if author and set(approvers) == {identity(author)}:
        signing.append(f"the run's author {author} is the only approver")
    return ReviewState(run_id=run_id, card_sha256=card, model_digest=digest, checklist_complete=not unanswered,
                       unanswered=unanswered, blocking_no=blocking_no, valid_approvals=valid,
                       checklist_problems=problems, sign_off_problems=signing)


def _sign_offs(subject, review, log, policy, now, valid) -> tuple[list[str], dict[str, str], dict[str, list[str]]]:
    """The problems of the run's sign-offs, filling ``valid`` (role -> names); each approver's
    identity with the one role that person fills in this review; and per role, the approvals that
    do not count, which matter only while the role lacks approvals (a reviewer who forgot --key
    signs again)."""
    notes: dict[str, list[str]] = {role: [] for role in ROLES}
    entries, problems = log.inspect()
    problems = [p for p in problems if p.severity == "error"]
    if problems:
        return [f"the audit log {log.location} fails to verify ({len(problems)} problem(s), first: {problems[0]}); "
                "its sign-offs cannot be trusted: run `forecast audit verify`"], {}, notes
    out, held = [], {}
    rules = policy.review
    expire_days = rules.expire_days if rules is not None else None
    required = rules is not None and rules.signatures.required(subject.sensitivity)
    ring = keyring(log, root=rules.signatures.keyring_root if rules is not None else None)
    for entry in entries:
        p = entry.payload
        if entry.kind != SIGN_KIND or p.get("run_id") != review.run_id or p.get("review_started") != review.started:
            continue  # another run, or a review before the current one
        who, role, day = entry.actor, p.get("role"), entry.time[:10]
        if p.get("decision") == "reject":
            out.append(f"rejected by {who} ({role}) on {day}: a new review is needed "
                       f"(forecast review start {review.run_id} --restart)")
        elif voided := _voided(p, subject, review):
            out.append(f"approval by {who} voided: {voided}")
        elif expire_days is not None and (
                expires := datetime.fromisoformat(entry.time) + timedelta(days=expire_days)) < now:
            out.append(f"approval by {who} expired on {expires.date().isoformat()}")
        elif role in valid:
            seen = attest(entry, ring, role, required=required, level=subject.sensitivity)
            out += _count(seen, role, valid, held, notes[role])
    return out, held, notes


def _voided(payload: dict, subject: ReviewSubject, review: Review) -> str | None:
    """Why an approval no longer stands for what is reviewed now (one older than BOUND covers less), or None."""
    restart = f"start a new review (forecast review start {subject.run_id} --restart)"
    if "answers_sha256" not in payload:
        return f"it was signed before sign-offs covered the answers, the card's HTML and its backtest: {restart}"
    changed = [why for name, (_, why) in BOUND.items() if payload.get(name) != getattr(subject, name)]
    answers = payload["answers_sha256"] != review.answers_sha256()
    return changed[0] if changed else f"the answers changed after it was signed: {restart}" if answers else None


def _count(seen, role: str, valid: dict[str, list[str]], held: dict[str, str], notes: list[str]) -> list[str]:
    """Count one approval unless it does not count (noted in ``notes``): its own problem, or its
    person already approved in another role of this review (one person, one role). Returned, so
    blocking whatever else holds: a signature under another member's name, never an accident."""
    if seen.code == "signed-by-another":
        return [seen.problem]
    if seen.problem is not None:
        notes.append(seen.problem)
        return []
    first = held.get(seen.identity)
    if first is not None and first != role:
        notes.append(f"approval by {seen.who} as {role} not counted: {seen.who} already approved as {first} (one "
                     "person fills one role of a review)")
        return []
    if first is None:  # else the same person again, in the same role: one approval
        held[seen.identity] = role
        valid[role].append(seen.who)
    return []
