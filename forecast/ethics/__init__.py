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

The model card is built from a train run and its backtest (same spec, same cube) plus the
human-written inputs in ``models/cards/<model>.yaml``; its SHA-256 is what reviewers sign::

    from forecast.ethics import build_card, write_card
    card = build_card(train_run_id)          # fails naming any section it cannot fill
    sha256, uris = write_card(card, train_run_id)

Reviewers answer the checklists and sign against the card's hash and the model's digest::

    from forecast.ethics import answer, review_state, sign, start_review
    start_review(run_id)                                  # ethics/reviews/<run_id>.yaml
    answer(run_id, "dseg.problem.needs_based", "yes", "the AA framework, p. 3", by="amina")
    sign(run_id, "amina", "ethics", "approve")            # appended to the audit log
    review_state(run_id).problems                         # what still blocks release

The gate judges every condition (pass / fail / insufficient evidence) and registers the model
in the MLflow registry, alias ``released``, only when all pass::

    from forecast.ethics import evaluate_gate, release, release_status
    evaluate_gate(run_id).to_frame()                      # the table `forecast release` prints
    outcome = release(run_id, "somalia-arrivals", by="amina")
    outcome.released, outcome.version                     # (False, None) when refused
    release_status(run_id).label                          # "NOT RELEASED — for review only" until then
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
from forecast.ethics._card import (
    DEFAULT_REVIEW_STATUS,
    CardInputs,
    ImplementationPlan,
    ModelCard,
    build_card,
    load_card_inputs,
    write_card,
)
from forecast.ethics._review import (
    REVIEWS_DIR,
    Review,
    ReviewItem,
    ReviewState,
    answer,
    model_digest,
    read_review,
    review_state,
    sign,
    start_review,
)
from forecast.ethics._gate import (
    NOT_RELEASED,
    RELEASED_ALIAS,
    Condition,
    GateReport,
    Release,
    ReleaseStatus,
    evaluate_gate,
    release,
    release_status,
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
    # the model card
    "build_card", "write_card", "ModelCard", "CardInputs", "ImplementationPlan", "load_card_inputs",
    "DEFAULT_REVIEW_STATUS",
    # review and sign-off
    "start_review", "answer", "sign", "review_state", "read_review", "model_digest", "Review",
    "ReviewItem", "ReviewState", "REVIEWS_DIR",
    # the audit log
    "AuditLog", "AuditLogError", "Entry", "Problem", "PublicKey", "generate_key", "load_public_keys",
    "load_private_key", "DEFAULT_LOG",
    # the release gate
    "evaluate_gate", "release", "release_status", "GateReport", "Condition", "Release", "ReleaseStatus",
    "NOT_RELEASED", "RELEASED_ALIAS",
]
