"""Field parsers that say which values they could not read, instead of coercing them.

Each parser returns the parsed values and a boolean mask of the values it rejected; the
reader quarantines those rows with the reason. Nothing becomes 0 because it was unreadable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecast.io._limits import current_limits

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
UNREADABLE_DATE = "unreadable date: expected a date such as 2020-03-15, 15/03/2020 or March 2020"
# Excel stores a date as days since 1899-12-30; a CSV saved from a sheet whose date format was lost
# holds that number (43831 is 2020-01-01). It is said, not guessed: the row is quarantined.
_EXCEL_EPOCH = pd.Timestamp("1899-12-30")


def parse_months(values: pd.Series, *, forecast: bool = False) -> tuple[pd.Series, np.ndarray, pd.Series]:
    """Parse date strings in any of :data:`DATE_FORMATS` to the first day of their month.

    Returns ``(months, bad, reason)``: ``months`` is ``datetime64[ns]`` (NaT where bad) and
    ``reason`` says why each bad value was refused (unreadable; before the limits' first month;
    after the current month, or ``forecast_months`` after it for a forecast's own months; an
    Excel day number). Timezone suffixes (``Z``, ``+00:00``) are ignored: only the month matters.
    """
    # A zone suffix only after a time of day: "-2020" ends "15-03-2020" and is not a zone.
    text = values.astype(str).str.strip().str.replace(
        r"(\d\d:\d\d(?::\d\d(?:\.\d+)?)?)(?:Z|[+-]\d\d:?\d\d)$", r"\1", regex=True)
    found = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    todo = text.ne("")
    for fmt in DATE_FORMATS:
        if not todo.any():
            break
        candidates = todo & (text.str.fullmatch(r"\d{6}") if fmt == "%Y%m" else True)
        if not candidates.any():
            continue
        parsed = pd.to_datetime(text[candidates], format=fmt, errors="coerce")
        hit = parsed.notna()
        found.loc[hit[hit].index] = parsed[hit].astype("datetime64[us]")
        todo.loc[hit[hit].index] = False
    # the month's first day, kept in microseconds until the limits are applied: 9999-12-31 is a
    # date, but past what nanoseconds can hold
    month = found.dt.normalize() - pd.to_timedelta(found.dt.day - 1, unit="D")
    reason = pd.Series("", index=values.index, dtype=object)
    reason[found.isna() & text.ne("")] = UNREADABLE_DATE
    reason[found.isna() & text.eq("")] = "missing date"
    serial = pd.to_numeric(text.where(text.str.fullmatch(r"\d{5}(\.0+)?"), ""), errors="coerce")
    excel = serial.between(32874, 73050) & found.isna()  # 1990-01-01 to 2099-12-31
    if excel.any():
        as_date = (_EXCEL_EPOCH + pd.to_timedelta(serial[excel], unit="D")).dt.strftime("%Y-%m-%d")
        reason[excel] = ("an Excel day number, not a date: " + text[excel] + " would be " + as_date
                         + "; save the sheet with its dates formatted as dates")
    _outside_limits(month, reason, forecast)
    bad = reason.ne("")
    return month.where(~bad).astype("datetime64[ns]"), bad.to_numpy(), reason


def _outside_limits(months: pd.Series, reason: pd.Series, forecast: bool) -> None:
    """Give each month outside the limits in force its reason (in place), naming the limit."""
    limits = current_limits()
    latest = limits.latest(forecast=forecast)
    reason[months < limits.earliest] = (f"date before {limits.first_month} (limit first_month; "
                                        "override: --limit first_month=YYYY-MM)")
    what = "forecast_months" if forecast else "future_months"
    reason[months > latest] = (f"date in the future: after {latest:%Y-%m}, "
                               + ("the last month a forecast may name" if forecast else "the current month")
                               + f" (limit {what}; override: --limit {what}=N)")


def months_from_parts(years: pd.Series, months: pd.Series, *, forecast: bool = False
                      ) -> tuple[pd.Series, np.ndarray, pd.Series]:
    """Build month starts from separate year and month columns ('2020', '3' or 'March').

    Returns ``(months, bad, reason)`` as :func:`parse_months` does, under the same limits.
    """
    y = pd.to_numeric(years.astype(str).str.strip(), errors="coerce")
    m_text = months.astype(str).str.strip()
    m = pd.to_numeric(m_text, errors="coerce")
    names = pd.to_datetime(m_text.str[:3].str.title(), format="%b", errors="coerce").dt.month
    m = m.fillna(names)
    ok = y.between(FIRST_YEAR, LAST_YEAR) & m.isin(range(1, 13)) & (y % 1 == 0)
    stamp = pd.to_datetime(
        {"year": y.where(ok, 2000), "month": m.where(ok, 1), "day": 1}, errors="coerce"
    ).astype("datetime64[ns]")
    reason = pd.Series("", index=years.index, dtype=object)
    reason[~ok] = "unreadable year/month"
    _outside_limits(stamp.where(ok), reason, forecast)
    bad = reason.ne("")
    stamp[bad] = pd.NaT
    return stamp, bad.to_numpy(), reason


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
    most = current_limits().max_count
    reason[np.isfinite(number) & (number > most) & (number % 1 == 0)] = (
        f"implausible count: more than {most:,.0f} people in one row (limit max_count; "
        "override: --limit max_count=N)")
    bad = reason.ne("").to_numpy()
    return number.astype("float64"), bad, reason


def parse_numbers(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Parse real numbers (covariates may be negative or fractional). Empty is missing, not bad."""
    text = values.astype(str).str.strip()
    missing = text.str.casefold().isin({"", "na", "n/a", "nan", "null", "none", "-"})
    number = pd.to_numeric(text.where(~missing, "nan"), errors="coerce").astype("float64")
    bad = (number.isna() & ~missing) | ~np.isfinite(number.fillna(0.0))
    return number.where(~bad), bad.to_numpy()
