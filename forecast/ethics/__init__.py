"""Ethics review and release: the checklists reviewers answer before a model is released.

The checklists are YAML in ``ethics/checklists/`` (a packaged copy ships with the toolkit);
each item says what is asked, what evidence answers it, which reviewer answers it and
whether an unresolved answer blocks release::

    from forecast.ethics import checklist_items, checklists_hash, load_checklists
    checklists = load_checklists()
    checklist_items(checklists)     # one row per item
    checklists_hash(checklists)     # which version of the questions a review answered
"""

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
]
