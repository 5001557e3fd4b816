"""The one publication rule: what may leave the pipeline, under the policy's ``release`` section.

Two checks, applied by every writer of published output (MLflow artifacts, reports, model
cards) and judged again by the release gate:

* small cells: counts from 1 to ``k - 1`` people are withheld (a handful of people arriving in
  a district in a month could be identified). Forecasts count too: a baseline's forecast *is*
  an observation (naive publishes the last one, seasonal naive the one a year back) and no
  reader can tell which forecasts copy observations, so every column of people
  (:func:`people_columns`: counts, point forecasts, means, quantiles) follows the same rule;
* admin level: nothing finer than the finest admin level the data's sensitivity allows.

The sensitivity comes from the dataset's manifest (:class:`forecast.io.Manifest`), never from
anywhere else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from forecast.errors import ForecastError
from forecast.policy._policy import Policy, ReleaseChecks, load_policy

__all__ = ["release_checks", "small_cell_k", "suppress_small_cells", "count_small_cells", "people_columns",
           "publishable", "COUNT_COLUMNS",
           "manifest_sensitivity", "admin_level_allowed", "finest_admin_level"]


#: Columns of published tables that hold numbers of people: observed counts and the forecasts
#: made from them (rates, scores and probabilities are not: ``observed`` in a reliability table is
#: a frequency). Quantile columns (``q0.1``, ``raw_q0.9``) are matched by :data:`QUANTILE_COLUMN`,
#: and a ``month_`` prefix (the headline's month of likeliest crossing) keeps a column's kind.
COUNT_COLUMNS = ("actual", "last_value", "arrivals", "departures", "idps", "returnees", "individuals",
                 "households", "idp_stock", "point", "base_point", "mean", "base_mean", "recent_mean",
                 "expected", "forecast")
QUANTILE_COLUMN = re.compile(r"^(raw_)?q(0?\.\d+|\d+)$")
#: Bounds of an interval of people when the table has ``expected`` (in a reliability table the
#: same names bound a frequency).
BOUNDS = ("lower", "upper")


def people_columns(columns: Iterable, target: str | None = None) -> list[str]:
    """The columns among ``columns`` that hold numbers of people, in their order: the
    :data:`COUNT_COLUMNS`, quantiles, the target variable, ``expected_*`` forecasts, the
    :data:`BOUNDS` beside ``expected``, and any of those with a ``month_`` prefix."""
    columns = [c for c in columns if isinstance(c, str)]
    names = {*COUNT_COLUMNS, *([target] if target else [])}
    if "expected" in columns:
        names |= set(BOUNDS)

    def counts(name: str) -> bool:
        if name.endswith("_suppressed"):  # the flag beside a withheld column, not a number of people
            return False
        return name in names or bool(QUANTILE_COLUMN.match(name)) or name.startswith("expected_")

    return [c for c in columns if counts(c) or (c.startswith("month_") and counts(c.removeprefix("month_")))]


def release_checks(policy: Policy | None = None) -> ReleaseChecks:
    """The ``release`` section of ``policy`` (default: :func:`load_policy`), refused when absent:
    without its small-cell threshold and admin levels nothing can be published."""
    policy = load_policy() if policy is None else policy
    if policy.release is None:
        raise ForecastError(f"policy {policy.source} has no release section: without its small-cell threshold "
                            "and admin levels nothing can be published; add release: (see ethics/policy.yaml)")
    return policy.release


def small_cell_k(policy: Policy | None = None) -> int:
    """The policy's small-cell threshold: counts from 1 to ``k - 1`` are withheld."""
    return release_checks(policy).small_cell.k


def suppress_small_cells(frame: pd.DataFrame, columns=("actual",), k: int | None = None) -> pd.DataFrame:
    """Blank observed counts in [1, k) and flag them in ``<column>_suppressed``.

    ``k`` defaults to the policy's (:func:`small_cell_k`).
    """
    k = small_cell_k() if k is None else int(k)
    out = frame.copy()
    for col in columns:
        values = out[col].to_numpy(float)
        small = (values > 0) & (values < k)
        out[col] = np.where(small, np.nan, values)
        flag = f"{col}_suppressed"  # a table published before keeps what it withheld then
        out[flag] = small | (out[flag].fillna(False).astype(bool).to_numpy() if flag in out else False)
    return out


def publishable(frame: pd.DataFrame, k: int | None = None, target: str | None = None) -> pd.DataFrame:
    """``frame`` as it may be published: every column of people (:func:`people_columns`) with its
    values in [1, k) blanked and flagged in ``<column>_suppressed``."""
    return suppress_small_cells(frame, people_columns(frame.columns, target), k=k)


def count_small_cells(values, k: int) -> int:
    """How many values lie in [1, k): counts the rule withholds (unreadable values are not counted)."""
    numbers = pd.to_numeric(pd.Series(values), errors="coerce")
    return int(((numbers > 0) & (numbers < k)).sum())


def manifest_sensitivity(manifest: Mapping | None) -> str | None:
    """The sensitivity level a manifest records (``None`` without a manifest or level)."""
    return ((manifest or {}).get("sensitivity") or {}).get("level")


def finest_admin_level(sensitivity: str, policy: Policy | None = None) -> int | None:
    """The finest admin level the policy lets us publish at ``sensitivity`` (``None``: no rule)."""
    allowed = release_checks(policy).admin_level.finest.get(sensitivity)
    return None if allowed is None else int(allowed)


def admin_level_allowed(admin_level: int | None, sensitivity: str | None, policy: Policy | None = None) -> bool | None:
    """Whether outputs at ``admin_level`` may be published at ``sensitivity``.

    ``None`` when it cannot be told (an unknown level or sensitivity, or no rule for it).
    """
    if admin_level is None or sensitivity is None:
        return None
    allowed = finest_admin_level(sensitivity, policy)
    return None if allowed is None else int(admin_level) <= allowed
