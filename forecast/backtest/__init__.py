"""Rolling-origin backtests: folds, the runner, conformal intervals and metrics."""

from forecast.backtest._conformal import calibrate
from forecast.backtest._folds import RollingOrigin
from forecast.backtest._metrics import (
    add_skill,
    crps_from_quantiles,
    interval_bounds,
    mase_scale,
    metrics_by_horizon,
    pinball_loss,
    quantile_column,
    quantile_levels,
    score,
)
from forecast.backtest._plots import fan_chart, importance_chart
from forecast.backtest._run import BacktestResult, backtest

__all__ = [
    # running
    "backtest", "BacktestResult", "RollingOrigin", "calibrate",
    # metrics
    "score", "add_skill", "metrics_by_horizon", "mase_scale", "pinball_loss",
    "crps_from_quantiles", "interval_bounds", "quantile_column", "quantile_levels",
    # plots
    "fan_chart", "importance_chart",
]
