"""The one publication rule: what may leave the pipeline, under the policy's ``release`` section.

Two checks, applied by every writer of published output (MLflow artifacts, reports, model
cards) and judged again by the release gate:

* small cells: observed counts from 1 to ``k - 1`` people are withheld (a handful of people
  arriving in a district in a month could be identified);
* admin level: nothing finer than the finest admin level the data's sensitivity allows.

The sensitivity comes from the dataset's manifest (:class:`forecast.io.Manifest`), never from
anywhere else.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from forecast.errors import ForecastError
from forecast.policy._policy import Policy, ReleaseChecks, load_policy

__all__ = ["release_checks", "small_cell_k", "suppress_small_cells", "count_small_cells",
           "manifest_sensitivity", "admin_level_allowed", "finest_admin_level"]


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
        out[f"{col}_suppressed"] = small
    return out


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
