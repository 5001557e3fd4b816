"""Log a report to its train run: the file, and the headline the next report compares with."""

from __future__ import annotations

import tempfile
from pathlib import Path

from forecast.report._build import HEADLINE_COLUMNS, headline_artifact

__all__ = ["log_report"]


def log_report(report, path: str | Path | None = None, *, tracking_uri: str | None = None) -> str:
    """Log the headline table (and the rendered file at ``path``) to the report's train run.

    Sets the run's tag ``reported`` so :func:`forecast.report.find_previous` finds it. The
    headline holds probabilities, forecasts and thresholds, no observed counts, so the gate's
    published-output check can read it like any other artifact. Returns the headline's
    artifact path.
    """
    import mlflow

    m = report.meta
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    artifact = headline_artifact(m["trigger"], m["lead"], m["data_month"])
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / Path(artifact).name
        report.ranking[HEADLINE_COLUMNS].to_csv(local, index=False)
        client.log_artifact(m["run_id"], str(local), "report")
    if path is not None:
        client.log_artifact(m["run_id"], str(path), "report")
    client.set_tag(m["run_id"], "reported", "true")
    return artifact
