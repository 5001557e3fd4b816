"""Aggregation up the admin hierarchy (admin2 -> admin1 -> admin0) that respects missingness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from forecast._names import (
    ADMIN_LEVEL,
    AREA,
    AREA_NAME,
    OBSERVED_SUFFIX,
    PARENT_PCODE,
    TIME,
    admin_name,
    admin_pcode,
    observed_name,
)
from forecast.cube._store import HASH_ATTR
from forecast.errors import CubeError

COVERAGE_SUFFIX = "_coverage"
_PARENT = "_parent"


def aggregate(cube: xr.Dataset, level: int) -> xr.Dataset:
    """Sum area variables to the areas of a coarser admin ``level``.

    A parent-month is observed when at least one child was; its value is the sum over the
    observed children (NaN when none was), and ``<var>_coverage`` gives the share of
    children observed, so a partial total is never mistaken for a complete one. Totals are
    preserved: the sum over parents equals the sum over children. Flows are not aggregated.

    Examples
    --------
    >>> regions = aggregate(load_somalia(), level=1)  # doctest: +SKIP
    """
    current = int(cube.attrs.get("admin_level", -1))
    if level >= current:
        raise CubeError(f"cannot aggregate an admin{current} cube to admin{level}: choose a coarser level")
    pcol, ncol = admin_pcode(level), admin_name(level)
    if pcol not in cube.coords:
        have = [c for c in cube.coords if str(c).startswith("admin")]
        raise CubeError(f"the cube has no '{pcol}' coordinate (areas keyed without a hierarchy); "
                        f"it has {have}; ingest with --areas to get one")
    parents = pd.Index(cube[pcol].values.astype(str))
    if (parents == "").any():
        raise CubeError(f"{int((parents == '').sum())} areas have no admin{level} parent")
    # A grouper named like its dim would be taken as that dim's index (parent codes, not the
    # cube's areas) and fail to align; group under a private name, renamed to `area` after.
    groups = xr.DataArray(parents, dims=AREA, coords={AREA: cube[AREA].values}, name=_PARENT)
    names = cube[ncol].to_series().groupby(parents).first()
    out = xr.Dataset()
    for name, var in cube.data_vars.items():
        if AREA not in var.dims or name.endswith(OBSERVED_SUFFIX) or var.dtype.kind != "f":
            continue
        observed = var.notnull()
        total = var.fillna(0).groupby(groups).sum()
        seen = observed.groupby(groups).any()
        out[name] = total.where(seen)
        out[observed_name(name)] = seen
        out[name + COVERAGE_SUFFIX] = observed.groupby(groups).mean()
    out = out.rename({_PARENT: AREA})
    labels = out[AREA].values.astype(str)
    coords = {AREA: labels, AREA_NAME: (AREA, names.reindex(labels).to_numpy().astype(str)),
              ADMIN_LEVEL: (AREA, np.full(len(labels), level, dtype="int64"))}
    if level > 0:
        parent_of = cube[admin_pcode(level - 1)].to_series().groupby(parents).first() if admin_pcode(level - 1) in cube.coords else None
        coords[PARENT_PCODE] = (AREA, parent_of.reindex(labels).to_numpy().astype(str) if parent_of is not None else np.full(len(labels), ""))
        for k in range(level):
            for col in (admin_pcode(k), admin_name(k)):
                if col in cube.coords:
                    coords[col] = (AREA, cube[col].to_series().groupby(parents).first().reindex(labels).to_numpy().astype(str))
    else:
        coords[PARENT_PCODE] = (AREA, np.full(len(labels), ""))
    out = out.assign_coords(coords)
    # The source cube's content hash does not describe the aggregate: leave it behind.
    out.attrs.update({k: v for k, v in cube.attrs.items() if k != HASH_ATTR})
    out.attrs["admin_level"] = int(level)
    return out.transpose(AREA, TIME, ...)
