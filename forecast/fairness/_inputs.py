"""Checks on the tables the fairness tools read: trigger signals, scored forecasts, groups."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecast.errors import ForecastError
from forecast.fairness._groups import UNKNOWN

__all__ = ["check_signals", "check_groups", "group_labels", "group_order", "month_index",
           "select", "signal_keys", "assessed", "SIGNAL_COLUMNS"]

SIGNAL_COLUMNS = ("trigger", "lead", "origin", "area", "probability", "signal", "event")
#: Optional column of the trigger layer: one set of signals per probability route.
ROUTE = "route"


def signal_keys(frame: pd.DataFrame) -> list[str]:
    """The columns that name one set of signals: trigger, lead and, when present, route."""
    return ["trigger", "lead", *([ROUTE] if ROUTE in frame.columns else [])]


def assessed(frame: pd.DataFrame) -> np.ndarray:
    """Rows that count in the signal metrics: the window was observed and there is a probability.

    The same rows :func:`forecast.triggers.trigger_metrics` scores, so the numbers agree.
    """
    return (frame["event"].notna() & frame["probability"].notna()).to_numpy()


def check_signals(signals: pd.DataFrame) -> pd.DataFrame:
    """A validated copy of the signals table (``event`` as float, ``signal`` as bool).

    Raises
    ------
    ForecastError
        A column is missing, or a value breaks the trigger layer's contract (naming the
        first offending row).
    """
    if not isinstance(signals, pd.DataFrame):
        raise ForecastError(f"signals must be a pandas DataFrame, got {type(signals).__name__}")
    missing = [c for c in SIGNAL_COLUMNS if c not in signals.columns]
    if missing:
        raise ForecastError(
            f"the signals table lacks column(s) {missing}; it has {list(signals.columns)}. Pass the "
            f"trigger layer's signals: one row per trigger x lead x origin x area with columns "
            f"{list(SIGNAL_COLUMNS)}"
        )
    frame = signals.reset_index(drop=True).copy()
    frame["area"] = frame["area"].astype(str)
    frame["trigger"] = frame["trigger"].astype(str)
    if ROUTE in frame.columns:
        frame[ROUTE] = frame[ROUTE].astype(str)
    try:
        frame["origin"] = pd.to_datetime(frame["origin"])
    except (TypeError, ValueError) as err:
        raise ForecastError(f"signals column 'origin' must hold dates (first of month): {err}") from None
    _reject(frame, frame["origin"].isna().to_numpy(), "origin", "a date (not missing)")
    lead = _floats(frame, "lead")
    _reject(frame, ~((lead >= 1) & (lead == np.round(lead))), "lead", "a whole number of months >= 1")
    frame["lead"] = lead.astype(np.int64)
    probability = _floats(frame, "probability")
    _reject(frame, ~(np.isnan(probability) | ((probability >= 0) & (probability <= 1))),
            "probability", "a probability in [0, 1], or NaN where the trigger had none")
    frame["probability"] = probability
    event = _floats(frame, "event")
    _reject(frame, ~(np.isnan(event) | (event == 0) | (event == 1)), "event",
            "1.0 (exceeded), 0.0 (not exceeded) or NaN (not observed)")
    frame["event"] = event
    signal = frame["signal"]
    if signal.dtype != bool:
        as_float = _floats(frame, "signal")
        _reject(frame, ~((as_float == 0) | (as_float == 1)), "signal",
                "True or False (a missing activation is not 'no activation')")
        signal = as_float == 1
    frame["signal"] = np.asarray(signal, dtype=bool)
    unique = [*signal_keys(frame), "origin", "area"]
    if frame.duplicated(unique).any():
        first = frame[frame.duplicated(unique, keep=False)].iloc[0]
        raise ForecastError(
            f"the signals table has several rows for trigger {first['trigger']!r}, lead "
            f"{first['lead']}, origin {first['origin']:%Y-%m}, area {first['area']!r}; keep one "
            f"row per {' x '.join(unique)}"
            + ("" if ROUTE in frame.columns else " (or add a 'route' column naming each set)")
        )
    return frame


def _floats(frame: pd.DataFrame, column: str) -> np.ndarray:
    try:
        return frame[column].to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise ForecastError(f"signals column {column!r} must be numeric, got dtype "
                            f"{frame[column].dtype}") from None


def _reject(frame: pd.DataFrame, bad: np.ndarray, column: str, expected: str) -> None:
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = frame.iloc[i]
        raise ForecastError(
            f"signals column {column!r} must hold {expected}; {int(bad.sum())} row(s) do not, first "
            f"row {i} (trigger {row['trigger']!r}, area {row['area']!r}): {row[column]!r}"
        )


def check_groups(groups: pd.DataFrame, areas: Sequence[str], columns: Sequence[str] | None = None
                 ) -> list[str]:
    """The group columns to use; raises when an area of the data has no row in ``groups``."""
    if not isinstance(groups, pd.DataFrame):
        raise ForecastError(f"groups must be a DataFrame indexed by area P-code (see "
                            f"forecast.fairness.area_groups), got {type(groups).__name__}")
    if groups.index.has_duplicates:
        repeated = sorted(map(str, groups.index[groups.index.duplicated()].unique()))[:5]
        raise ForecastError(f"the groups table has several rows for area(s) {repeated}; keep one "
                            "row per area P-code")
    if columns is None:
        columns = [str(c) for c in groups.columns]
    else:
        columns = [columns] if isinstance(columns, str) else list(columns)
        absent = [c for c in columns if c not in groups.columns]
        if absent:
            raise ForecastError(f"group column(s) {absent} are not in the groups table; it has "
                                f"{list(groups.columns)}")
    if not columns:
        raise ForecastError("the groups table has no column to group areas by; build it with "
                            "forecast.fairness.area_groups(cube) or add a column (e.g. 'region')")
    known = set(map(str, groups.index))
    absent = sorted(set(map(str, areas)) - known)
    if absent:
        shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
        raise ForecastError(
            f"{len(absent)} area(s) in the data have no row in the groups table: {shown}. Build the "
            "groups from the same cube (forecast.fairness.area_groups) or add rows for them; "
            f"use {UNKNOWN!r} as the label where a group is not known"
        )
    return columns


def group_labels(groups: pd.DataFrame, column: str) -> pd.Series:
    """Area -> label (str) of one group column; missing and empty values become 'unknown'."""
    values = groups[column]
    labels = values.astype(object).where(values.notna(), UNKNOWN).astype(str).str.strip()
    labels = labels.where(labels != "", UNKNOWN)
    labels.index = groups.index.astype(str)
    return labels


def group_order(groups: pd.DataFrame, column: str) -> list[str]:
    """Every label of a group column in display order (categorical order, else sorted)."""
    labels = group_labels(groups, column)
    present = set(labels)
    values = groups[column]
    if isinstance(values.dtype, pd.CategoricalDtype):
        ordered = [str(c) for c in values.cat.categories if str(c) in present]
    else:
        ordered = sorted(present - {UNKNOWN})
    return ordered + sorted(present - set(ordered))


def month_index(times) -> np.ndarray:
    """Months since year 0 of each timestamp, so that ``origin + lead`` is integer arithmetic."""
    stamps = pd.DatetimeIndex(pd.to_datetime(times))
    return np.asarray(stamps.year * 12 + stamps.month - 1, dtype=np.int64)


def select(frame: pd.DataFrame, column: str, wanted) -> pd.DataFrame:
    """Rows whose ``column`` is in ``wanted`` (a value or a list); all rows when ``wanted`` is None."""
    if wanted is None:
        return frame
    wanted = list(wanted) if isinstance(wanted, (list, tuple, set)) else [wanted]
    keep = frame[column].isin(wanted)
    if not keep.any():
        present = sorted(frame[column].unique().tolist())
        raise ForecastError(f"no signals for {column} {wanted}; the signals have {column}s {present}")
    return frame[keep]
