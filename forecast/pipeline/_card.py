"""The model card of a train run: read its evidence from MLflow, build the card, log it back."""

from __future__ import annotations

from pathlib import Path

from forecast.errors import ForecastError
from forecast.ethics import DEFAULT_REVIEW_STATUS, CardInputs, ModelCard, card_from_evidence, resolve_card_inputs
from forecast.tracking import log_card, read_card_evidence, read_run

__all__ = ["build_card", "write_card"]

_PURPOSE = "a model card is about a run of `forecast train --triggers models/triggers.yaml`"


def build_card(train_run_id: str, inputs: CardInputs | str | Path | None = None, *,
               backtest_run_id: str | None = None, tracking_uri: str | None = None,
               review_status: str = DEFAULT_REVIEW_STATUS) -> ModelCard:
    """Build the model card of a ``forecast train`` run from MLflow.

    Parameters
    ----------
    train_run_id : str
        Run id printed by ``forecast train --triggers ...``.
    inputs : CardInputs, path or None
        The human-authored sections; a path is read with :func:`forecast.ethics.load_card_inputs`;
        None reads ``models/cards/<model>.yaml`` (relative to the working folder).
    backtest_run_id : str, optional
        The evidence; default: the latest backtest parent run of the experiment with a child
        run of the same spec hash on the same cube hash.
    tracking_uri : str, optional
    review_status : str
        Shown at the top as a watermark and in the last section.

    Returns
    -------
    ModelCard

    Raises
    ------
    ForecastError
        An unknown run or one of another kind, card inputs of another model, or a section that
        cannot be filled (naming it and what is missing, e.g. a backtest without ``--triggers``).
    """
    train = read_run(train_run_id, kind="train", purpose=_PURPOSE, tracking_uri=tracking_uri, artifacts=True)
    inputs = resolve_card_inputs(inputs, train.tags.get("model", ""), train_run_id)  # before the backtest's tables
    evidence = read_card_evidence(train_run_id, backtest_run_id=backtest_run_id, tracking_uri=tracking_uri,
                                  train=train)
    return card_from_evidence(evidence, inputs, review_status=review_status)


def write_card(card: ModelCard, train_run_id: str, *, tracking_uri: str | None = None) -> tuple[str, dict[str, str]]:
    """Log the card to its train run (``model_card/model_card.md`` and ``.html``) and tag ``card_sha256``.

    Returns
    -------
    (sha256, paths)
        ``paths`` maps ``markdown`` and ``html`` to the artifacts' URIs.

    Raises
    ------
    ForecastError
        The card is about another run, or the run is unknown or not a train run.
    """
    if card.train_run_id != train_run_id:
        raise ForecastError(f"this card is about run {card.train_run_id}, not {train_run_id}: build the card "
                            f"of run {train_run_id} first")
    return log_card(train_run_id, card.to_markdown(), card.to_html(), card.details["backtest_run_id"],
                    card.details["backtest_digest"], tracking_uri=tracking_uri)
