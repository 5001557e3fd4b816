"""Trigger signals at every backtest origin: probability, activation, outcome, rank.

One row per trigger x lead x route x origin x area. Routes: ``forecast`` (probability read off
the model's calibrated quantiles) and one per classifier (``lightgbm``, ``logistic``). Every
number at an origin uses data up to that origin: thresholds (expanding percentiles), the
classifiers (trained on months whose windows had closed), the Platt recalibration (fitted on
earlier origins whose outcomes were known) and the climatological reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from forecast._names import AREA, TIME
from forecast.features import Panel
from forecast.backtest import quantile_column
from forecast.errors import ForecastError
from forecast.features import build_features
from forecast.triggers._classifier import CLASSIFIERS, classifier_probabilities
from forecast.triggers._probability import RECALIBRATE, exceedance_probability, recalibrator
from forecast.triggers._spec import TriggerSpec
from forecast.triggers._thresholds import threshold_matrix, window_events

__all__ = ["trigger_signals", "rank_areas", "last_record_index", "DEFAULT_ROUTES", "MAX_STALENESS"]

DEFAULT_ROUTES = ("forecast", "lightgbm", "logistic")
#: An area whose last record is older than this many months at the origin is not ranked.
MAX_STALENESS = 6

Progress = Callable[[str, int, int], None]


def last_record_index(cube: xr.Dataset, target: str) -> np.ndarray:
    """Per area and month, the index of the last month up to it with a record (-1: none yet)."""
    mask_name = f"{target}_observed"
    if mask_name in cube:
        seen = cube[mask_name].transpose(AREA, TIME).values.astype(bool)
    else:
        seen = np.isfinite(cube[target].transpose(AREA, TIME).values.astype(float))
    idx = np.where(seen, np.arange(seen.shape[1])[None, :], -1)
    return np.maximum.accumulate(idx, axis=1)


def _status(thr: np.ndarray, last: np.ndarray, o: int, time: pd.DatetimeIndex, max_staleness: int,
            trigger: TriggerSpec) -> np.ndarray:
    status = np.full(thr.shape[0], "ok", dtype=object)
    never = last[:, o] < 0
    stale = ~never & (o - last[:, o] > max_staleness)
    status[np.isnan(thr[:, o])] = ("no threshold: population unknown" if trigger.kind == "population"
                                   else f"no threshold: fewer than {trigger.min_history} months of history")
    for a in np.flatnonzero(stale):
        status[a] = f"stale: no data since {time[last[a, o]]:%Y-%m}"
    status[never] = "no data yet"
    return status


def rank_areas(frame: pd.DataFrame, by: Sequence[str]) -> pd.Series:
    """Rank 1 = act first, within each ``by`` group: highest probability x expected arrivals.

    Only rows with status ``ok`` and a probability are ranked (others get NaN: unassessed is
    never "safe"). Equal scores share the best rank among them (1, 2, 2, 4).
    """
    rankable = frame["status"].eq("ok") & frame["probability"].notna()
    score = frame["score"].where(rankable)
    return score.groupby([frame[c] for c in by]).rank(ascending=False, method="min")


def trigger_signals(
    result,
    cube: xr.Dataset,
    triggers: Sequence[TriggerSpec],
    *,
    model: str | None = None,
    routes: Sequence[str] = DEFAULT_ROUTES,
    max_staleness: int = MAX_STALENESS,
    recalibrate: str = "always",
    progress: Progress | bool | None = None,
) -> pd.DataFrame:
    """Signals of every trigger, lead and route at every origin of a backtest.

    Parameters
    ----------
    result : BacktestResult
    cube : xarray.Dataset
        The cube the backtest ran on.
    triggers : sequence of TriggerSpec
    model : str, optional
        The model whose forecasts give the forecast route and the expected arrivals (default:
        the last spec of the backtest).
    routes : sequence of str
        ``forecast`` and/or classifier names (``lightgbm``, ``logistic``).
    max_staleness : int
        Months without a record after which an area is flagged and not ranked.
    recalibrate : {"always", "auto", "never"}
        Platt recalibration of each route's probabilities on earlier origins' known outcomes
        (see :func:`forecast.triggers.recalibrator`).
    progress : callable, optional
        Called as ``progress("trigger signals", done, total)`` after each trigger x lead x
        route; None or False: nothing (:func:`forecast.triggers.evaluate_triggers` shows a bar
        by default and passes it here).
    """
    if recalibrate not in RECALIBRATE:
        raise ForecastError(f"recalibrate must be one of {', '.join(RECALIBRATE)}, got {recalibrate!r}")
    model = model or result.models[-1]
    spec = next((s for s in result.specs if s.name == model), None)
    if spec is None:
        raise ForecastError(f"model {model!r} is not in the backtest; it has {', '.join(result.models)}")
    unknown = [r for r in routes if r != "forecast" and r not in CLASSIFIERS]
    if unknown:
        raise ForecastError(f"unknown route(s) {unknown}; known: forecast, {', '.join(CLASSIFIERS)}")
    time = pd.DatetimeIndex(cube[TIME].values)
    rows = result.forecasts[result.forecasts["model"] == model]
    origin_times = pd.DatetimeIndex(sorted(rows["origin"].unique()))
    origins = time.get_indexer(origin_times)
    if (origins < 0).any():
        raise ForecastError("the backtest's origins are not months of this cube; pass the cube it ran on")
    roles = rows.drop_duplicates("origin").set_index("origin")["role"]
    fm = None
    frames = []
    total = sum(len(t.leads) for t in triggers) * len(routes)
    for trigger in triggers:
        if trigger.target != result.target:
            raise ForecastError(f"trigger {trigger.name!r} is on {trigger.target!r} but the backtest "
                                f"forecast {result.target!r}")
        panel = Panel.from_cube(cube, trigger.target, missing_target=spec.resolved_missing_target)
        thr = threshold_matrix(trigger, panel.y, cube)
        last = last_record_index(cube, trigger.target)
        status = {o: _status(thr, last, o, time, max_staleness, trigger) for o in origins}
        for lead in trigger.leads:
            missing = sorted(set(range(1, lead + 1)) - set(spec.horizons))
            if missing:
                raise ForecastError(f"trigger {trigger.name!r} has lead {lead}, which needs forecasts "
                                    f"1..{lead} months ahead; {model!r} has horizons {spec.horizons} "
                                    f"(missing {missing})")
            events = window_events(panel.y, thr, lead)
            base = _forecast_route(rows, spec.quantiles, panel, thr, lead, time)
            base["event"] = events[panel.areas.get_indexer(base[AREA]), time.get_indexer(base["origin"])]
            base["threshold"] = thr[panel.areas.get_indexer(base[AREA]), time.get_indexer(base["origin"])]
            for route in routes:
                part = base.copy()
                part["route"] = route
                if route != "forecast":
                    if fm is None:
                        families = spec.features if spec.kind == "global" else "all"
                        fm = build_features(cube, trigger.target, families=families, params=spec.feature_params,
                                            missing_target=spec.resolved_missing_target,
                                            exclude_variables=spec.exclude_variables)
                    probs = classifier_probabilities(route, fm, thr, events, lead, origins,
                                                     refit_every=result.folds.refit_every)
                    o_pos = pd.Index(origin_times).get_indexer(part["origin"])
                    part["probability_raw"] = probs[o_pos, panel.areas.get_indexer(part[AREA])]
                frames.append(_finish(part, trigger, lead, time, panel.areas, status, roles, recalibrate))
                if progress:
                    progress("trigger signals", len(frames), total)
    return pd.concat(frames, ignore_index=True)


def _forecast_route(rows, levels, panel, thr, lead, time) -> pd.DataFrame:
    """Per origin and area, P(crossing) within ``lead`` months and expected arrivals with interval.

    The interval sums the months' lower and upper quantiles (their errors moving together).
    """
    levels = list(levels)
    qcols = [quantile_column(q) for q in levels]
    part = rows[rows["horizon"] <= lead]
    a = panel.areas.get_indexer(part[AREA])
    o = time.get_indexer(part["origin"])
    p = exceedance_probability(part[qcols].to_numpy(float), levels, thr[a, o])
    mid = quantile_column(0.5) if 0.5 in levels else "point"
    frame = pd.DataFrame({
        "origin": part["origin"].to_numpy(), AREA: part[AREA].to_numpy(), "p": p,
        "expected": part[mid].to_numpy(float),
        "lower": part[qcols[0]].to_numpy(float), "upper": part[qcols[-1]].to_numpy(float),
    })
    g = frame.groupby(["origin", AREA], sort=True)
    # the window needs every month's forecast; a missing interval leaves it without a probability
    out = g.agg(p=("p", "max"), n=("p", "count")).reset_index()
    complete = (out["n"] == lead).to_numpy()
    for column in ("expected", "lower", "upper"):  # a window missing a month's forecast has no sum
        out[column] = np.where(complete, g[column].sum(min_count=lead).to_numpy(), np.nan)
    out["probability_raw"] = out["p"].where(complete)
    return out.drop(columns=["p", "n"])


def _finish(part: pd.DataFrame, trigger: TriggerSpec, lead: int, time, areas, status, roles,
            recalibrate: str) -> pd.DataFrame:
    part = part.sort_values(["origin", AREA]).reset_index(drop=True)
    part.insert(0, "trigger", trigger.name)
    part.insert(1, "lead", lead)
    o_idx = time.get_indexer(part["origin"])
    part["role"] = part["origin"].map(roles).to_numpy()
    p_raw, event = part["probability_raw"].to_numpy(float), part["event"].to_numpy(float)
    prob = np.full(len(part), np.nan)
    clim = np.full(len(part), np.nan)
    calibrated = np.zeros(len(part), dtype=bool)
    state = np.empty(len(part), dtype=object)
    a_idx = areas.get_indexer(part[AREA])
    for o in np.unique(o_idx):
        now = o_idx == o
        state[now] = status[o][a_idx[now]]
        known = (o_idx + lead <= o) & np.isfinite(event) & np.isfinite(p_raw)
        cal = recalibrator(p_raw[known], event[known], o_idx[known], mode=recalibrate)
        prob[now] = cal.transform(p_raw[now])
        calibrated[now] = cal.fitted_
        known_events = (o_idx + lead <= o) & np.isfinite(event)
        clim[now] = event[known_events].mean() if known_events.any() else np.nan
    part["probability"] = prob
    part["calibrated"] = calibrated
    part["climatology"] = clim
    part["signal"] = part["probability"].to_numpy() >= trigger.probability
    no_forecast = (state == "ok") & part["probability_raw"].isna().to_numpy()
    state[no_forecast] = "no forecast: the model gave no interval for every month of the window"
    part["status"] = state
    part["score"] = part["probability"] * part["expected"]
    part["rank"] = rank_areas(part, ["origin"])
    return part

