"""Runs in the MLflow store: which store, finding a run and checking its kind and status,
starting one that ends FAILED whenever it is cut short, and the lock that lets several
processes create one sqlite store and its experiments at once."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from contextlib import contextmanager, suppress
from pathlib import Path

from forecast.errors import ForecastError

try:  # POSIX; Windows has no flock, and a store created by two processes at once there is not guarded
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

__all__ = ["DEFAULT_EXPERIMENT", "git_commit", "get_run", "use_store", "start_run", "store_uri", "prepare_store",
           "log_artifact", "store_lock", "open_experiment", "check_finished", "FINISHED"]

DEFAULT_EXPERIMENT = "displacement-forecast"
#: The one run status whose evidence is whole: RUNNING and FAILED runs may lack what was still to be logged.
FINISHED = "FINISHED"
_WHY_NOT_FINISHED = {
    "RUNNING": "still being logged, or its process died before it could end the run",
    "FAILED": "its command stopped (an error, Ctrl-C or SIGTERM) before it had logged everything",
    "KILLED": "it was killed before it had logged everything",
}


def git_commit() -> str:
    """The commit of the code that ran (``unknown`` outside a git checkout)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def get_run(run_id: str, *, kind: str | None = None, purpose: str = "", tracking_uri: str | None = None,
            client=None, finished: bool = False):
    """``(client, run)`` for an MLflow run id, refused with a clear message when unknown or not
    of ``kind`` (``train``, ``backtest``); ``purpose`` ends that message (what the run is for).

    With ``finished``, a run that did not end FINISHED is refused too: a reader of evidence must
    not judge a run whose logging was cut short (its metrics or tables may be missing)."""
    import mlflow

    client = client or mlflow.MlflowClient(tracking_uri=tracking_uri)
    try:
        run = client.get_run(run_id)
    except Exception as error:  # MLflow raises several types for an unknown id
        raise ForecastError(f"no MLflow {kind + ' ' if kind else ''}run {run_id!r} at {client.tracking_uri} "
                            f"({_first_line(error)}); runs of another store: pass --tracking-uri URI (in Python "
                            "tracking_uri=URI) or set MLFLOW_TRACKING_URI, e.g. sqlite:///out/mlflow.db for "
                            "make demo's") from None
    actual = run.data.tags.get("kind", "non-forecast")
    if kind is not None and actual != kind:
        raise ForecastError(f"run {run_id} is a {actual} run; {purpose or f'a {kind} run is needed'}")
    if finished:
        check_finished(run, kind=actual)
    return client, run


def check_finished(run, *, kind: str = "") -> None:
    """Refuse a run that did not end FINISHED, saying why that matters and what to do."""
    status = run.info.status
    if status == FINISHED:
        return
    why = _WHY_NOT_FINISHED.get(status, "it did not end normally")
    raise ForecastError(f"{kind + ' ' if kind else ''}run {run.info.run_id} is {status} ({why}), so its evidence "
                        "may be incomplete and is not used; wait for it to finish, or run the command that made "
                        "it again and use the new run")


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


@contextmanager
def use_store(tracking_uri: str | None):
    """Use ``tracking_uri`` while logging, then give the caller back its own tracking URI
    (a library call must not move every later MLflow call of the session to another store)."""
    import mlflow

    if not tracking_uri:
        yield
        return
    from mlflow.tracking._tracking_service import utils

    before = utils._tracking_uri  # None: the caller had set none, MLflow's default applies
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)


@contextmanager
def start_run(experiment: str, run_name: str):
    """A new run in ``experiment`` (under `mlflow run`, the run that command opened), as a
    context manager yielding MLflow's active run.

    However the block ends early (an exception, Ctrl-C, SIGTERM) this run and every run
    opened inside it end FAILED, never RUNNING for ever nor FINISHED, so that no reader takes
    what they hold for whole evidence. SIGTERM, whose default action ends Python without
    unwinding, raises ``SystemExit(143)`` meanwhile (:func:`_unwinding_signals`).
    """
    import mlflow

    outer = mlflow.active_run()  # the caller's own run, if any: not this call's to end
    with _unwinding_signals():
        try:
            if os.environ.get("MLFLOW_RUN_ID"):  # an MLproject entry point: its run and experiment are set
                active = mlflow.start_run()
            else:
                experiment_id = open_experiment(experiment)
                mlflow.set_experiment(experiment_id=experiment_id)
                active = mlflow.start_run(run_name=run_name, experiment_id=experiment_id)
            with active:  # MLflow's ActiveRun ends the run FAILED when the block raises
                yield active
        except BaseException:
            _fail_opened_since(outer)
            raise


def _fail_opened_since(outer) -> None:
    """End FAILED every run still open above the caller's own (``outer``): one an interrupt hit
    between its start and its ``with``, or a child whose own end was cut short (MLflow's end of
    the parent would then end the child, leave the parent open, and end it FINISHED at exit)."""
    import mlflow

    keep = outer.info.run_id if outer is not None else None
    while (active := mlflow.active_run()) is not None and active.info.run_id != keep:
        # MLflow takes the run off its stack first; a store error here must not hide why we stopped
        with suppress(Exception):
            mlflow.end_run("FAILED")


@contextmanager
def _unwinding_signals():
    """While runs are open, make SIGTERM unwind like Ctrl-C (``SystemExit(143)``, the status of a
    process SIGTERM ends) so that every open run's ``with`` ends it FAILED; once the first
    SIGINT or SIGTERM is raised, later ones are ignored until the runs are ended, so a second
    Ctrl-C cannot cut the unwinding short. Only the main thread can take signals; handlers set
    by the caller (other than Python's own) are left alone, and every handler is put back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = []

    def unwind(signum, frame):
        if fired:  # already unwinding: let it end the runs
            return
        fired.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    previous = {}
    for signum, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(signum) is default:
            previous[signum] = signal.signal(signum, unwind)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def store_uri(tracking_uri: str | None = None) -> str:
    """The tracking URI a call with ``tracking_uri`` writes to (MLflow's current one when None)."""
    import mlflow

    return tracking_uri or mlflow.get_tracking_uri()


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` store (None for any other store, or in memory)."""
    scheme, _, rest = uri.partition("://")
    if not scheme.startswith("sqlite") or not rest.startswith("/"):
        return None
    database = rest[1:].split("?", 1)[0]  # sqlite:///rel.db -> rel.db, sqlite:////abs.db -> /abs.db
    return Path(database) if database and database != ":memory:" else None


@contextmanager
def store_lock(tracking_uri: str | None = None):
    """Hold an inter-process lock on a sqlite store: an exclusive ``flock`` of ``<db>.lock``
    beside the database.

    MLflow creates and migrates a new sqlite store's schema, and creates experiments, without
    guarding against a second process doing the same at once: two ``forecast backtest`` on an
    empty folder can leave a half-made schema that no later run can open. Other stores (a
    server, a database server) guard themselves; without ``fcntl`` (Windows) nothing is locked.
    """
    database = _sqlite_file(store_uri(tracking_uri))
    if database is None or fcntl is None or not database.parent.is_dir():  # no folder: MLflow's own error
        yield
        return
    with open(database.with_name(database.name + ".lock"), "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def open_experiment(experiment: str, artifacts: str | Path | None = None, *, tracking_uri: str | None = None) -> str:
    """The id of ``experiment`` in the store, created when missing (its artifacts in the folder
    ``artifacts``, default MLflow's choice), under :func:`store_lock`: the first call of a
    process is also the one that creates or upgrades a new store's schema."""
    import mlflow
    from mlflow.exceptions import MlflowException

    with store_lock(tracking_uri):
        client = mlflow.MlflowClient(tracking_uri=tracking_uri)  # opening the store makes its schema
        found = client.get_experiment_by_name(experiment)
        if found is not None:
            return found.experiment_id
        location = Path(artifacts).resolve().as_uri() if artifacts is not None else None
        try:
            return client.create_experiment(experiment, artifact_location=location)
        except MlflowException as error:  # made meanwhile by a process the lock does not reach (a server's client)
            found = client.get_experiment_by_name(experiment) if error.error_code == "RESOURCE_ALREADY_EXISTS" else None
            if found is None:
                raise
            return found.experiment_id


def prepare_store(tracking_uri: str, experiment: str, artifacts: str | Path | None = None) -> None:
    """Make ``tracking_uri`` this process's store and ``experiment`` its experiment.

    A new experiment keeps its artifacts in the folder ``artifacts`` (default: MLflow's own
    choice, ``./mlruns`` beside a sqlite store), so that a demo or a project keeps the database
    and the files it logs together.
    """
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(experiment_id=open_experiment(experiment, artifacts))


def log_artifact(run_id: str, path: str | Path, folder: str | None = None, *, tracking_uri: str | None = None) -> None:
    """Add the file ``path`` to run ``run_id`` (under ``folder``)."""
    import mlflow

    mlflow.MlflowClient(tracking_uri=tracking_uri).log_artifact(run_id, str(path), folder)
