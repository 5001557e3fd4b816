"""When: the months of a report's trigger window, and how old each source's newest data are.

A report forecasts from the cube's last month. Read two years later, its "next three months" are
long past: the page must say which months the window covers (January to March 2024, not "the
next three months") and, per source, the last month with data, with a banner when the newest
data are older than the lead time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from forecast._names import ARRIVALS, DEPARTURES, IDP_STOCK, RETURNS, TIME, observed_name

__all__ = ["window_months", "data_age", "months_between"]

#: Variables a file of each format gives the cube when its columns do not name them.
_FORMAT_VARIABLES = {"flows": (ARRIVALS, DEPARTURES, RETURNS), "dtm": (IDP_STOCK,), "hxl": (IDP_STOCK,)}


def window_months(month: str, lead: int) -> str:
    """The months of a window of ``lead`` months after ``month``, in words.

    Examples
    --------
    >>> window_months("2023-12", 3)
    'January to March 2024'
    >>> window_months("2023-11", 3)
    'December 2023 to February 2024'
    >>> window_months("2023-12", 1)
    'January 2024'
    """
    first = pd.Period(month, freq="M") + 1
    last = first + (int(lead) - 1)
    # Period.strftime: pandas 2 has no format spec for a Period (f"{p:%B}" fails there)
    if first == last:
        return first.strftime("%B %Y")
    if first.year == last.year:
        return f"{first.strftime('%B')} to {last.strftime('%B %Y')}"
    return f"{first.strftime('%B %Y')} to {last.strftime('%B %Y')}"


def months_between(earlier: str, later: pd.Timestamp) -> int:
    """Whole months from the month ``earlier`` (``YYYY-MM``) to the month of ``later``."""
    start = pd.Period(earlier, freq="M")
    end = pd.Period(pd.Timestamp(later), freq="M")
    return (end.year - start.year) * 12 + end.month - start.month


def _last_month(cube: xr.Dataset, variable: str) -> str | None:
    mask = observed_name(variable)
    da = cube[mask] if mask in cube else np.isfinite(cube[variable])
    other = [d for d in da.dims if d != TIME]
    seen = np.asarray(da.any(dim=other).values if other else da.values, dtype=bool)
    if not seen.any():
        return None
    return f"{pd.Timestamp(cube[TIME].values[np.flatnonzero(seen)[-1]]):%Y-%m}"


def _variables(record: Mapping, cube: xr.Dataset) -> list[str]:
    named = [c for c in record.get("columns_kept", {}) if c in cube.data_vars and not c.endswith("_observed")]
    known = _FORMAT_VARIABLES.get(str(record.get("format", "")), ())
    return named or [v for v in known if v in cube.data_vars]


def data_age(cube: xr.Dataset, manifest: Mapping | None, target: str, today: pd.Timestamp, lead: int) -> dict:
    """The last month with data per source, and whether the newest is older than the lead time.

    Parameters
    ----------
    cube : xarray.Dataset
    manifest : mapping, optional
        The cube's manifest: each source file's format and the variables it gave. Without one,
        the forecast target and the other variables of the cube stand as two sources.
    target : str
    today : Timestamp
        The report's date.
    lead : int

    Returns
    -------
    dict
        ``sources`` (``file, format, variables, last_month``; a file with no month-by-month
        values, such as district attributes, has ``last_month`` None), ``newest``, ``today``,
        ``months_old`` and ``stale``: the newest month is more than ``lead`` months before today.
    """
    sources = []
    for record in (manifest or {}).get("files", []):
        variables = _variables(record, cube)
        months = [m for m in (_last_month(cube, v) for v in variables) if m]
        sources.append({"file": Path(str(record.get("path", ""))).name, "format": str(record.get("format", "")),
                        "variables": variables, "last_month": max(months) if months else None})
    if not sources:
        others = [v for v in cube.data_vars if v != target and not v.endswith("_observed")
                  and set(cube[v].dims) >= {TIME} and v in cube]
        for label, variables in ((f"{target} (the forecast target)", [target]), ("other variables", others)):
            months = [m for m in (_last_month(cube, v) for v in variables if v in cube) if m]
            if months:
                sources.append({"file": label, "format": "", "variables": variables, "last_month": max(months)})
    dated = [s["last_month"] for s in sources if s["last_month"]]
    newest = max(dated) if dated else f"{pd.Timestamp(cube[TIME].values[-1]):%Y-%m}"
    old = months_between(newest, today)
    return {"sources": sources, "newest": newest, "today": f"{pd.Timestamp(today):%Y-%m}", "months_old": old,
            "lead": int(lead), "stale": old > int(lead)}
