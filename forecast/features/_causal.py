"""The leakage check: features at month t must not change when later months are removed."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import xarray as xr

from forecast._names import TIME
from forecast.errors import ForecastError
from forecast.features._build import build_features

__all__ = ["LeakageError", "assert_causal"]


class LeakageError(ForecastError, AssertionError):
    """A feature at some month depends on data after that month."""


def assert_causal(cube: xr.Dataset, target: str = "arrivals", *, cutoffs: Iterable[int] | None = None,
                  **build_kwargs) -> None:
    """Check that every feature at month ``t`` is identical with and without data after ``t``.

    Builds the features on the whole cube and again on the cube cut after each cutoff month,
    and compares every row up to the cutoff (NaN equal to NaN).

    Parameters
    ----------
    cube : xarray.Dataset
    target : str
    cutoffs : iterable of int, optional
        Month indices to cut after; default: a quarter, half and three quarters of the way.
    **build_kwargs
        Passed to :func:`build_features` (families, params, missing_target, neighbours).

    Raises
    ------
    LeakageError
        Naming each family and column whose values changed, and the first month affected.
    """
    full = build_features(cube, target, **build_kwargs)
    n_t = cube.sizes[TIME]
    cutoffs = list(cutoffs) if cutoffs is not None else [n_t // 4, n_t // 2, 3 * n_t // 4]
    owner = {c: fam for fam, cols in full.families.items() for c in cols}
    problems = {}
    for k in cutoffs:
        cut = build_features(cube.isel({TIME: slice(0, k + 1)}), target, **build_kwargs)
        rows = full.rows_upto(k)
        a = full.X.iloc[rows].to_numpy()
        b = cut.X.to_numpy()
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        for j in np.flatnonzero(~same.all(axis=0)):
            col = full.X.columns[j]
            first = full.X.index[rows][np.flatnonzero(~same[:, j])[0]][0]
            problems.setdefault(col, (owner[col], k, first))
    if problems:
        lines = [f"  {col} (family {fam!r}): differs at {str(first)[:7]} when data after month "
                 f"index {k} is removed" for col, (fam, k, first) in sorted(problems.items())]
        raise LeakageError("features read data after their month:\n" + "\n".join(lines))
