"""A trigger's geographic condition in the backtest: does a region cross when N of its districts do?

A trigger with ``region: {min_areas: N}`` (:class:`~forecast.triggers.RegionRule`) is scored
twice: per district, as every trigger is (:func:`forecast.triggers.trigger_metrics`, unchanged),
and per region, here. At each origin, lead and route, a region's

* **outcome** is a crossing (1) when at least N of its districts crossed within the window, no
  crossing (0) when fewer than N did even if every district with an unknown window had crossed,
  and unknown (NaN) otherwise;
* **signal** is on when at least N of its districts signalled (a district that could not be
  assessed does not signal).

The scores follow :mod:`forecast.triggers._scores`: hit rate = signalled crossings / crossings,
false-alarm ratio = signals without a crossing / signals (both over region-origins with a known
outcome), activations = onsets of a region's signal, return period = (years + 1) / activations
per region. A district whose region is unknown belongs to no region and is not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import xarray as xr

from forecast._names import AREA
from forecast.errors import ForecastError
from forecast.triggers._scores import KEYS, _years, onsets
from forecast.triggers._spec import REGION_COORDS, TriggerSpec, region_rule

__all__ = ["area_regions", "regional_signals", "regional_metrics", "REGIONAL_SIGNAL_COLUMNS",
           "REGIONAL_METRIC_COLUMNS"]

REGIONAL_SIGNAL_COLUMNS = [*KEYS, "origin", "region", "role", "min_areas", "districts", "known", "crossed",
                           "signalled", "event", "signal"]
REGIONAL_METRIC_COLUMNS = [*KEYS, "min_areas", "regions", "n", "events", "signals", "hits", "misses",
                           "false_alarms", "hit_rate", "false_alarm_ratio", "activations", "years",
                           "return_period"]


def area_regions(cube: xr.Dataset, trigger: TriggerSpec) -> pd.Series:
    """Each area's region under the trigger's geographic condition (index: area; NaN: unknown).

    Raises
    ------
    ForecastError
        The trigger has no ``region`` condition, or the cube has no area coordinate to read
        regions from (naming the coordinates it has).
    """
    rule = region_rule(trigger)
    if rule is None:
        raise ForecastError(f"trigger {trigger.name!r} has no geographic condition; add one to its YAML, "
                            "e.g. region: {min_areas: 3, by: region}")
    names = (rule.by,) if rule.by else REGION_COORDS
    name = next((n for n in names if n in cube.coords and cube[n].dims == (AREA,)), None)
    if name is None:
        have = [str(c) for c in cube.coords if cube[c].dims == (AREA,) and c != AREA]
        raise ForecastError(
            f"trigger {trigger.name!r} acts per region, but the cube has no area coordinate "
            f"{' or '.join(repr(n) for n in names)} to read regions from (it has: {', '.join(have) or 'none'}); "
            "name one with region.by in the trigger file, or ingest an attributes table with a region column")
    values = pd.Series(cube[name].values, index=pd.Index(cube[AREA].values.astype(str), name=AREA), name="region")
    text = values.map(lambda v: "" if pd.isna(v) else str(v).strip())
    return text.where(text.ne(""))


def regional_signals(signals: pd.DataFrame, regions: Mapping[str, pd.Series],
                     triggers: Iterable[TriggerSpec]) -> pd.DataFrame:
    """Region x origin outcomes and signals of every trigger with a geographic condition.

    Parameters
    ----------
    signals : DataFrame
        :func:`forecast.triggers.trigger_signals` output (``trigger, lead, route, origin, area,
        role, event, signal``).
    regions : mapping of trigger name to Series
        :func:`area_regions` of each trigger with a condition.
    triggers : iterable of TriggerSpec
        Those without a condition are left out.

    Returns
    -------
    DataFrame
        :data:`REGIONAL_SIGNAL_COLUMNS`: per trigger, lead, route, origin and region, the
        districts in the region, those with a known outcome, those that crossed and those that
        signalled, and the region's ``event`` (1, 0 or NaN) and ``signal``.
    """
    frames = []
    for trigger in triggers:
        rule = region_rule(trigger)
        if rule is None:
            continue
        if trigger.name not in regions:
            raise ForecastError(f"no regions given for trigger {trigger.name!r}: pass area_regions(cube, trigger)")
        region_of = regions[trigger.name].dropna()
        size = region_of.value_counts()
        part = signals[signals["trigger"] == trigger.name]
        part = part.assign(region=part[AREA].astype(str).map(region_of)).dropna(subset=["region"])
        if part.empty:
            continue
        part = part.assign(_known=part["event"].notna(), _crossed=part["event"].eq(1.0),
                           _signal=part["signal"].fillna(False).astype(bool))
        g = part.groupby([*KEYS, "origin", "region"], sort=True)
        table = g.agg(role=("role", "first"), known=("_known", "sum"), crossed=("_crossed", "sum"),
                      signalled=("_signal", "sum")).reset_index()
        table["districts"] = table["region"].map(size).astype(int)
        table["min_areas"] = rule.min_areas
        unknown = table["districts"] - table["known"]  # districts without a known window, or without a row
        table["event"] = np.where(table["crossed"] >= rule.min_areas, 1.0,
                                  np.where(table["crossed"] + unknown < rule.min_areas, 0.0, np.nan))
        table["signal"] = table["signalled"] >= rule.min_areas
        frames.append(table)
    if not frames:
        return pd.DataFrame(columns=REGIONAL_SIGNAL_COLUMNS)
    return pd.concat(frames, ignore_index=True)[REGIONAL_SIGNAL_COLUMNS]


def regional_metrics(table: pd.DataFrame) -> pd.DataFrame:
    """Scores of the regional signals on the scored origins, one row per trigger x lead x route.

    ``table``: :func:`regional_signals` output. Columns: :data:`REGIONAL_METRIC_COLUMNS`
    (``n``: region-origins with a known outcome; ``regions``: regions scored).
    """
    scored = table[table["role"] == "scored"]
    if scored.empty:
        return pd.DataFrame(columns=REGIONAL_METRIC_COLUMNS)
    # onsets: a run of origins at which a region signals is one activation, as for districts
    scored = scored.assign(onset=onsets(scored.rename(columns={"region": AREA}), "signal").to_numpy())
    rows = []
    for key, part in scored.groupby(KEYS, sort=False):
        judged = part[part["event"].notna()]
        event = judged["event"].to_numpy(float) == 1.0
        signal = judged["signal"].to_numpy(bool)
        hits, events, n_signals = int((signal & event).sum()), int(event.sum()), int(signal.sum())
        years, n_regions, activations = _years(part["origin"]), part["region"].nunique(), int(part["onset"].sum())
        rows.append({
            **dict(zip(KEYS, key)), "min_areas": int(part["min_areas"].iloc[0]), "regions": n_regions,
            "n": len(judged), "events": events, "signals": n_signals, "hits": hits, "misses": events - hits,
            "false_alarms": n_signals - hits, "hit_rate": hits / events if events else np.nan,
            "false_alarm_ratio": (n_signals - hits) / n_signals if n_signals else np.nan,
            "activations": activations, "years": years,
            "return_period": (years + 1) / (activations / n_regions) if activations else np.inf,
        })
    return pd.DataFrame(rows, columns=REGIONAL_METRIC_COLUMNS)
