"""Groups of areas for fairness checks, read from a cube's area coordinates.

A groups table has one row per area P-code and one column per grouping (region, access
status, settlement type, population bin ...); every value is a readable label. Users may add
their own columns to it before passing it to :func:`forecast.fairness.fairness_report`.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from forecast.errors import ForecastError

__all__ = ["area_groups", "UNKNOWN"]

#: Label of areas whose group value is missing or empty.
UNKNOWN = "unknown"
AREA = "area"
REGION = "region"
#: Area coordinates that identify or locate an area rather than group areas.
_IDENTIFIER = re.compile(r"^(area|area_name|admin_level|parent_pcode|neighbours|admin\d+_(pcode|name))$")


def area_groups(cube: xr.Dataset, columns: Sequence[str] | None = None, bins: int = 3) -> pd.DataFrame:
    """One row per area, one column of group labels per area coordinate of ``cube``.

    String coordinates become categories (``""`` and missing values become ``"unknown"``);
    numeric coordinates (``population``, ``idp_share_2014`` ...) are cut into ``bins``
    quantile bins labelled with their range, e.g. ``"population: 3.1k-41k"`` (fewer bins when
    many areas share a value). When the cube has no ``region`` coordinate, ``admin1_name``
    provides the ``region`` column.

    Parameters
    ----------
    cube : xarray.Dataset
        A cube with dimension ``area``.
    columns : sequence of str, optional
        Coordinates to group by (``"region"`` may stand for ``admin1_name``). Default: every
        coordinate along ``area`` except identifiers (``area_name``, ``admin_level``,
        ``parent_pcode``, ``neighbours``, ``admin*_pcode``, ``admin*_name``), plus ``region``.
    bins : int, default 3
        Quantile bins per numeric coordinate.

    Returns
    -------
    DataFrame
        Indexed by area P-code (index name ``area``); one categorical column per grouping,
        categories in a readable order (bins low to high, ``"unknown"`` last).

    Raises
    ------
    ForecastError
        The cube has no ``area`` dimension, a requested column is not an area coordinate, or
        ``bins`` is not a positive integer.

    Examples
    --------
    >>> cube = xr.Dataset(coords={"area": ["A1", "A2", "A3"],
    ...                           "admin1_name": ("area", ["North", "North", ""]),
    ...                           "population": ("area", [1200.0, 5000.0, 41000.0])})
    >>> groups = area_groups(cube, bins=2)
    >>> groups["population"].tolist()
    ['population: 1.2k-5.0k', 'population: 1.2k-5.0k', 'population: 5.0k-41k']
    >>> groups["region"].tolist()
    ['North', 'North', 'unknown']
    """
    if not isinstance(cube, xr.Dataset) or AREA not in cube.dims:
        dims = list(cube.dims) if isinstance(cube, xr.Dataset) else type(cube).__name__
        raise ForecastError(f"area_groups needs an xarray cube with dimension 'area'; got {dims}")
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 1:
        raise ForecastError(f"bins must be a positive whole number of quantile bins, got {bins!r}")
    coords = {name: cube.coords[name].values for name in cube.coords
              if cube.coords[name].dims == (AREA,) and name != AREA}
    has_region = REGION in coords or "admin1_name" in coords
    if columns is None:
        columns = [REGION] if REGION not in coords and "admin1_name" in coords else []
        columns += [name for name in coords if not _IDENTIFIER.match(str(name))]
    else:
        columns = [columns] if isinstance(columns, str) else list(columns)
        unknown = [c for c in columns if c not in coords and not (c == REGION and has_region)]
        if unknown:
            groupable = [str(n) for n in coords if not _IDENTIFIER.match(str(n))]
            raise ForecastError(
                f"{unknown} {'is not an area coordinate' if len(unknown) == 1 else 'are not area coordinates'} "
                f"of the cube; its area coordinates are {[str(n) for n in coords]} (groupable by "
                f"default: {groupable}{', region from admin1_name' if has_region else ''})"
            )
    index = pd.Index(np.asarray(cube[AREA].values).astype(str), name=AREA)
    table = {}
    for name in columns:
        values = coords[name] if name in coords else coords["admin1_name"]
        table[name] = _labels(str(name), values, bins)
    return pd.DataFrame(table, index=index)


def _labels(name: str, values: np.ndarray, bins: int) -> pd.Categorical:
    values = np.asarray(values)
    if values.dtype.kind in "iuf" or (values.dtype.kind == "O" and _all_numbers(values)):
        return _binned(name, values.astype(float), bins)
    labels = [_category(v) for v in values]
    categories = sorted({label for label in labels if label != UNKNOWN})
    if UNKNOWN in labels:
        categories.append(UNKNOWN)
    return pd.Categorical(labels, categories=categories)


def _all_numbers(values: np.ndarray) -> bool:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return bool(present) and all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                 for v in present)


def _category(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return UNKNOWN
    text = str(value).strip()
    return text if text else UNKNOWN


def _binned(name: str, values: np.ndarray, bins: int) -> pd.Categorical:
    finite = np.isfinite(values)
    labels = np.full(len(values), UNKNOWN, dtype=object)
    categories: list[str] = []
    if finite.any():
        distinct = np.unique(values[finite])
        if len(distinct) == 1:
            categories = [f"{name}: {_number(distinct[0], 2)}"]
            codes = np.zeros(int(finite.sum()), dtype=int)
        else:
            codes, edges = pd.qcut(values[finite], q=min(bins, len(distinct)), labels=False,
                                   retbins=True, duplicates="drop")
            categories = _range_labels(name, edges)
        labels[finite] = np.asarray(categories, dtype=object)[np.asarray(codes, dtype=int)]
    if not finite.all():
        categories.append(UNKNOWN)
    return pd.Categorical(labels.tolist(), categories=categories, ordered=True)


def _range_labels(name: str, edges: np.ndarray) -> list[str]:
    """``"name: lo-hi"`` per bin, with just enough digits that no two labels are equal."""
    for digits in range(2, 8):
        text = [_number(e, digits) for e in edges]
        labels = [f"{name}: {lo}-{hi}" for lo, hi in zip(text[:-1], text[1:])]
        if len(set(labels)) == len(labels):
            return labels
    return [f"{name}: {lo:g}-{hi:g}" for lo, hi in zip(edges[:-1], edges[1:])]


def _number(value: float, digits: int) -> str:
    """``value`` with ``digits`` significant digits and a k/M suffix: 3100 -> '3.1k'."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            value, unit = value / size, suffix
            break
    else:
        unit = ""
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    text = f"{value:.{decimals}f}"
    if "." in text and unit == "" and abs(value) < 1:
        text = text.rstrip("0").rstrip(".")
    return text + unit
