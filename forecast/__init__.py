"""displacement-forecast: forecast internal displacement per sub-national area.

Load DTM-style data into a validated monthly cube, with every input row accounted for::

    import forecast
    cube = forecast.load_somalia()                       # the shipped real sample
    result = forecast.ingest(["dtm.csv"], "dtm", areas="adm2.geojson")
    result.cube, result.manifest, result.quarantine

Backtest models against the baselines and keep every number traceable in MLflow::

    spec = forecast.load_spec("models/lightgbm.yaml")
    result = forecast.backtest(cube, [spec])             # rolling origins, conformal intervals
    result.summary(horizons=[1, 3, 6])
    forecast.tracking.log_backtest(result)

Turn forecasts into anticipatory-action signals, rank areas, and check who is left behind::

    triggers = forecast.load_triggers("models/triggers.yaml")
    evaluation = forecast.evaluate_triggers(result, cube, triggers)
    evaluation.metrics()                                 # hit rate, false alarms, Brier, return period
    report = forecast.fairness_report(evaluation.signals, result.scored, forecast.area_groups(cube))
    forecast.train(cube, spec, triggers=triggers).prioritize(cube, lead=3)
"""

from forecast import datasets
from forecast._version import __version__
from forecast.backtest import BacktestResult, RollingOrigin, backtest
from forecast.cube import aggregate, build_cube, cube_hash, load_cube, save_cube
from forecast.datasets import load_somalia, load_somalia_dtm, make_panel, make_stock_panel
from forecast.models import ModelSpec, load_spec
from forecast.errors import (
    CubeError,
    DataQualityWarning,
    ForecastError,
    IdentifyingDataError,
    UnusableFileError,
)
from forecast.fairness import area_groups, fairness_report
from forecast.policy import load_policy
from forecast.features import build_features
from forecast.pipeline import Ingested, TrainedModel, ingest, train
from forecast.triggers import TriggerSpec, evaluate_triggers, load_triggers
from forecast.io import (
    FileRecord,
    Gazetteer,
    Manifest,
    read_acled,
    read_dtm,
    read_flows,
    read_hxl,
    read_table,
)

__all__ = [
    "__version__",
    # data in
    "ingest", "Ingested", "read_dtm", "read_hxl", "read_flows", "read_acled", "read_table",
    "Gazetteer", "Manifest", "FileRecord",
    # the cube
    "load_cube", "save_cube", "cube_hash", "aggregate", "build_cube",
    # features, models, backtests
    "build_features", "ModelSpec", "load_spec", "backtest", "BacktestResult", "RollingOrigin",
    "train", "TrainedModel",
    # triggers, prioritization, fairness
    "TriggerSpec", "load_triggers", "evaluate_triggers", "fairness_report", "area_groups", "load_policy",
    # sample and synthetic data
    "datasets", "load_somalia", "load_somalia_dtm", "make_panel", "make_stock_panel",
    # errors
    "ForecastError", "UnusableFileError", "IdentifyingDataError", "CubeError", "DataQualityWarning",
]


def __getattr__(name: str):
    # forecast.tracking imports MLflow (seconds); load it on first use, not with the package
    if name == "tracking":
        import importlib

        return importlib.import_module("forecast.tracking")
    raise AttributeError(f"module 'forecast' has no attribute {name!r}")
