"""What changed since the previous report: finding that report's headline, and comparing with it.

A report logs its headline (:func:`headline_artifact`) to its train run; the next report of the
same model and trigger reads it back (:func:`read_headline`, or :func:`read_previous` for a file
given by hand) and :func:`compare` lists the districts whose signal started or ended, or whose
probability moved by :data:`MIN_CHANGE` or more.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecast._names import AREA, AREA_NAME
from forecast.errors import ForecastError

__all__ = ["headline_artifact", "headline_month", "read_headline", "read_previous", "compare", "MIN_CHANGE"]

#: Probability changes smaller than this are not called a change.
MIN_CHANGE = 0.10


def headline_artifact(trigger: str, lead: int, month: str) -> str:
    """Where a report's headline is logged in its train run: ``report/headline_<month>_<trigger>_l<lead>.csv``."""
    return f"report/headline_{month}_{trigger}_l{lead}.csv"


def headline_month(name: str, trigger: str, lead: int) -> str | None:
    """The month of a headline file named as :func:`headline_artifact` names it for ``trigger``
    and ``lead``; None for any other file."""
    suffix = f"_{trigger}_l{lead}.csv"
    if not (name.startswith("headline_") and name.endswith(suffix)):
        return None
    return name.removeprefix("headline_").removesuffix(suffix)


def read_previous(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """The headline CSV of a previous report given as a file, and where it came from."""
    path = Path(path)
    if not path.is_file():
        raise ForecastError(f"previous report {path} not found: pass the headline CSV a report wrote "
                            "(report/headline_<month>_<trigger>_l<lead>.csv in its train run)")
    # the file's name only: a published report names no folder of the machine that made it
    return read_headline(path), {"source": path.name, "month": _month_of(path.name), "run_id": None,
                                 "chosen": f"the headline file {path.name}, given by hand"}


def _month_of(name: str) -> str | None:
    parts = name.removeprefix("headline_").split("_")
    return parts[0] if parts and len(parts[0]) == 7 else None


def read_headline(path: str | Path) -> pd.DataFrame:
    """A report's headline table, refused when it is not one (the columns ``compare`` needs)."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype={AREA: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ForecastError(f"{path}: not a report headline CSV ({error})") from None
    missing = [c for c in (AREA, "probability", "signal") if c not in table.columns]
    if missing:
        raise ForecastError(f"{path}: not a report headline CSV: columns {missing} missing "
                            f"(it has {list(table.columns)})")
    return table


def compare(current: pd.DataFrame, previous: pd.DataFrame, *, min_change: float = MIN_CHANGE) -> pd.DataFrame:
    """Areas whose signal changed, or whose probability moved by at least ``min_change``.

    One row per such area: ``area, area_name, change`` (``new signal``, ``signal ended``,
    ``up``, ``down``, ``newly assessed``, ``no longer assessed``), ``probability_before``,
    ``probability``.
    """
    before = previous.set_index(AREA)
    rows = []
    for _, row in current.iterrows():
        area = row[AREA]
        p = row["probability"]
        if area not in before.index:
            continue
        old = before.loc[area]
        p0 = old["probability"]
        s, s0 = bool(row["signal"]) if pd.notna(p) else False, _truth(old["signal"]) if pd.notna(p0) else False
        change = None
        if pd.isna(p) and pd.notna(p0):
            change = "no longer assessed"
        elif pd.notna(p) and pd.isna(p0):
            change = "newly assessed"
        elif pd.notna(p) and s and not s0:
            change = "new signal"
        elif pd.notna(p) and s0 and not s:
            change = "signal ended"
        elif pd.notna(p) and abs(p - p0) >= min_change - 1e-9:  # 0.30 - 0.20 is 10 points, not 9.99...
            change = "up" if p > p0 else "down"
        if change:
            rows.append({AREA: area, AREA_NAME: row[AREA_NAME], "region": row["region"], "change": change,
                         "probability_before": p0, "probability": p})
    order = {"new signal": 0, "signal ended": 1, "up": 2, "down": 3, "newly assessed": 4, "no longer assessed": 5}
    frame = pd.DataFrame(rows, columns=[AREA, AREA_NAME, "region", "change", "probability_before", "probability"])
    return frame.sort_values("change", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)


def _truth(value) -> bool:
    return str(value).strip().lower() in ("true", "1", "1.0", "yes")
