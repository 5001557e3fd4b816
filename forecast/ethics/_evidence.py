"""The evidence a model card, the release gate and a report judge, as plain data.

:mod:`forecast.tracking` reads it from MLflow once (:func:`forecast.tracking.read_card_evidence`,
:func:`forecast.tracking.read_release_evidence`); :mod:`forecast.ethics` and
:mod:`forecast.report` only read these objects, so they can be built by hand in a test or from
another store::

    from forecast.ethics import Evidence, RunRecord
    train = RunRecord("r1", tags={"kind": "train", "model": "m", ...}, params={...})
    evidence = Evidence(train=train, backtest=RunRecord("b1", tables={"metrics.csv": frame}, ...))
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["RunRecord", "Evidence", "Citation"]


@dataclass(frozen=True)
class RunRecord:
    """One run of the tracking store as plain data: its identity, tags, parameters, metrics and
    the artifacts that were read.

    Attributes
    ----------
    run_id, experiment_id : str
    start_time : int or None
        Milliseconds since the epoch (as MLflow keeps it).
    tags, params, metrics : mapping
    files : tuple of str
        Every artifact path of the run, in the store's listing order (empty when not listed).
    tables : mapping of str to DataFrame or None
        The run's tables (``.csv``, ``.parquet``) by artifact path; ``None`` for a listed table
        that could not be downloaded.
    documents : mapping of str to bytes
        Small files (``.json``, ``.txt``, ``.md``) by artifact path, as stored.
    hashes : mapping of str to str
        The SHA-256 of each table and document as stored, by artifact path (what
        :meth:`digest` binds; a record built by hand has none and is hashed by content).
    """

    run_id: str
    experiment_id: str = ""
    start_time: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    tables: Mapping[str, pd.DataFrame | None] = field(default_factory=dict)
    documents: Mapping[str, bytes] = field(default_factory=dict)
    hashes: Mapping[str, str] = field(default_factory=dict)

    def digest(self) -> str:
        """SHA-256 of the run as evidence: its tags (MLflow's own ``mlflow.*`` aside), parameters,
        metrics, and every table and document read, each by the SHA-256 of its stored bytes.

        A model card records its backtest's digest (tag ``card_backtest_digest``); sign-offs bind
        it and the gate recomputes it, so a table, a metric or a tag of the backtest changed after
        the card was written voids the review.
        """
        head = {"tags": {k: v for k, v in self.tags.items() if not k.startswith("mlflow.")},
                "params": dict(self.params), "metrics": {k: float(v) for k, v in self.metrics.items()}}
        digest = hashlib.sha256(json.dumps(head, sort_keys=True, separators=(",", ":")).encode("utf-8"))
        for path in sorted({*self.tables, *self.documents}):
            digest.update(f"{path}\0{self._file_sha256(path)}\n".encode("utf-8"))
        return digest.hexdigest()

    def _file_sha256(self, path: str) -> str:
        if path in self.hashes:
            return self.hashes[path]
        if path in self.documents:
            return hashlib.sha256(self.documents[path]).hexdigest()
        table = self.tables.get(path)
        return "missing" if table is None else hashlib.sha256(table.to_csv(index=False).encode("utf-8")).hexdigest()

    def table(self, path: str) -> pd.DataFrame | None:
        """The table at ``path``, or None when the run has none there."""
        return self.tables.get(path)

    def text(self, path: str) -> str | None:
        """The document at ``path`` as UTF-8 text, or None when the run has none there."""
        data = self.documents.get(path)
        return None if data is None else data.decode("utf-8")

    def json(self, path: str) -> dict | None:
        """The JSON document at ``path``, or None when it is missing or not JSON."""
        text = self.text(path)
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return None


@dataclass(frozen=True)
class Citation:
    """A registered model version that cites an audit-log entry (tags ``audit_entry``, ``audit_log``)."""

    name: str
    version: str
    audit_entry: str
    audit_log: str


@dataclass(frozen=True)
class Evidence:
    """A train run and the backtest behind it: what a card, the gate or a report judges.

    Attributes
    ----------
    train : RunRecord
        The ``forecast train`` run.
    backtest : RunRecord or None
        The parent run of the ``forecast backtest --triggers`` run that is the evidence; None
        when there is none (``source`` says why).
    children : tuple of RunRecord
        The backtest's child runs (one per model), when they were read.
    source : str
        How the backtest was chosen, or why there is none.
    model_digest : str or None
        SHA-256 over the train run's ``model/`` files (:func:`forecast.tracking.model_digest`),
        when it was read.
    citations : tuple of Citation
        Every registered version that cites an audit-log entry (the gate checks that the log
        still holds them).
    """

    train: RunRecord
    backtest: RunRecord | None = None
    children: tuple[RunRecord, ...] = ()
    source: str = ""
    model_digest: str | None = None
    citations: tuple[Citation, ...] = ()

    @property
    def run_id(self) -> str:
        return self.train.run_id

    @property
    def backtest_run_id(self) -> str | None:
        return None if self.backtest is None else self.backtest.run_id
