"""Anticipatory-action triggers: thresholds, probabilities of crossing, signals, evaluation."""

from forecast.triggers._classifier import CLASSIFIERS
from forecast.triggers._scores import drift_table, reliability_table, trigger_metrics
from forecast.triggers._evaluation import TriggerEvaluation, evaluate_triggers
from forecast.triggers._prioritize import prioritize
from forecast.triggers._probability import RECALIBRATE, PlattCalibrator, exceedance_probability, recalibrator
from forecast.triggers._signals import DEFAULT_ROUTES, MAX_STALENESS, last_record_index, rank_areas, trigger_signals
from forecast.triggers._spec import TriggerSpec, load_triggers
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
    "evaluate_triggers",
    "TriggerEvaluation",
    "trigger_metrics",
    "reliability_table",
    "drift_table",
    "DEFAULT_ROUTES",
    "MAX_STALENESS",
]
