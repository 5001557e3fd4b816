"""The review of a train run by its id: MLflow says what is reviewed, the review files say the rest.

Answers are plain files (``answer`` one at a time, ``answer_from_file`` many at once from the
file ``write_answers_template`` writes); :func:`write_checklist_page` joins the review with the
run's card and artifacts in one HTML page.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from forecast.errors import ForecastError
from forecast.ethics import (
    CARD_HTML,
    REVIEWS_DIR,
    AuditLog,
    Entry,
    ReviewState,
    RunFiles,
    answer,
    answer_from_file,
    check_sign_off,
    checklist_page,
    judge_review,
    new_review,
    read_review,
    sign_review,
    write_answers_template,
)
from forecast.tracking import Artifacts, get_run, open_audit_log, read_review_subject

__all__ = ["start_review", "answer", "answer_from_file", "write_answers_template", "sign", "review_state",
           "write_checklist_page"]

_PURPOSE = "reviews are of runs of `forecast train`"


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

    ``log``: the audit log (a path, ``"mlflow:audit"``, or an :class:`AuditLog`); default the
    team's shared log on the tracking server when ``tracking_uri`` is a server, else
    ``ethics/audit.log.jsonl`` (:func:`forecast.tracking.open_audit_log`).

    Returns
    -------
    Entry
        The audit-log entry written.
    """
    check_sign_off(reviewer, role, decision)  # before the model is read
    subject = read_review_subject(run_id, tracking_uri=tracking_uri)
    return sign_review(subject, reviewer, role, decision, comment, key=key,
                       log=open_audit_log(log, tracking_uri=tracking_uri), reviews_dir=reviews_dir)


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
    return judge_review(subject, reviews_dir=reviews_dir, log=open_audit_log(log, tracking_uri=tracking_uri),
                        policy=policy, now=now)


def write_checklist_page(run_id: str, out: str | Path, *, tracking_uri: str | None = None,
                         reviews_dir: str | Path = REVIEWS_DIR, log: AuditLog | str | Path | None = None,
                         policy=None, now: datetime | None = None) -> Path:
    """Write the review of a run as one HTML page: every question, its evidence linked into the
    model card's sections and the artifacts of the train run and its backtest, the answers so
    far and where the review stands.

    Parameters
    ----------
    run_id : str
        A train run whose review was started (``start_review``).
    out : path
        The HTML file (its folder is created).
    tracking_uri, reviews_dir, log, policy, now
        As in :func:`review_state`.

    Returns
    -------
    Path
        ``out``.
    """
    review = read_review(run_id, reviews_dir=reviews_dir)  # no review yet: say so before reading MLflow
    client, run = get_run(run_id, kind="train", tracking_uri=tracking_uri, purpose=_PURPOSE)
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = Artifacts(client, tmp)
        runs = [RunFiles(run_id, "train", run.info.artifact_uri, tuple(artifacts.files(run_id)))]
        card = artifacts.read(run_id, CARD_HTML) if CARD_HTML in runs[0].files else None
        card_html = card.read_text(encoding="utf-8") if card is not None else None
        backtest_id = run.data.tags.get("card_backtest_run_id")
        if backtest_id:
            try:
                _, backtest = get_run(backtest_id, client=client)
            except ForecastError:
                backtest = None  # deleted since the card was written: the page links the train run only
            if backtest is not None:
                runs.append(RunFiles(backtest_id, "backtest", backtest.info.artifact_uri,
                                     tuple(artifacts.files(backtest_id))))
    state = review_state(run_id, tracking_uri=tracking_uri, reviews_dir=reviews_dir, log=log, policy=policy, now=now)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(checklist_page(review, runs=runs, card_html=card_html, state=state), encoding="utf-8")
    return out
