"""Charts a log draws in worker processes are the charts drawing them here gives, and none is lost."""

from __future__ import annotations

import io

import matplotlib
import matplotlib.image as mpimg
import mlflow
import pytest
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from mlflow.tracking import MlflowClient

from forecast.backtest import RollingOrigin, backtest
from forecast.datasets import make_panel
from forecast.errors import ForecastError
from forecast.tracking import _charts, log_backtest
from forecast.tracking._charts import CHART_JOBS_ENV, MIN_PARALLEL, Charts, chart_jobs, png

FOLDS = RollingOrigin(n_origins=2, calibration_origins=4, min_train=18)


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("charts")
    yield MlflowClient(tracking_uri=uri)
    mlflow.set_tracking_uri(None)


def _chart(i: int, formatter=None) -> Figure:
    fig = Figure(figsize=(4, 2.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(range(12), [(k * (i + 3)) % 7 for k in range(12)], marker="o")
    ax.set_title(f"chart {i}")
    if formatter is not None:
        ax.yaxis.set_major_formatter(formatter)
    return fig


def _pictures(client: MlflowClient, run_id: str, folder: str = "charts") -> dict[str, bytes]:
    out = {}
    for artifact in client.list_artifacts(run_id, folder):
        path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact.path,
                                                   tracking_uri=client.tracking_uri)
        with open(path, "rb") as f:
            out[artifact.path] = f.read()
    return out


def _assert_every_chart_logged_as_drawn_here(store, n: int) -> None:
    """Log ``n`` charts with two jobs asked for: every one is logged, as drawing it here gives."""
    run_id, logged = _log(store, [_chart(i) for i in range(n)], jobs=2)
    assert logged == n
    pictures = _pictures(store, run_id)
    assert [pictures[f"charts/c{i}.png"] for i in range(n)] == [png(_chart(i)) for i in range(n)]


def _log(client, figures, jobs: int) -> tuple[str, int]:
    with mlflow.start_run() as run, Charts(jobs=jobs) as charts:
        for i, fig in enumerate(figures):
            charts.add(fig, f"charts/c{i}.png")
        logged = charts.log()
    return run.info.run_id, logged


def test_charts_drawn_in_workers_are_the_charts_drawn_here(store):
    n = MIN_PARALLEL + 2
    here, n_here = _log(store, [_chart(i) for i in range(n)], jobs=1)
    there, n_there = _log(store, [_chart(i) for i in range(n)], jobs=2)
    assert n_here == n_there == n
    drawn_here, drawn_there = _pictures(store, here), _pictures(store, there)
    assert sorted(drawn_here) == sorted(drawn_there) == [f"charts/c{i}.png" for i in range(n)]
    assert drawn_here == drawn_there  # byte for byte
    assert drawn_here["charts/c0.png"] == png(_chart(0))


def test_a_backtest_logs_the_same_pictures_whoever_draws_them(tmp_path, monkeypatch):
    """Every chart of a real backtest log (fan charts of each model, in child runs) is the
    same whether this process or the workers drew it."""
    result = backtest(make_panel(8, 40, seed=3), [], folds=FOLDS)
    pictures = {}
    for jobs in ("1", "2"):
        monkeypatch.setenv(CHART_JOBS_ENV, jobs)
        uri = f"sqlite:///{tmp_path / f'jobs{jobs}.db'}"
        try:
            run_id = log_backtest(result, experiment="t", tracking_uri=uri)
        finally:
            mlflow.set_tracking_uri(None)
        client = MlflowClient(tracking_uri=uri)
        children = client.search_runs([client.get_run(run_id).info.experiment_id],
                                      f"tags.mlflow.parentRunId = '{run_id}'")
        pictures[jobs] = {(child.info.run_name, path): data for child in children
                          for path, data in _pictures(client, child.info.run_id, "fan_charts").items()}
    assert len(pictures["1"]) == 3 * len(result.models) >= MIN_PARALLEL
    assert pictures["1"] == pictures["2"]


def test_the_workers_draw_under_the_settings_this_process_changed(store):
    with matplotlib.rc_context({"savefig.dpi": 40, "lines.linewidth": 4}):
        run_id, _ = _log(store, [_chart(i) for i in range(MIN_PARALLEL)], jobs=2)
        expected = png(_chart(0))
    got = _pictures(store, run_id)["charts/c0.png"]
    assert got == expected
    assert mpimg.imread(io.BytesIO(got)).shape != mpimg.imread(io.BytesIO(png(_chart(0)))).shape


def test_a_chart_that_cannot_travel_is_drawn_here(store):
    """A chart whose formatter is a lambda cannot be pickled: it is drawn in this process."""
    thousands = FuncFormatter(lambda v, _: f"{v:,.0f}k")
    figures = [_chart(i) for i in range(MIN_PARALLEL)] + [_chart(99, thousands)]
    run_id, logged = _log(store, figures, jobs=2)
    assert logged == MIN_PARALLEL + 1
    assert _pictures(store, run_id)[f"charts/c{MIN_PARALLEL}.png"] == png(_chart(99, thousands))


def test_charts_of_a_worker_that_died_are_drawn_here(store, monkeypatch):
    def die(pickled, rc):  # sent by value (a local function): the worker ends, as killed for memory
        import os

        os._exit(1)

    monkeypatch.setattr(_charts, "_draw", die)
    _assert_every_chart_logged_as_drawn_here(store, MIN_PARALLEL + 1)


def test_a_chart_that_fails_to_draw_fails_the_log(store, monkeypatch):
    def fail(pickled, rc):
        raise ValueError("cannot draw this")

    monkeypatch.setattr(_charts, "_draw", fail)
    with pytest.raises(ValueError, match="cannot draw this"):
        _log(store, [_chart(i) for i in range(MIN_PARALLEL)], jobs=2)


def test_chart_jobs_come_from_the_environment(monkeypatch):
    monkeypatch.delenv(CHART_JOBS_ENV, raising=False)
    assert 1 <= chart_jobs() <= _charts.MAX_JOBS
    monkeypatch.setenv(CHART_JOBS_ENV, "3")
    assert chart_jobs() == 3
    for bad in ("0", "-2", "two", "1.5"):
        monkeypatch.setenv(CHART_JOBS_ENV, bad)
        with pytest.raises(ForecastError, match=f"{CHART_JOBS_ENV} must be a whole number.*{bad}"):
            chart_jobs()


def test_a_chart_needs_a_run_and_a_png_name(store):
    with pytest.raises(ForecastError, match="no active MLflow run to log charts/x.png"):
        Charts(jobs=1).add(_chart(0), "charts/x.png")
    with mlflow.start_run(), pytest.raises(ForecastError, match="as PNG files, got 'charts/x.svg'"):
        Charts(jobs=1).add(_chart(0), "charts/x.svg")


def test_where_no_worker_can_start_every_chart_is_drawn_here(store, monkeypatch):
    import loky

    def no_processes(*args, **kwargs):
        raise OSError("[Errno 38] Function not implemented: /dev/shm")

    monkeypatch.setattr(loky, "get_reusable_executor", no_processes)
    _assert_every_chart_logged_as_drawn_here(store, MIN_PARALLEL + 2)
