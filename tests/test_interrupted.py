"""Faults lose nothing and fake nothing in MLflow: a backtest or train cut short (SIGTERM,
Ctrl-C, an exception) ends every run it opened FAILED, never RUNNING for ever; evidence is read
from FINISHED runs only; and several backtests started at once on an empty folder share one
sqlite store that stays usable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from forecast.backtest import RollingOrigin, backtest
from forecast.cube import save_cube
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.models import ModelSpec
from forecast.pipeline._train import train
from forecast.tracking import find_backtest, get_run, log_backtest, log_trained, read_card_evidence
from forecast.tracking import read_release_evidence

SPEC = "name: tiny_naive\nestimator: naive\nhorizons: [1, 2]\n"
CLI_FOLDS = ["--origins", "2", "--calibration-origins", "2", "--min-train", "12"]
FOLDS = RollingOrigin(n_origins=2, calibration_origins=2, min_train=12)
#: Run inside a subprocess: the CLI's backtest, whose first artifact of a child run blocks
#: (after writing the marker file) until the test sends its signal.
#: Ctrl-C is restored to Python's default first: a process started in the background of a
#: non-interactive shell (``cmd &`` in a script, as a CI job may be) inherits SIGINT ignored.
BLOCKING_CLI = textwrap.dedent("""\
    import signal, sys, time
    from pathlib import Path
    import mlflow

    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a process started from a terminal

    marker, real = Path(sys.argv[1]), mlflow.log_artifact

    def blocking(*args, **kwargs):
        run = mlflow.active_run()
        if run is not None and run.data.tags.get("mlflow.parentRunId"):  # inside a child run
            marker.write_text(run.info.run_id)
            time.sleep(120)
        return real(*args, **kwargs)

    mlflow.log_artifact = blocking
    from forecast.cli import app

    app(sys.argv[2:], prog_name="forecast")
    """)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A small cube on disk and a spec any cube can serve."""
    root = tmp_path_factory.mktemp("interrupted")
    save_cube(make_panel(6, 30, seed=9), root / "cube.nc")
    (root / "spec.yaml").write_text(SPEC)
    (root / "blocking_cli.py").write_text(BLOCKING_CLI)
    return root


def _backtest_args(files: Path, *more: str) -> list[str]:
    return ["backtest", "--cube", str(files / "cube.nc"), "--spec", str(files / "spec.yaml"), *CLI_FOLDS, *more]


def _env() -> dict[str, str]:
    """The test's environment (PYTHONPATH included), without a tracking URI of its own."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    return env


def _start(command: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    """``command`` started in ``cwd``, its output going to the file ``log`` (a pipe nobody reads
    while the test waits could fill and stall it)."""
    with open(log, "w") as out:
        return subprocess.Popen(command, cwd=cwd, env=_env(), stdout=out, stderr=subprocess.STDOUT)


def _statuses(uri: str) -> dict[str, list[str]]:
    """Every run of the store by its ``kind`` tag: the runs' statuses."""
    client = MlflowClient(tracking_uri=uri)
    out: dict[str, list[str]] = {}
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id]):
            out.setdefault(run.data.tags.get("kind", "?"), []).append(run.info.status)
    return out


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_backtest_signalled_while_logging_ends_its_parent_and_children_failed(files, tmp_path, signum):
    marker, uri, log = tmp_path / "logging", f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "output.txt"
    proc = _start([sys.executable, str(files / "blocking_cli.py"), str(marker),
                   *_backtest_args(files, "--tracking-uri", uri)], tmp_path, log)
    try:
        deadline = time.monotonic() + 90
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), log.read_text()
        proc.send_signal(signum)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running 60 s after the signal; its output so far:\n{log.read_text()}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()  # reaped here, not reported as a still-running process in the next test
    output = log.read_text()
    assert _statuses(uri) == {"backtest": ["FAILED"], "model": ["FAILED"]}, output
    assert proc.returncode == 128 + signum, output  # as a shell reports a process the signal ended
    assert "every run it had opened is marked FAILED" in output


@pytest.fixture(scope="module")
def cube():
    return make_panel(6, 30, seed=9)


@pytest.fixture(scope="module")
def spec():
    return ModelSpec(name="tiny_naive", estimator="naive", horizons=[1, 2])


@pytest.fixture(scope="module")
def result(cube, spec):
    return backtest(cube, [spec], folds=FOLDS)


@pytest.fixture(scope="module")
def trained(cube, spec):
    return train(cube, spec, calibration=RollingOrigin(n_origins=6, calibration_origins=0, min_train=12))


@pytest.fixture
def no_global_store():
    """The process's tracking URI goes back to MLflow's default after the test."""
    yield
    mlflow.set_tracking_uri(None)


def _fail_in_child(monkeypatch, model: str):
    """Make the first artifact of child run ``model`` raise."""
    real = mlflow.log_artifact

    def failing(*args, **kwargs):
        run = mlflow.active_run()
        if run is not None and run.info.run_name == model:
            raise RuntimeError("disk gone")
        return real(*args, **kwargs)

    monkeypatch.setattr(mlflow, "log_artifact", failing)


def test_an_exception_while_logging_ends_the_parent_and_the_open_child_failed(result, tmp_path, monkeypatch,
                                                                              no_global_store):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    _fail_in_child(monkeypatch, "moving_average")  # the third child: two before it finish
    with pytest.raises(RuntimeError, match="disk gone"):
        log_backtest(result, experiment="t", tracking_uri=uri, sample_areas=0)
    assert mlflow.active_run() is None  # nothing left open for MLflow to end FINISHED at exit
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("t").experiment_id])
    status = {r.info.run_name: r.info.status for r in runs}
    assert status == {"backtest-arrivals": "FAILED", "naive": "FINISHED", "seasonal_naive": "FINISHED",
                      "moving_average": "FAILED"}


def test_a_train_cut_short_ends_its_run_failed_and_no_later_run_succeeds_it(cube, trained, tmp_path, monkeypatch,
                                                                           no_global_store):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    def failing(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(mlflow, "log_metrics", failing)  # Ctrl-C while the run logs
        with pytest.raises(KeyboardInterrupt):
            log_trained(trained, cube.isel(time=slice(0, -3)), experiment="t", tracking_uri=uri)
    assert mlflow.active_run() is None
    assert _statuses(uri) == {"train": ["FAILED"]}
    run_id, _ = log_trained(trained, cube, experiment="t", tracking_uri=uri)
    assert "previous_run" not in MlflowClient(tracking_uri=uri).get_run(run_id).data.tags  # not the FAILED one


@pytest.fixture(scope="module")
def evidence(cube, result, trained, tmp_path_factory):
    """One store: a FINISHED backtest, then a FAILED one, then one still RUNNING (all of the same
    spec on the same data), and a FINISHED train run of that spec."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('evidence') / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    try:
        finished = log_backtest(result, experiment="t", tracking_uri=uri, sample_areas=0)
        with pytest.MonkeyPatch.context() as patched:
            _fail_in_child(patched, "tiny_naive")
            with pytest.raises(RuntimeError):
                log_backtest(result, experiment="t", tracking_uri=uri, sample_areas=0)
        experiment = client.get_experiment_by_name("t").experiment_id
        failed = client.search_runs([experiment], "tags.kind = 'backtest' and attributes.status = 'FAILED'")[0].info.run_id
        running = _running_copy(client, finished)
        train_id, _ = log_trained(trained, cube, experiment="t", tracking_uri=uri)
    finally:
        mlflow.set_tracking_uri(None)
    return {"uri": uri, "client": client, "finished": finished, "failed": failed, "running": running,
            "train": train_id}


def _running_copy(client, parent_id: str) -> str:
    """A backtest still logging (or whose process died before it could end): the parent's tags
    and its tiny_naive child's, both RUNNING and later than every other run."""
    parent = client.get_run(parent_id)
    child = client.search_runs([parent.info.experiment_id],
                               f"tags.mlflow.parentRunId = '{parent_id}' and tags.model = 'tiny_naive'")[0]
    later = int(time.time() * 1000) + 60_000

    def copy(run, extra):
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        return client.create_run(run.info.experiment_id, start_time=later, tags={**tags, **extra}).info.run_id

    new = copy(parent, {})
    copy(child, {"mlflow.parentRunId": new})
    return new


def test_the_latest_backtest_found_is_the_latest_finished_one(evidence):
    client = evidence["client"]
    train_run = client.get_run(evidence["train"])
    assert find_backtest(client, train_run) == evidence["finished"]
    card = read_card_evidence(evidence["train"], tracking_uri=evidence["uri"])
    assert card.backtest.run_id == evidence["finished"]


@pytest.mark.parametrize("which, status", [("failed", "FAILED"), ("running", "RUNNING")])
def test_a_backtest_given_that_did_not_finish_is_refused_saying_why(evidence, which, status):
    run_id = evidence[which]
    with pytest.raises(ForecastError, match=rf"backtest run {run_id} is {status} .*may be incomplete"):
        read_card_evidence(evidence["train"], backtest_run_id=run_id, tracking_uri=evidence["uri"])
    with pytest.raises(ForecastError, match=f"is {status}"):
        get_run(run_id, kind="backtest", tracking_uri=evidence["uri"], finished=True)
    assert get_run(run_id, kind="backtest", tracking_uri=evidence["uri"])[1].info.status == status  # reading is fine


def test_the_gate_takes_a_failed_backtest_cited_by_the_card_as_no_evidence(evidence):
    client = evidence["client"]
    client.set_tag(evidence["train"], "card_backtest_run_id", evidence["failed"])
    try:
        found = read_release_evidence(evidence["train"], tracking_uri=evidence["uri"])
    finally:
        client.delete_tag(evidence["train"], "card_backtest_run_id")
    assert found.backtest is None and not found.children
    assert f"backtest run {evidence['failed']} is FAILED" in found.source


@pytest.mark.parametrize("status", ["RUNNING", "FAILED"])
def test_a_train_run_that_did_not_finish_is_not_carded_reviewed_or_judged(evidence, status):
    """A train run cut short may lack its model or lineage: the card, the review and the gate
    refuse it, saying its status, rather than judge half a run."""
    from forecast.tracking import read_review_subject

    client = evidence["client"]
    train = client.get_run(evidence["train"])
    tags = {k: v for k, v in train.data.tags.items() if not k.startswith("mlflow.")}
    copy = client.create_run(train.info.experiment_id, tags=tags).info.run_id
    if status == "FAILED":
        client.set_terminated(copy, "FAILED")
    for read in (read_card_evidence, read_release_evidence, read_review_subject):
        with pytest.raises(ForecastError, match=rf"train run {copy} is {status}"):
            read(copy, tracking_uri=evidence["uri"])


def test_four_backtests_started_at_once_on_an_empty_folder_all_log_to_one_usable_store(files, tmp_path):
    command = [sys.executable, "-m", "forecast.cli", *_backtest_args(files, "--no-baselines")]
    logs = [tmp_path / f"output{i}.txt" for i in range(4)]
    procs = [_start(command, tmp_path, log) for log in logs]
    try:
        codes = [proc.wait(timeout=240) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert codes == [0] * 4, "\n---\n".join(log.read_text() for log in logs)
    fifth = subprocess.run(command, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=240)
    assert fifth.returncode == 0, fifth.stdout + fifth.stderr
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # the default store: mlflow.db in the working folder
    assert _statuses(uri) == {"backtest": ["FINISHED"] * 5, "model": ["FINISHED"] * 5}
