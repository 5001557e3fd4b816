"""The notebooks in notebooks/ run top to bottom in a real Jupyter kernel and show what they say.

Each notebook runs in its own kernel (the interpreter running the tests, so the toolkit and its
dependencies are the ones installed here), with its working folder and outputs in the test's
temporary folder: nothing is written into the checkout. A notebook takes up to two minutes on
two cores; a cell gets five.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT = 300
KERNEL = "forecast-tests"


def _kernel(folder: Path) -> KernelManager:
    """A kernel on this interpreter: a user's own `python3` kernelspec may point at another one."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "displacement-forecast (tests)", "language": "python"}), encoding="utf-8")
    return KernelManager(kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]))


def _run(name: str, folder: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    work = folder / "cwd"
    work.mkdir()
    env = {**os.environ, "FORECAST_REPO": str(ROOT), "FORECAST_NOTEBOOK_OUT": str(folder / "out"),
           "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    client = NotebookClient(notebook, km=_kernel(folder), timeout=CELL_TIMEOUT,
                            resources={"metadata": {"path": str(work)}})
    # raises CellExecutionError naming the cell and the traceback; the kernel is shut down either way
    # (nbclient keeps a kernel it was handed alive, holding its memory until the worker exits)
    client.execute(env=env, cleanup_kc=True)
    return notebook


def _text(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook printed or displayed as text."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                parts += [output.data.get(kind, "") for kind in ("text/plain", "text/markdown", "text/html")]
    return "\n".join(parts)


def _images(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in output.get("data", {}) for cell in notebook.cells for output in cell.get("outputs", []))


EXPECTED = {
    # the row accounting adds up, the shipped cube is what ingest gives, and the aggregation keeps totals
    "01_quickstart": ["rows in 36,821 = kept 36,204 + quarantined 617: True", "same cube as the shipped sample: True",
                      "districts vs regions: 10,051,785 vs 10,051,785", "unknown area name"],
    # the model beside the five baselines, read back from MLflow
    "02_backtest": ["lightgbm_median", "seasonal_naive", "historical_mean", "skill_mase_vs_seasonal_naive",
                    "metrics.mase_h1", "forecasts.parquet"],
    # the trigger's scores per route, a ranking with the unassessed listed, the fairness verdict
    "03_prioritize_and_fairness": ["hit_rate", "logistic", "districts ranked", "stale: no data since",
                                   "fairness check", "idp_share_2014"],
    # the card, DEMO sign-offs, the gate's table and its verdict
    "04_review_and_release": ["NOT REVIEWED", "skill vs seasonal_naive (mase)", "sign-offs valid",
                              # the review conditions pass with the DEMO sign-offs: what fails is the model
                              "review problems: [] | approvals: {'technical': ['DEMO technical reviewer'], "
                              "'ethics': ['DEMO ethics reviewer']}",
                              "REFUSED:", "nothing registered", "fail: level ratio",
                              "NOT RELEASED — for review only"],
}
FIGURES = {"01_quickstart": 2, "02_backtest": 2, "03_prioritize_and_fairness": 2, "04_review_and_release": 0}


def test_every_notebook_is_tested():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_stored_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code), \
        f"{name}: clear the outputs before committing (Kernel > Restart & Clear Output)"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_top_to_bottom_and_shows_its_results(name, tmp_path):
    before = sorted(NOTEBOOKS.iterdir())
    notebook = _run(name, tmp_path)
    text = _text(notebook)
    for expected in EXPECTED[name]:
        assert expected in text, f"{name}: {expected!r} not in its outputs"
    assert _images(notebook) >= FIGURES[name], f"{name}: fewer than {FIGURES[name]} figures shown"
    assert sorted(NOTEBOOKS.iterdir()) == before, f"{name}: wrote into notebooks/"
    assert list((tmp_path / "cwd").iterdir()) == [], f"{name}: wrote into the kernel's working folder"
