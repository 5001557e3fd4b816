"""The review of a train run by its id: MLflow says what is reviewed, the review files say the rest."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from forecast.ethics import (
    REVIEWS_DIR,
    AuditLog,
    Entry,
    ReviewState,
    answer,
    check_sign_off,
    judge_review,
    new_review,
    sign_review,
)
from forecast.tracking import read_review_subject

__all__ = ["start_review", "answer", "sign", "review_state"]


def start_review(run_id: str, *, tracking_uri: str | None = None, reviews_dir: str | Path = REVIEWS_DIR,
                 restart: bool = False) -> Path:
    """Write the review record of a train run from the checklists, every item unanswered.

    Parameters
    ----------
    run_id : str
        A train run with a model card (tag ``card_sha256``).
    tracking_uri : str, optional
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
    return new_review(read_review_subject(run_id, tracking_uri=tracking_uri), reviews_dir=reviews_dir,
                      restart=restart)


def sign(run_id: str, reviewer: str, role: str, decision: str, comment: str = "", *, key=None,
         log: AuditLog | str | Path | None = None, tracking_uri: str | None = None,
         reviews_dir: str | Path = REVIEWS_DIR) -> Entry:
    """Append a ``review.sign`` entry to the audit log, bound to the run's current card and model.

    Refuses to approve while items of the reviewer's role are unanswered or a blocking one is
    answered "no", or when the card or model changed since the review started.

    Returns
    -------
    Entry
        The audit-log entry written.
    """
    check_sign_off(reviewer, role, decision)  # before the model is read
    subject = read_review_subject(run_id, tracking_uri=tracking_uri)
    return sign_review(subject, reviewer, role, decision, comment, key=key, log=log, reviews_dir=reviews_dir)


def review_state(run_id: str, *, tracking_uri: str | None = None, reviews_dir: str | Path = REVIEWS_DIR,
                 log: AuditLog | str | Path | None = None, policy=None, now: datetime | None = None) -> ReviewState:
    """Apply the review rules to a run; ``state.approved`` is True only when nothing is wrong.

    Raises
    ------
    ForecastError
        Only when the run cannot be read or its review file is invalid; every unmet rule (no
        review yet included) is a readable line of ``state.problems``.
    """
    subject = read_review_subject(run_id, tracking_uri=tracking_uri)
    return judge_review(subject, reviews_dir=reviews_dir, log=log, policy=policy, now=now)
