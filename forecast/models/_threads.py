"""Work side by side in threads, each thread held to one OpenMP thread.

LightGBM and scikit-learn's boosting release the GIL, so fits in threads use every core without
copying the features. Each fit must then run on one thread: OpenMP threads inside each fit,
on top of ours, would oversubscribe the cores. OpenMP's thread count is a setting of the
thread that starts the work, so a limit set where the pool starts does not reach the pool's
threads: every fit there started a team as large as the machine. That cost scikit-learn's
HistGradientBoosting fits 43% more time, side by side on two cores. So each pool thread sets its
own limit once, as it starts, and the threads end with the pool.

The pool also keeps the process's warning filters as they were. Python before 3.14 keeps one
list of filters for all threads, and ``warnings.catch_warnings`` puts back, as it exits, the list
it found as it entered. scikit-learn enters it in every ``check_array`` and in every task of its
own ``Parallel``: two threads doing so at once leave behind whichever list the last one to exit
found, some other thread's temporary list. Each of 20 HistGradientBoosting backtests in a row
left a changed list (after one, ComplexWarning was an error for the whole process), and where the
list left behind was an empty one, every later scikit-learn ``Parallel`` call warned (14,173
warnings in one test run). So the filters are noted as the first pool starts and put back as
the last one ends. While pools are open, that one warning of scikit-learn's is ignored: it says
only that a ``Parallel`` call caught the filters at the instant another thread had emptied them,
and where the filters in place then were ones that turn warnings into errors (a test run's), it
would fail the fit.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from threadpoolctl import ThreadpoolController, threadpool_limits

from forecast._process import SharedChange

__all__ = ["side_by_side", "as_done", "caught_warnings", "one_at_a_time"]


def side_by_side(fn: Callable, items: Iterable[tuple]) -> Iterator:
    """``fn(*args)`` for each ``args`` of ``items``, in threads, each on one OpenMP thread.

    As many threads as cores, at most one per item. The results come back in the items' order,
    each as soon as it and every one before it are done (a generator: wrap it in ``list`` to wait
    for all). An exception in ``fn`` is raised where its result would have come, and the items
    not yet started are cancelled.

    Examples
    --------
    >>> list(side_by_side(pow, [(2, 3), (3, 2)]))
    [8, 9]
    """
    items = list(items)
    if not items:
        return
    with _pool(len(items)) as pool:
        yield from pool.map(lambda args: fn(*args), items)


def as_done(fn: Callable, items: Iterable[tuple]) -> Iterator[tuple[int, Any]]:
    """``(i, fn(*items[i]))`` for each item as soon as it is done, in threads as :func:`side_by_side`.

    The items start in the order given, so a caller that puts the longest first keeps the
    threads busy to the end (no thread left alone with the last, longest item) and can use each
    result while the others run. An exception in ``fn`` is raised as soon as it happens; the
    items not yet started are cancelled.

    Examples
    --------
    >>> sorted(as_done(pow, [(2, 3), (3, 2)]))
    [(0, 8), (1, 9)]
    """
    items = list(items)
    if not items:
        return
    with _pool(len(items)) as pool:
        pending = {pool.submit(fn, *args): i for i, args in enumerate(items)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=pending.get):
                    yield pending.pop(future), future.result()
        finally:  # an error, or a caller that stopped early: start nothing more
            for future in pending:
                future.cancel()


@contextmanager
def _pool(n_items: int) -> Iterator[ThreadPoolExecutor]:
    """As many threads as cores, at most one per item, each held to one OpenMP thread."""
    # found here, in the calling thread: the libraries loaded by now (~3 ms); each pool thread
    # then sets its own limit on them (microseconds)
    openmp = ThreadpoolController().select(user_api="openmp")
    workers = max(1, min(n_items, os.cpu_count() or 1))
    with _warning_filters_kept(), ThreadPoolExecutor(workers, thread_name_prefix="forecast-fit",
                                                     initializer=lambda: openmp.limit(limits=1)) as pool:
        yield pool


#: Held by a per-area fit or forecast while it catches its warnings or limits BLAS threads. Both
#: are settings of the process, not of the thread, so two such fits side by side in threads (the
#: blocks of a Dask worker with several threads) took each other's warnings: an area was judged
#: "did not converge" on another's ConvergenceWarning and fell back, and the forecasts differed
#: from a local run's. Reentrant: a batch holds it around the fits it runs.
one_at_a_time = threading.RLock()

_SKLEARN_RACE = r"`sklearn\.utils\.parallel\.delayed` should be used with `sklearn\.utils\.parallel\.Parallel`"


def _note_filters() -> tuple:
    """The filters list, its contents and ``showwarning``; the scikit-learn message ignored."""
    noted = (warnings.filters, list(warnings.filters), warnings.showwarning)
    warnings.filterwarnings("ignore", message=_SKLEARN_RACE, category=UserWarning)
    return noted


def _put_back_filters(noted: tuple) -> None:
    """The list :func:`_note_filters` noted, with its contents, bound again, and ``showwarning``."""
    filters, contents, show = noted
    filters[:] = contents
    warnings.filters, warnings.showwarning = filters, show
    # forget which warnings were shown under the lists in between (private, so looked up)
    getattr(warnings, "_filters_mutated", lambda: None)()


#: The warning filters, noted as the first pool opens and put back as the last one closes (its
#: threads done); pools inside pools, or beside them in other threads, share the note: only the
#: outermost has seen the filters in place before any thread touched them. Under
#: :data:`one_at_a_time`: while a per-area fit of another thread is catching its warnings, the
#: note would be that fit's list, and putting back would take it away.
_warning_filters_kept = SharedChange(_note_filters, _put_back_filters, lock=one_at_a_time)


@contextmanager
def caught_warnings(blas_threads: int | None = 1) -> Iterator[list[warnings.WarningMessage]]:
    """Every warning raised inside, recorded in the list given (none shown), on ``blas_threads``
    BLAS threads (None: as set by the caller), with :data:`one_at_a_time` held."""
    with one_at_a_time, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if blas_threads is None:
            yield caught
        else:
            with threadpool_limits(limits=blas_threads, user_api="blas"):
                yield caught
