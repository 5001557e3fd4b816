"""Leakage-free features: one design matrix per panel, computed once, sliced per origin."""

from forecast.features._build import (
    NEIGHBOURS,
    FeatureMatrix,
    build_features,
    neighbours_from_cube,
    resolve_families,
)
from forecast.features._causal import LeakageError, assert_causal
from forecast.features._recursive import RECURSIVE_FAMILIES, RecursiveRows, check_recursive
from forecast.features._panel import MISSING_TARGET, Forecast, Panel, observed_mask
from forecast.features._families import COVARIATES, DEFAULT_PARAMS, FAMILIES, Inputs, register_family
from forecast.features._groups import DRIVERS, column_drivers, variable_driver
from forecast.features._seasons import RAINY_SEASONS, SeasonState, same_month_anomaly, season_state, season_totals

__all__ = [
    # the panel: target series as arrays, and forecasts
    "Panel", "Forecast", "MISSING_TARGET", "observed_mask",
    # the design matrix
    "build_features", "FeatureMatrix", "resolve_families",
    # families
    "FAMILIES", "register_family", "Inputs", "DEFAULT_PARAMS", "COVARIATES",
    # driver covariates: causal climatologies and rainy seasons (drought, pressure)
    "same_month_anomaly", "season_totals", "season_state", "SeasonState", "RAINY_SEASONS",
    # driver families (explanations add contributions up by driver)
    "DRIVERS", "column_drivers", "variable_driver",
    # areas
    "neighbours_from_cube", "NEIGHBOURS",
    # the recursive strategy: rows rebuilt from fed-back forecasts
    "RecursiveRows", "check_recursive", "RECURSIVE_FAMILIES",
    # leakage
    "assert_causal", "LeakageError",
]
