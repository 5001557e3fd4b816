"""Driver feature families: drought, conflict, markets, food security and origin pressure.

Each family reads the covariates it knows by name from ``inputs.exog`` and returns ``{}`` when
the cube has none of them, so that a cube without FSNAU data still builds. Every value at
month ``t`` comes from months ``<= t`` only (:func:`forecast.features.assert_causal` checks
each family); anomalies compare with the area's own EARLIER years (see ``_seasons``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from forecast.cube import Routes
from forecast.errors import ForecastError
from forecast.features import _windows as w
from forecast.features._families import Inputs, _either, register_family
from forecast.features._seasons import SeasonState, same_month_anomaly, season_state, trailing_sum

__all__ = ["DROUGHT_VARIABLES", "CONFLICT_VARIABLES", "PRICE_VARIABLES", "TERMS_OF_TRADE",
           "IPC_PREFIX"]

#: Drought indicators read as same-month anomalies (``drought_index``: lower is drier, as rainfall).
DROUGHT_VARIABLES = ("rainfall", "ndvi", "drought_index")
#: Reported counts (0 = none reported; NaN = not covered): FSNAU incidents and ACLED events.
CONFLICT_VARIABLES = ("conflict_incidents", "conflict_fatalities", "conflict_events")
#: Terms of trade: also read as same-month anomalies.
TERMS_OF_TRADE = ("tot_goat_cereal", "tot_wage_cereal")
#: Prices, wages and terms of trade read as log changes.
PRICE_VARIABLES = ("water_price", "sorghum_price", "maize_price", "rice_price", "goat_price", "wage",
                   *TERMS_OF_TRADE, "cost_min_basket", "price_index")
#: Every covariate whose name starts with this is an IPC classification read by ``food_security``.
IPC_PREFIX = "ipc_"

_ANOMALY_LAGS = (0, 1, 2)
_CONFLICT_LAGS = (0, 1, 2, 3)
_CONFLICT_WINDOWS = (3, 6, 12)
_PRICE_CHANGES = (3, 6)


def _int_param(params: Mapping[str, object], name: str, lowest: int) -> int:
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lowest:
        raise ForecastError(f"feature parameter {name} must be an integer of at least {lowest}, got {value!r}")
    return int(value)


def _present(inputs: Inputs, names) -> dict[str, np.ndarray]:
    return {n: inputs.exog[n] for n in names if n in inputs.exog and n != inputs.target}


# -- shared drought computations (drought and pressure) ------------------------------------

def _rain_sum3_z(rainfall: np.ndarray, inputs: Inputs, params) -> np.ndarray:
    """The 3-month rainfall total as an anomaly vs the same months of earlier years."""
    return same_month_anomaly(trailing_sum(rainfall, 3), inputs.time, _int_param(params, "clim_min_years", 2))


def _anomaly(x: np.ndarray, inputs: Inputs, params) -> np.ndarray:
    return same_month_anomaly(x, inputs.time, _int_param(params, "clim_min_years", 2))


def _seasons(rainfall: np.ndarray, inputs: Inputs, params) -> SeasonState:
    return season_state(rainfall, inputs.time, fail_quantile=float(params["season_fail_quantile"]),
                        min_years=_int_param(params, "season_min_years", 2))


@register_family("drought", looks_for=f"the drought indicators {_either(DROUGHT_VARIABLES)}")
def drought(inputs: Inputs, params) -> dict[str, np.ndarray]:
    """Rainfall, NDVI and drought-index anomalies, and the state of the Gu and Deyr seasons.

    For each of ``rainfall``, ``ndvi`` and ``drought_index`` the cube has: the standardized
    anomaly against the area's same calendar month in earlier years (``<v>_z_lag0..2``; NaN
    until ``clim_min_years`` earlier years). From rainfall also: the 3-month total's anomaly
    (``rainfall_sum3_z``), the last completed season's total vs earlier seasons of its kind
    (``season_last_z``), the number of consecutive failed seasons (``seasons_failed``; a season
    fails below the ``season_fail_quantile`` quantile of the area's earlier seasons of its
    kind) and the season in progress so far vs the same months of earlier years
    (``season_running_z``, NaN outside Gu and Deyr). Negative anomalies are drier throughout.
    """
    out = {}
    for name, x in _present(inputs, DROUGHT_VARIABLES).items():
        z = _anomaly(x, inputs, params)
        out.update({f"{name}_z_lag{k}": w.lag(z, k) for k in _ANOMALY_LAGS})
    rain = _present(inputs, ("rainfall",)).get("rainfall")
    if rain is not None:
        out["rainfall_sum3_z"] = _rain_sum3_z(rain, inputs, params)
        state = _seasons(rain, inputs, params)
        out.update(season_last_z=state.last_z, seasons_failed=state.seasons_failed,
                   season_running_z=state.running_z)
    return out


# -- conflict -------------------------------------------------------------------------------

def _log_counts(name: str, x: np.ndarray) -> np.ndarray:
    if (x < 0).any():
        raise ForecastError(f"{name} holds negative counts ({int((x < 0).sum())} cells); conflict "
                            "variables are reported counts (0 = none reported, NaN = not covered)")
    return np.log1p(x)


def _conflict_log_sum(x: np.ndarray, n: int) -> np.ndarray:
    """log1p of the count over the last n months (NaN when any of them was not covered)."""
    return np.log1p(trailing_sum(x, n))


@register_family("conflict", looks_for=f"the conflict counts {_either(CONFLICT_VARIABLES)}")
def conflict(inputs: Inputs, params) -> dict[str, np.ndarray]:
    """Conflict counts (``conflict_incidents``, ``conflict_fatalities``, ``conflict_events``).

    For each one present: ``log1p`` of the month's count at lags 0-3 (``<v>_log_lag<k>``),
    ``log1p`` of the 3-, 6- and 12-month totals (``<v>_log_sum<n>``; NaN when any month of the
    window was not covered) and the change of the last 3 months against the 3 before in the
    same scale (``<v>_log_change3``).
    """
    out = {}
    for name, x in _present(inputs, CONFLICT_VARIABLES).items():
        logged = _log_counts(name, x)
        out.update({f"{name}_log_lag{k}": w.lag(logged, k) for k in _CONFLICT_LAGS})
        for n in _CONFLICT_WINDOWS:
            out[f"{name}_log_sum{n}"] = _conflict_log_sum(x, n)
        out[f"{name}_log_change3"] = out[f"{name}_log_sum3"] - w.lag(out[f"{name}_log_sum3"], 3)
    return out


# -- markets --------------------------------------------------------------------------------

def _log_change(x: np.ndarray, k: int) -> np.ndarray:
    """log(x_t / x_{t-k}); NaN when either is missing or not positive."""
    before = w.lag(x, k)
    ok = (x > 0) & (before > 0)
    out = np.full(x.shape, np.nan)
    np.log(np.divide(x, before, out=np.ones(x.shape), where=ok), out=out, where=ok)
    return out


@register_family("markets", looks_for=f"the prices, wages or terms of trade {_either(PRICE_VARIABLES)}")
def markets(inputs: Inputs, params) -> dict[str, np.ndarray]:
    """Price, wage and terms-of-trade movements (FSNAU market monitoring).

    For each price variable present (water, sorghum, maize, rice and goat prices, the daily
    wage, the two terms of trade, the cost of the minimum basket, a generic ``price_index``):
    the log change over 3 and 6 months (``<v>_logchg3``, ``<v>_logchg6``). For the terms of
    trade (goat to cereal, wage to cereal) also the standardized anomaly against the same
    calendar month of earlier years (``<v>_z``), as in ``drought``: low is worse.
    """
    out = {}
    for name, x in _present(inputs, PRICE_VARIABLES).items():
        out.update({f"{name}_logchg{k}": _log_change(x, k) for k in _PRICE_CHANGES})
        if name in TERMS_OF_TRADE:
            out[f"{name}_z"] = _anomaly(x, inputs, params)
    return out


# -- food security --------------------------------------------------------------------------

@register_family("food_security", looks_for=f"IPC classifications: variables named {IPC_PREFIX}*")
def food_security(inputs: Inputs, params) -> dict[str, np.ndarray]:
    """IPC classifications as they were known at each month (``ipc_*`` covariates).

    An IPC round is stored at its REFERENCE month only (NaN elsewhere). Assumption: its
    results are published up to about two months after the reference month and used from the
    month after, so a round with reference month r enters the features at month
    ``r + ipc_lag`` (default 3) and is carried forward until the next round enters. A round
    is "in use" while it is at most ``ipc_max_age`` months old (default 12); past that every
    column is NaN. A round is a month where the area has any ``ipc_*`` value.

    Columns: ``<v>_last`` for each ``ipc_*`` variable (NaN where the round in use has no value
    for it) and ``ipc_age``, months from the reference month of the round in use.
    """
    found = {n: x for n, x in inputs.exog.items() if n.startswith(IPC_PREFIX) and n != inputs.target}
    if not found:
        return {}
    lag = _int_param(params, "ipc_lag", 0)
    max_age = _int_param(params, "ipc_max_age", lag)
    entered = w.lag(np.any([~np.isnan(x) for x in found.values()], axis=0).astype(float), lag)
    t = np.arange(entered.shape[1])[None, :]
    last = np.maximum.accumulate(np.where(entered == 1, t, -1), axis=1)  # month its round entered
    age = np.where(last >= 0, t - last + lag, np.nan)
    in_use = age <= max_age
    rows = np.arange(entered.shape[0])[:, None]
    out = {f"{name}_last": np.where(in_use, w.lag(x, lag)[rows, np.maximum(last, 0)], np.nan)
           for name, x in sorted(found.items())}
    out["ipc_age"] = np.where(in_use, age, np.nan)
    return out


# -- origin pressure ------------------------------------------------------------------------

def _window_flows(routes: Routes, n: int) -> np.ndarray:
    """Arrivals along each route (route, month) over months (t − n, t]; no record counts 0."""
    padded = np.pad(routes.monthly, ((0, 0), (n - 1, 0)))
    return np.lib.stride_tricks.sliding_window_view(padded, n, axis=1).sum(axis=2)


def _from_origins(routes: Routes, weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Mean of x over origins weighted by the window's arrivals, over origins where x is known;
    NaN where the destination recorded no arrivals from such origins."""
    known = ~np.isnan(x)
    num = routes.to_destinations(weights * routes.at_origins(np.where(known, x, 0.0)))
    den = routes.to_destinations(weights * routes.at_origins(known.astype(float)))
    return w.safe_divide(num, np.where(den > 0, den, np.nan))


def _origin_indicators(inputs: Inputs, params) -> dict[str, np.ndarray]:
    """Conditions at each area that matter when it is an origin (whichever can be computed)."""
    found = _present(inputs, (*DROUGHT_VARIABLES, "conflict_incidents"))
    out = {}
    if "rainfall" in found:
        state = _seasons(found["rainfall"], inputs, params)
        out.update(rainfall_sum3_z=_rain_sum3_z(found["rainfall"], inputs, params),
                   seasons_failed=state.seasons_failed, drought_share=state.last_failed)
    for name in ("ndvi", "drought_index"):
        if name in found:
            out[f"{name}_z"] = _anomaly(found[name], inputs, params)
    if "conflict_incidents" in found:
        x = found["conflict_incidents"]
        _log_counts("conflict_incidents", x)
        out["conflict_incidents_log_sum3"] = _conflict_log_sum(x, 3)
    return out


def _pressure_sought(inputs: Inputs, params) -> str:
    wanted = f"{_either((*DROUGHT_VARIABLES, 'conflict_incidents'))} at the areas arrivals came from"
    if inputs.flows is None:
        return f"origin-destination flows (the cube's 'flows') to weigh {wanted}"
    return wanted


@register_family("pressure", looks_for=_pressure_sought)
def pressure(inputs: Inputs, params) -> dict[str, np.ndarray]:
    """Drought and conflict where each district's arrivals came from (origin pressure).

    Each origin o weighs on destination d at month t by its arrivals at d over the trailing
    ``pressure_window`` months up to and including t (``inputs.flows``). Columns, each the
    weighted mean over the origins where the indicator is known: ``from_rainfall_sum3_z``,
    ``from_seasons_failed``, ``from_ndvi_z``, ``from_drought_index_z``,
    ``from_conflict_incidents_log_sum3`` (as in ``drought`` and ``conflict``), and
    ``from_drought_share``: the share of those arrivals from origins whose last completed
    season failed (origins whose last season is unknown left out). NaN where d recorded no
    arrivals in the window. Without flows: no columns.
    """
    if inputs.flows is None:
        return {}
    indicators = _origin_indicators(inputs, params)
    if not indicators:
        return {}
    routes = inputs.flows.routes
    weights = _window_flows(routes, _int_param(params, "pressure_window", 1))
    return {f"from_{name}": _from_origins(routes, weights, x) for name, x in indicators.items()}
