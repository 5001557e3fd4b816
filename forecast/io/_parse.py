"""Field parsers that say which values they could not read, instead of coercing them.

Each parser returns the parsed values and a boolean mask of the values it rejected; the
reader quarantines those rows with the reason. Nothing becomes 0 because it was unreadable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Formats tried in order. Day-first before month-first: DTM and PRMN files use dd/mm/yyyy.
DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d",
    "%d/%m/%Y",
    "%d-%m-%Y",
    "%d.%m.%Y",
    "%d %B %Y",
    "%d %b %Y",
    "%d-%b-%Y",
    "%d-%b-%y",
    "%B %Y",
    "%b %Y",
    "%b-%Y",
    "%b-%y",
    "%Y-%m",
    "%Y%m",
)
FIRST_YEAR, LAST_YEAR = 1990, 2100


def parse_months(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parse date strings in any of :data:`DATE_FORMATS` to the first day of their month.

    Returns ``(months, bad)`` where ``months`` is ``datetime64[ns]`` (NaT where bad).
    Timezone suffixes (``Z``, ``+00:00``) are ignored: only the month matters.
    """
    # A zone suffix only after a time of day: "-2020" ends "15-03-2020" and is not a zone.
    text = values.astype(str).str.strip().str.replace(
        r"(\d\d:\d\d(?::\d\d(?:\.\d+)?)?)(?:Z|[+-]\d\d:?\d\d)$", r"\1", regex=True)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    todo = text.ne("")
    for fmt in DATE_FORMATS:
        if not todo.any():
            break
        parsed = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        hit = parsed.notna()
        out.loc[hit[hit].index] = parsed[hit].astype("datetime64[ns]")
        todo.loc[hit[hit].index] = False
    year = out.dt.year
    out[(year < FIRST_YEAR) | (year > LAST_YEAR)] = pd.NaT
    months = out.dt.to_period("M").dt.to_timestamp().astype("datetime64[ns]")
    return months, months.isna().to_numpy()


def months_from_parts(years: pd.Series, months: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Build month starts from separate year and month columns ('2020', '3' or 'March')."""
    y = pd.to_numeric(years.astype(str).str.strip(), errors="coerce")
    m_text = months.astype(str).str.strip()
    m = pd.to_numeric(m_text, errors="coerce")
    names = pd.to_datetime(m_text.str[:3].str.title(), format="%b", errors="coerce").dt.month
    m = m.fillna(names)
    ok = y.between(FIRST_YEAR, LAST_YEAR) & m.isin(range(1, 13)) & (y % 1 == 0)
    stamp = pd.to_datetime(
        {"year": y.where(ok, 2000), "month": m.where(ok, 1), "day": 1}, errors="coerce"
    ).astype("datetime64[ns]")
    stamp[~ok] = pd.NaT
    return stamp, ~ok.to_numpy()


def parse_counts(values: pd.Series) -> tuple[pd.Series, np.ndarray, pd.Series]:
    """Parse non-negative integer counts ('1200', '1,200', '1200.0').

    Returns ``(counts as float64, bad mask, reason per bad value)``. Empty, negative,
    fractional and non-numeric values are bad, each with its own reason.
    """
    text = values.astype(str).str.strip().str.replace(r"(?<=\d)[,\s](?=\d{3}\b)", "", regex=True)
    number = pd.to_numeric(text, errors="coerce")
    reason = pd.Series("", index=values.index, dtype=object)
    reason[number.isna()] = "not a number"
    reason[text.eq("")] = "missing count"
    reason[number.notna() & (number < 0)] = "negative count"
    reason[number.notna() & (number >= 0) & (number % 1 != 0)] = "count is not a whole number"
    reason[number.notna() & ~np.isfinite(number)] = "not a finite number"
    bad = reason.ne("").to_numpy()
    return number.astype("float64"), bad, reason


def parse_numbers(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parse real numbers (covariates may be negative or fractional). Empty is missing, not bad."""
    text = values.astype(str).str.strip()
    missing = text.str.casefold().isin({"", "na", "n/a", "nan", "null", "none", "-"})
    number = pd.to_numeric(text.where(~missing, "nan"), errors="coerce").astype("float64")
    bad = (number.isna() & ~missing) | ~np.isfinite(number.fillna(0.0))
    return number.where(~bad), bad.to_numpy()
