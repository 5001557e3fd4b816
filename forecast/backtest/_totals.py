"""Totals over groups of areas and a window of months, with intervals calibrated on earlier totals.

Planners read totals: the arrivals a region should expect over the next three months, the
country's figure for an appeal. A total adds up the areas' ``mean`` forecasts (the forecast
whose totals hold; a sum of medians of heavy-tailed arrivals is a fraction of the total), so a
region's total is the sum of its districts' and the country's the sum of its regions'. Its
interval is not a sum of the districts' intervals (errors of neighbouring districts move
together, and the sum of their 10% quantiles is far below the 10% quantile of their sum): it
is the total shifted by the conformal quantiles of earlier totals' errors, scaled by the
group's scale (the sum of its areas' MASE scales), pooled over the groups of one level and one
window length. Earlier means: windows whose every month is at or before the origin, so no
outcome after the origin enters its interval. With fewer than ``min_calibration`` such errors
(one country has one total a month) the finer level's errors calibrate it, and it says so; with
too few of those as well, a total has no interval.

Example::

    from forecast.backtest import window_totals
    regions = pd.Series(cube["admin1_pcode"].values, index=cube["area"].values)
    totals = window_totals(result.forecasts.query("model == 'lightgbm_median'"), regions, lead=3)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from forecast.backtest._conformal import MIN_CALIBRATION, conformal_shifts
from forecast.backtest._metrics import numeric_column, require_columns
from forecast.errors import ForecastError

__all__ = ["NO_PARENT", "window_totals", "total_shifts", "apply_total_shifts", "group_totals", "level_groups", "TotalCalibration",
           "calibrate_totals", "score_totals", "TOTAL_COLUMNS"]

#: The group of an area whose parent code is missing (totalled, never dropped).
NO_PARENT = "(no code)"
#: One row per group and origin. ``mean``: the total of the areas' ``mean`` forecasts over the
#: window; ``point``: of their point forecasts (a median's sum, for comparison); ``actual``: the
#: outcomes' total (NaN while a month is unknown); ``lower, upper``: the 80% interval (NaN
#: without enough earlier totals); ``n_calibration``: the earlier totals behind it.
TOTAL_COLUMNS = ["group", "origin", "lead", "n_areas", "mean", "point", "actual", "scale", "lower", "upper",
                 "n_calibration"]


def level_groups(cube: xr.Dataset) -> dict[str, tuple[pd.Series, dict[str, str]]]:
    """The groupings to total a cube's areas in, finest first: ``admin1`` (the areas'
    ``admin1_pcode``, when the areas are finer than regions) and ``national`` (``admin0_pcode``,
    else one group, ``all areas``). Each comes with its groups' names (``admin1_name``,
    ``admin0_name``; the code where there is none). An area without a code is totalled in the
    group :data:`NO_PARENT`, never dropped: the totals still add up to every area's."""
    areas = cube["area"].values.astype(str)
    out = {}

    def codes(coord: str) -> pd.Series | None:
        if coord not in cube.coords or cube[coord].dims != ("area",):
            return None
        values = pd.Series(cube[coord].values, index=areas, dtype=object)
        blank = values.isna() | values.astype(str).str.strip().isin(["", "nan", "None"])
        return values.astype(str).str.strip().where(~blank, NO_PARENT)

    def names(code: str, name: str, groups: pd.Series) -> dict[str, str]:
        found = {g: g for g in groups.unique()}
        if name in cube.coords and cube[name].dims == ("area",):
            for g, n in zip(groups.to_numpy(), pd.Series(cube[name].values, dtype=object)):
                if g != NO_PARENT and isinstance(n, str) and n.strip():
                    found[g] = n.strip()
        return found

    regions = codes("admin1_pcode")
    if regions is not None and not regions.index.equals(pd.Index(regions.to_numpy())):  # not the regions themselves
        out["admin1"] = (regions, names("admin1_pcode", "admin1_name", regions))
    country = codes("admin0_pcode")
    if country is not None:
        out["national"] = (country, names("admin0_pcode", "admin0_name", country))
    else:
        out["national"] = (pd.Series("all areas", index=areas), {"all areas": "all areas"})
    return out


def group_totals(forecasts: pd.DataFrame, groups: pd.Series, lead: int) -> pd.DataFrame:
    """Per group and origin, the totals over horizons ``1..lead`` (no interval).

    Parameters
    ----------
    forecasts : DataFrame
        One model's forecasts: ``area, origin, horizon, time, mean, point, scale`` and ``actual``
        when known (a ``predict`` table has none: ``actual`` is NaN).
    groups : Series
        Each area's group (index: area P-codes), e.g. its ``admin1_pcode``.
    lead : int
        Months in the window.

    Raises
    ------
    ForecastError
        An area of the forecasts has no group (named), or the forecasts miss a horizon of the window.
    """
    require_columns(forecasts, ["area", "origin", "horizon", "time", "mean", "point", "scale"])
    if lead < 1:
        raise ForecastError(f"lead must be at least 1 month, got {lead}")
    part = forecasts[forecasts["horizon"].between(1, lead)]
    missing = sorted(set(range(1, lead + 1)) - set(part["horizon"].astype(int)))
    if missing:
        raise ForecastError(f"the forecasts have no horizon {', '.join(map(str, missing))}: a {lead}-month "
                            "window needs every month")
    group = part["area"].astype(str).map(groups.astype(str).to_dict())
    if group.isna().any():
        orphans = sorted(part.loc[group.isna(), "area"].astype(str).unique())
        raise ForecastError(f"{len(orphans)} area(s) have no group to total them in: {', '.join(orphans[:10])}"
                            + (" ..." if len(orphans) > 10 else ""))
    frame = pd.DataFrame({
        "group": group.to_numpy(), "origin": part["origin"].to_numpy(), "area": part["area"].to_numpy(),
        "time": part["time"].to_numpy(), "mean": numeric_column(part, "mean"),
        "point": numeric_column(part, "point"), "scale": numeric_column(part, "scale"),
        "actual": numeric_column(part, "actual") if "actual" in part else np.nan})
    g = frame.groupby(["group", "origin"], sort=True)
    n = g["mean"].size()  # a window missing an area-month has no total (min_count: every row)
    out = pd.DataFrame({"n_areas": g["area"].nunique(), "rows": n,
                        "mean": g["mean"].sum(min_count=1), "point": g["point"].sum(min_count=1),
                        "actual": g["actual"].sum(min_count=1), "end": g["time"].max()})
    for column in ("mean", "point", "actual"):
        complete = g[column].count() == n
        out[column] = out[column].where(complete)
    # the group's scale: its areas' MASE scales, once per area (each is the same at every horizon)
    out["scale"] = frame.drop_duplicates(["group", "origin", "area"]).groupby(["group", "origin"])["scale"].sum()
    out = out.reset_index().assign(lead=int(lead))
    return out.drop(columns="rows")


def total_shifts(errors: np.ndarray, levels: Sequence[float] = (0.1, 0.9),
                 min_calibration: int = MIN_CALIBRATION) -> np.ndarray | None:
    """The conformal shifts of ``levels`` from scaled errors of earlier totals
    (``(actual - mean) / scale``); None with fewer than ``min_calibration`` finite errors."""
    errors = np.asarray(errors, dtype=float)
    errors = errors[np.isfinite(errors)]
    if len(errors) < min_calibration:
        return None
    return conformal_shifts(np.repeat(errors[:, None], len(levels), axis=1), list(levels))


def apply_total_shifts(mean: np.ndarray, scale: np.ndarray, shifts: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The interval ``mean + shift * scale``, clipped at zero (people); NaN without shifts."""
    mean, scale = np.asarray(mean, dtype=float), np.asarray(scale, dtype=float)
    if shifts is None:
        return np.full(mean.shape, np.nan), np.full(mean.shape, np.nan)
    lower = np.maximum(mean + shifts[0] * scale, 0.0)
    upper = np.maximum(mean + shifts[-1] * scale, lower)
    return lower, upper


def window_totals(forecasts: pd.DataFrame, groups: pd.Series, lead: int, *, finer: pd.Series | None = None,
                  levels: Sequence[float] = (0.1, 0.9), min_calibration: int = MIN_CALIBRATION) -> pd.DataFrame:
    """Backtest totals per group, origin and ``lead``-month window, each with an interval
    calibrated on the totals of earlier windows (every month at or before the origin), pooled
    over the groups.

    Parameters
    ----------
    forecasts : DataFrame
        One model's backtest forecasts (:attr:`BacktestResult.forecasts` of one model): ``area,
        origin, horizon, time, actual, mean, point, scale`` and ``role``, when present, is kept.
    groups : Series
        Each area's group (index: area P-codes); a constant Series totals the whole panel.
    lead : int
    finer : Series, optional
        A finer grouping (e.g. regions, for the country's total) whose earlier totals calibrate
        the interval where ``groups`` have fewer than ``min_calibration`` of their own (one
        country has one total a month): ``calibrated_by`` says ``finer``. Scaled errors of finer
        groups are larger than a coarse group's (errors of different regions partly cancel), so
        such an interval errs wide.
    levels : sequence of float
        The interval's quantile levels (default: the 80% interval).
    min_calibration : int
        Minimum earlier totals for an interval.

    Returns
    -------
    DataFrame
        :data:`TOTAL_COLUMNS`, ``calibrated_by`` (``own``, ``finer`` or NaN: no interval) and
        ``role`` when the forecasts have one; one row per group and origin.
    """
    out = group_totals(forecasts, groups, lead)
    pools = [("own", out)] + ([("finer", group_totals(forecasts, finer, lead))] if finer is not None else [])
    errors = [(name, _scaled_errors(frame), frame["end"].to_numpy()) for name, frame in pools]
    origin = out["origin"].to_numpy()
    lower, upper = np.full(len(out), np.nan), np.full(len(out), np.nan)
    count, used = np.zeros(len(out), dtype=int), np.full(len(out), np.nan, dtype=object)
    for o in np.unique(origin):
        rows = origin == o
        # windows wholly known at the origin
        chosen = _first_enough([(name, error[end <= o]) for name, error, end in errors], levels, min_calibration)
        count[rows] = chosen.n
        lower[rows], upper[rows] = apply_total_shifts(out.loc[rows, "mean"], out.loc[rows, "scale"], chosen.shifts)
        used[rows] = chosen.calibrated_by if chosen.calibrated_by is not None else np.nan
    out["lower"], out["upper"], out["n_calibration"], out["calibrated_by"] = lower, upper, count, used
    columns = [*TOTAL_COLUMNS, "calibrated_by"]
    if "role" in forecasts:
        roles = forecasts.drop_duplicates("origin").set_index("origin")["role"]
        out["role"] = out["origin"].map(roles)
        columns.append("role")
    return out[columns]


@dataclass(frozen=True)
class TotalCalibration:
    """The interval of one level's ``lead``-month totals: ``shifts`` (per level, in units of
    the group's scale; None: too few earlier totals for an interval), the ``n`` errors behind
    them and whose (``own`` or ``finer``)."""

    shifts: np.ndarray | None
    n: int
    calibrated_by: str | None


def calibrate_totals(forecasts: pd.DataFrame, groups: pd.Series, lead: int, *, finer: pd.Series | None = None,
                     levels: Sequence[float] = (0.1, 0.9), min_calibration: int = MIN_CALIBRATION) -> TotalCalibration:
    """The calibration of a trained model's totals: every complete window of ``forecasts`` (a
    model's calibration backtest, every outcome in the past) pooled, the ``finer`` grouping's
    where ``groups`` have too few (as :func:`window_totals`)."""
    pools = [("own", groups)] + ([("finer", finer)] if finer is not None else [])
    return _first_enough([(name, _scaled_errors(group_totals(forecasts, grouping, lead)))
                          for name, grouping in pools], levels, min_calibration)


def _first_enough(pools: list[tuple[str, np.ndarray]], levels, min_calibration: int) -> TotalCalibration:
    """The first pool of errors (``own``, then ``finer``) with enough finite ones for an interval;
    with none, no shifts and the last pool's count."""
    n = 0
    for name, error in pools:
        n = int(np.isfinite(error).sum())
        shifts = total_shifts(error, levels, min_calibration)
        if shifts is not None:
            return TotalCalibration(shifts, n, name)
    return TotalCalibration(None, n, None)


def score_totals(totals: pd.DataFrame) -> pd.Series:
    """How :func:`window_totals` did on its scored origins (all origins without ``role``):
    ``n`` totals with an outcome, ``with_interval``, ``coverage80`` (share of those inside),
    ``level_ratio`` (sum of ``mean`` over sum of outcomes) and ``relative_width`` (median of
    the interval's width over the total)."""
    done = totals[totals["actual"].notna()]
    if "role" in done:
        done = done[done["role"] == "scored"]
    known = done[done["lower"].notna()]
    inside = (known["actual"] >= known["lower"]) & (known["actual"] <= known["upper"])
    actual = done["actual"].sum()
    return pd.Series({"n": len(done), "with_interval": len(known),
                      "coverage80": float(inside.mean()) if len(known) else np.nan,
                      "level_ratio": float(done["mean"].sum() / actual) if actual > 0 else np.nan,
                      "relative_width": float(((known["upper"] - known["lower"]) / known["mean"]).median())
                      if len(known) else np.nan})


def _scaled_errors(totals: pd.DataFrame) -> np.ndarray:
    return ((totals["actual"] - totals["mean"]) / totals["scale"].where(totals["scale"] > 0)).to_numpy(float)
