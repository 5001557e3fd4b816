"""Plausibility rules and resource bounds: what a file may ask of the toolkit before it is refused.

A hostile or broken file must end in a clear error or a quarantined row, never in a hang, a
machine out of memory or a silently wrong cube. Each bound here has a default a real DTM, PRMN
or ACLED file stays far inside, and an override for the rare file that needs more
(``forecast ingest --limit max_count=1e9``; Python: ``ingest(..., limits={"max_count": 1e9})``).

The readers and the cube builder read the limits in force through :func:`current_limits`;
:func:`forecast.ingest` sets them for the files it reads (:func:`using_limits`), so that every
reader of one ingest applies the same ones without a parameter threaded through each.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pandas as pd

from forecast.errors import ForecastError


@dataclass(frozen=True)
class Limits:
    """The bounds every reader applies; each field is one documented rule.

    first_month : the earliest month a date may name (``1990-01``): DTM began in 2004, PRMN in
        2016; an earlier date is a typo or a day number read as a year.
    future_months : how many months after the current one a date may name. Observations cannot
        come from the future: 0. A forecast export read back (``#date+forecast``) may reach
        ``forecast_months`` ahead instead.
    forecast_months : as ``future_months``, for the forecast months of an HXL export read back.
    max_count : the most people one row may count in one area and month (50 million: more than
        any country's whole displaced population); above it the row is quarantined.
    max_months : the longest time axis a cube may have (600 months: 50 years).
    max_flow_cells : routes x months of the flows (400 million, 3.2 GB of float64): the form
        the flow features are computed on (flows are stored as records, one per route and
        month, see ``forecast.cube.flow_table``); more is refused with the routes and months
        that ask for it. It bounds a dense view of the flows and arrivals by reason alike.
    max_unpacked_bytes : the most an XLSX workbook may unpack to (256 MiB, some hundred thousand
        rows); a zip bomb is refused before it is opened.
    max_cell_chars : the longest text a kept cell may hold (10,000 characters); a longer one
        quarantines its row.
    today : the month counted as now (``YYYY-MM``); None: the clock's.
    """

    first_month: str = "1990-01"
    future_months: int = 0
    forecast_months: int = 24
    max_count: float = 50_000_000
    max_months: int = 600
    max_flow_cells: int = 400_000_000
    max_unpacked_bytes: int = 256 << 20
    max_cell_chars: int = 10_000
    today: str | None = None

    def __post_init__(self) -> None:
        for name in ("first_month", "today"):
            value = getattr(self, name)
            if value is not None:
                try:
                    pd.Period(str(value), freq="M")
                except ValueError:
                    raise ForecastError(f"limit {name} must be a month such as 2020-01, got {value!r}") from None
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name not in ("first_month", "today") and (not isinstance(value, int | float) or value < 0):
                raise ForecastError(f"limit {f.name} must be a number >= 0, got {value!r}")

    @property
    def earliest(self) -> pd.Timestamp:
        return pd.Period(self.first_month, freq="M").to_timestamp()

    def latest(self, *, forecast: bool = False) -> pd.Timestamp:
        """The last month a date may name: the current month plus the allowed months ahead."""
        now = pd.Period(self.today, freq="M") if self.today else pd.Timestamp.now().to_period("M")
        return (now + (self.forecast_months if forecast else self.future_months)).to_timestamp()

    def changed(self) -> dict[str, str | int | float]:
        """The limits that differ from the defaults (what a manifest records)."""
        default = Limits()
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(default, f.name)}

    @classmethod
    def parse(cls, items: Mapping[str, object] | list[str] | tuple[str, ...] | Limits | None) -> Limits:
        """Limits from ``{"max_count": 1e9}`` or ``["max_count=1e9"]`` (the CLI's ``--limit``)."""
        if items is None:
            return cls()
        if isinstance(items, Limits):
            return items
        if not isinstance(items, Mapping):
            pairs = {}
            for item in items:
                name, sep, value = str(item).partition("=")
                if not sep:
                    raise ForecastError(f"a limit is NAME=VALUE, got {item!r}; names: {_names()}")
                pairs[name.strip()] = value.strip()
            items = pairs
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(items) - set(fields))
        if unknown:
            raise ForecastError(f"unknown limit(s) {unknown}; known: {_names()}")
        values = {}
        for name, value in items.items():
            if name in ("first_month", "today") or not isinstance(value, str):
                values[name] = value
                continue
            try:
                number = float(value)
            except ValueError:
                raise ForecastError(f"limit {name} must be a number, got {value!r}") from None
            values[name] = int(number) if number.is_integer() and name != "max_count" else number
        return cls(**values)


def _names() -> list[str]:
    return [f.name for f in dataclasses.fields(Limits)]


_IN_FORCE: contextvars.ContextVar[Limits] = contextvars.ContextVar("forecast_io_limits", default=Limits())


def current_limits() -> Limits:
    """The limits the readers apply now: the defaults, or those :func:`using_limits` set."""
    return _IN_FORCE.get()


@contextlib.contextmanager
def using_limits(limits: Limits | Mapping[str, object] | None) -> Iterator[Limits]:
    """Apply ``limits`` to every reader called inside the ``with`` block."""
    token = _IN_FORCE.set(Limits.parse(limits))
    try:
        yield _IN_FORCE.get()
    finally:
        _IN_FORCE.reset(token)


__all__ = ["Limits", "current_limits", "using_limits"]
