"""What the toolkit publishes to its runs: model cards, gate reports, forecast reports and their
headlines (and finding the headline of the previous report, which the next one compares with)."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pandas as pd

from forecast.io import write_csv
from forecast.report import headline_month, read_headline
from forecast.tracking._evidence import CARD_PURPOSE
from forecast.tracking._runs import FINISHED, get_run

__all__ = ["log_card", "log_gate_report", "log_headline", "previous_report"]


def log_card(run_id: str, markdown: str, html: str, backtest_run_id: str, backtest_digest: str, *,
             tracking_uri: str | None = None) -> tuple[str, dict[str, str]]:
    """Log a model card to its train run (``model_card/model_card.md`` and ``.html``), tag
    ``card_sha256`` (the Markdown's SHA-256), ``card_html_sha256`` (the HTML's: reviewers read
    either file, so sign-offs and the gate bind both), ``card_backtest_run_id`` (the gate's evidence)
    and ``card_backtest_digest`` (that evidence's :meth:`~forecast.ethics.RunRecord.digest` as the
    card read it).

    Returns
    -------
    (sha256, paths)
        ``sha256`` is the Markdown's; ``paths`` maps ``markdown`` and ``html`` to the artifacts' URIs.
    """
    client, run = get_run(run_id, kind="train", purpose=CARD_PURPOSE["train"], tracking_uri=tracking_uri)
    digest = hashlib.sha256(markdown.encode("utf-8")).hexdigest()
    client.log_text(run_id, markdown, "model_card/model_card.md")
    client.log_text(run_id, html, "model_card/model_card.html")
    client.set_tag(run_id, "card_sha256", digest)
    client.set_tag(run_id, "card_html_sha256", hashlib.sha256(html.encode("utf-8")).hexdigest())
    client.set_tag(run_id, "card_backtest_run_id", backtest_run_id)
    client.set_tag(run_id, "card_backtest_digest", backtest_digest)
    base = run.info.artifact_uri.rstrip("/")
    return digest, {"markdown": f"{base}/model_card/model_card.md", "html": f"{base}/model_card/model_card.html"}


def log_gate_report(run_id: str, version: str, markdown: str, data: dict, *, tracking_uri: str | None = None) -> None:
    """Log the gate report of a release to the train run (``release/gate_report_v<version>.md``, ``.json``)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    client.log_text(run_id, markdown, f"release/gate_report_v{version}.md")
    client.log_dict(run_id, data, f"release/gate_report_v{version}.json")


def log_headline(run_id: str, headline: pd.DataFrame, artifact: str, path: str | Path | None = None, *,
                 tracking_uri: str | None = None) -> str:
    """Log a report's headline table as ``artifact`` (and the rendered file at ``path``) under
    ``report/`` of its train run, and tag the run ``reported`` so :func:`previous_report` finds
    it. Returns ``artifact``."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(artifact).name
        write_csv(headline, local, index=False)
        client.log_artifact(run_id, str(local), "report")
    if path is not None:
        client.log_artifact(run_id, str(path), "report")
    client.set_tag(run_id, "reported", "true")
    return artifact


def _lineage(client, train, depth: int = 24) -> list[str]:
    """This train run, then the runs it succeeds (tag ``previous_run``), nearest first."""
    line, run = [train.info.run_id], train
    while len(line) < depth and (parent := run.data.tags.get("previous_run")) and parent not in line:
        line.append(parent)
        try:
            run = client.get_run(parent)
        except Exception:  # a predecessor deleted from the store ends the line
            break
    return line


def _find_previous(client, train, trigger: str, lead: int, month: str) -> tuple[str, str, str, str] | None:
    """The report the next one compares with: ``(run_id, month, artifact path, why chosen)``, or None.

    Among the reports of the same model, trigger and lead in the run's experiment (of FINISHED
    train runs: one cut short may lack what its report stood on), by origin:
    the latest data month before ``month``. Among reports of that month, by lineage: one of this
    run, else of the nearest run it succeeds (tag ``previous_run``), else of another run of the
    model (the one with the smallest id, so the choice never depends on when runs were made).
    """
    runs = client.search_runs([train.info.experiment_id],
                              filter_string=f"tags.kind = 'train' and tags.model = '{train.data.tags.get('model')}' "
                                            f"and tags.reported = 'true' and attributes.status = '{FINISHED}'")
    candidates = []
    for run in runs:
        for item in client.list_artifacts(run.info.run_id, "report"):
            earlier = headline_month(Path(item.path).name, trigger, lead)
            if earlier is not None and earlier < month:
                candidates.append((earlier, run.info.run_id, item.path))
    if not candidates:
        return None
    latest = max(c[0] for c in candidates)
    line = _lineage(client, train)
    place = {run: i for i, run in enumerate(line)}
    run, earlier, artifact = min(((r, m, a) for m, r, a in candidates if m == latest),
                                 key=lambda c: (place.get(c[0], len(line)), c[0]))
    step = place.get(run)
    why = ("this run's own earlier report" if step == 0 else
           f"the run it succeeds, {run[:12]}" if step == 1 else
           f"its lineage, {step} runs back ({run[:12]})" if step is not None else
           f"run {run[:12]} of the same model, not in this run's lineage")
    return run, earlier, artifact, why


def previous_report(run_id: str, trigger: str, lead: int, month: str, *,
                    tracking_uri: str | None = None) -> tuple[pd.DataFrame | None, dict | None]:
    """The headline of the latest report before ``month`` of the same model, trigger and lead in
    the run's experiment, chosen by origin and lineage (:func:`_find_previous`), and where it
    came from (``source``, ``month``, ``run_id``, ``chosen``: why this one);
    ``(None, None)`` when there is none (the first report)."""
    client, train = get_run(run_id, tracking_uri=tracking_uri)
    found = _find_previous(client, train, trigger, lead, month)
    if found is None:
        return None, None
    run, earlier, artifact, why = found
    with tempfile.TemporaryDirectory() as tmp:
        table = read_headline(Path(client.download_artifacts(run, artifact, tmp)))
    return table, {"source": f"runs:/{run}/{artifact}", "month": earlier, "run_id": run,
                   "chosen": f"the latest earlier report by data month, from {why}"}
