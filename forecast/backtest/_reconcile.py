"""Coherent forecasts across admin levels: districts that add up to regions and to the country.

Forecasts made separately at admin0, admin1 and admin2 rarely add up. Reconciliation maps the
stacked base forecasts ``y_hat`` (one row per series, coarse levels first) onto coherent ones
with the summing matrix ``S`` (``S[i, j] = 1`` when bottom series ``j`` lies in series ``i``)::

    y_tilde = S (S' W^-1 S)^-1 S' W^-1 y_hat          (Wickramasuriya, Athanasopoulos & Hyndman 2019)

``W`` is the identity for ``'ols'``, ``diag(S 1)`` (the number of districts under each series)
for ``'wls_struct'``, and for ``'mint_shrink'`` the covariance of the in-sample errors shrunk
toward its diagonal (:func:`shrunk_covariance`, as hierarchicalforecast's
``MinTrace(method="mint_shrink")``). ``'bottom_up'`` sums the bottom forecasts, ``S y_hat_bottom``.

In :func:`reconcile` the errors that estimate ``W`` at origin ``o`` and horizon ``h`` are
``actual - point`` of the rows of horizon ``h`` whose target month ``time <= o``: outcomes known
at the origin, never later ones. With fewer than two complete error vectors the origin falls
back to ``'wls_struct'``, recorded in the column ``reconciled_by``.

Two forecasts are reconciled, with the same method and the same ``W`` at each origin and
horizon: ``point`` (the median, which ranks areas) and ``mean`` (the forecast whose totals hold,
:func:`~forecast.backtest.calibrate`), both coherent exactly. A series whose base ``mean`` is
missing (the national series, one forecast per origin, has too few earlier errors for one) takes
as base mean the sum of its bottom series' base means (bottom-up); when a bottom series has no
mean either, the means of that origin and horizon stay NaN (under ``'bottom_up'``, only those
above it), and the points are reconciled all the same.

Coherent quantiles come from sample paths. For each origin and horizon, ``n_samples`` joint
draws of the bottom series are taken from their base distributions (the inverse CDF through
the base quantiles, linear between them, extended linearly beyond the outer ones, clipped at
0; crossed quantiles are sorted first). Their dependence is an empirical copula (the Schaake
shuffle): each bottom series' draws are reordered by the ranks of the series' scaled errors
``(actual - point) / scale`` in a random set of past error vectors of the same horizon, all with
``time <= o`` (drawn with replacement when there are fewer past vectors than samples; without
any, the draws are independent). Every draw is shifted by the reconciliation of the points
(reconciled bottom point minus base bottom point; shifting them by that of the means instead, or
centring them on the reconciled means, raised MinT's CRPS at every level on the sample), summed
through ``S``, and each series' quantiles are read from the summed paths (a lower level as a
sample, ``inverted_cdf``, so that districts with no arrivals keep a lower bound of 0; every
quantile at least 0, since these are counts). Points and means are coherent exactly; the
quantiles are coherent in distribution (they are quantiles of coherent paths), not as numbers: a region's
median is not the sum of its districts' medians. The paths' means equal the reconciled points
when the base point is the mean of the base distribution. A shift may take draws below 0 where
the reconciliation lowers a mean. Each origin and horizon draws from its own generator seeded by
``(seed, origin, horizon)``, so results repeat exactly and one origin's draws never depend on
another's.

Missing values: a base point that is NaN makes every series of that origin and horizon NaN
under a projection method (the projection needs all series); under ``'bottom_up'`` only the
series above a NaN bottom series are NaN. A missing row (a series absent at an origin and
horizon) is an error, because it is more likely a mismatch of tables than a missing value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from forecast._names import AREA, admin_pcode
from forecast.backtest._metrics import numeric_column, quantile_column, quantile_levels
from forecast.errors import ForecastError

__all__ = ["Hierarchy", "hierarchy_of", "shrunk_covariance", "reconcile_means", "reconcile",
           "coherence_error", "METHODS"]

METHODS = ("bottom_up", "ols", "wls_struct", "mint_shrink")
#: A series whose errors never vary gets this share of the largest variance (or of 1), so W
#: stays positive definite; the ridge adds this share of each variance to the diagonal, as
#: hierarchicalforecast's ``mint_shr_ridge`` but relative, since counts of people have large variances.
VARIANCE_FLOOR = 1e-6
RIDGE = 2e-8
_KEYS = ["origin", "horizon"]


def _listed(items) -> str:
    items = [str(i) for i in items]
    more = f" and {len(items) - 10} more" if len(items) > 10 else ""
    return ", ".join(items[:10]) + more


@dataclass(frozen=True, eq=False)
class Hierarchy:
    """The series of an admin hierarchy and the summing matrix that links them.

    ``levels``: admin levels, coarse to fine, the last the bottom one; ``series``: columns
    ``level`` and ``area``, one row per series in the order of ``S``'s rows; ``S`` (n_series,
    n_bottom): ``S[i, j] = 1`` when bottom series ``j`` is in series ``i``, its last rows the
    identity; ``bottom``: the bottom P-codes in ``S``'s column order.
    """

    levels: tuple[int, ...]
    series: pd.DataFrame
    S: np.ndarray
    bottom: pd.Index

    def __post_init__(self):
        n, m = self.S.shape
        if len(self.series) != n or len(self.bottom) != m or not np.array_equal(self.S[n - m:], np.eye(m)):
            raise ForecastError(f"S of shape {self.S.shape} does not match {len(self.series)} series and "
                                f"{len(self.bottom)} bottom areas with the bottom rows last")

    @property
    def n_series(self) -> int:
        return len(self.series)

    def index(self, level: int) -> np.ndarray:
        """Positions in ``S``'s rows of the series of admin ``level``."""
        if level not in self.levels:
            raise ForecastError(f"admin{level} is not a level of this hierarchy; it has {list(self.levels)}")
        return np.flatnonzero(self.series["level"].to_numpy() == level)


def hierarchy_of(cube: xr.Dataset, levels=None) -> Hierarchy:
    """The hierarchy of a cube's areas up to its coarser admin levels.

    Parameters
    ----------
    cube : Dataset
        Areas on ``area`` with ``admin{k}_pcode`` coordinates and the ``admin_level`` attribute.
    levels : sequence of int, optional
        The levels to include; by default every level down to the cube's own, which is added
        when missing.

    Raises
    ------
    ForecastError
        An area without a parent at a level, a parent code that is also a bottom area or a code
        of another level, or a parent with two parents of its own (named in the message).

    Examples
    --------
    >>> hierarchy_of(load_somalia()).levels  # doctest: +SKIP
    (0, 1, 2)
    """
    if "admin_level" not in cube.attrs or AREA not in cube.dims:
        raise ForecastError("the cube needs an 'area' dim and an 'admin_level' attribute")
    bottom_level = int(cube.attrs["admin_level"])
    coarse = sorted({int(k) for k in (range(bottom_level) if levels is None else levels)} - {bottom_level})
    if any(k < 0 or k > bottom_level for k in coarse):
        raise ForecastError(f"levels {coarse} must lie between 0 and the cube's admin{bottom_level}")
    bottom = pd.Index(cube[AREA].values.astype(str))
    if bottom.has_duplicates:
        raise ForecastError(f"duplicated areas: {_listed(bottom[bottom.duplicated()].unique())}")
    parents: dict[int, np.ndarray] = {}
    for k in coarse:
        if admin_pcode(k) not in cube.coords:
            have = [str(c) for c in cube.coords if str(c).startswith("admin")]
            raise ForecastError(f"the cube has no '{admin_pcode(k)}' coordinate; it has {have}")
        codes = np.asarray(cube[admin_pcode(k)].values).astype(str)
        orphans = bottom[np.isin(codes, ["", "nan", "None"])]
        if len(orphans):
            raise ForecastError(f"{len(orphans)} areas have no admin{k} parent: {_listed(orphans)}; "
                                f"give them an {admin_pcode(k)} or leave admin{k} out of `levels`")
        parents[k] = codes
    seen = set(bottom)
    for k in coarse:
        clash = sorted(set(parents[k]) & seen)
        if clash:
            raise ForecastError(f"admin{k} code(s) {_listed(clash)} are also codes of another level; "
                                "every series needs its own P-code")
        seen |= set(parents[k])
    for upper, lower in zip(coarse, coarse[1:]):
        pairs = pd.DataFrame({"lower": parents[lower], "upper": parents[upper]}).drop_duplicates()
        split = pairs["lower"][pairs["lower"].duplicated()].unique()
        if len(split):
            raise ForecastError(f"admin{lower} code(s) {_listed(sorted(split))} lie in more than one "
                                f"admin{upper} area; fix {admin_pcode(upper)} of their districts")
    rows, blocks = [], []
    for k in coarse:
        codes = np.unique(parents[k])
        rows += [(k, c) for c in codes]
        blocks.append((parents[k][None, :] == codes[:, None]).astype(float))
    rows += [(bottom_level, c) for c in bottom]
    S = np.vstack(blocks + [np.eye(len(bottom))])
    series = pd.DataFrame(rows, columns=["level", "area"])
    return Hierarchy(tuple(coarse) + (bottom_level,), series, S, bottom)


def shrunk_covariance(residuals: np.ndarray) -> tuple[np.ndarray, float]:
    """Error covariance shrunk toward its diagonal, with the Schäfer–Strimmer intensity.

    Rows with any missing value are dropped. With ``x`` the centred errors, ``s_i`` their
    standard deviations (``ddof=1``), ``z_ki = x_ki / s_i``, ``w_kij = z_ki z_kj`` over ``n`` rows::

        r_ij       = sum_k w_kij / (n - 1)                        (sample correlation)
        Var(r_ij)  = n / (n - 1)^3 * sum_k (w_kij - mean_k w_kij)^2
        lambda     = clip(sum_{i!=j} Var(r_ij) / sum_{i!=j} r_ij^2, 0, 1)
        W          = lambda * diag(Sigma) + (1 - lambda) * Sigma

    with ``Sigma = x'x / (n - 1)`` (Schäfer & Strimmer 2005, target D, as in MinT's shrinkage
    estimator; the errors are centred, as in that paper; R's hts leaves them uncentred).
    ``lambda`` is 1 when every correlation is 0. A series whose errors never vary gets the
    variance ``VARIANCE_FLOOR`` times the largest (or 1), and the diagonal is raised by
    ``RIDGE`` times itself, so that ``W`` is positive definite.

    Returns ``(W, lambda)`` for ``residuals`` of shape (n_obs, n_series).
    """
    r = np.asarray(residuals, dtype=float)
    if r.ndim != 2:
        raise ForecastError(f"residuals must be (n_obs, n_series), got shape {r.shape}")
    r = r[np.isfinite(r).all(axis=1)]
    n = len(r)
    if n < 2:
        raise ForecastError(f"{n} complete error vector(s) after dropping rows with NaN; the "
                            "shrunk covariance needs at least 2")
    x = r - r.mean(axis=0)
    var = (x**2).sum(axis=0) / (n - 1)
    flat = np.sqrt(var) <= 1e-10 * np.abs(r).max(axis=0)  # all equal, up to rounding
    sd = np.where(flat, 1.0, np.sqrt(var))
    z = np.where(flat, 0.0, x / sd)
    corr = z.T @ z / (n - 1)
    spread = (z**2).T @ (z**2) - (z.T @ z) ** 2 / n
    var_r = n / (n - 1) ** 3 * spread
    off = ~np.eye(r.shape[1], dtype=bool)
    denominator = (corr[off] ** 2).sum()
    lam = 1.0 if denominator <= 0 else float(np.clip(var_r[off].sum() / denominator, 0.0, 1.0))
    var = np.where(flat, VARIANCE_FLOOR * max(var.max(), 1.0), var)
    W = (1 - lam) * (x.T @ x / (n - 1))
    W[np.diag_indices_from(W)] = var * (1 + RIDGE)
    return W, lam


def reconcile_means(base: np.ndarray, S: np.ndarray, method: str, W: np.ndarray | None = None) -> np.ndarray:
    """Coherent forecasts from base forecasts of every series.

    Parameters
    ----------
    base : ndarray of shape (n_series,) or (n_series, k)
        Base forecasts, rows in ``S``'s row order (bottom series last), one forecast per column.
    S : ndarray of shape (n_series, n_bottom); method : one of ``METHODS``
    W : ndarray of shape (n_series, n_series), optional
        The error covariance; required by ``'mint_shrink'`` and refused by the others, which
        define their own.

    Returns
    -------
    ndarray of base's shape
        ``S (S' W^-1 S)^-1 S' W^-1 base``; a column with a NaN is NaN, except under
        ``'bottom_up'``, where only the series above a NaN bottom series are.
    """
    if method not in METHODS:
        raise ForecastError(f"unknown reconciliation method {method!r}; choose one of {list(METHODS)}")
    S = np.asarray(S, dtype=float)
    y = np.asarray(base, dtype=float)
    flat = y.ndim == 1
    y = y[:, None] if flat else y
    n, m = S.shape
    if y.shape[0] != n:
        raise ForecastError(f"base has {y.shape[0]} rows but S has {n} series")
    if (W is None) == (method == "mint_shrink"):
        raise ForecastError(f"{method!r} needs W (estimate it with shrunk_covariance)" if W is None
                            else f"{method!r} defines its own W; pass W only with 'mint_shrink'")
    if method == "bottom_up":
        b = y[n - m:]
        out = S @ np.nan_to_num(b)
        out[(S @ np.isnan(b)) > 0] = np.nan
        return out[:, 0] if flat else out
    if method == "ols":
        W_S = S
    elif method == "wls_struct":
        W_S = S / S.sum(axis=1, keepdims=True)
    else:
        W = np.asarray(W, dtype=float)
        if W.shape != (n, n):
            raise ForecastError(f"W has shape {W.shape}; expected ({n}, {n})")
        W_S = np.linalg.solve(W, S)
    bad = ~np.isfinite(y).all(axis=0)
    beta = np.linalg.solve(S.T @ W_S, W_S.T @ np.where(bad, 0.0, y))
    out = S @ beta
    out[:, bad] = np.nan
    return out[:, 0] if flat else out


def coherence_error(table: pd.DataFrame, hierarchy: Hierarchy, column: str = "point") -> float:
    """Largest absolute gap between a parent's ``column`` and the sum of its children's.

    Over every origin and horizon of ``table`` (columns ``level``, ``area``, ``origin``,
    ``horizon`` and ``column``); 0 for coherent forecasts, NaN when no gap can be computed.
    """
    _require(table, ["level", "area", *_KEYS, column], "the table")
    wide = table.pivot_table(index=_KEYS, columns=["level", "area"], values=column, aggfunc="first",
                             dropna=False)
    names = pd.MultiIndex.from_frame(hierarchy.series[["level", "area"]])
    missing = names.difference(wide.columns)
    if len(missing):
        raise ForecastError(f"the table lacks series {_listed([f'admin{k} {a}' for k, a in missing])}")
    values = wide.reindex(columns=names).to_numpy(dtype=float)
    S, gaps = hierarchy.S, []
    for upper, lower in zip(hierarchy.levels, hierarchy.levels[1:]):
        up, low = hierarchy.index(upper), hierarchy.index(lower)
        children = (S[low] @ S[up].T) == S[low].sum(axis=1, keepdims=True)
        gaps.append(np.abs(values[:, up] - values[:, low] @ children).ravel())
    gap = np.concatenate(gaps) if gaps else np.array([])
    gap = gap[np.isfinite(gap)]
    return float(gap.max()) if len(gap) else float("nan")


def reconcile(by_level: dict[int, pd.DataFrame], hierarchy: Hierarchy, method: str = "mint_shrink", *,
              quantiles=(0.1, 0.5, 0.9), n_samples: int = 500, seed: int = 0) -> pd.DataFrame:
    """Reconcile one model's backtest forecasts made at every level of ``hierarchy``.

    Parameters
    ----------
    by_level : dict of int to DataFrame
        Each level's forecasts table (``origin, horizon, area, time, actual, point, role``,
        optionally ``mean`` and ``scale``, and, for the bottom level, at least two quantile
        columns); ``area`` holds that level's P-codes.
    hierarchy : Hierarchy; method : one of ``METHODS``
    quantiles : sequence of float
        Levels of the reconciled quantile columns, read from ``n_samples`` sample paths per
        origin and horizon whose generators ``seed`` seeds (the same seed, the same table).

    Returns
    -------
    DataFrame
        One row per series, origin and horizon: ``level, area, [model,] origin, horizon, time,
        actual, base_point, point, base_mean, mean``, the quantile columns, ``[scale,] role,
        reconciled_by`` (``base_mean``: the level's own mean, or the bottom-up sum where it had
        none; NaN columns when no table has a ``mean``).
    """
    if method not in METHODS:
        raise ForecastError(f"unknown reconciliation method {method!r}; choose one of {list(METHODS)}")
    if n_samples < 2:
        raise ForecastError(f"n_samples must be at least 2, got {n_samples}")
    out_columns = [quantile_column(q) for q in quantiles]
    frame, base_levels = _stack(by_level, hierarchy)
    pairs = frame[_KEYS].drop_duplicates().sort_values(_KEYS).reset_index(drop=True)
    p_of = pd.MultiIndex.from_frame(pairs).get_indexer(pd.MultiIndex.from_frame(frame[_KEYS]))
    s_of = frame["_series"].to_numpy()
    n_pairs, n, m = len(pairs), hierarchy.n_series, len(hierarchy.bottom)
    present = np.zeros((n_pairs, n), dtype=bool)
    present[p_of, s_of] = True
    if not present.all():
        p = np.argwhere(~present)[0][0]
        gone = hierarchy.series.iloc[np.flatnonzero(~present[p])]
        raise ForecastError(f"no forecast at origin {pairs.origin[p]:%Y-%m-%d}, horizon {pairs.horizon[p]} "
                            f"for {_listed(f'admin{k} {a}' for k, a in gone.itertuples(index=False))}; "
                            "every level needs the same origins and horizons")

    def grid(values):
        out = np.full((n_pairs, n), np.nan)
        out[p_of, s_of] = values
        return out

    point, actual = grid(numeric_column(frame, "point")), grid(numeric_column(frame, "actual"))
    base_mean = _bottom_up_where_missing(grid(numeric_column(frame, "mean")) if "mean" in frame
                                         else np.full((n_pairs, n), np.nan), hierarchy.S)
    scale = grid(numeric_column(frame, "scale")) if "scale" in frame else np.ones((n_pairs, n))
    # an (origin, horizon) is in the past of o only when every series' target month is
    times = pd.Series(frame["time"].to_numpy()).groupby(p_of).max().sort_index().to_numpy()
    bottom_rows = frame["_series"].to_numpy() >= n - m
    qv = np.full((n_pairs, m, len(base_levels)), np.nan)
    qv[p_of[bottom_rows], s_of[bottom_rows] - (n - m)] = np.column_stack(
        [numeric_column(frame, quantile_column(q))[bottom_rows] for q in base_levels])
    error = actual - point
    scaled = error[:, n - m:] / np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)[:, n - m:]
    complete, complete_bottom = np.isfinite(error).all(axis=1), np.isfinite(scaled).all(axis=1)

    reconciled, bands = np.full((n_pairs, n, 2), np.nan), np.full((n_pairs, n, len(quantiles)), np.nan)
    used = np.empty(n_pairs, dtype=object)
    horizons, origins = pairs.horizon.to_numpy(), pairs.origin
    for p in range(n_pairs):
        origin = origins[p]
        past = (horizons == horizons[p]) & (times <= np.datetime64(origin))
        used[p], W = method, None
        if method == "mint_shrink":
            if (past & complete).sum() >= 2:
                W, _ = shrunk_covariance(error[past & complete])
            else:
                used[p] = "wls_struct"
        reconciled[p] = reconcile_means(np.column_stack([point[p], base_mean[p]]), hierarchy.S, used[p], W)
        rng = np.random.default_rng([seed, origin.year, origin.month, origin.day, int(horizons[p])])
        draws = _draw(qv[p], base_levels, scaled[past & complete_bottom], n_samples, rng)
        draws += reconciled[p, n - m:, 0] - point[p, n - m:]
        paths, ok = _summed(draws, hierarchy.S)
        if ok.any():
            bands[p][ok] = _quantiles(paths[:, ok], quantiles)
    return _assemble(frame.assign(base_mean=base_mean[p_of, s_of]), p_of, s_of, reconciled, bands, used, out_columns)


def _require(frame, columns, what):
    if not isinstance(frame, pd.DataFrame):
        raise ForecastError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ForecastError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


def _stack(by_level, hierarchy):
    """One long table of every level's rows, with each row's series position in ``_series``."""
    if sorted(by_level) != sorted(hierarchy.levels):
        raise ForecastError(f"by_level has levels {sorted(by_level)}; the hierarchy has {list(hierarchy.levels)}")
    bottom_table = by_level[hierarchy.levels[-1]]
    base_levels = quantile_levels(bottom_table) if isinstance(bottom_table, pd.DataFrame) else []
    if len(base_levels) < 2:
        raise ForecastError(f"the admin{hierarchy.levels[-1]} table needs at least two quantile columns "
                            f"(e.g. q0.1, q0.9) to draw from; it has {base_levels}")
    parts = []
    for level in hierarchy.levels:
        table = by_level[level]
        _require(table, ["origin", "horizon", "area", "time", "actual", "point", "role"], f"the admin{level} table")
        if "model" in table and table["model"].nunique() > 1:
            raise ForecastError(f"the admin{level} table holds models {sorted(table['model'].unique())}; "
                                "reconcile one model at a time")
        rows = hierarchy.index(level)
        codes = pd.Index(hierarchy.series["area"].to_numpy()[rows])
        areas = table["area"].astype(str)
        unknown = pd.Index(areas.unique()).difference(codes)
        absent = codes.difference(areas.unique())
        if len(unknown) or len(absent):
            raise ForecastError(f"the admin{level} table's areas differ from the hierarchy's: unknown "
                                f"{_listed(unknown) or 'none'}; missing {_listed(absent) or 'none'}")
        part = table.assign(area=areas, level=level, _series=rows[codes.get_indexer(areas)])
        duplicated = part.duplicated(["area", *_KEYS])
        if duplicated.any():
            raise ForecastError(f"the admin{level} table has several rows per origin and horizon for "
                                f"{_listed(part['area'][duplicated].unique())}")
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    frame["origin"], frame["time"] = pd.to_datetime(frame["origin"]), pd.to_datetime(frame["time"])
    return frame, base_levels


def _draw(values, levels, past_errors, n_samples, rng):
    """Joint draws of the bottom series: stratified marginal draws, reordered by past error ranks."""
    m = len(values)
    values = np.sort(values, axis=1)
    values[~np.isfinite(values).all(axis=1)] = np.nan
    q = np.asarray(levels, dtype=float)
    u = (np.arange(n_samples)[:, None] + rng.random((n_samples, m))) / n_samples
    hi = np.clip(np.searchsorted(q, u), 1, len(q) - 1)
    lo = hi - 1
    v_lo = np.take_along_axis(values.T, lo, axis=0)
    v_hi = np.take_along_axis(values.T, hi, axis=0)
    # the outer segments continue past the outer quantiles: a linear tail on each side
    x = np.maximum(v_lo + (u - q[lo]) * (v_hi - v_lo) / (q[hi] - q[lo]), 0.0)
    if len(past_errors):
        replace = len(past_errors) < n_samples
        picked = past_errors[rng.choice(len(past_errors), n_samples, replace=replace)]
        # stable ranks: copies of one past vector get the same relative order in every series
        order = np.argsort(np.argsort(picked, axis=0, kind="stable"), axis=0, kind="stable")
    else:
        order = np.argsort(rng.random((n_samples, m)), axis=0)
    return np.take_along_axis(x, order, axis=0)


def _quantiles(paths: np.ndarray, levels) -> np.ndarray:
    """Each series' quantiles of its paths, as the conformal intervals read theirs: a lower level
    is a sample (``inverted_cdf``), so that a point mass at 0 (no arrivals) keeps its lower
    quantile at 0 instead of a value between two draws; an upper one the next sample up. Counts:
    never below 0."""
    out = [np.quantile(paths, q, axis=0, method="inverted_cdf" if q < 0.5 else "higher" if q > 0.5 else "linear")
           for q in levels]
    return np.maximum(np.column_stack(out), 0.0)


def _bottom_up_where_missing(values, S):
    """``values`` (pairs x series) with each NaN replaced by the sum of the series' bottom
    values, NaN where one of those is NaN too."""
    bottom = values[:, len(S) - S.shape[1]:]
    summed = np.nan_to_num(bottom) @ S.T
    summed[np.isnan(bottom).astype(float) @ S.T > 0] = np.nan
    return np.where(np.isnan(values), summed, values)


def _summed(draws, S):
    """Every series' sample paths, and which series have no NaN bottom series below them."""
    return np.nan_to_num(draws) @ S.T, (S @ np.isnan(draws).any(axis=0)) == 0


def _assemble(frame, p_of, s_of, reconciled, bands, used, out_columns):
    out = frame.rename(columns={"point": "base_point"})
    out["point"], out["mean"] = reconciled[p_of, s_of, 0], reconciled[p_of, s_of, 1]
    for i, column in enumerate(out_columns):
        out[column] = bands[p_of, s_of, i]
    out["reconciled_by"] = used[p_of]
    columns = ["level", "area", *(["model"] if "model" in out else []), "origin", "horizon", "time",
               "actual", "base_point", "point", "base_mean", "mean", *out_columns,
               *(["scale"] if "scale" in out else []), "role", "reconciled_by"]
    return out.sort_values(["origin", "horizon", "_series"]).reset_index(drop=True)[columns]
