"""MLflow's own chatter, kept from the people using the toolkit.

Creating a store prints its database migrations, logging a model warns that a Python object is
pickled (the toolkit's pyfunc model is, by design: its files are hashed and the release gate
checks the digest), that the output schema could not be inferred and that integer columns
cannot hold missing values. None of it is something a user can act on, and it buries what the
toolkit says. :func:`quiet_mlflow` raises those loggers to warnings and errors only, unless the
user set a level of their own; :func:`quiet_warnings` hides the Python warnings while a model is
logged.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager

__all__ = ["quiet_mlflow", "quiet_warnings", "QUIETED"]

#: Logger -> the level below which its messages are not shown (unless the user set one).
QUIETED = {
    "mlflow.store.db.utils": logging.WARNING,  # "Creating initial MLflow database tables..."
    "alembic.runtime.migration": logging.WARNING,  # the schema migrations behind it
    "mlflow.tracking.fluent": logging.WARNING,  # "Experiment with name ... does not exist. Creating..."
    "mlflow.models.signature": logging.ERROR,  # "Failed to infer schema for outputs"
    "mlflow.pyfunc": logging.ERROR,  # the CloudPickle note, "Validating input example"
    "mlflow.models.model": logging.ERROR,  # the same notes from the model writer
}


def quiet_mlflow() -> None:
    """Raise MLflow's setup and pickling loggers to :data:`QUIETED` (a level set by the user stays)."""
    for name, level in QUIETED.items():
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(level)


@contextmanager
def quiet_warnings():
    """Hide MLflow's schema warnings while a model is logged (nothing else is filtered)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Hint: Inferred schema contains integer column", category=UserWarning)
        warnings.filterwarnings("ignore", message=r".*Failed to infer schema", category=UserWarning)
        yield
