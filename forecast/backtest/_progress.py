"""Progress of the long steps (backtest, trigger evaluation, training) where people work.

A long step takes ``progress``: a callable ``progress(label, done, total)`` (the command line
passes its own bar), ``False`` for silence, or ``None`` (the default) for :class:`ProgressBar`
when someone is watching: a live bar with an ETA in a terminal or a Jupyter notebook, nothing
in a pipe, a CI log or a test's captured output. rich is imported only when a bar is shown,
so ``import forecast`` stays light.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from forecast.errors import ForecastError

__all__ = ["Progress", "ProgressBar", "progress_bar"]

Progress = Callable[[str, int, int], None]

#: Seconds between two redraws of a notebook's bar (a step's last origin is always drawn).
_JUPYTER_EVERY = 0.5
_PRE = ("<pre style=\"white-space:pre;overflow-x:auto;line-height:normal;"
        "font-family:Menlo,'DejaVu Sans Mono',consolas,'Courier New',monospace\">{code}</pre>")


def _in_jupyter() -> bool:
    """A notebook kernel (Jupyter, VS Code, Colab), not a terminal IPython."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if shell is None:
        return False
    kind = type(shell)
    return kind.__name__ == "ZMQInteractiveShell" or "google.colab" in kind.__module__


def _in_terminal() -> bool:
    stream = sys.stderr
    try:
        tty = stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
    return tty and os.environ.get("TERM", "") not in ("dumb", "unknown")


def _another_live_display() -> bool:
    """Is a rich live display (a spinner, another bar) already drawing? Then a second one would
    garble the terminal, so the default stays silent (the command line's own status, say)."""
    proxy = sys.modules.get("rich.file_proxy")
    return proxy is not None and any(isinstance(s, proxy.FileProxy) for s in (sys.stdout, sys.stderr))


def _watched() -> bool:
    return (_in_jupyter() or _in_terminal()) and not _another_live_display()


class ProgressBar:
    """A live progress bar, one row per label, with elapsed time and an ETA.

    Called as ``bar(label, done, total)``: the protocol of every ``progress`` argument. In a
    terminal it is a rich bar on standard error; in a Jupyter notebook a display that updates in
    place (no ipywidgets needed). It draws between ``with bar:`` and its end; the long steps
    enter it themselves, so ``backtest(..., progress=ProgressBar())`` works as it is.

    Parameters
    ----------
    console : rich.console.Console, optional
        Where to draw (default: standard error, or the notebook). A console with
        ``force_jupyter=True`` draws as in a notebook.

    Examples
    --------
    >>> from rich.console import Console                                   # doctest: +SKIP
    >>> forecast.backtest(cube, [spec], progress=ProgressBar(Console(stderr=True, force_terminal=True)))  # doctest: +SKIP
    """

    def __init__(self, console=None):
        self.console = console
        self._depth = 0
        self._progress = None
        self._tasks: dict[str, int] = {}
        self._jupyter = None
        self._last = 0.0  # when the last event came: the next label's step started then

    def __enter__(self) -> ProgressBar:
        self._depth += 1
        if self._depth == 1:
            self._start()
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._stop()

    def __call__(self, label: str, done: int, total: int) -> None:
        if self._progress is None:  # called outside ``with``: nothing to draw on
            return
        now = self._progress.get_time()
        if label not in self._tasks:
            self._tasks[label] = self._progress.add_task(label, total=total, started=self._last)
        fields = {"updated": now, **({"finished": now} if done >= total else {})}
        self._progress.update(self._tasks[label], completed=done, total=total, **fields)
        self._last = now
        if self._jupyter is not None:
            self._jupyter.draw(force=done >= total)

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        console = self.console
        jupyter = console.is_jupyter if console is not None else _in_jupyter()
        if jupyter:  # drawn by hand into a display: rich's own needs ipywidgets
            console = Console(file=io.StringIO(), record=True, force_terminal=True, force_jupyter=False,
                              width=console.width if console is not None else 110, color_system="truecolor")
        elif console is None:
            console = Console(stderr=True)
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=32), MofNCompleteColumn(),
                                  _Times(), console=console, transient=False, refresh_per_second=4,
                                  auto_refresh=not jupyter, redirect_stdout=not jupyter,
                                  redirect_stderr=not jupyter)
        self._tasks = {}
        self._last = self._progress.get_time()
        if jupyter:
            self._jupyter = _JupyterView(self._progress)
        else:
            self._progress.start()

    def _stop(self) -> None:
        if self._progress is None:
            return
        if self._jupyter is not None:
            self._jupyter.draw(force=True)
        else:
            self._progress.stop()
        self._progress, self._jupyter = None, None


def _Times():  # noqa: N802  (made on first use: rich loads only when a bar is shown)
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Times(ProgressColumn):
        """Elapsed time of the row's step and its ETA: the time per item so far times the items
        left, counting down between updates. A step starts when the event before its first came
        (the steps run one after another), so its first item's time counts too."""

        def render(self, task) -> Text:
            f = task.fields
            start = f.get("started", task.start_time or 0.0)
            if "finished" in f:
                return Text(f"{_clock(f['finished'] - start)} done", style="progress.elapsed")
            now = task.get_time()
            elapsed = Text(_clock(now - start), style="progress.elapsed")
            if not task.completed or "updated" not in f:
                return elapsed + Text(" ETA -:--:--", style="progress.remaining")
            left = (f["updated"] - start) / task.completed * ((task.total or 0) - task.completed)
            return elapsed + Text(f" ETA {_clock(left - (now - f['updated']))}", style="progress.remaining")

    return Times()


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class _Snapshot:
    """One drawing of the bar: HTML for the notebook, text for plain frontends."""

    def __init__(self, text: str, html: str):
        self.text, self.html = text, html

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return self.text


class _JupyterView:
    """The bar as a notebook display updated in place (``display_id``), at most every half second."""

    def __init__(self, progress):
        self.progress = progress
        self.handle = None
        self.drawn = float("-inf")

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.drawn < _JUPYTER_EVERY:
            return
        from IPython.display import display

        console = self.progress.console
        console.print(self.progress.get_renderable())
        text = console.export_text(clear=False).rstrip("\n")
        snapshot = _Snapshot(text, console.export_html(inline_styles=True, code_format=_PRE, clear=True))
        if self.handle is None:
            self.handle = display(snapshot, display_id=True)
        elif hasattr(self.handle, "update"):
            self.handle.update(snapshot)
        self.drawn = now


@contextmanager
def progress_bar(progress: Progress | bool | None = None) -> Iterator[Progress | None]:
    """What a long step reports to, for as long as it runs.

    Parameters
    ----------
    progress : callable, bool or None
        A callable ``progress(label, done, total)`` is used as it is (entered first when it is a
        :class:`ProgressBar`); ``False``: nothing; ``None`` or ``True``: a :class:`ProgressBar`
        when someone watches (a terminal on standard error or a Jupyter notebook, and no other
        live display already drawing), else nothing.

    Yields
    ------
    callable or None
        Call it as ``progress(label, done, total)`` after each step; None: report nothing. Pass
        it on to inner steps as their ``progress`` (``or False``, so that they draw no bar of
        their own).
    """
    if progress is False:
        yield None
        return
    if progress is None or progress is True:
        if not _watched():
            yield None
            return
        progress = ProgressBar()
    if not callable(progress):
        raise ForecastError(f"progress must be a callable progress(label, done, total), False for none or None "
                            f"for the default bar; got {type(progress).__name__}")
    if isinstance(progress, ProgressBar):
        with progress:
            yield progress
        return
    yield progress
