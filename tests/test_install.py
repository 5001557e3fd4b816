"""The toolkit as a user installs it: the wheel in a fresh virtual environment, no checkout around it.

The wheel is built from a copy of the sources, installed without its dependencies into a new
venv (which borrows this environment's installed dependencies through a ``.pth`` line, so no
network is needed, and does not see the checkout's editable install), and used from an empty
folder: the shipped specs, triggers, card inputs, policy, checklists and sample load by name;
``forecast demo --quick`` writes the report and nothing outside ``--out``; then the README's
Python blocks run as they stand, in order, in one session, in that folder.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# what a user does first with an installed toolkit, none of it through a path of the checkout
USE = r"""
import json, sys
from pathlib import Path
import forecast
from forecast.policy import ethics_folder, load_policy, models_folder
from forecast.ethics import load_checklists, resolve_card_inputs
from forecast.datasets import ingest_sample

spec = forecast.load_spec("lightgbm_median")
triggers = forecast.load_triggers("default")
inputs = resolve_card_inputs(None, "lightgbm_median", "run")
result = ingest_sample()
print(json.dumps({
    "package": forecast.__file__, "ethics": str(ethics_folder()), "models": str(models_folder()),
    "spec": spec.name, "trigger": triggers[0].name, "card_model": inputs.model,
    "policy": load_policy().label, "checklists": len(load_checklists()),
    "areas": int(result.cube.sizes["area"]),
}))
"""


# runs each ```python block of the README, in order, in one namespace; a failure's traceback names
# the README's own line (each block is compiled at its line)
README_RUNNER = r"""
import re, sys, traceback
text = open(sys.argv[1], encoding="utf-8").read()
namespace = {"__name__": "__main__"}
for match in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M):
    line = text.count("\n", 0, match.start(1))
    code = compile("\n" * line + match.group(1), "README.md", "exec")
    try:
        exec(code, namespace)
    except Exception:
        traceback.print_exc()
        sys.exit(f"README.md: the Python block at line {line + 1} failed")
    print(f"README.md line {line + 1}: ran")
"""


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def _wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"  # a copy: pip builds in place and would leave build/ in the checkout
    junk = shutil.ignore_patterns("__pycache__", "reviews", "*.jsonl")
    for name in ("forecast", "ethics", "models"):
        shutil.copytree(ROOT / name, source / name, ignore=junk)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path / "dist"),
                            str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("displacement_forecast-*.whl")
    return wheel


def _fresh_venv(folder: Path) -> Path:
    venv.create(folder, with_pip=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies already installed here, as plain paths: their .pth files (the checkout's
    # editable install among them) are not run, so `forecast` can only come from the wheel
    paths = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "borrowed_dependencies.pth").write_text("\n".join(sorted(paths)) + "\n", encoding="utf-8")
    return python


@pytest.mark.skipif(sys.platform == "win32", reason="the venv layout differs on Windows")
def test_the_wheel_installed_in_a_fresh_venv_works_outside_any_checkout(tmp_path):
    wheel = _wheel(tmp_path)
    python = _fresh_venv(tmp_path / "venv")
    done = subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"  # no models/, no ethics/, no checkout above it
    elsewhere.mkdir()
    used = subprocess.run([str(python), "-c", USE], capture_output=True, text=True, timeout=600, cwd=elsewhere,
                          env={"PATH": str(python.parent), "HOME": str(tmp_path), "MPLBACKEND": "Agg"})
    assert used.returncode == 0, used.stderr[-3000:]
    seen = json.loads(used.stdout.strip().splitlines()[-1])
    installed = str(tmp_path / "venv")
    for key in ("package", "ethics", "models"):
        assert seen[key].startswith(installed) and not seen[key].startswith(str(ROOT)), (key, seen[key])
    assert (seen["spec"], seen["trigger"], seen["card_model"]) == ("lightgbm_median", "surge", "lightgbm_median")
    assert seen["policy"].startswith("ethics/policy.yaml (sha256 ") and seen["checklists"] >= 2
    assert seen["areas"] == 74
    assert list(elsewhere.iterdir()) == []  # nothing written where it was used

    # the whole pipeline from the installed command (--quick: fewer origins, the same steps)
    env = {"PATH": str(python.parent), "HOME": str(tmp_path), "MPLBACKEND": "Agg",
           "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
    demo = subprocess.run([str(python.parent / "forecast"), "demo", "--quick", "--out", "out"], capture_output=True,
                          text=True, timeout=900, cwd=elsewhere, env=env)
    assert demo.returncode == 0, (demo.stdout[-3000:], demo.stderr[-3000:])
    for made in ("report/report.html", "report/report.pdf", "model_card", "mlflow.db", "mlartifacts"):
        assert (elsewhere / "out" / made).exists(), made
    assert [p.name for p in elsewhere.iterdir()] == ["out"]  # the demo leaves nothing outside --out
    # the sample is high-sensitivity: no file or folder of the run is readable by anyone but its owner,
    # MLflow's database and artifacts included (the umask of a user's shell is usually 022)
    readable = [str(p.relative_to(elsewhere)) for p in [elsewhere / "out", *(elsewhere / "out").rglob("*")]
                if p.stat().st_mode & 0o077]
    assert readable == [], readable[:10]
    assert str(ROOT) not in demo.stdout
    # each step says how long it took, and the end adds them up: what a user waits on
    assert re.search(r"time: \d+ s in all; ingest \d+ s, backtest \d+ s, train \d+ s, prioritize \d+ s, "
                     r"scenario \d+ s, model card \d+ s, review and gate \d+ s, report \d+ s",
                     demo.stdout), demo.stdout[-1500:]

    # the README's Python blocks, verbatim, in order, in the folder the demo ran in
    runner = tmp_path / "run_readme.py"
    runner.write_text(README_RUNNER, encoding="utf-8")
    ran = subprocess.run([str(python), str(runner), str(ROOT / "README.md")], capture_output=True, text=True,
                         timeout=900, cwd=elsewhere, env=env)
    assert ran.returncode == 0, (ran.stdout[-2000:], ran.stderr[-4000:])
    assert ran.stdout.count(": ran") == len(python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))) >= 7
    assert (elsewhere / "report.html").is_file() and (elsewhere / "prmn" / "cube.nc").is_file()
