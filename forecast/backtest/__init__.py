"""Rolling-origin backtests: folds, the runner, conformal intervals, metrics, and every admin level reconciled."""

from forecast.backtest._combine import COMBINATION_METHODS, combination_weights, combine
from forecast.backtest._conformal import (
    LEVEL_MONTHS,
    MIN_CALIBRATION,
    SIZE_BINS,
    calibrate,
    conformal_shifts,
    recent_level,
    size_bins,
    total_ratio,
)
from forecast.backtest._folds import RollingOrigin
from forecast.backtest._levels import LevelsResult, backtest_levels, calibrate_by_level
from forecast.backtest._metrics import (
    add_skill,
    check_scale,
    crps_from_quantiles,
    interval_bounds,
    mase_scale,
    metrics_by_horizon,
    numeric_column,
    pinball_loss,
    quantile_column,
    quantile_levels,
    require_columns,
    score,
)
from forecast.backtest._progress import Progress, ProgressBar, progress_bar
from forecast.backtest._reconcile import (
    METHODS,
    Hierarchy,
    coherence_error,
    hierarchy_of,
    reconcile,
    reconcile_means,
    shrunk_covariance,
)
from forecast.backtest._totals import (
    NO_PARENT,
    TOTAL_COLUMNS,
    TotalCalibration,
    apply_total_shifts,
    calibrate_totals,
    group_totals,
    level_groups,
    score_totals,
    total_shifts,
    window_totals,
)
from forecast.backtest._run import CONTRIBUTION_KEYS, BacktestResult, backtest, tidy_contributions
from forecast.backtest._subset import scored_part

__all__ = [
    # running
    "backtest", "BacktestResult", "RollingOrigin", "scored_part", "calibrate", "conformal_shifts", "MIN_CALIBRATION",
    "combine", "combination_weights", "COMBINATION_METHODS",  # models combined, weights from earlier origins
    # intervals conditional on an area's size (Mondrian): its tercile of recent level at the origin
    "SIZE_BINS", "LEVEL_MONTHS", "recent_level", "size_bins",
    # a mean whose totals hold: the point scaled by earlier outcomes' total over its own
    "total_ratio",
    # totals of regions and the country over a window, intervals from earlier totals' errors
    "window_totals", "group_totals", "total_shifts", "apply_total_shifts", "TOTAL_COLUMNS", "level_groups",
    "calibrate_totals", "TotalCalibration", "score_totals", "NO_PARENT",
    # every admin level, reconciled: districts that add up to regions and the country
    "backtest_levels", "LevelsResult", "calibrate_by_level", "reconcile", "reconcile_means", "shrunk_covariance",
    "hierarchy_of", "Hierarchy", "coherence_error", "METHODS",
    # metrics
    "score", "add_skill", "metrics_by_horizon", "mase_scale", "pinball_loss",
    "crps_from_quantiles", "interval_bounds", "quantile_column", "quantile_levels",
    # checks of a forecasts table
    "require_columns", "numeric_column", "check_scale",
    # explanations: contributions per forecast, by driver family
    "CONTRIBUTION_KEYS", "tidy_contributions",
    # progress of the long steps: a bar with an ETA in a terminal or a notebook by default
    "progress_bar", "ProgressBar", "Progress",
    # plots
    "fan_chart", "importance_chart", "driver_chart",
]


def __getattr__(name: str):
    # the plots need matplotlib (a second and tens of MB): import them on first use
    if name in ("fan_chart", "importance_chart", "driver_chart"):
        from forecast.backtest import _plots

        return getattr(_plots, name)
    raise AttributeError(f"module 'forecast.backtest' has no attribute {name!r}")
