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
