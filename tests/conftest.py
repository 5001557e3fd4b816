"""Run the whole suite from a temporary folder.

MLflow writes the artifacts of a new experiment under ``./mlruns`` of the working folder
(and its default store is ``./mlflow.db``); tests must not leave either in the checkout.
Tests find repository files through absolute paths; a test that needs a particular working
folder changes to it itself (``monkeypatch.chdir``).
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per artifact drowns the output


@pytest.fixture(scope="session", autouse=True)
def _work_in_a_temporary_folder(tmp_path_factory):
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(before)


@pytest.fixture(autouse=True)
def _mlflow_default_tracking_uri():
    """Every test starts on MLflow's default tracking URI: a command run through CliRunner with
    --tracking-uri (predict, prioritize) sets the process's URI, as a command line should, and
    that must not carry into the next test on the same worker."""
    yield
    from mlflow.tracking._tracking_service import utils

    if utils._tracking_uri is not None:
        import mlflow

        mlflow.set_tracking_uri(None)


# minutes each: the wheel installed and its demo run (~4 min), the notebooks that backtest and train
_SLOWEST_FIRST = ("tests/test_install.py", "tests/test_notebooks.py")


def pytest_collection_modifyitems(items):
    """Start the few minutes-long tests first, so that with ``-n 2`` one worker is not left
    running them alone at the end of the suite (a stable sort keeps every other order)."""
    items.sort(key=lambda item: not item.nodeid.startswith(_SLOWEST_FIRST))
