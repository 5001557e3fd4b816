"""MLflow tracking: the one package that imports mlflow.

Everything the toolkit writes to or reads from an MLflow store goes through here: logging
backtests and trained models, finding runs and checking their kind, loading a trained
forecaster back, reading the evidence a model card, the release gate or a report judges (once,
as a plain :class:`~forecast.ethics.Evidence`), the model registry and its alias ``released``,
publishing model cards, gate reports and report headlines to their runs, and scenarios as runs
nested under the train run of their model. The tracking store is MLflow's own default
(``sqlite:///mlflow.db`` in the working folder) unless ``MLFLOW_TRACKING_URI`` or an explicit
``tracking_uri`` says otherwise; a call with ``tracking_uri`` gives the caller back its own
store afterwards. MLflow's own setup, schema and pickling messages are not shown (``_quiet``). With a tracking server, the audit log lives there too, where every client of
the team reads and appends the same chain (``_audit_log``).
"""

from forecast.tracking._quiet import quiet_mlflow

quiet_mlflow()  # before any store is opened: MLflow's setup chatter is not the toolkit's to show

from forecast.tracking._audit_log import SHARED_LOG, RegistryLogStore, open_audit_log, shared_log_name  # noqa: E402
from forecast.tracking._evidence import (  # noqa: E402
    Artifacts,
    download_model,
    find_backtest,
    model_digest,
    read_card_evidence,
    read_release_evidence,
    read_review_subject,
    read_run,
)
from forecast.tracking._log import TRIGGER_METRICS, log_backtest
from forecast.tracking._model import load_trained, log_trained
from forecast.tracking._publish import log_card, log_gate_report, log_headline, previous_report
from forecast.tracking._registry import (
    RELEASED_ALIAS,
    card_file_sha256,
    delete_version,
    register_version,
    release_status,
    released_version,
    set_released,
    version_tags,
)
from forecast.tracking._scenario import SCENARIO_KIND, log_scenario, read_scenario, scenario_runs
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
    "get_run", "load_trained", "read_run", "Artifacts",
    # evidence for the card, the gate, the review and the report
    "read_card_evidence", "read_release_evidence", "read_review_subject", "find_backtest", "model_digest",
    "download_model", "previous_report",
    # publishing to runs
    "log_card", "log_gate_report", "log_headline",
    # scenarios, nested under their train run
    "log_scenario", "scenario_runs", "read_scenario", "SCENARIO_KIND",
    # the registry
    "release_status", "released_version", "register_version", "delete_version", "set_released", "RELEASED_ALIAS",
    "version_tags", "card_file_sha256",
    # the audit log: a file here, or the team's shared log on the tracking server
    "open_audit_log", "RegistryLogStore", "SHARED_LOG", "shared_log_name",
    # the store
    "use_store", "prepare_store", "store_uri", "start_run", "git_commit", "DEFAULT_EXPERIMENT",
]
