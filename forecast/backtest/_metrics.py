"""Scores for a backtest's long forecasts table: point errors, quantile scores, coverage, skill.

The backtest returns one row per model x origin x horizon x area with columns ``model``,
``origin``, ``horizon``, ``area``, ``time``, ``actual`` (NaN where the target month was not
observed), ``point``, one column per quantile level named by :func:`quantile_column`, and
``scale``, the MASE denominator of that area computed from history up to the origin only
(:func:`mase_scale`). :func:`score` turns that table into one row of metrics per group.

Rows whose ``actual`` is NaN are not scored: they count in no ``n`` and in no metric, because
a month nobody observed is not a month with zero displacement. A group whose rows are all
unscored still appears, with ``n = 0`` and NaN metrics, so that a model x horizon with nothing
to score is visible rather than silently missing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from forecast.errors import ForecastError

__all__ = [
    # quantile columns
    "quantile_column",
    "quantile_levels",
    "interval_bounds",
    # elementwise scores
    "mase_scale",
    "pinball_loss",
    "crps_from_quantiles",
    # tables
    "score",
    "add_skill",
    "metrics_by_horizon",
]

ACTUAL = "actual"
POINT = "point"
SCALE = "scale"
MODEL = "model"
HORIZON = "horizon"

#: Smallest MASE scale. Targets are counts of people: an error scaled by less than one person
#: would turn a one-person miss in a flat series into an enormous MASE.
SCALE_FLOOR = 1.0
#: A seasonal scale from fewer observed pairs than this is too noisy; fall back to lag 1.
MIN_SEASONAL_PAIRS = 3
LEVEL_TOLERANCE = 1e-9

#: Metrics where lower is better; the only ones :func:`add_skill` accepts.
LOSS_METRICS = ("mae", "rmse", "rmsle", "mase", "pinball", "crps", "scaled_crps")
_METRIC_PATTERN = re.compile(
    r"^(n|mae|rmse|rmsle|mase|pinball|crps|scaled_crps|(mean_)?level_ratio|"
    r"(coverage|width)\d+(\.\d+)?|skill_.+)$"
)


# --------------------------------------------------------------------------- quantile columns


def quantile_column(q: float) -> str:
    """Name of the forecasts column that holds quantile level ``q``.

    Parameters
    ----------
    q : float
        Quantile level, strictly between 0 and 1.

    Returns
    -------
    str
        ``f"q{q:g}"``.

    Examples
    --------
    >>> quantile_column(0.1), quantile_column(0.5), quantile_column(0.975)
    ('q0.1', 'q0.5', 'q0.975')
    """
    _check_level(q, "quantile level")
    return f"q{float(q):g}"


def quantile_levels(frame: pd.DataFrame | Iterable[str]) -> list[float]:
    """Quantile levels present in a forecasts table, read from its column names, sorted.

    A column is a quantile column when its name is exactly ``quantile_column(q)`` for some
    ``0 < q < 1``; other columns (``model``, ``q1`` ...) are ignored.

    Parameters
    ----------
    frame : DataFrame or iterable of str
        The forecasts table, or its column names.

    Returns
    -------
    list of float
        Levels in increasing order; empty when the table has no quantile columns.

    Raises
    ------
    ForecastError
        A column names a level between 0 and 1 in another spelling (e.g. ``q0.50``); it
        would otherwise be silently ignored.

    Examples
    --------
    >>> quantile_levels(["model", "point", "q0.9", "q0.1", "q0.5"])
    [0.1, 0.5, 0.9]
    """
    columns = frame.columns if hasattr(frame, "columns") else frame
    levels = []
    for column in columns:
        if not isinstance(column, str) or not column.startswith("q"):
            continue
        try:
            q = float(column[1:])
        except ValueError:
            continue
        if not 0.0 < q < 1.0:
            continue
        if quantile_column(q) != column:
            raise ForecastError(
                f"column {column!r} looks like quantile level {q:g} but is not spelled the way "
                f"the toolkit reads quantile columns; rename it to {quantile_column(q)!r} "
                "(forecast.backtest.quantile_column)"
            )
        levels.append(q)
    return sorted(levels)


def interval_bounds(levels: Sequence[float], coverage: float) -> tuple[float, float]:
    """Quantile levels bounding the central interval of nominal ``coverage``.

    Parameters
    ----------
    levels : sequence of float
        Available quantile levels, e.g. from :func:`quantile_levels`.
    coverage : float
        Nominal coverage ``c`` strictly between 0 and 1.

    Returns
    -------
    (float, float)
        The available levels equal (within 1e-9) to ``(1 - c) / 2`` and ``(1 + c) / 2``.

    Raises
    ------
    ForecastError
        Either level is missing; the message lists the levels present and the coverages
        they support.

    Examples
    --------
    >>> interval_bounds([0.1, 0.5, 0.9], 0.8)
    (0.1, 0.9)
    """
    _check_level(coverage, "coverage")
    levels = [float(level) for level in levels]
    wanted = ((1.0 - coverage) / 2.0, (1.0 + coverage) / 2.0)
    found = [_find_level(levels, w) for w in wanted]
    if found[0] is None or found[1] is None:
        shown = ", ".join(f"{level:g}" for level in sorted(levels)) or "none"
        supported = ", ".join(f"{c:g}" for c in _supported_coverages(levels)) or "none"
        raise ForecastError(
            f"a {coverage:g} central interval needs quantile levels {wanted[0]:g} and "
            f"{wanted[1]:g}, but the forecasts have levels [{shown}]; add columns "
            f"{quantile_column(wanted[0])!r} and {quantile_column(wanted[1])!r}, or ask for a "
            f"coverage these levels support: [{supported}]"
        )
    return found[0], found[1]


def _find_level(levels: Sequence[float], wanted: float) -> float | None:
    for level in levels:
        if abs(level - wanted) <= LEVEL_TOLERANCE:
            return level
    return None


def _supported_coverages(levels: Sequence[float]) -> list[float]:
    return sorted(round(1.0 - 2.0 * lo, 9) for lo in levels
                  if lo < 0.5 and _find_level(levels, 1.0 - lo) is not None)


def _check_level(value: float, what: str) -> None:
    if not (isinstance(value, (int, float, np.integer, np.floating)) and 0.0 < value < 1.0):
        raise ForecastError(f"{what} must be a number strictly between 0 and 1, got {value!r}")


# --------------------------------------------------------------------------- elementwise scores


def mase_scale(history: np.ndarray, season: int = 12) -> np.ndarray:
    """MASE denominator per area: the in-sample mean absolute naive-forecast error.

    Following Hyndman & Koehler (2006), the scale of area ``i`` is the mean of
    ``|y[t] - y[t - season]|`` over the pairs where both months were observed. Displacement
    histories are short and gappy, so the scale falls back, in order, to:

    1. the seasonal scale above, when at least 3 pairs are observed;
    2. the mean absolute lag-1 difference between *successive observed values* (gaps are
       skipped: ``[5, NaN, 8]`` gives the single difference 3), when at least one exists;
    3. the mean absolute observed value;
    4. 1.0, when nothing is observed.

    A stage is skipped when its value is 0 or not finite. Every scale is finally raised to at
    least 1.0: targets are counts of people, and a scale below one person is meaningless (it
    would make a one-person miss in a flat series look like a catastrophic forecast).

    Parameters
    ----------
    history : ndarray, shape (n_areas, n_times)
        Observed values up to and including the forecast origin, NaN where not observed
        (any non-finite value counts as not observed).
    season : int, default 12
        Seasonal period in time steps (12 for monthly data).

    Returns
    -------
    ndarray, shape (n_areas,)
        Finite scales, each >= 1.0.

    Examples
    --------
    >>> mase_scale(np.array([[10.0, np.nan, 14.0, 20.0]]), season=12)
    array([5.])
    """
    try:
        values = np.asarray(history, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ForecastError(f"history must be numeric (areas x times), got {exc}") from None
    if values.ndim != 2:
        raise ForecastError(
            f"history must have shape (n_areas, n_times), got {values.ndim} dimension(s) "
            f"{values.shape}; for a single area pass history[None, :]"
        )
    if isinstance(season, bool) or not isinstance(season, (int, np.integer)) or season < 1:
        raise ForecastError(f"season must be a positive integer number of time steps, got {season!r}")

    # Differences or sums beyond float range overflow to inf; the cascade then skips that stage.
    with np.errstate(over="ignore"):
        stages = _scale_stages(values, season)
    scale = np.full(len(values), 1.0)
    usable = np.zeros(len(values), dtype=bool)
    for candidate, enough in stages:
        take = ~usable & enough & np.isfinite(candidate) & (candidate > 0)
        scale[take] = candidate[take]
        usable |= take
    return np.maximum(scale, SCALE_FLOOR)


def _scale_stages(values: np.ndarray, season: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(candidate scale, has enough pairs) per area, for each stage of the fallback in order."""
    observed = np.isfinite(values)
    filled = np.where(observed, values, 0.0)
    n_areas, n_times = values.shape

    if n_times > season:
        pairs = observed[:, season:] & observed[:, :-season]
        seasonal, n_seasonal = _masked_mean(np.abs(filled[:, season:] - filled[:, :-season]), pairs)
    else:
        seasonal, n_seasonal = np.full(n_areas, np.nan), np.zeros(n_areas, dtype=int)

    # successive observed values: pair each observed month with the last observed one before it
    index = np.where(observed, np.arange(n_times), -1)
    last_seen = np.maximum.accumulate(index, axis=1) if n_times else index
    previous = last_seen[:, :-1]
    pairs = observed[:, 1:] & (previous >= 0)
    previous_value = np.take_along_axis(filled, np.clip(previous, 0, None), axis=1)
    lag1, n_lag1 = _masked_mean(np.abs(filled[:, 1:] - previous_value), pairs)

    level, n_level = _masked_mean(np.abs(filled), observed)
    return [(seasonal, n_seasonal >= MIN_SEASONAL_PAIRS), (lag1, n_lag1 >= 1), (level, n_level >= 1)]


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row means of ``values`` over ``mask``, NaN (without a warning) where a row has none."""
    count = mask.sum(axis=1)
    total = np.where(mask, values, 0.0).sum(axis=1)
    mean = np.divide(total, count, out=np.full(len(total), np.nan), where=count > 0)
    return mean, count


def pinball_loss(actual: np.ndarray | float, pred: np.ndarray | float,
                 q: np.ndarray | float) -> np.ndarray:
    """Pinball (quantile) loss of predicting quantile ``q`` as ``pred`` when ``actual`` happened.

    ``max(q * (y - pred), (q - 1) * (y - pred))``, elementwise with NumPy broadcasting; NaN
    inputs give NaN.

    Parameters
    ----------
    actual, pred : array_like
        Observed values and predicted quantiles.
    q : float or array_like
        Quantile level(s), strictly between 0 and 1.

    Returns
    -------
    ndarray
        The loss, broadcast over the inputs.

    Examples
    --------
    >>> pinball_loss(np.array([10.0, 10.0]), np.array([8.0, 12.0]), 0.9)
    array([1.8, 0.2])
    """
    levels = np.asarray(q, dtype=float)
    if not np.all((levels > 0.0) & (levels < 1.0)):
        raise ForecastError(f"quantile levels must be strictly between 0 and 1, got {q!r}")
    diff = np.asarray(actual, dtype=float) - np.asarray(pred, dtype=float)
    return np.maximum(levels * diff, (levels - 1.0) * diff)


def crps_from_quantiles(actual: np.ndarray, quantiles: np.ndarray,
                        levels: Sequence[float]) -> np.ndarray:
    """CRPS approximated from a finite set of predicted quantiles.

    The CRPS equals twice the pinball loss integrated over all levels,
    ``CRPS(F, y) = 2 * integral_0^1 QS_tau(F^-1(tau), y) dtau`` (Laio & Tamea 2007;
    Gneiting & Raftery 2007, section 4.2; Gneiting & Ranjan 2011). Replacing the integral by
    an average over the ``k`` available levels gives

    ``CRPS ~ (2 / k) * sum_j pinball_{tau_j}(y, q_j)``,

    which is also the weighted interval score of Bracher et al. (2021) up to the treatment of
    the median. The approximation is good when the levels spread evenly over (0, 1), e.g.
    ``tau_j = (j - 1/2) / k`` (99 such levels are within 0.1% of the exact normal CRPS); with
    a few central levels it ignores the tails and is coarse. Compare scores only between
    forecasts scored on the same levels.

    Parameters
    ----------
    actual : array_like, shape (n,)
        Observed values.
    quantiles : array_like, shape (n, k)
        Predicted quantiles, one column per level.
    levels : sequence of float, length k
        The quantile levels of the columns, strictly between 0 and 1.

    Returns
    -------
    ndarray, shape (n,)
        Approximate CRPS per row; NaN where the actual or any quantile is NaN.

    Examples
    --------
    >>> crps_from_quantiles(np.array([10.0]), np.array([[8.0, 10.0, 12.0]]), [0.1, 0.5, 0.9])
    array([0.26666667])
    """
    y = np.asarray(actual, dtype=float)
    q = np.asarray(quantiles, dtype=float)
    tau = np.asarray(levels, dtype=float)
    if y.ndim != 1 or q.ndim != 2 or tau.ndim != 1 or q.shape != (len(y), len(tau)) or not len(tau):
        raise ForecastError(
            f"crps_from_quantiles needs actual (n,), quantiles (n, k) and k levels with k >= 1; "
            f"got shapes {y.shape}, {q.shape} and {tau.shape}"
        )
    return 2.0 * pinball_loss(y[:, None], q, tau[None, :]).mean(axis=1)


# --------------------------------------------------------------------------- score tables


def score(forecasts: pd.DataFrame, by: Sequence[str] | str = (MODEL, HORIZON),
          coverages: Sequence[float] = (0.8,)) -> pd.DataFrame:
    """Score a long forecasts table: one row of metrics per group.

    Only rows with an observed ``actual`` are scored. Per group:

    - ``n``: scored rows;
    - ``mae``, ``rmse``: mean absolute / root mean squared error of ``point``;
    - ``rmsle``: ``sqrt(mean((log1p(max(point, 0)) - log1p(max(actual, 0)))**2))``;
    - ``mase``: mean of ``|actual - point| / scale`` (the pooled mean of scaled errors, so
      areas with a small scale weigh more than in a mean of per-area MASEs);
    - ``pinball``: mean over rows and quantile levels of :func:`pinball_loss`;
    - ``crps``: mean :func:`crps_from_quantiles`; ``scaled_crps``: mean ``crps / scale``;
    - for each coverage ``c`` (named by its percentage, e.g. ``coverage80``, ``width80``):
      the share of actuals inside ``[q_lo, q_hi]`` (inclusive) and the mean ``q_hi - q_lo``;
    - ``level_ratio``: ``sum(point) / sum(actual)``; NaN when ``sum(actual)`` is 0; with a
      ``mean`` column, ``mean_level_ratio``: ``sum(mean) / sum(actual)`` (what totals read).

    Without quantile columns the quantile-based metrics are NaN. A group whose rows are all
    unscored appears with ``n = 0`` and NaN metrics. A NaN forecast (point or quantile) on a
    scored row makes the metrics that use it NaN for its group: a missing forecast is never
    dropped silently.

    Parameters
    ----------
    forecasts : DataFrame
        The long forecasts table (``actual``, ``point``, ``scale``, the ``by`` columns and
        optionally quantile columns named by :func:`quantile_column`).
    by : sequence of str, default ("model", "horizon")
        Grouping columns, e.g. ``("model", "horizon", "area")``, or ``("model",)`` to pool.
    coverages : sequence of float, default (0.8,)
        Nominal central-interval coverages to check; each needs the levels
        ``(1 - c) / 2`` and ``(1 + c) / 2`` when the table has quantile columns.

    Returns
    -------
    DataFrame
        The ``by`` columns, then the metrics, one row per group sorted by the group keys.

    Raises
    ------
    ForecastError
        Required columns are missing, a column is not numeric, a scored row has no positive
        finite ``scale``, or a coverage has no matching quantile levels.

    Examples
    --------
    >>> frame = pd.DataFrame({"model": ["a", "a"], "horizon": [1, 1], "actual": [10.0, np.nan],
    ...                       "point": [12.0, 5.0], "scale": [2.0, 2.0]})
    >>> score(frame)[["model", "horizon", "n", "mae", "mase"]]
      model  horizon  n  mae  mase
    0     a        1  1  2.0   1.0
    """
    by = [by] if isinstance(by, str) else list(by)
    if not by:
        raise ForecastError("by names no column; to pool all rows of each model use by=('model',)")
    coverages = [float(c) for c in coverages]
    for c in coverages:
        _check_level(c, "coverage")
    names = [_percent_label(c) for c in coverages]
    if len(set(names)) != len(names):
        raise ForecastError(f"coverages must be distinct, got {coverages}")
    require_columns(forecasts, [*by, ACTUAL, POINT, SCALE])

    actual = numeric_column(forecasts, ACTUAL)
    point = numeric_column(forecasts, POINT)
    scale = numeric_column(forecasts, SCALE)
    scored = ~np.isnan(actual)
    check_scale(forecasts, scale, scored)

    levels = quantile_levels(forecasts)
    bounds = dict(zip(names, [interval_bounds(levels, c) for c in coverages])) if levels else {}
    # Absurd values overflow to inf (or inf - inf to NaN): the honest result, not a warning.
    with np.errstate(over="ignore", invalid="ignore"):
        per_row = _row_scores(forecasts, actual, point, scale, levels, bounds)
        return _group_means(forecasts, by, scored, per_row, names)


def _row_scores(forecasts: pd.DataFrame, actual: np.ndarray, point: np.ndarray, scale: np.ndarray,
                levels: list[float], bounds: dict[str, tuple[float, float]]) -> dict[str, np.ndarray]:
    """Per-row quantities whose group means (or sums) are the metrics."""
    err = point - actual
    log_err = np.log1p(np.maximum(point, 0.0)) - np.log1p(np.maximum(actual, 0.0))
    per_row = {
        "abs": np.abs(err), "sq": err**2, "sqlog": log_err**2,
        "scaled": np.abs(err) / scale, "point": point, "actual": actual,
        **({"mean": numeric_column(forecasts, "mean")} if "mean" in forecasts else {}),
    }
    if not levels:
        return per_row
    quantiles = np.column_stack([numeric_column(forecasts, quantile_column(q)) for q in levels])
    crps = crps_from_quantiles(actual, quantiles, levels)
    per_row["pinball"] = crps / 2.0  # crps = (2/k) * sum = 2 * mean pinball over levels
    per_row["crps"] = crps
    per_row["scaled_crps"] = crps / scale
    for name, (lo, hi) in bounds.items():
        q_lo, q_hi = numeric_column(forecasts, quantile_column(lo)), numeric_column(forecasts, quantile_column(hi))
        inside = ((q_lo <= actual) & (actual <= q_hi)).astype(float)
        per_row[f"coverage{name}"] = np.where(np.isnan(q_lo) | np.isnan(q_hi), np.nan, inside)
        per_row[f"width{name}"] = q_hi - q_lo
    return per_row


def _group_means(forecasts: pd.DataFrame, by: list[str], scored: np.ndarray,
                 per_row: dict[str, np.ndarray], names: list[str]) -> pd.DataFrame:
    """One row per group: sums over scored rows only (NaN forecasts propagate) divided by n."""
    codes, first_rows = _group_codes(forecasts, by)
    n_groups = len(first_rows)
    group_codes = codes[scored]
    n = np.bincount(group_codes, minlength=n_groups)
    sums = {key: np.bincount(group_codes, weights=values[scored], minlength=n_groups)
            for key, values in per_row.items()}

    def mean(key: str) -> np.ndarray:
        if key not in sums:
            return np.full(n_groups, np.nan)
        return np.divide(sums[key], n, out=np.full(n_groups, np.nan), where=n > 0)

    result = forecasts[by].iloc[first_rows].reset_index(drop=True)
    result["n"] = n.astype("int64")
    result["mae"] = mean("abs")
    result["rmse"] = np.sqrt(mean("sq"))
    result["rmsle"] = np.sqrt(mean("sqlog"))
    result["mase"] = mean("scaled")
    result["pinball"] = mean("pinball")
    result["crps"] = mean("crps")
    result["scaled_crps"] = mean("scaled_crps")
    for name in names:
        result[f"coverage{name}"] = mean(f"coverage{name}")
        result[f"width{name}"] = mean(f"width{name}")
    total_actual = sums["actual"]
    for name, key in (("level_ratio", "point"), ("mean_level_ratio", "mean")):
        if key in sums:
            result[name] = np.divide(sums[key], total_actual, out=np.full(n_groups, np.nan), where=total_actual != 0)
    return result


def _percent_label(coverage: float) -> str:
    percent = round(coverage * 100.0, 9)
    return str(int(percent)) if percent == int(percent) else f"{percent:g}"


def require_columns(frame: pd.DataFrame, required: Sequence[str]) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ForecastError(f"expected a pandas DataFrame of forecasts, got {type(frame).__name__}")
    missing = [c for c in dict.fromkeys(required) if c not in frame.columns]
    if missing:
        raise ForecastError(
            f"the forecasts table lacks required column(s) {missing}; it has {list(frame.columns)}. "
            "Score the table the backtest returns, or choose `by` among its columns"
        )
    duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if duplicated:
        raise ForecastError(f"the forecasts table has duplicated column name(s) {duplicated}; "
                            "make column names unique")


def numeric_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    try:
        return frame[column].to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        raise ForecastError(
            f"column {column!r} must be numeric, got dtype {frame[column].dtype}; convert it "
            "(missing values as NaN, never 0) before scoring"
        ) from None


def check_scale(frame: pd.DataFrame, scale: np.ndarray, scored: np.ndarray) -> None:
    bad = scored & ~(np.isfinite(scale) & (scale > 0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        where = f"row {frame.index[first]!r}"
        if "area" in frame.columns:
            where += f" (area {frame['area'].iloc[first]!r})"
        raise ForecastError(
            f"{int(bad.sum())} scored row(s) have a scale that is not a positive finite number, "
            f"first at {where}: {scale[first]!r}; compute scales with "
            "forecast.backtest.mase_scale from history up to each origin"
        )


def _group_codes(frame: pd.DataFrame, by: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Dense group number per row (in sorted key order) and the first row of each group."""
    raw = frame.groupby(by, sort=True, dropna=False, observed=True).ngroup().to_numpy()
    _, first_rows, codes = np.unique(raw, return_index=True, return_inverse=True)
    return codes.reshape(-1).astype(np.intp), first_rows


def _key_columns(scores: pd.DataFrame) -> list[str]:
    return [c for c in scores.columns if not (isinstance(c, str) and _METRIC_PATTERN.match(c))]


def add_skill(scores: pd.DataFrame, reference: str, metric: str = "mase") -> pd.DataFrame:
    """Add the skill of every model relative to a reference model, group by group.

    ``skill = 1 - metric / metric_of_reference``, matching each row with the reference
    model's row in the same group (all grouping columns except ``model``). Positive skill
    means better than the reference; the reference itself gets 0. Skill is NaN where the
    reference has no row for the group, or its metric is 0 or NaN.

    Parameters
    ----------
    scores : DataFrame
        Output of :func:`score`; the grouping columns are those that are not metrics.
    reference : str
        The model to compare against, e.g. a seasonal naive baseline.
    metric : str, default "mase"
        A loss where lower is better: one of ``mae, rmse, rmsle, mase, pinball, crps,
        scaled_crps``.

    Returns
    -------
    DataFrame
        A copy of ``scores`` with the column ``f"skill_{metric}_vs_{reference}"``.

    Raises
    ------
    ForecastError
        The metric is not a loss in the table, ``model`` is not a grouping column, the
        reference model is absent, or the reference has several rows for one group.

    Examples
    --------
    >>> scores = pd.DataFrame({"model": ["naive", "gbm"], "horizon": [1, 1], "mase": [1.0, 0.8]})
    >>> add_skill(scores, "naive")["skill_mase_vs_naive"].tolist()
    [0.0, 0.19999999999999996]
    """
    if metric not in LOSS_METRICS:
        raise ForecastError(f"skill is defined here for losses where lower is better, one of "
                            f"{list(LOSS_METRICS)}; got metric={metric!r}")
    require_columns(scores, [MODEL, metric])
    keys = _key_columns(scores)
    if MODEL not in keys:
        raise ForecastError("scores must be grouped by 'model' to compare models; "
                            "use score(..., by=('model', ...))")
    match = [k for k in keys if k != MODEL]
    is_reference = (scores[MODEL] == reference).to_numpy()
    if not is_reference.any():
        present = sorted(map(str, scores[MODEL].unique()))
        raise ForecastError(f"reference model {reference!r} is not in the scores; models present: "
                            f"{present}. Pass one of them as reference")
    ref = scores.loc[is_reference, [*match, metric]]
    if ref.duplicated(match).any() if match else len(ref) > 1:
        raise ForecastError(
            f"reference model {reference!r} has several rows for one group of {match or 'all rows'}; "
            "the scores must have one row per model and group (score with by=('model', ...))"
        )
    values = scores[metric].to_numpy(dtype=float, na_value=np.nan)
    if match:
        joined = scores[match].merge(ref.rename(columns={metric: "__ref__"}), on=match, how="left")
        baseline = joined["__ref__"].to_numpy(dtype=float, na_value=np.nan)
    else:
        baseline = np.full(len(scores), float(ref[metric].iloc[0]))
    usable = np.isfinite(baseline) & (baseline != 0)
    ratio = np.divide(values, baseline, out=np.full(len(scores), np.nan), where=usable)
    result = scores.copy()
    result[f"skill_{metric}_vs_{reference}"] = 1.0 - ratio
    return result


def metrics_by_horizon(scores: pd.DataFrame, model: str,
                       metrics: Sequence[str] | None = None) -> dict[str, float]:
    """Flat ``{f"{metric}_h{horizon}": value}`` dict of one model's scores, e.g. for MLflow.

    Non-finite values (a group with nothing scored, no quantile columns) are left out, so the
    dict can be logged as-is.

    Parameters
    ----------
    scores : DataFrame
        Output of ``score(forecasts, by=("model", "horizon"))`` (optionally with skill).
    model : str
        The model whose metrics to extract.
    metrics : sequence of str, optional
        Metric columns to include; default every column other than ``model`` and ``horizon``.

    Returns
    -------
    dict of str to float
        Keys like ``mase_h1``, ``crps_h3``, ``coverage80_h6``.

    Raises
    ------
    ForecastError
        Columns are missing, the model is absent, or the model has several rows for one
        horizon (the table was grouped by more than model and horizon).

    Examples
    --------
    >>> scores = pd.DataFrame({"model": ["gbm", "gbm"], "horizon": [1, 3], "mase": [0.8, np.nan]})
    >>> metrics_by_horizon(scores, "gbm")
    {'mase_h1': 0.8}
    """
    if metrics is None:
        metrics = [c for c in scores.columns if c not in (MODEL, HORIZON)]
    else:
        metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    require_columns(scores, [MODEL, HORIZON, *metrics])
    rows = scores[scores[MODEL] == model]
    if rows.empty:
        present = sorted(map(str, scores[MODEL].unique()))
        raise ForecastError(f"model {model!r} is not in the scores; models present: {present}")
    if rows[HORIZON].duplicated().any():
        raise ForecastError(
            f"model {model!r} has several rows for one horizon; metrics_by_horizon needs scores "
            "grouped by ('model', 'horizon') exactly: score(forecasts, by=('model', 'horizon'))"
        )
    rows = rows.sort_values(HORIZON)
    flat: dict[str, float] = {}
    for metric in metrics:
        for horizon, value in zip(rows[HORIZON], rows[metric]):
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ForecastError(f"column {metric!r} is not numeric; leave it out of metrics") from None
            if math.isfinite(number):
                flat[f"{metric}_h{int(horizon)}"] = number
    return flat
