"""A trigger scored at every admin level: does the country or a region cross, and was it signalled?

:func:`forecast.backtest.backtest_levels` forecasts one spec at every admin level and reconciles
the levels. Here each level is treated as districts are by :func:`~forecast.triggers.trigger_signals`
and :func:`~forecast.triggers.trigger_metrics` (the forecast route, unchanged): the level's series
are the cube summed to it (:func:`forecast.cube.aggregate`; the cube itself at the finest level),
its thresholds come from those series up to each origin (:func:`~forecast.triggers.threshold_matrix`:
a region's surge is a month above 90% of the region's own months so far), the probability of
crossing within the lead is read off the forecast quantiles (:func:`~forecast.triggers.exceedance_probability`,
Platt-recalibrated on earlier origins' known outcomes), and hit rate and false-alarm ratio are
those of :func:`~forecast.triggers.trigger_metrics`. Each level is scored twice: with its own
model's forecasts (``base``) and with the reconciled ones (the method's name). A level whose
own forecasts have no interval (the national series, too few earlier errors to calibrate one)
has no probability, and its base scores are NaN rather than made up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pandas as pd
import xarray as xr

from forecast.backtest import LevelsResult
from forecast.cube import aggregate
from forecast.errors import ForecastError
from forecast.triggers._scores import trigger_metrics
from forecast.triggers._signals import trigger_signals
from forecast.triggers._spec import TriggerSpec

__all__ = ["level_trigger_metrics", "level_trigger_signals"]


def _specs(triggers, leads) -> list[TriggerSpec]:
    triggers = [triggers] if isinstance(triggers, TriggerSpec) else list(triggers)
    if not triggers or not all(isinstance(t, TriggerSpec) for t in triggers):
        raise ForecastError("triggers must be one TriggerSpec or a list of them (forecast.triggers.load_triggers)")
    if leads is None:
        return triggers
    leads = [leads] if isinstance(leads, int) else list(leads)
    if not leads or not all(isinstance(lead, int) and lead >= 1 for lead in leads):
        raise ForecastError(f"leads must be whole months of at least 1, got {leads}")
    return [t.model_copy(update={"leads": leads}) for t in triggers]


def level_trigger_signals(levels: LevelsResult, cube: xr.Dataset, triggers, *,
                          leads: int | Sequence[int] | None = None, recalibrate: str = "always") -> pd.DataFrame:
    """The forecast route's signals of each trigger at every level, base and reconciled.

    Parameters
    ----------
    levels : LevelsResult
        :func:`forecast.backtest.backtest_levels` output.
    cube : xarray.Dataset
        The cube it ran on (the finest level).
    triggers : TriggerSpec or sequence of TriggerSpec
    leads : int or sequence of int, optional
        The leads to score (default: each trigger's own).
    recalibrate : {"always", "auto", "never"}
        As in :func:`~forecast.triggers.trigger_signals`.

    Returns
    -------
    DataFrame
        :func:`~forecast.triggers.trigger_signals`'s columns (route ``forecast``) with ``level``
        and ``forecast`` (``base`` or the reconciliation method) first; ``area`` holds the
        level's P-codes.
    """
    if not isinstance(levels, LevelsResult):
        raise ForecastError(f"levels must be a LevelsResult (forecast.backtest.backtest_levels), got "
                            f"{type(levels).__name__}")
    specs = _specs(triggers, leads)
    model, finest = levels.spec.name, levels.hierarchy.levels[-1]
    frames = []
    for level in levels.hierarchy.levels:
        data = cube if level == finest else aggregate(cube, level)
        own = levels.base[level]
        mine = levels.forecasts[levels.forecasts["level"] == level].assign(model=model)
        for kind, result in (("base", own), (levels.method, dataclasses.replace(own, forecasts=mine))):
            signals = trigger_signals(result, data, specs, model=model, routes=("forecast",),
                                      recalibrate=recalibrate, progress=False)
            signals.insert(0, "forecast", kind)
            signals.insert(0, "level", level)
            frames.append(signals)
    return pd.concat(frames, ignore_index=True)


def level_trigger_metrics(levels: LevelsResult, cube: xr.Dataset, triggers, *,
                          leads: int | Sequence[int] | None = None, k: int = 5,
                          recalibrate: str = "always") -> pd.DataFrame:
    """Hit rate and false alarms of each trigger at every admin level, base and reconciled.

    Parameters are those of :func:`level_trigger_signals`, and ``k`` of precision@k and
    recall@k (:func:`~forecast.triggers.trigger_metrics`).

    Returns
    -------
    DataFrame
        One row per level x forecast (``base`` or the method) x trigger x lead: ``level,
        forecast, trigger, lead`` and :func:`~forecast.triggers.trigger_metrics`'s scores
        (``hit_rate``, ``false_alarm_ratio``, ``events``, ``signals``, ``brier``, ...), on the
        scored origins.

    Examples
    --------
    >>> levels = backtest_levels(cube, spec, method="mint_shrink")  # doctest: +SKIP
    >>> level_trigger_metrics(levels, cube, load_triggers("models/triggers.yaml"), leads=3)  # doctest: +SKIP
    """
    signals = level_trigger_signals(levels, cube, triggers, leads=leads, recalibrate=recalibrate)
    frames = [trigger_metrics(part, k=k).drop(columns="route").assign(level=level, forecast=kind)
              for (level, kind), part in signals.groupby(["level", "forecast"], sort=False)]
    table = pd.concat(frames, ignore_index=True)
    first = ["level", "forecast", "trigger", "lead"]
    return table[first + [c for c in table.columns if c not in first]]
