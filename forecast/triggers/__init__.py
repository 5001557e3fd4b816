"""Anticipatory-action triggers: thresholds, probabilities of crossing, signals, evaluation."""

from forecast.triggers._classifier import CLASSIFIERS
from forecast.triggers._scores import caught_table, drift_table, reliability_table, trigger_metrics
from forecast.triggers._evaluation import TriggerEvaluation, evaluate_triggers
from forecast.triggers._levels import level_trigger_metrics, level_trigger_signals
from forecast.triggers._prioritize import OUTLOOK_COLUMNS, monthly_outlook, prioritize
from forecast.triggers._probability import RECALIBRATE, PlattCalibrator, exceedance_probability, recalibrator
from forecast.triggers._signals import DEFAULT_ROUTES, MAX_STALENESS, last_record_index, rank_areas, trigger_signals
from forecast.triggers._spec import REGION_COORDS, RegionRule, TriggerSpec, load_triggers, region_rule
from forecast.triggers._regional import area_regions, regional_metrics, regional_signals
from forecast.triggers._thresholds import threshold_matrix, window_events

__all__ = [
    # specification
    "TriggerSpec",
    "load_triggers",
    # thresholds and outcomes
    "threshold_matrix",
    "window_events",
    "last_record_index",
    # probabilities
    "exceedance_probability",
    "PlattCalibrator",
    "recalibrator",
    "RECALIBRATE",
    "CLASSIFIERS",
    # signals and evaluation
    "trigger_signals",
    "rank_areas",
    "prioritize",
    "monthly_outlook",
    "OUTLOOK_COLUMNS",
    "evaluate_triggers",
    "TriggerEvaluation",
    "trigger_metrics",
    "reliability_table",
    "drift_table",
    "DEFAULT_ROUTES",
    "MAX_STALENESS",
    # crossings caught in time
    "caught_table",
    # the geographic condition: act when N districts of one region cross
    "RegionRule",
    "region_rule",
    "area_regions",
    "regional_signals",
    "regional_metrics",
    "REGION_COORDS",
    # every admin level (backtest_levels): the country's and the regions' own crossings
    "level_trigger_metrics",
    "level_trigger_signals",
]
