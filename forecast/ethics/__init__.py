"""Ethics review and release: the checklists reviewers answer before a model is released.

The checklists are YAML in ``ethics/checklists/`` (a packaged copy ships with the toolkit);
each item says what is asked, what evidence answers it, which reviewer answers it and
whether an unresolved answer blocks release::

    from forecast.ethics import checklist_items, checklists_hash, load_checklists
    checklists = load_checklists()
    checklist_items(checklists)     # one row per item
    checklists_hash(checklists)     # which version of the questions a review answered

Sign-offs, releases and refusals go to a tamper-evident log (hash-chained JSON Lines,
optionally Ed25519-signed)::

    from forecast.ethics import AuditLog
    log = AuditLog("ethics/audit.log.jsonl")
    log.append("review.sign", "amina", {"run_id": run_id, "card_hash": sha, "decision": "approve"})
    log.verify()                     # [] when intact; else every edited, removed or reordered line

The model card, the review and the gate are plain functions of the evidence, with no tracking
store involved: :mod:`forecast.tracking` reads an :class:`Evidence` (the train run, the
backtest behind it, their tables and documents, the model's digest) and :mod:`forecast.pipeline`
has the run-id based calls (``build_card``, ``start_review``, ``evaluate_gate``, ``release``, ...).

The model card is built from the evidence plus the human-written inputs in
``models/cards/<model>.yaml``; its SHA-256 is what reviewers sign::

    from forecast.ethics import card_from_evidence
    card = card_from_evidence(evidence, "models/cards/tiny.yaml")   # fails naming any section it cannot fill
    card.to_markdown(), card.sha256()

Reviewers answer the checklists and sign against the card's hash and the model's digest (a
:class:`ReviewSubject`)::

    from forecast.ethics import ReviewSubject, answer, judge_review, new_review, sign_review
    subject = ReviewSubject(run_id, card_sha256, model_digest, author="amina")
    new_review(subject)                                     # ethics/reviews/<run_id>.yaml
    answer(run_id, "dseg.problem.needs_based", "yes", "the AA framework, p. 3", by="lena")
    sign_review(subject, "omar", "ethics", "approve")       # appended to the audit log
    judge_review(subject).problems                          # what still blocks release

Who may sign is declared in the log itself, by signed entries (the keyring); the policy pins the
keyring's first key and is in force only once an ethics reviewer of the keyring approved it::

    from forecast.ethics import add_member, approve_policy, keyring
    add_member(log, "omar", ["ethics"], "keys/<key_id>.pub", key="keys/omar.pem")   # the first key signs itself
    approve_policy(log, policy, by="omar", key="keys/omar.pem")   # after pinning review.signatures.keyring_root
    keyring(log).members                                           # key id -> Member(name, roles, key)

Many answers at once: an answers file (CSV or YAML, one row per open item with its question)
is checked whole against the review, with the same rules, and recorded in one write::

    from forecast.ethics import answer_from_file, write_answers_template
    write_answers_template(run_id, "answers.csv")           # fill answer, evidence, answered_by_name
    answer_from_file(run_id, "answers.csv")                 # any invalid row: nothing is recorded

The gate judges every condition (pass / fail / insufficient evidence); what a release or a
refusal records in the audit log is written here too::

    from forecast.ethics import judge_gate, record_refusal
    report = judge_gate(evidence, policy=policy)           # GateReport: the table `forecast release` prints
    report.passed, report.to_frame()
"""

from forecast.ethics._audit import (
    DEFAULT_LOG,
    AuditLog,
    AuditLogError,
    Entry,
    Problem,
    PublicKey,
    generate_key,
    load_private_key,
    load_public_keys,
)
from forecast.ethics._logstore import FileLogStore, LogStore, MakeLine
from forecast.ethics._card import (
    CARD_HTML,
    DEFAULT_REVIEW_STATUS,
    CardInputs,
    ImplementationPlan,
    ModelCard,
    card_from_evidence,
    load_card_inputs,
    resolve_card_inputs,
)
from forecast.ethics._evidence import Citation, Evidence, RunRecord
from forecast.ethics._keyring import (
    Keyring,
    Member,
    PolicyApproval,
    add_member,
    approve_policy,
    identity,
    keyring,
    keyring_problems,
    policy_in_force,
    remove_member,
)
from forecast.ethics._review import (
    REVIEWS_DIR,
    Review,
    ReviewItem,
    ReviewState,
    ReviewSubject,
    answer,
    check_sign_off,
    judge_review,
    new_review,
    read_review,
    sign_review,
)
from forecast.ethics._answers import (
    ANSWER_COLUMNS,
    answer_from_file,
    check_answers,
    read_answers_file,
    write_answers_template,
)
from forecast.ethics._checklist_page import CARD_TERMS, RunFiles, checklist_page
from forecast.ethics._gate import Condition, GateReport, judge_gate
from forecast.ethics._sensitivity import LOWER_KIND, approve_lowering, check_lowering, lowers
from forecast.ethics._release import (
    NOT_RELEASED,
    REGISTRY_DESCRIPTION,
    Release,
    ReleaseStatus,
    check_release_request,
    record_refusal,
    record_release,
    release_tags,
    verify_release,
)
from forecast.ethics._checklists import (
    Checklist,
    ChecklistItem,
    checklist_items,
    checklists_hash,
    load_checklists,
)

__all__ = [
    # the review checklists
    "load_checklists", "Checklist", "ChecklistItem", "checklist_items", "checklists_hash",
    # the evidence (read by forecast.tracking)
    "Evidence", "RunRecord", "Citation",
    # the model card
    "card_from_evidence", "resolve_card_inputs", "ModelCard", "CardInputs", "ImplementationPlan",
    "load_card_inputs", "DEFAULT_REVIEW_STATUS",
    # review and sign-off
    "ReviewSubject", "new_review", "answer", "check_sign_off", "sign_review", "judge_review", "read_review",
    "Review", "ReviewItem", "ReviewState", "REVIEWS_DIR",
    # many answers at once (an answers file), and the review as one HTML page
    "write_answers_template", "answer_from_file", "read_answers_file", "check_answers", "ANSWER_COLUMNS",
    "checklist_page", "RunFiles", "CARD_HTML", "CARD_TERMS",
    # the audit log
    "AuditLog", "AuditLogError", "Entry", "Problem", "PublicKey", "generate_key", "load_public_keys",
    "load_private_key", "DEFAULT_LOG", "LogStore", "FileLogStore", "MakeLine",
    # who may sign (the keyring in the log) and the policy in force
    "keyring", "Keyring", "Member", "PolicyApproval", "identity", "add_member", "remove_member", "approve_policy",
    "policy_in_force", "keyring_problems",
    # the release gate and what a release records
    "judge_gate", "GateReport", "Condition", "Release", "ReleaseStatus", "NOT_RELEASED", "check_release_request",
    "record_refusal", "release_tags", "record_release", "verify_release", "REGISTRY_DESCRIPTION",
    # lowering a dataset's sensitivity: a signed decision of an ethics reviewer
    "approve_lowering", "check_lowering", "lowers", "LOWER_KIND",
]
