"""Backtest blocks as Dask tasks: the one module that imports Dask.

A backtest is independent units: each block of origins (one fit, the forecasts it serves) reads
only the shared feature matrix. :func:`map_blocks` sends the matrix to every worker once
(``scatter``) and runs the blocks there; the results come back in block order, so a Dask run
gives the same table as a local one. No scheduler of our own: a ``distributed`` cluster
(``dask scheduler`` / ``dask worker``, or a ``LocalCluster``) does the work.
"""

from __future__ import annotations

from contextlib import contextmanager

from forecast.errors import ForecastError

__all__ = ["connect", "map_blocks"]

_HINT = "pip install 'displacement-forecast[dask]' (dask[distributed])"


def _distributed():
    try:
        import distributed
    except ImportError:  # an optional dependency
        raise ForecastError(f"the Dask path needs dask.distributed: {_HINT}") from None
    return distributed


@contextmanager
def connect(target, *, n_workers: int | None = None):
    """A ``distributed.Client`` for ``target``, closed afterwards if this opened it.

    ``target`` is a ``Client`` (used as is), ``"local"`` (a ``LocalCluster`` of processes on
    this machine, one thread each) or a scheduler address such as ``tcp://10.0.0.5:8786``.
    """
    distributed = _distributed()
    if isinstance(target, distributed.Client):
        yield target
        return
    if target == "local":
        cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                                           dashboard_address=":0")
        try:
            with distributed.Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = distributed.Client(str(target), timeout="10s")
    except (OSError, TimeoutError) as error:
        raise ForecastError(f"cannot reach the Dask scheduler at {target}: {error}; start one with "
                            "`dask scheduler` and workers with `dask worker ADDRESS`, or pass --dask local") from None
    try:
        yield client
    finally:
        client.close()


def map_blocks(client, func, spec, fm, blocks, horizons, quantiles, *extra, progress=None) -> list:
    """``[func(spec, fm, block, horizons, quantiles, *extra) for block in blocks]``, on the cluster."""
    distributed = _distributed()
    shared = client.scatter(fm, broadcast=True, hash=False)  # a fresh key: a released one may linger
    futures = [client.submit(func, spec, shared, block, horizons, quantiles, *extra, pure=False) for block in blocks]
    total, done = sum(map(len, blocks)), 0
    size = {f.key: len(b) for f, b in zip(futures, blocks)}
    for future in distributed.as_completed(futures):
        if future.status == "error":
            future.result()  # raises the task's own error here
        done += size[future.key]
        if progress:
            progress(spec.name, done, total)
    return client.gather(futures)
