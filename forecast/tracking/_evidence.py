"""Reading the evidence a model card, the release gate or a report judges, once, as plain data.

One artifact reader (:class:`Artifacts`) downloads what a run holds into a temporary folder;
:func:`read_run` copies a run into a :class:`~forecast.ethics.RunRecord`,
:func:`read_card_evidence` and :func:`read_release_evidence` gather a train run and the
backtest behind it into an :class:`~forecast.ethics.Evidence`, and :func:`model_digest`
identifies the files of a run's model. Nothing here judges: :mod:`forecast.ethics` does.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd

from forecast.errors import ForecastError
from forecast.ethics import CARD_HTML, Citation, Evidence, ReviewSubject, RunRecord
from forecast.tracking._runs import FINISHED, get_run

__all__ = ["Artifacts", "read_run", "find_backtest", "read_card_evidence", "read_release_evidence",
           "read_review_subject", "model_digest", "download_model", "citations"]

TABLE_SUFFIXES = (".csv", ".parquet")
DOCUMENT_SUFFIXES = (".json", ".txt", ".md")
#: Why a run of each kind is asked for, ending the message when a run of another kind is given.
CARD_PURPOSE = {
    "train": "a model card is about a run of `forecast train --triggers models/triggers.yaml`",
    "backtest": "the card's evidence is the parent run of `forecast backtest --triggers ...`",
}
GATE_PURPOSE = "the gate releases runs of `forecast train --triggers ...`"
REVIEW_PURPOSE = "reviews are of runs of `forecast train`"


class Artifacts:
    """The artifacts of MLflow runs, listed and downloaded on demand into ``folder``."""

    def __init__(self, client, folder: str | Path):
        self.client, self.folder = client, Path(folder)
        self._repos: dict = {}  # run id: the run's own artifact store

    def files(self, run_id: str, path: str | None = None) -> list[str]:
        """Every artifact path of the run under ``path``, in the store's listing order."""
        out = []
        for info in self.client.list_artifacts(run_id, path):
            out += self.files(run_id, info.path) if info.is_dir else [info.path]
        return out

    def local(self, run_id: str, path: str) -> Path:
        """The artifact downloaded (MLflow's own error when it is missing).

        From the run's own artifact store, found once per run: the client's ``runs:/`` download
        looks the run up and searches the experiment's logged models again for every file (about
        20 ms each, and a card, gate or report reads dozens). A logged model's files (``model/``)
        live with the model, where only the client's download finds them.
        """
        folder = self.folder / run_id
        if path.split("/", 1)[0] == "model":
            return Path(self.client.download_artifacts(run_id, path, str(folder)))
        if run_id not in self._repos:
            from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

            self._repos[run_id] = get_artifact_repository(self.client.get_run(run_id).info.artifact_uri,
                                                          tracking_uri=self.client.tracking_uri)
        folder.mkdir(parents=True, exist_ok=True)
        return Path(self._repos[run_id].download_artifacts(path, str(folder)))

    def read(self, run_id: str, path: str) -> Path | None:
        """The artifact downloaded, or None when it cannot be."""
        try:
            return self.local(run_id, path)
        except Exception:  # MLflow raises several types for a missing artifact
            return None

    def table(self, run_id: str, path: str) -> pd.DataFrame | None:
        """A ``.csv`` or ``.parquet`` artifact as a table, or None when it cannot be downloaded."""
        local = self.read(run_id, path)
        return None if local is None else _table(local)


def _table(local: Path) -> pd.DataFrame:
    return pd.read_parquet(local) if local.suffix == ".parquet" else pd.read_csv(local)


def _record(run, artifacts: Artifacts | None = None, *, tables: bool = False) -> RunRecord:
    """A plain copy of an MLflow run; with ``artifacts``, its file list and documents (the card's
    HTML among them: the gate checks it is what reviewers signed; and with ``tables``, its tables),
    ``model/`` left out."""
    info, data = run.info, run.data
    files, found, documents, hashes = (), {}, {}, {}
    if artifacts is not None:
        files = tuple(artifacts.files(info.run_id))
        for path in files:
            if path.startswith("model/"):
                continue
            if tables and path.endswith(TABLE_SUFFIXES):
                local = artifacts.read(info.run_id, path)
                found[path] = None if local is None else _table(local)
            elif path.endswith(DOCUMENT_SUFFIXES) or path == CARD_HTML:
                if (local := artifacts.read(info.run_id, path)) is not None:
                    documents[path] = local.read_bytes()
            else:
                continue
            if local is not None:  # what RunRecord.digest binds: the bytes as stored
                hashes[path] = hashlib.sha256(local.read_bytes()).hexdigest()
    return RunRecord(run_id=info.run_id, experiment_id=info.experiment_id, start_time=info.start_time,
                     tags=dict(data.tags), params=dict(data.params), metrics=dict(data.metrics), files=files,
                     tables=found, documents=documents, hashes=hashes)


def read_run(run_id: str, *, kind: str | None = None, purpose: str = "", tracking_uri: str | None = None,
             artifacts: bool = False, tables: bool = False) -> RunRecord:
    """A run as a :class:`~forecast.ethics.RunRecord`, refused when unknown or not of ``kind``.

    Parameters
    ----------
    run_id : str
    kind, purpose : str, optional
        As in :func:`get_run`.
    tracking_uri : str, optional
    artifacts : bool
        Also list its artifacts and read its documents (``.json``, ``.txt``, ``.md``).
    tables : bool
        Also read its tables (``.csv``, ``.parquet``); implies ``artifacts``.
    """
    client, run = get_run(run_id, kind=kind, purpose=purpose, tracking_uri=tracking_uri)
    if not (artifacts or tables):
        return _record(run)
    with tempfile.TemporaryDirectory() as tmp:
        return _record(run, Artifacts(client, tmp), tables=tables)


def find_backtest(client, train) -> str:
    """The latest FINISHED ``forecast backtest`` parent run in the train run's experiment with a
    FINISHED child run of the same spec (``spec_hash``) on the same data (``cube_hash``); a
    backtest cut short (FAILED) or still logging (RUNNING) may lack scores, so it is passed over."""
    tags = train.data.tags
    spec_hash, cube = tags.get("spec_hash"), tags.get("cube_hash")
    children = client.search_runs(
        [train.info.experiment_id],
        filter_string=f"tags.kind = 'model' and tags.spec_hash = '{spec_hash}' and tags.cube_hash = '{cube}' "
                      f"and attributes.status = '{FINISHED}'",
        order_by=["attributes.start_time DESC"])
    for child in children:
        parent_id = child.data.tags.get("mlflow.parentRunId")
        if not parent_id:
            continue
        parent = client.get_run(parent_id)
        if parent.data.tags.get("kind") == "backtest" and parent.info.status == FINISHED:
            return parent_id
    raise ForecastError(
        f"no backtest of this spec on this data: run forecast backtest --spec <the {tags.get('model')} spec> "
        f"--triggers models/triggers.yaml first, on the cube the model was trained on (spec_hash {spec_hash}, "
        f"cube_hash {cube}, experiment {train.info.experiment_id}), or pass --backtest-run (only a backtest that "
        "ended FINISHED counts: one cut short or still logging may lack scores)")


def _check_backtest(client, backtest, train) -> None:
    tags, want = backtest.data.tags, train.data.tags  # its kind was checked when it was read
    if tags.get("cube_hash") != want.get("cube_hash"):
        raise ForecastError(f"backtest run {backtest.info.run_id} ran on other data (cube_hash {tags.get('cube_hash')}) "
                            f"than train run {train.info.run_id} ({want.get('cube_hash')})")
    children = client.search_runs([backtest.info.experiment_id], filter_string=(
        f"tags.mlflow.parentRunId = '{backtest.info.run_id}' and tags.spec_hash = '{want.get('spec_hash')}' "
        f"and attributes.status = '{FINISHED}'"))
    if not children:
        raise ForecastError(f"backtest run {backtest.info.run_id} has no FINISHED child run of spec "
                            f"{want.get('model')} (spec_hash {want.get('spec_hash')}): it evaluated another spec, or "
                            "that spec's run was cut short")


def read_card_evidence(train_run_id: str, *, backtest_run_id: str | None = None,
                       tracking_uri: str | None = None, train: RunRecord | None = None) -> Evidence:
    """The evidence of a model card: the train run (with its documents) and the backtest parent run
    (with its tables and documents) of the same spec on the same data.

    Parameters
    ----------
    train_run_id : str
        A ``forecast train --triggers ...`` run.
    backtest_run_id : str, optional
        Default: the latest FINISHED backtest parent run of the experiment with a child run of
        the same spec hash on the same cube hash (:func:`find_backtest`).
    tracking_uri : str, optional
    train : RunRecord, optional
        The train run already read with its artifacts (:func:`read_run` with ``artifacts=True``),
        so that its documents are not downloaded a second time.

    Raises
    ------
    ForecastError
        An unknown run or one of another kind, no matching backtest, a backtest given that did
        not end FINISHED (cut short or still logging: its evidence may be incomplete), or a
        backtest of other data or another spec.
    """
    record = train
    if record is not None and record.run_id != train_run_id:
        raise ForecastError(f"the train run given is {record.run_id}, not {train_run_id}")
    client, train = get_run(train_run_id, kind="train", purpose=CARD_PURPOSE["train"], tracking_uri=tracking_uri,
                            finished=True)  # a train run cut short may lack its model or its lineage
    source = "the backtest given"
    if backtest_run_id is None:
        backtest_run_id, source = find_backtest(client, train), "the latest backtest of this spec on this data"
    _, backtest = get_run(backtest_run_id, kind="backtest", purpose=CARD_PURPOSE["backtest"], client=client,
                          finished=True)
    _check_backtest(client, backtest, train)
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = Artifacts(client, tmp)
        return Evidence(train=record if record is not None else _record(train, artifacts),
                        backtest=_record(backtest, artifacts, tables=True), source=source)


def _gate_backtest(client, train) -> tuple[object | None, str]:
    """The backtest behind the card (tag ``card_backtest_run_id``), else the latest matching one;
    None and the reason when there is none."""
    tagged = train.data.tags.get("card_backtest_run_id")
    if tagged:
        backtest_id, source = tagged, "the backtest the model card cites"
    else:
        try:
            backtest_id, source = find_backtest(client, train), "the latest backtest of this spec on this data"
        except ForecastError as error:
            return None, str(error)
    try:
        _, backtest = get_run(backtest_id, kind="backtest", client=client, finished=True,
                              purpose="the gate's evidence is a backtest run")
    except ForecastError as error:
        return None, str(error)
    return backtest, source


def read_release_evidence(run_id: str, *, tracking_uri: str | None = None) -> Evidence:
    """Everything the release gate judges, read once: the train run, the backtest behind its card
    and that backtest's child runs (tags, every artifact's path, tables and documents), the
    model's digest, and the registered versions that cite an audit log.

    A missing backtest, or one that did not end FINISHED, is not an error: ``evidence.backtest``
    is then None and ``evidence.source`` says why (the gate shows it as insufficient evidence).

    Raises
    ------
    ForecastError
        The run is unknown, not a train run, or has no logged model.
    """
    client, train = get_run(run_id, kind="train", tracking_uri=tracking_uri, purpose=GATE_PURPOSE, finished=True)
    digest, examples = _read_model(run_id, client)
    backtest, source = _gate_backtest(client, train)
    children = [] if backtest is None else client.search_runs(
        [train.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{backtest.info.run_id}' "
                                                  f"and attributes.status = '{FINISHED}'")
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = Artifacts(client, tmp)
        record = _record(train, artifacts, tables=True)
        # the model's example rows go out with the model: the gate reads them like a table
        record = replace(record, documents={**record.documents, **examples},
                         files=(*record.files, *(path for path in examples if path not in record.files)))
        return Evidence(train=record,
                        backtest=None if backtest is None else _record(backtest, artifacts, tables=True),
                        children=tuple(_record(c, artifacts, tables=True) for c in children), source=source,
                        model_digest=digest, citations=citations(client))


def citations(client) -> tuple[Citation, ...]:
    """Every registered model version that cites an audit-log entry (none without a registry)."""
    try:
        versions = client.search_model_versions()
    except Exception:  # a store without a registry cites nothing
        return ()
    return tuple(Citation(v.name, str(v.version), v.tags["audit_entry"], v.tags.get("audit_log", ""))
                 for v in versions if v.tags.get("audit_entry"))


def read_review_subject(run_id: str, *, tracking_uri: str | None = None) -> ReviewSubject:
    """What a review of ``run_id`` is about: the run, its card's hash (tag ``card_sha256``), its
    model's digest, its author (tag ``mlflow.user``), its data's sensitivity (tag ``sensitivity``:
    whether sign-offs must be signed), the card's HTML hash and the backtest it cites (tags
    ``card_html_sha256``, ``card_backtest_run_id``, ``card_backtest_digest``: sign-offs are bound
    to them too).

    Raises
    ------
    ForecastError
        The run is unknown, not a train run, or has no logged model.
    """
    client, run = get_run(run_id, kind="train", tracking_uri=tracking_uri, purpose=REVIEW_PURPOSE, finished=True)
    tags = run.data.tags
    return ReviewSubject(run_id, tags.get("card_sha256"), model_digest(run_id, client=client), tags.get("mlflow.user"),
                         tags.get("sensitivity"), tags.get("card_html_sha256"), tags.get("card_backtest_run_id"),
                         tags.get("card_backtest_digest"))


#: MLflow's bookkeeping, which it writes into a model's folder when it loads the model by its
#: registered name from a local store: not part of what reviewers signed, so not in the digest.
MLFLOW_BOOKKEEPING = ("registered_model_meta",)
#: The example rows MLflow keeps beside a model: published with it, so the gate reads them.
EXAMPLE_FILES = ("input_example.json", "serving_input_example.json")


def model_digest(run_id: str, *, tracking_uri: str | None = None, client=None) -> str:
    """SHA-256 over the run's ``model/`` artifact files: each relative path and its content's
    SHA-256, in path order. Changes whenever any file of the logged model changes (MLflow's
    :data:`MLFLOW_BOOKKEEPING` aside)."""
    import mlflow

    return _read_model(run_id, client or mlflow.MlflowClient(tracking_uri=tracking_uri))[0]


def _read_model(run_id: str, client) -> tuple[str, dict[str, bytes]]:
    """The model's digest, and its example files as documents (``model/input_example.json``)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            folder = download_model(run_id, tmp, client=client)
        except Exception as error:  # MLflow raises several types for a missing artifact
            raise ForecastError(f"run {run_id} has no model/ artifact to review ({error}); log the model with "
                                "`forecast train`") from None
        files = sorted(p for p in folder.rglob("*")
                       if p.is_file() and p.relative_to(folder).as_posix() not in MLFLOW_BOOKKEEPING)
        if not files:
            raise ForecastError(f"run {run_id} has an empty model/ artifact; log the model with `forecast train`")
        digest = hashlib.sha256()
        for path in files:
            digest.update(path.relative_to(folder).as_posix().encode("utf-8") + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).hexdigest().encode("ascii") + b"\n")
        examples = {f"model/{p.relative_to(folder).as_posix()}": p.read_bytes() for p in files
                    if p.name in EXAMPLE_FILES}
    return digest.hexdigest(), examples


def download_model(run_id: str, folder: str | Path, *, tracking_uri: str | None = None, client=None) -> Path:
    """The run's ``model/`` files, downloaded into ``folder``: MLflow 3 keeps a model logged with
    ``name="model"`` as a logged model of the run (read from its own location, through the
    client's store and never a global tracking URI); older runs and copies keep it among the
    run's artifacts."""
    import mlflow

    client = client or mlflow.MlflowClient(tracking_uri=tracking_uri)
    outputs = client.get_run(run_id).outputs
    for output in outputs.model_outputs if outputs is not None else []:
        logged = client.get_logged_model(output.model_id)
        if logged.name == "model":
            # a server's location (mlflow-artifacts:/...) resolves against the client's store
            return Path(mlflow.artifacts.download_artifacts(artifact_uri=logged.artifact_location,
                                                            dst_path=str(folder), tracking_uri=client.tracking_uri))
    return Path(client.download_artifacts(run_id, "model", str(folder)))
