"""Driver families: which driver of displacement each feature column speaks for.

Explanations add up a forecast's per-feature contributions by driver, so that a reader sees
"rainfall and drought" rather than ``rain_anom_z_lag1``. A column's driver comes from the
feature family that made it; families that read several covariates (``covariates``,
``masks``, ``spatial``) name the covariate in the column, and its driver is the covariate's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

__all__ = ["DRIVERS", "variable_driver", "column_drivers"]

ARRIVALS = "recent arrivals and level"
SEASON = "seasonality"
DROUGHT = "rainfall and drought"
CONFLICT = "conflict"
MARKETS = "markets and food security"
INFLOWS = "inflows and origin pressure"
NEIGHBOURS = "neighbours"
OTHER = "other"

#: The driver families, in the order reports list them.
DRIVERS = (ARRIVALS, SEASON, DROUGHT, CONFLICT, MARKETS, INFLOWS, NEIGHBOURS, OTHER)

#: Families whose every column has one driver.
_FAMILY_DRIVER = {
    "lags": ARRIVALS, "rolling": ARRIVALS, "since_large": ARRIVALS, "season": SEASON,
    "drought": DROUGHT, "conflict": CONFLICT, "markets": MARKETS, "food_security": MARKETS,
    "pressure": INFLOWS, "admin": NEIGHBOURS, "stock_flow": INFLOWS,
}

#: Covariate name patterns and their drivers, tried in order.
_VARIABLE_DRIVER = (
    (re.compile(r"rain|ndvi|drought|spi|cdi|vegetation|season"), DROUGHT),
    (re.compile(r"conflict|insecurity|fatalit|acled|violence|incident"), CONFLICT),
    (re.compile(r"price|wage|tot_|terms_of_trade|cost_min|basket|ipc|food|market"), MARKETS),
    (re.compile(r"departure|return|flow|inflow|origin|arrival|idp_stock"), INFLOWS),
)


def variable_driver(name: str) -> str:
    """The driver a covariate speaks for, from its name (``other`` when none fits).

    Examples
    --------
    >>> variable_driver("rainfall"), variable_driver("conflict_incidents"), variable_driver("goat_price")
    ('rainfall and drought', 'conflict', 'markets and food security')
    """
    text = str(name).casefold()
    return next((driver for pattern, driver in _VARIABLE_DRIVER if pattern.search(text)), OTHER)


def _column_driver(family: str, column: str) -> str:
    if family in _FAMILY_DRIVER:
        return _FAMILY_DRIVER[family]
    if family == "spatial":  # neighbours' values, or conditions where arrivals came from
        return INFLOWS if column.startswith("from_") else NEIGHBOURS
    if family == "masks" and column in ("y_observed", "y_recorded"):
        return ARRIVALS
    if family in ("covariates", "masks"):
        return variable_driver(column)
    return OTHER


def column_drivers(families: Mapping[str, Sequence[str]], columns: Sequence[str] | None = None) -> dict[str, str]:
    """Each feature column's driver family.

    Parameters
    ----------
    families : mapping of family name to its columns
        :attr:`forecast.features.FeatureMatrix.families`.
    columns : sequence of str, optional
        The columns a model was fitted on, in order (default: every column of ``families``).
        A column no family made (the horizon of a pooled model) counts as recent arrivals and
        level when it is ``horizon``, else ``other``.

    Returns
    -------
    dict of str to str
        Column -> one of :data:`DRIVERS`, in the order of ``columns``.
    """
    owner = {c: fam for fam, cols in families.items() for c in cols}
    columns = list(owner) if columns is None else list(columns)
    return {c: (_column_driver(owner[c], c) if c in owner else ARRIVALS if c == "horizon" else OTHER)
            for c in columns}
