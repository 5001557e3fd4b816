"""Feature families: each turns the panel into named (area, time) arrays, causally.

A family is a function ``(inputs, params) -> {name: array}``. It may read any month up to
``t`` when it fills column ``t`` and nothing later; :func:`forecast.features.assert_causal`
checks this for every registered family, and a user's own family can be registered with
:func:`register_family` and checked the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecast.cube import FlowTable, Routes
from forecast.features import _windows as w
from forecast.features._windows import safe_divide

__all__ = ["Inputs", "FAMILIES", "register_family", "DEFAULT_PARAMS", "COVARIATES", "LOOKS_FOR"]

#: Parameters every family reads, with their defaults; a spec's ``feature_params`` overrides them.
DEFAULT_PARAMS: dict[str, object] = {
    "lags": (0, 1, 2, 3, 6, 12),
    "windows": (3, 6, 12),
    "covariate_lags": (0, 1, 2, 3),
    "large_factor": 2.0,
    "large_min": 100.0,
    # driver families (forecast.features._drivers)
    "clim_min_years": 3,           # earlier years a same-month climatology needs
    "season_fail_quantile": 0.33,  # a season fails below this quantile of the area's earlier ones
    "season_min_years": 3,         # earlier seasons of the same kind a season's state needs
    "ipc_lag": 3,                  # months from an IPC round's reference month to its first use
    "ipc_max_age": 12,             # an IPC round older than this (months) is no longer used
    "pressure_window": 12,         # months of flows that weigh the origins of an area's arrivals
}

#: Cube variables read as covariates when present (a spec may add more under ``covariates``).
COVARIATES = ("conflict_events", "conflict_fatalities", "rainfall", "rain_anomaly", "price_index",
              "departures", "arrivals", "returns", "idp_stock")


@dataclass(frozen=True)
class Inputs:
    """What the families read: the target, covariates, flows and the area structure."""

    y: np.ndarray
    exog: Mapping[str, np.ndarray]
    time: pd.DatetimeIndex
    parents: np.ndarray
    neighbours: list[np.ndarray]
    flows: FlowTable | None = None    # the cube's flow records aligned to the panel's areas
    target: str = "arrivals"
    observed: Mapping[str, np.ndarray] = field(default_factory=dict)


Family = Callable[[Inputs, Mapping[str, object]], dict[str, np.ndarray]]
FAMILIES: dict[str, Family] = {}
#: What a family that reads cube variables looks for, in words, given the inputs and the
#: parameters (None: nothing is expected of this cube, e.g. ``stock_flow`` for a flow target).
#: A family a spec names explicitly that finds none of it warns (``build_features``).
LOOKS_FOR: dict[str, Callable[[Inputs, Mapping[str, object]], str | None]] = {}


def register_family(name: str, looks_for: str | Callable[[Inputs, Mapping[str, object]], str | None] | None = None
                    ) -> Callable[[Family], Family]:
    """Register a feature family under ``name`` so that model specs can name it.

    ``looks_for`` says, in words, which cube variables the family reads (or computes that from
    the inputs and parameters), so that a spec naming the family on a cube without any of them
    is warned instead of running silently without its columns.

    Examples
    --------
    >>> @register_family("log_level")                                    # doctest: +SKIP
    ... def log_level(inputs, params):
    ...     return {"y_log": np.log1p(inputs.y)}
    """
    def wrap(func: Family) -> Family:
        FAMILIES[name] = func
        if looks_for is None:
            LOOKS_FOR.pop(name, None)
        else:
            LOOKS_FOR[name] = looks_for if callable(looks_for) else (lambda inputs, params: looks_for)
        return func
    return wrap


def _either(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


@register_family("lags")
def target_lags(inputs: Inputs, params) -> dict[str, np.ndarray]:
    """The target at lags ``lags``, the last observed value and its age in months."""
    y = inputs.y
    out = {f"y_lag{k}": w.lag(y, int(k)) for k in params["lags"]}
    out["y_last"] = w.forward_fill(y)
    out["y_age"] = w.months_since_observed(y)
    return out


@register_family("rolling")
def rolling(inputs: Inputs, params) -> dict[str, np.ndarray]:
    """Rolling mean, standard deviation and maximum over ``windows``, and the expanding mean."""
    y = inputs.y
    out = {}
    for n in params["windows"]:
        out[f"y_mean{n}"] = w.rolling_mean(y, int(n))
        out[f"y_std{n}"] = w.rolling_std(y, int(n))
        out[f"y_max{n}"] = w.rolling_max(y, int(n))
    out["y_mean_all"] = w.expanding_mean(y)
    return out


@register_family("since_large")
def since_large(inputs: Inputs, params) -> dict[str, np.ndarray]:
    """Months since the last large value: above ``large_factor`` × the mean of the 12 months
    before it and at least ``large_min`` (NaN before the first one)."""
    y = inputs.y
    before = w.lag(w.rolling_mean(y, 12), 1)
    large = (y >= params["large_min"]) & (np.nan_to_num(y) > params["large_factor"] * np.nan_to_num(before))
    t = np.arange(y.shape[1])[None, :]
    last = np.maximum.accumulate(np.where(large, t, -1), axis=1)
    return {"months_since_large": np.where(last >= 0, t - last, np.nan).astype(float)}


@register_family("season")
def season(inputs: Inputs, params) -> dict[str, np.ndarray]:
    """Month of year of the row (the origin), as a number and on the unit circle."""
    month = np.broadcast_to(inputs.time.month.to_numpy(float), inputs.y.shape)
    angle = 2 * np.pi * (month - 1) / 12
    return {"month": month.copy(), "month_sin": np.sin(angle), "month_cos": np.cos(angle)}


def rain_anomaly(rainfall: np.ndarray, time: pd.DatetimeIndex) -> np.ndarray:
    """Rainfall minus the mean of the same calendar month in earlier years (causal climatology)."""
    out = np.full_like(rainfall, np.nan, dtype=float)
    months = time.month.to_numpy()
    for m in range(1, 13):
        cols = np.flatnonzero(months == m)
        if cols.size == 0:
            continue
        block = rainfall[:, cols]
        prior = w.lag(w.expanding_mean(block), 1)  # earlier years only
        out[:, cols] = block - prior
    return out


def _covariate_arrays(inputs: Inputs, params) -> dict[str, np.ndarray]:
    names = [n for n in (*COVARIATES, *params.get("covariates", ())) if n != inputs.target]
    found = {n: inputs.exog[n] for n in names if n in inputs.exog}
    if "rainfall" in found and "rain_anomaly" not in found:
        found["rain_anomaly"] = rain_anomaly(found["rainfall"], inputs.time)
    return found


def _covariates_sought(inputs: Inputs, params) -> str:
    names = [n for n in dict.fromkeys((*COVARIATES, *params.get("covariates", ()))) if n != inputs.target]
    return f"the covariates {_either(names)}"


@register_family("covariates", looks_for=_covariates_sought)
def covariates(inputs: Inputs, params) -> dict[str, np.ndarray]:
    """Lags and 3/12-month means of each covariate the cube has (conflict, rainfall, ...)."""
    out = {}
    for name, x in _covariate_arrays(inputs, params).items():
        for k in params["covariate_lags"]:
            out[f"{name}_lag{k}"] = w.lag(x, int(k))
        out[f"{name}_mean3"] = w.rolling_mean(x, 3)
        out[f"{name}_mean12"] = w.rolling_mean(x, 12)
    return out


def _neighbour_mean(x: np.ndarray, neighbours: list[np.ndarray]) -> np.ndarray:
    out = np.full_like(x, np.nan, dtype=float)
    for a, nb in enumerate(neighbours):
        if nb.size:
            block = x[nb]
            seen = ~np.isnan(block)
            out[a] = safe_divide(np.where(seen, block, 0.0).sum(axis=0), seen.sum(axis=0).astype(float))
    return out


@register_family("spatial")
def spatial(inputs: Inputs, params) -> dict[str, np.ndarray]:
    """The target and conflict over neighbouring areas, and conditions where arrivals came from.

    Neighbours are areas sharing a border (or, without boundaries, the same parent). "Came
    from" weights each origin by its share of the area's arrivals in ``flows`` up to month t.
    """
    y = inputs.y
    out = {"nb_y_lag0": _neighbour_mean(y, inputs.neighbours),
           "nb_y_mean3": _neighbour_mean(w.rolling_mean(y, 3), inputs.neighbours)}
    cov = _covariate_arrays(inputs, params)
    for name in ("conflict_events", "conflict_fatalities", "rain_anomaly"):
        if name in cov:
            out[f"nb_{name}_mean3"] = _neighbour_mean(w.rolling_mean(cov[name], 3), inputs.neighbours)
    if inputs.flows is not None:
        routes = inputs.flows.routes
        share = _origin_shares(routes)
        for name in ("conflict_events", "conflict_fatalities", "departures", "rain_anomaly"):
            if name in cov:
                x = np.nan_to_num(w.rolling_mean(cov[name], 3))
                out[f"from_{name}_mean3"] = routes.to_destinations(share * routes.at_origins(x))
    return out


def _origin_shares(routes: Routes) -> np.ndarray:
    """share[p, t]: route p's part of all arrivals at its destination in months up to t."""
    cum = np.cumsum(routes.monthly, axis=1)
    total = routes.to_destinations(cum)[routes.destination]
    return np.divide(cum, total, out=np.zeros_like(cum), where=total > 0)


@register_family("admin")
def admin(inputs: Inputs, params) -> dict[str, np.ndarray]:
    """Totals of the target over the parent admin area, and the area's share of them."""
    y = inputs.y
    codes, group = np.unique(inputs.parents, return_inverse=True)
    seen = ~np.isnan(y)
    total = np.zeros((len(codes), y.shape[1]))
    count = np.zeros_like(total)
    np.add.at(total, group, np.where(seen, y, 0.0))
    np.add.at(count, group, seen.astype(float))
    parent = np.where(count > 0, total, np.nan)[group]
    mean12 = w.rolling_mean(parent, 12)
    return {"parent_y_lag0": parent, "parent_y_mean3": w.rolling_mean(parent, 3),
            "parent_y_mean12": mean12, "share_of_parent12": safe_divide(w.rolling_mean(y, 12), mean12)}


#: Flow variables whose sums since a stock's last round explain its change (returns leave it).
STOCK_FLOWS = {"arrivals": 1.0, "departures": -1.0, "returns": -1.0}


def _flows_sought(inputs: Inputs, params) -> str | None:
    if inputs.target in STOCK_FLOWS:  # a flow target has no rounds to count from: nothing expected
        return None
    return f"the flows {_either(STOCK_FLOWS)} (their sums since the stock's last round)"


@register_family("stock_flow", looks_for=_flows_sought)
def stock_flow(inputs: Inputs, params) -> dict[str, np.ndarray]:
    """For a stock target (``idp_stock``), the flows since its last observed round.

    Stock ≈ last round + arrivals - departures - returns: for each flow variable the cube has,
    its sum over the months after the last observed round up to t (``arrivals_since_round``;
    missing months count as none), and the net of them (``net_flow_since_round``). Nothing for
    a flow target, or when the cube has no flows.
    """
    if inputs.target in STOCK_FLOWS:
        return {}
    found = {n: inputs.exog[n] for n in STOCK_FLOWS if n in inputs.exog}
    if not found:
        return {}
    y = inputs.y
    t = np.arange(y.shape[1])
    last = np.maximum.accumulate(np.where(~np.isnan(y), t[None, :], -1), axis=1)
    out, net = {}, np.zeros(y.shape)
    for name, x in found.items():
        cum = np.cumsum(np.nan_to_num(x), axis=1)
        before = np.take_along_axis(cum, np.maximum(last, 0), axis=1)
        since = np.where(last >= 0, cum - before, np.nan)  # months last+1 .. t
        out[f"{name}_since_round"] = since
        net = net + STOCK_FLOWS[name] * since
    out["net_flow_since_round"] = net
    return out


@register_family("masks")
def masks(inputs: Inputs, params) -> dict[str, np.ndarray]:
    """Whether the target and each covariate was observed in month t (1) or missing (0)."""
    out = {"y_observed": (~np.isnan(inputs.y)).astype(float)}
    if inputs.target in inputs.observed:  # recorded in the source, before any zero fill
        out["y_recorded"] = inputs.observed[inputs.target].astype(float)
    for name, x in inputs.exog.items():
        if name != inputs.target and name in (*COVARIATES, *params.get("covariates", ())):
            out[f"{name}_observed"] = (~np.isnan(x)).astype(float)
    return out
