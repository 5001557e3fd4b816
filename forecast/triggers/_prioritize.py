"""Rank areas for anticipatory action from a forecast made at the cube's last month.

The score is ``probability of crossing the trigger within the lead time x expected arrivals
over the lead time`` (x an optional weight, e.g. population or an IDP share, scaled to mean 1).
The areas expected to cross (probability at or above the trigger's) come first, by score, then
every other area by score: one order for action, read the same in the report, the export and
``forecast prioritize``. Equal scores share a rank.
An area without a threshold, or whose last record is older than ``max_staleness`` months, is
listed with its status and no rank: unassessed is never shown as safe.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from forecast._names import AREA, AREA_NAME, TIME
from forecast.backtest import quantile_column
from forecast.features import Panel
from forecast.errors import ForecastError
from forecast.triggers._probability import PlattCalibrator, exceedance_probability
from forecast.triggers._signals import MAX_STALENESS, _forecast_route, _status, last_record_index
from forecast.triggers._spec import TriggerSpec
from forecast.triggers._thresholds import threshold_matrix

__all__ = ["prioritize", "monthly_outlook", "COLUMNS", "OUTLOOK_COLUMNS"]

#: :func:`prioritize`'s columns. ``expected, lower, upper``: the window's sums of the median and of
#: the 80% interval's bounds (what ranks); ``mean``: the window's sum of the ``mean`` forecasts,
#: what adds up across areas to a region's or the country's total (NaN when the forecasts have none).
COLUMNS = ["rank", AREA, AREA_NAME, "region", "probability", "signal", "expected", "lower", "upper", "mean",
           "threshold", "trigger", "lead", "last_data", "status", "weight", "score"]
#: :func:`monthly_outlook`'s columns: one row per area and month of the window.
OUTLOOK_COLUMNS = [AREA, "horizon", "month", "probability", "median", "lower", "upper", "threshold"]


def prioritize(
    forecasts: pd.DataFrame,
    cube: xr.Dataset,
    trigger: TriggerSpec,
    lead: int,
    *,
    quantiles: Sequence[float],
    missing_target: str = "zero",
    calibrator: PlattCalibrator | None = None,
    weight: str | None = None,
    max_staleness: int = MAX_STALENESS,
) -> pd.DataFrame:
    """Areas ranked for action, one row each (ranked areas first, then the unassessed).

    Parameters
    ----------
    forecasts : DataFrame
        :meth:`TrainedModel.predict` output: ``area, origin, horizon, point, q...`` from the
        cube's last month.
    cube : xarray.Dataset
    trigger : TriggerSpec
    lead : int
        Months ahead the window covers (one of the trigger's leads).
    quantiles : sequence of float
        The forecast's quantile levels.
    missing_target : {"zero", "skip"}
        How the model read unobserved months (its spec's rule), for the thresholds.
    calibrator : PlattCalibrator, optional
        Recalibration fitted on the model's recent backtest (``TrainedModel.trigger_calibration``).
    weight : str, optional
        What to weight the score by, scaled to mean 1: an area coordinate (``population``, a
        needs index from an attributes table) or an area x month variable, whose latest
        observed value counts (``idp_stock``: people already displaced there). An area without
        a value gets weight 1 and says so in its status.
    """
    if lead not in trigger.leads:
        raise ForecastError(f"trigger {trigger.name!r} has leads {trigger.leads}; lead {lead} is not one of them")
    time = pd.DatetimeIndex(cube[TIME].values)
    o = len(time) - 1
    panel = Panel.from_cube(cube, trigger.target, missing_target=missing_target)
    thr = threshold_matrix(trigger, panel.y, cube)
    frame = _forecast_route(forecasts.assign(origin=time[o]), quantiles, panel, thr, lead, time)
    # every area of the cube is listed: one the model could not forecast is unassessed, not absent
    frame = frame.set_index(AREA).reindex(panel.areas).reset_index().assign(origin=time[o])
    a = panel.areas.get_indexer(frame[AREA])
    frame["threshold"] = thr[a, o]
    frame["mean"] = frame[AREA].map(_window_means(forecasts, lead)).to_numpy(float)
    p = frame["probability_raw"].to_numpy(float)
    frame["probability"] = calibrator.transform(p) if calibrator is not None else p
    frame["signal"] = frame["probability"] >= trigger.probability
    last = last_record_index(cube, trigger.target)
    status = _status(thr, last, o, time, max_staleness, trigger)[a]
    no_forecast = (status == "ok") & frame["probability_raw"].isna().to_numpy()
    status[no_forecast] = "no forecast: the model gave none for this area"
    frame["status"] = status
    frame["last_data"] = [f"{time[i]:%Y-%m}" if i >= 0 else "never" for i in last[a, o]]
    frame["weight"] = 1.0
    if weight is not None:
        w = _weights(cube, weight)
        if not np.isfinite(w).any() or np.nanmean(w) <= 0:
            raise ForecastError(f"weight {weight!r} has no positive numeric value")
        w = w / np.nanmean(w)
        frame["weight"] = np.where(np.isfinite(w[a]), w[a], 1.0)
        frame.loc[~np.isfinite(w[a]) & frame["status"].eq("ok"), "status"] = f"ok ({weight} unknown: weight 1)"
    frame["score"] = frame["probability"] * frame["expected"] * frame["weight"]
    frame["rank"] = _signal_first(frame)
    names = dict(zip(cube[AREA].values.astype(str), cube[AREA_NAME].values.astype(str))) if AREA_NAME in cube.coords else {}
    region = "region" if "region" in cube.coords else ("admin1_name" if "admin1_name" in cube.coords else None)
    regions = dict(zip(cube[AREA].values.astype(str), cube[region].values.astype(str))) if region else {}
    frame[AREA_NAME] = frame[AREA].map(names).fillna("")
    frame["region"] = frame[AREA].map(regions).fillna("")
    frame["trigger"], frame["lead"] = trigger.name, lead
    frame = frame.sort_values(["rank", "probability", AREA], ascending=[True, False, True], na_position="last")
    return frame[COLUMNS].reset_index(drop=True)


def _window_means(forecasts: pd.DataFrame, lead: int) -> pd.Series:
    """Per area, the sum of its ``mean`` forecasts over horizons ``1..lead`` (NaN when a month
    has none, or the forecasts carry no ``mean``)."""
    if "mean" not in forecasts:
        return pd.Series(dtype=float)
    part = forecasts[forecasts["horizon"].between(1, lead)]
    g = part.groupby(AREA)["mean"]
    return g.sum(min_count=1).where(g.count() == lead)


def _signal_first(frame: pd.DataFrame) -> pd.Series:
    """One order for action: the areas expected to cross (signal) first, then the others, each by
    score; equal scores share a rank (1, 2, 2, 4); unassessed areas get none."""
    rankable = frame["status"].str.startswith("ok") & frame["probability"].notna()
    score = frame["score"].where(rankable)
    signal = frame["signal"].astype(bool) & rankable
    first = score.where(signal).rank(ascending=False, method="min")
    rest = score.where(~signal).rank(ascending=False, method="min") + int(signal.sum())
    return first.fillna(rest)


def monthly_outlook(
    forecasts: pd.DataFrame,
    cube: xr.Dataset,
    trigger: TriggerSpec,
    lead: int,
    *,
    quantiles: Sequence[float],
    missing_target: str = "zero",
    calibrator: PlattCalibrator | None = None,
) -> pd.DataFrame:
    """Month by month through the window: the probability that the month reaches the threshold,
    and the month's forecast (median, 80% interval), in the trigger's own unit (people a month).

    The window's probability (:func:`prioritize`) is the largest of its months' probabilities
    before recalibration; the same recalibration is applied here month by month, and being
    monotone it keeps that relation: the window's probability is the likeliest month's. A
    district can cross at 58% while its median stays below the threshold in every month: the
    upper part of the month's interval reaches it.

    Returns
    -------
    DataFrame
        :data:`OUTLOOK_COLUMNS`, one row per area the model forecast and month ``1..lead``.
    """
    if lead not in trigger.leads:
        raise ForecastError(f"trigger {trigger.name!r} has leads {trigger.leads}; lead {lead} is not one of them")
    time = pd.DatetimeIndex(cube[TIME].values)
    o = len(time) - 1
    panel = Panel.from_cube(cube, trigger.target, missing_target=missing_target)
    thr = threshold_matrix(trigger, panel.y, cube)
    levels = list(quantiles)
    qcols = [quantile_column(q) for q in levels]
    part = forecasts[forecasts["horizon"] <= lead].sort_values([AREA, "horizon"])
    a = panel.areas.get_indexer(part[AREA])
    threshold = np.where(a >= 0, thr[np.maximum(a, 0), o], np.nan)
    raw = exceedance_probability(part[qcols].to_numpy(float), levels, threshold)
    mid = quantile_column(0.5) if 0.5 in levels else "point"
    out = pd.DataFrame({
        AREA: part[AREA].to_numpy(), "horizon": part["horizon"].to_numpy(int),
        "month": [f"{time[o] + pd.DateOffset(months=int(h)):%Y-%m}" for h in part["horizon"]],
        "probability": calibrator.transform(raw) if calibrator is not None else raw,
        "median": part[mid].to_numpy(float), "lower": part[qcols[0]].to_numpy(float),
        "upper": part[qcols[-1]].to_numpy(float), "threshold": threshold})
    return out[OUTLOOK_COLUMNS].reset_index(drop=True)


def _weights(cube: xr.Dataset, name: str) -> np.ndarray:
    """Per area: the coordinate's value, or the variable's last observed value."""
    if name in cube.coords and cube[name].dims == (AREA,):
        # a value that is not a number (a text attribute) is unknown: weight 1, flagged per area
        return pd.to_numeric(pd.Series(cube[name].values), errors="coerce").to_numpy(float)
    if name in cube.data_vars and set(cube[name].dims) == {AREA, TIME}:
        values = cube[name].transpose(AREA, TIME).values.astype(float)
        return pd.DataFrame(values).T.ffill().iloc[-1].to_numpy(float)
    coords = [c for c in cube.coords if cube[c].dims == (AREA,) and c != AREA]
    variables = [v for v, da in cube.data_vars.items() if set(da.dims) == {AREA, TIME}
                 and not v.endswith("_observed")]
    raise ForecastError(f"weight {name!r} is not an area coordinate of the cube ({', '.join(coords)}) "
                        f"nor an area x month variable ({', '.join(variables)})")
