"""Charts logged to MLflow, drawn side by side in worker processes.

A backtest logs 19 to 60 charts (fan charts, feature importance, trigger reliability and
timelines, fairness disparities). Laying one out and drawing it takes 0.2-0.6 s of a core, all
Python under one lock: threads do not help, and on the demo's two cores the other core sat idle
for the whole of it. The logging functions now hand each chart to a :class:`Charts` as they make
it; once a log has six, each is pickled and sent to a ``loky`` worker process (the process pool
under joblib: no re-import of the user's script, workers kept a minute for the next log), and
:meth:`Charts.log` logs each PNG to the run it was made for. The pictures are the ones drawing
here gives, byte for byte: the figure travels whole, with the matplotlib settings this process
changed.

``FORECAST_CHART_JOBS`` sets how many processes draw (1: all in this process); the default is
every core, at most :data:`MAX_JOBS`. Fewer than :data:`MIN_PARALLEL` charts are drawn here, as is
a chart that cannot be pickled; a worker that dies (out of memory) leaves its charts to be drawn
here, and where no worker can start (a sandbox without processes or ``/dev/shm``) every chart is.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path, PurePosixPath

from forecast.errors import ForecastError

__all__ = ["Charts", "chart_jobs", "png", "CHART_JOBS_ENV"]

CHART_JOBS_ENV = "FORECAST_CHART_JOBS"
#: Most processes drawing charts by default: a worker costs about 0.5 s of a core to start
#: (Python and matplotlib), and a backtest has a few dozen charts.
MAX_JOBS = 8
#: Fewer charts than this are drawn in this process: starting workers would cost more.
MIN_PARALLEL = 6
#: Seconds an idle worker waits for the next log's charts before it ends.
IDLE_S = 60
#: rc settings that are not the picture's: which backend a process uses.
_NOT_DRAWING = ("backend", "backend_fallback", "interactive")


def chart_jobs() -> int:
    """Processes that draw a log's charts: ``FORECAST_CHART_JOBS``, else every core (at most 8)."""
    text = os.environ.get(CHART_JOBS_ENV)
    if text is None or not text.strip():
        from loky import cpu_count  # the cores this process may use (affinity, cgroup quota)

        return max(1, min(MAX_JOBS, cpu_count()))
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise ForecastError(f"{CHART_JOBS_ENV} must be a whole number of processes, 1 or more (1 draws every "
                            f"chart in this process), got {text!r}")
    return jobs


def _drawing():
    """:func:`png` and :func:`_draw`, made inside a function so that cloudpickle sends them to a
    worker by value: the worker then draws without importing ``forecast`` (2 s: the whole
    package), only matplotlib. Hence also the imports inside them."""

    def png(fig) -> bytes:
        """``fig`` as PNG bytes, as ``fig.savefig(path.png)`` writes it, laid out once.

        Saving a figure that has a layout engine (``layout="constrained"``, as every chart of
        ours) lays it out twice: a draw to place the axes, then the drawing. Laid out here once
        and the engine then set aside, the picture is the same pixel for pixel and 5-15% sooner
        per chart (benchmarks/README.md).
        """
        import io

        import matplotlib

        engine = fig.get_layout_engine()
        if engine is not None:
            engine.execute(fig)
            # None means "no engine" only while the rc settings ask for none
            with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
                fig.set_layout_engine(None)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()

    def draw(pickled: bytes, rc: dict) -> bytes:
        """In a worker: the pickled figure as PNG bytes, under the settings of the process that made it."""
        import pickle

        import matplotlib

        with matplotlib.rc_context(rc):
            return png(pickle.loads(pickled))

    return png, draw


png, _draw = _drawing()


def _changed_rc() -> dict:
    """The matplotlib settings this process changed since it read its matplotlibrc (a worker reads
    the same file): a notebook's ``plt.style.use``, an ``rc_context`` around the logging."""
    import matplotlib

    return {key: value for key, value in matplotlib.rcParams.items()
            if key not in _NOT_DRAWING and matplotlib.rcParamsOrig.get(key) != value}


class Charts:
    """The charts of one log, each for the run that was active when it was added; a context.

    From the :data:`MIN_PARALLEL`-th chart on, each is sent to a worker as it is added, so the
    workers draw while this process goes on making the next ones.

    >>> with Charts() as charts:  # doctest: +SKIP
    ...     charts.add(fan_chart(forecasts, area, "lightgbm"), f"fan_charts/{area}.png")
    ...     charts.log()  # each PNG logged to its run as it is drawn
    """

    def __init__(self, jobs: int | None = None) -> None:
        self.jobs = chart_jobs() if jobs is None else jobs
        self._executor = None
        # one dict per chart: run_id, file and what it is at: "figure" (not sent yet), "pickled"
        # with its "future" (sent), or "png" (drawn here)
        self._charts: list[dict] = []

    def __enter__(self) -> Charts:
        return self

    def __exit__(self, *exc) -> None:
        for chart in self._charts:  # cut short (an error, Ctrl-C): charts not yet drawn never will be
            if "future" in chart:
                chart["future"].cancel()
        self._charts = []

    def add(self, fig, artifact_file: str) -> None:
        """Log ``fig`` as ``artifact_file`` (a ``.png`` path) to the active run at :meth:`log`."""
        import mlflow

        run = mlflow.active_run()
        if run is None:
            raise ForecastError(f"no active MLflow run to log {artifact_file} to")
        if PurePosixPath(artifact_file).suffix.lower() != ".png":
            raise ForecastError(f"charts are logged as PNG files, got {artifact_file!r}")
        chart = {"run_id": run.info.run_id, "file": artifact_file}
        self._charts.append(chart)
        if self.jobs == 1:
            chart["png"] = png(fig)
            return
        chart["figure"] = fig
        if self._executor is None and len(self._charts) >= MIN_PARALLEL:
            import loky

            try:  # workers are kept a while for the next log (a test suite's, a notebook's)
                self._executor = loky.get_reusable_executor(max_workers=self.jobs, timeout=IDLE_S)
            except (OSError, RuntimeError):  # no processes here (a sandbox, no /dev/shm): all drawn here
                self.jobs = 1
                return
            self._rc = _changed_rc()
        if self._executor is not None:
            for waiting in self._charts:
                if "figure" in waiting:
                    self._send(waiting)

    def _send(self, chart: dict) -> None:
        fig = chart.pop("figure")
        try:
            chart["pickled"] = pickle.dumps(fig, pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError):  # a lambda formatter, an open file
            chart["png"] = png(fig)
            return
        try:
            chart["future"] = self._executor.submit(_draw, chart["pickled"], self._rc)
        except RuntimeError:  # the executor broke (a worker died): this one and the rest here
            chart["png"] = png(pickle.loads(chart.pop("pickled")))
            self.jobs = 1

    def log(self, tracking_uri: str | None = None) -> int:
        """Log every chart to its run, each as soon as it is drawn; returns how many.

        A chart that fails to draw raises as it would have here; one whose worker died (out of
        memory) is drawn here.
        """
        import mlflow
        from loky.process_executor import BrokenProcessPool, TerminatedWorkerError

        client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        with tempfile.TemporaryDirectory() as tmp:
            for index, chart in enumerate(self._charts):
                if "figure" in chart:  # fewer than MIN_PARALLEL charts: not worth a worker
                    chart["png"] = png(chart.pop("figure"))
                elif "future" in chart:
                    try:
                        chart["png"] = chart.pop("future").result()
                    except (TerminatedWorkerError, BrokenProcessPool):
                        chart["png"] = png(pickle.loads(chart["pickled"]))
                _log_png(client, Path(tmp) / str(index), chart["run_id"], chart["file"], chart.pop("png"))
                chart.pop("pickled", None)
        logged, self._charts = len(self._charts), []
        return logged


def _log_png(client, folder: Path, run_id: str, artifact_file: str, data: bytes) -> None:
    """``data`` as ``artifact_file`` of run ``run_id`` (as ``mlflow.log_figure`` lays it out)."""
    path = PurePosixPath(artifact_file)
    folder.mkdir()
    (folder / path.name).write_bytes(data)
    client.log_artifact(run_id, str(folder / path.name), str(path.parent) if str(path.parent) != "." else None)
