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
    # the audit log
    "AuditLog", "AuditLogError", "Entry", "Problem", "PublicKey", "generate_key", "load_public_keys",
    "load_private_key", "DEFAULT_LOG",
]
