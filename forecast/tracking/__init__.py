"""MLflow tracking: the one package that imports mlflow.

Everything the toolkit writes to or reads from an MLflow store goes through here: logging
backtests and trained models, finding runs and checking their kind, loading a trained
forecaster back. The tracking store is MLflow's own default (``sqlite:///mlflow.db`` in the
working folder) unless ``MLFLOW_TRACKING_URI`` or an explicit ``tracking_uri`` says otherwise;
a call with ``tracking_uri`` gives the caller back its own store afterwards.
"""

from forecast.tracking._log import TRIGGER_METRICS, log_backtest
from forecast.tracking._model import load_trained, log_trained
from forecast.tracking._runs import (
    DEFAULT_EXPERIMENT,
    get_run,
    git_commit,
    log_artifact,
    prepare_store,
    start_run,
    store_uri,
    use_store,
)

__all__ = [
    # writing
    "log_backtest", "log_trained", "log_artifact", "TRIGGER_METRICS",
    # reading
    "get_run", "load_trained",
    # the store
    "use_store", "prepare_store", "store_uri", "start_run", "git_commit", "DEFAULT_EXPERIMENT",
]
