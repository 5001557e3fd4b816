"""Work side by side in threads, each thread held to one OpenMP thread.

LightGBM and scikit-learn's boosting release the GIL, so fits in threads use every core without
copying the features. Each fit must then run on one thread: OpenMP threads inside each fit,
on top of ours, would oversubscribe the cores. OpenMP's thread count is a setting of the
thread that starts the work, so a limit set where the pool starts does not reach the pool's
threads: every fit there started a team as large as the machine. That cost scikit-learn's
HistGradientBoosting fits 43% more time, side by side on two cores. So each pool thread sets its
own limit once, as it starts, and the threads end with the pool.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from threadpoolctl import ThreadpoolController

__all__ = ["side_by_side", "as_done"]


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
    with ThreadPoolExecutor(workers, thread_name_prefix="forecast-fit",
                            initializer=lambda: openmp.limit(limits=1)) as pool:
        yield pool
