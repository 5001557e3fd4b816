"""Trigger evaluation of a backtest: the signals table and its scores, reliability and drift."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
import xarray as xr

from forecast.backtest import progress_bar
from forecast.errors import ForecastError
from forecast.triggers._regional import area_regions, regional_metrics, regional_signals
from forecast.triggers._scores import drift_table, reliability_table, trigger_metrics
from forecast.triggers._signals import DEFAULT_ROUTES, MAX_STALENESS, Progress, trigger_signals
from forecast.triggers._spec import TriggerSpec, region_rule

__all__ = ["TriggerEvaluation", "evaluate_triggers"]


@dataclass
class TriggerEvaluation:
    """Signals of every trigger x lead x route x origin x area, and how good they were.

    Attributes
    ----------
    signals : DataFrame
        ``trigger, lead, origin, area, expected, lower, upper, event, threshold, route,
        probability_raw, role, probability, calibrated, climatology, signal, status, score,
        rank``.
    triggers : list of TriggerSpec
    model : str
        The model whose forecasts gave the forecast route and the expected arrivals.
    k : int
        The ``k`` of precision@k and recall@k.
    regions : dict of str to Series
        For each trigger with a geographic condition (``region:``), each area's region
        (:func:`forecast.triggers.area_regions`); empty when no trigger has one.
    """

    signals: pd.DataFrame
    triggers: list[TriggerSpec]
    model: str
    k: int = 5
    regions: dict = field(default_factory=dict)

    def metrics(self) -> pd.DataFrame:
        """Hit rate, false-alarm ratio, precision/recall@k, Brier, activations, return periods."""
        return trigger_metrics(self.signals, k=self.k)

    def regional_signals(self) -> pd.DataFrame:
        """Per trigger with a geographic condition: each region's outcome and signal at every
        origin (:func:`forecast.triggers.regional_signals`); empty without such a trigger."""
        return regional_signals(self.signals, self.regions, self.triggers)

    def regional(self) -> pd.DataFrame:
        """The geographic conditions' scores: hit rate, false-alarm ratio, activations and return
        period of the regions' signals, one row per trigger x lead x route (empty without one)."""
        return regional_metrics(self.regional_signals())

    def reliability(self, bins: int = 10) -> pd.DataFrame:
        return reliability_table(self.signals, bins=bins)

    def drift(self) -> pd.DataFrame:
        return drift_table(self.signals)

    def plot_reliability(self, trigger: str | None = None, bins: int = 10):
        from forecast.triggers._plots import reliability_plot

        return reliability_plot(self.signals, self._trigger(trigger).name, bins=bins)

    def plot_timeline(self, trigger: str | None = None, lead: int | None = None, route: str = "forecast"):
        from forecast.triggers._plots import timeline_plot

        spec = self._trigger(trigger)
        return timeline_plot(self.signals, spec.name, lead or spec.leads[0], route)

    def _trigger(self, name: str | None) -> TriggerSpec:
        if name is None:
            return self.triggers[0]
        spec = next((t for t in self.triggers if t.name == name), None)
        if spec is None:
            raise ForecastError(f"no trigger {name!r} in this evaluation; it has "
                                f"{', '.join(t.name for t in self.triggers)}")
        return spec


def evaluate_triggers(
    result,
    cube: xr.Dataset,
    triggers: Sequence[TriggerSpec],
    *,
    model: str | None = None,
    routes: Sequence[str] = DEFAULT_ROUTES,
    k: int = 5,
    max_staleness: int = MAX_STALENESS,
    recalibrate: str = "always",
    progress: Progress | bool | None = None,
) -> TriggerEvaluation:
    """Evaluate ``triggers`` on a backtest: probabilities, signals, outcomes and scores.

    Parameters
    ----------
    result : BacktestResult
    cube : xarray.Dataset
        The cube the backtest ran on.
    triggers : sequence of TriggerSpec
    model : str, optional
        Default: the backtest's last spec.
    routes : sequence of str
        ``forecast`` (from the calibrated quantiles) and classifier names.
    k : int
        Areas an anticipatory-action team could act on per origin (precision@k, recall@k).
    recalibrate : {"always", "auto", "never"}
        Platt recalibration fitted on earlier origins (:func:`forecast.triggers.recalibrator`).
    progress : callable, bool or None
        Default (None): a bar with its ETA when a terminal or a Jupyter notebook shows it
        (nothing in a pipe or a log); ``False``: nothing; a callable is called as
        ``progress("trigger signals", done, total)`` after each trigger x lead x route.

    Examples
    --------
    >>> ev = evaluate_triggers(result, cube, load_triggers("models/triggers.yaml"))  # doctest: +SKIP
    >>> ev.metrics()[["trigger", "lead", "route", "hit_rate", "false_alarm_ratio", "brier"]]  # doctest: +SKIP
    >>> ev.regional()  # triggers with a geographic condition (region:), scored per region  # doctest: +SKIP
    """
    # a geographic condition the cube cannot serve fails before the slow part
    regions = {t.name: area_regions(cube, t) for t in triggers if region_rule(t) is not None}
    with progress_bar(progress) as report:
        signals = trigger_signals(result, cube, triggers, model=model, routes=routes,
                                  max_staleness=max_staleness, recalibrate=recalibrate, progress=report)
    return TriggerEvaluation(signals=signals, triggers=list(triggers),
                             model=model or result.models[-1], k=k, regions=regions)
