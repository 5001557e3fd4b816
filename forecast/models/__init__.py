"""Forecasters: baselines, per-area statistical models and global models, with specs."""

from forecast.models._baselines import (
    BASELINES,
    ExponentialMean,
    HistoricalMean,
    MovingAverage,
    Naive,
    SeasonalNaive,
    SeriesForecaster,
)
from forecast.models._explain import (
    SCALES,
    Contributions,
    by_driver,
    exog_contributions,
    explain_horizons,
    explain_series,
    has_contributions,
)
from forecast.models._global import HistGBForecaster, LightGBMForecaster, SharedBins
from forecast.models._horizons import (
    MIN_ROWS,
    TooFewRows,
    feature_importance,
    fit_horizons,
    predict_horizons,
    to_level,
    train_index,
    train_rows,
)
from forecast.models._local import ETS, SARIMAX
from forecast.features import MISSING_TARGET, Forecast, Panel
from forecast.models._spec import ESTIMATORS, ModelSpec, baseline_specs, load_spec, register_estimator
from forecast.models._threads import as_done, side_by_side

__all__ = [
    # data in and out
    "Panel", "Forecast", "MISSING_TARGET",
    # baselines
    "SeriesForecaster", "Naive", "SeasonalNaive", "MovingAverage", "ExponentialMean",
    "HistoricalMean", "BASELINES",
    # per-area statistical models
    "ETS", "SARIMAX",
    # global models
    "LightGBMForecaster", "HistGBForecaster", "SharedBins",
    # global models across horizons (shared by the backtest and train)
    "fit_horizons", "predict_horizons", "train_index", "train_rows", "feature_importance", "to_level",
    "TooFewRows", "MIN_ROWS", "side_by_side", "as_done",
    # explanations: contributions per forecast, by driver family
    "Contributions", "by_driver", "has_contributions", "explain_horizons", "explain_series",
    "exog_contributions", "SCALES",
    # specs
    "ModelSpec", "load_spec", "ESTIMATORS", "register_estimator", "baseline_specs",
]
