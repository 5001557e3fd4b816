"""``forecast card``: the model card of a train run, built from MLflow and logged back to it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecast.cli import _console as console
from forecast.cli._app import app, fail
from forecast.errors import ForecastError


@app.command()
def card(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of `forecast train --triggers ...`.", show_default=False)],
    inputs: Annotated[Path | None, typer.Option("--inputs", help="Human-authored sections (default: models/cards/<model>.yaml).")] = None,
    backtest_run: Annotated[str | None, typer.Option("--backtest-run", help="Backtest parent run to use as evidence (default: the latest of this spec on this data).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Also write model_card.md and model_card.html here.")] = None,
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI.")] = None,
) -> None:
    """Generate the model card (Markdown and HTML) of a train run and log it to the run.

    The evidence is the latest `forecast backtest --triggers` run of the same spec on the same
    data. Prints the card's SHA-256 (the identity reviewers sign; also the run's tag
    card_sha256) and where the files are.
    """
    from forecast.pipeline import build_card, write_card

    try:
        model_card = build_card(run_id, inputs, backtest_run_id=backtest_run, tracking_uri=tracking_uri)
        digest, paths = write_card(model_card, run_id, tracking_uri=tracking_uri)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "model_card.md").write_text(model_card.to_markdown(), encoding="utf-8")
            (out_dir / "model_card.html").write_text(model_card.to_html(), encoding="utf-8")
            paths = {**paths, "markdown (local)": str(out_dir / "model_card.md"),
                     "html (local)": str(out_dir / "model_card.html")}
    except (ForecastError, OSError) as error:
        fail(error if isinstance(error, ForecastError) else ForecastError(str(error)))
    console.out.print(f"model card of {model_card.details['name']} (run {run_id}; evidence: backtest run "
              f"{model_card.details['backtest_run_id']})", soft_wrap=True, highlight=False, markup=False)
    console.out.print(f"sha256 {digest}", soft_wrap=True, highlight=False, markup=False)
    for name, where in paths.items():
        console.out.print(f"{name + ':':<18}{where}", soft_wrap=True, highlight=False, markup=False)
    console.out.print(f"review status: {model_card.review_status}", soft_wrap=True, highlight=False, markup=False)
