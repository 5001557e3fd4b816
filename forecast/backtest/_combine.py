"""A combination of backtested models, its weights learned from earlier origins only.

At each origin ``o`` and horizon ``h`` the members' weights are learned from their forecasts at
``h`` whose target month is at or before ``o`` (outcomes known at the origin, the rule of the
conformal intervals), so a combination's forecast at ``o`` never reads a later outcome. The
combined point is the weighted mean of the members' points and each raw quantile the weighted
mean of theirs (quantile averaging); the combination is then calibrated as a model is
(:func:`~forecast.backtest.calibrate`: conformal intervals and a ``mean`` whose totals hold), so
:func:`~forecast.backtest.score` reads it as it reads any model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog

from forecast.backtest._conformal import MIN_CALIBRATION, calibrate
from forecast.backtest._metrics import numeric_column, quantile_column, quantile_levels, require_columns
from forecast.errors import ForecastError

__all__ = ["combine", "combination_weights", "COMBINATION_METHODS"]

#: How the members' weights are learned from their earlier errors: ``inverse_mase`` (each
#: member's weight proportional to one over its MASE), ``equal`` (nothing learned), ``stacking``
#: (the non-negative weights summing to 1 whose combination had the smallest MASE).
COMBINATION_METHODS = ("inverse_mase", "equal", "stacking")
KEYS = ["origin", "horizon", "area"]
#: Below this MASE a member counts as perfect on the earlier origins (inverse MASE: it takes all
#: the weight, shared with any other perfect member).
PERFECT = 1e-12


def combine(forecasts: pd.DataFrame, models: Sequence[str], *, name: str = "combination",
            method: str = "inverse_mase", min_origins: int = 3, window: int | None = None,
            by_size: bool = True, nonnegative: bool = True,
            min_calibration: int = MIN_CALIBRATION) -> pd.DataFrame:
    """One model's forecasts from several backtested ones, weighted by their earlier errors.

    Parameters
    ----------
    forecasts : DataFrame
        A backtest's forecasts table (:attr:`BacktestResult.forecasts`): ``model, origin,
        horizon, area, time, actual, point, scale`` and the raw quantiles ``raw_q0.1 ...``
        (``size_bin``, ``recent_mean`` and ``role`` are carried over when present). Every
        member must have the same origin × horizon × area rows.
    models : sequence of str
        The members, at least one.
    name : str, default "combination"
        The combination's ``model``; not a model already in ``forecasts``.
    method : {"inverse_mase", "equal", "stacking"}
        How the weights are learned (:data:`COMBINATION_METHODS`, :func:`combination_weights`).
    min_origins : int, default 3
        Earlier origins with known outcomes needed to learn weights; with fewer the members
        are weighted equally.
    window : int, optional
        Learn from the last ``window`` such origins only; default all of them.
    by_size : bool, default True
        Calibrate the intervals per size bin (``size_bin``), as a spec's default
        ``interval_calibration: size`` does; False: one pool.
    nonnegative : bool, default True
        Clip the calibrated quantiles and ``mean`` at zero (counts).
    min_calibration : int
        Passed to :func:`~forecast.backtest.calibrate`.

    Returns
    -------
    DataFrame
        The combination's rows, in the first member's row order and with its columns:
        ``point`` and ``raw_q*`` the weighted members, ``q*``, ``calibrated_by`` and ``mean``
        from :func:`~forecast.backtest.calibrate` on the combined rows. Its weights are
        :func:`combination_weights`'.

    Raises
    ------
    ForecastError
        A member is not in ``forecasts``, lacks some of another member's rows or repeats one;
        a required column is missing; ``method``, ``min_origins``, ``window`` or ``name`` is
        not usable.

    Examples
    --------
    >>> result = backtest(cube, [ets, sarimax, lightgbm_median], baselines=False)  # doctest: +SKIP
    >>> combined = combine(result.forecasts, ["ets", "sarimax", "lightgbm_median"]) # doctest: +SKIP
    >>> score(combined[combined["role"] == "scored"])                               # doctest: +SKIP
    """
    models = _check_models(forecasts, models)
    if name in set(forecasts["model"].astype(str)):
        raise ForecastError(f"name {name!r} is already a model in the forecasts; give the combination its own name")
    base, points, raws, levels = _aligned(forecasts, models)
    weights, _ = _weights(base, points, method, min_origins, window)
    combined = base.copy()
    combined["model"] = name
    combined["point"] = _weighted(points, weights)
    raw = np.column_stack([_weighted(raws[:, :, j], weights) for j in range(len(levels))])
    made = {"calibrated_by", "mean", *(quantile_column(q) for q in levels)}
    made |= {f"raw_{c}" for c in made}
    keep = [c for c in combined.columns if c not in made]  # calibrate makes them afresh
    out = calibrate(combined[keep], raw, levels, nonnegative=nonnegative, min_calibration=min_calibration,
                    by_size=by_size)
    order = [c for c in forecasts.columns if c in out.columns]
    return out[order + [c for c in out.columns if c not in order]]


def combination_weights(forecasts: pd.DataFrame, models: Sequence[str], *, method: str = "inverse_mase",
                        min_origins: int = 3, window: int | None = None) -> pd.DataFrame:
    """The weights :func:`combine` gives each member at each origin and horizon.

    At origin ``o`` and horizon ``h`` the weights are learned from the members' forecasts at
    ``h`` whose target month is at or before ``o`` and observed (every member's point finite):

    - ``inverse_mase``: each member's weight is proportional to one over its MASE on them (a
      member with none of error takes all the weight, shared with any other such member);
    - ``equal``: one over the number of members;
    - ``stacking``: the weights (non-negative, summing to 1) whose combined point has the
      smallest MASE on them (a linear program; of several optima, one).

    Parameters
    ----------
    forecasts : DataFrame
    models : sequence of str
    method, min_origins, window
        As in :func:`combine`.

    Returns
    -------
    DataFrame
        ``origin, horizon, model, weight, origins``: one row per origin × horizon × member,
        ``origins`` the number of earlier origins learned from (0 where nothing was learned:
        ``equal``, one member, or fewer than ``min_origins`` known).
    """
    models = _check_models(forecasts, models)
    base, points, _, _ = _aligned(forecasts, models)
    weights, learned = _weights(base, points, method, min_origins, window)
    first = ~base[["origin", "horizon"]].duplicated().to_numpy()
    keys = base.loc[first, ["origin", "horizon"]].reset_index(drop=True)
    frames = [keys.assign(model=m, weight=weights[first, i], origins=learned[first]) for i, m in enumerate(models)]
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["origin", "horizon", "model"], kind="stable").reset_index(drop=True)


def _check_models(forecasts: pd.DataFrame, models: Sequence[str]) -> list[str]:
    require_columns(forecasts, ["model", *KEYS, "time", "actual", "point", "scale"])
    models = [models] if isinstance(models, str) else list(models)
    if not models:
        raise ForecastError("combine needs at least one model")
    if len(set(models)) != len(models):
        raise ForecastError(f"models repeat: {models}; name each member once")
    present = sorted(map(str, forecasts["model"].unique()))
    missing = [m for m in models if m not in present]
    if missing:
        raise ForecastError(f"model(s) {missing} not in the forecasts; models present: {present}")
    return models


def _aligned(forecasts: pd.DataFrame, models: list[str]):
    """The first member's rows, and every member's points and raw quantiles on those rows."""
    levels = quantile_levels(forecasts)
    if not levels:
        raise ForecastError("the forecasts have no quantile columns (q0.1 ...); combine a backtest's forecasts table")
    raw_columns = [f"raw_{quantile_column(q)}" for q in levels]
    require_columns(forecasts, raw_columns)
    frames = {m: forecasts[forecasts["model"] == m] for m in models}
    index = {}
    for m, frame in frames.items():
        idx = pd.MultiIndex.from_frame(frame[KEYS])
        if idx.has_duplicates:
            first = idx[idx.duplicated()][0]
            raise ForecastError(f"model {m!r} has several rows for origin {_month(first[0])}, horizon {first[1]}, "
                                f"area {first[2]!r}; combine one backtest's forecasts")
        index[m] = idx
    every = index[models[0]]
    for idx in index.values():
        every = every.union(idx)
    for m, idx in index.items():
        lacking = every.difference(idx)
        if len(lacking):
            pairs = sorted({(o, h) for o, h, _ in lacking})
            shown = ", ".join(f"origin {_month(o)} h{h}" for o, h in pairs[:3])
            raise ForecastError(f"model {m!r} lacks {len(lacking)} of the other members' forecasts ({shown}"
                                f"{' ...' if len(pairs) > 3 else ''}); every member needs the same origins, "
                                "horizons and areas: backtest them on the same folds")
    base = frames[models[0]].reset_index(drop=True)
    at = pd.MultiIndex.from_frame(base[KEYS])
    points = np.column_stack([_column(frames[m], index[m], at, "point") for m in models])
    raws = np.stack([np.column_stack([_column(frames[m], index[m], at, c) for c in raw_columns])
                     for m in models], axis=1)  # rows × members × levels
    return base, points, raws, levels


def _column(frame: pd.DataFrame, index: pd.MultiIndex, at: pd.MultiIndex, column: str) -> np.ndarray:
    return numeric_column(frame, column)[index.get_indexer(at)]


def _weights(base: pd.DataFrame, points: np.ndarray, method: str, min_origins: int,
             window: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the members' weights (rows × members) and the earlier origins they were learned
    from (0: equal weights, too few known)."""
    if method not in COMBINATION_METHODS:
        raise ForecastError(f"unknown combination method {method!r}; choose one of {list(COMBINATION_METHODS)}")
    if not isinstance(min_origins, (int, np.integer)) or min_origins < 1:
        raise ForecastError(f"min_origins must be a positive integer, got {min_origins!r}")
    if window is not None and (not isinstance(window, (int, np.integer)) or window < 1):
        raise ForecastError(f"window must be a positive integer or None, got {window!r}")
    n, k = points.shape
    weights, learned = np.full((n, k), 1.0 / k), np.zeros(n, dtype=int)
    if method == "equal" or k == 1:
        return weights, learned
    actual = numeric_column(base, "actual")
    scale = numeric_column(base, "scale")
    horizon = base["horizon"].to_numpy()
    origin = base["origin"].to_numpy()
    target = base["time"].to_numpy()
    known = np.isfinite(actual) & np.isfinite(points).all(axis=1) & np.isfinite(scale) & (scale > 0)
    for h in np.unique(horizon):
        in_h = horizon == h
        for o in np.unique(origin[in_h]):
            pool = in_h & known & (target <= o)  # outcomes known at the origin only
            earlier = np.unique(origin[pool])
            if window is not None:
                earlier = earlier[-window:]
                pool &= np.isin(origin, earlier)
            if len(earlier) < min_origins:
                continue
            rows = in_h & (origin == o)
            weights[rows] = _learn(method, actual[pool], points[pool], scale[pool])
            learned[rows] = len(earlier)
    return weights, learned


def _learn(method: str, actual: np.ndarray, points: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The members' weights from their earlier forecasts (rows) and outcomes."""
    k = points.shape[1]
    if method == "inverse_mase":
        mase = (np.abs(actual[:, None] - points) / scale[:, None]).mean(axis=0)
        perfect = mase < PERFECT
        inverse = perfect.astype(float) if perfect.any() else 1.0 / mase
        return inverse / inverse.sum()
    # stacking: min sum_i |a_i - P_i w| / s_i over the simplex, as a linear program in
    # (w, e+, e-) with P_i w / s_i + e+_i - e-_i = a_i / s_i, sum w = 1, everything >= 0
    n = len(actual)
    scaled = points / scale[:, None]
    eye = sparse.identity(n, format="csr")
    a_eq = sparse.vstack([sparse.hstack([sparse.csr_matrix(scaled), eye, -eye]),
                          sparse.hstack([sparse.csr_matrix(np.ones((1, k))), sparse.csr_matrix((1, 2 * n))])])
    b_eq = np.append(actual / scale, 1.0)
    cost = np.concatenate([np.zeros(k), np.ones(2 * n)])
    solved = linprog(cost, A_eq=a_eq.tocsr(), b_eq=b_eq, bounds=(0, None), method="highs")
    if not solved.success:  # the simplex is never empty: this is the solver's trouble, not the data's
        raise ForecastError(f"stacking weights could not be learned: {solved.message}")
    w = np.clip(solved.x[:k], 0.0, None)
    return w / w.sum()


def _weighted(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row the weighted mean of the members' values; a member's NaN leaves it out of that row
    (the others' weights rescaled), NaN where every member's is."""
    finite = np.isfinite(values)
    w = np.where(finite, weights, 0.0)
    total = w.sum(axis=1)
    summed = (np.where(finite, values, 0.0) * w).sum(axis=1)
    return np.divide(summed, total, out=np.full(len(values), np.nan), where=total > 0)


def _month(value) -> str:
    return f"{pd.Timestamp(value):%Y-%m}"
