"""The package's structure holds: layers, one home for MLflow, public exports, no cycles, sizes.

docs/architecture.md draws the same layers; when a rule here changes, change the picture there.
The imports are read from the source (ast), so a violation fails here before it is ever run.
"""

from __future__ import annotations

import ast
import importlib
import shutil
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "forecast"

#: Lowest first: a package may import only the packages before it. The base modules
#: (``forecast.errors``, ``forecast._names``, ``forecast._version``) may be imported by all.
LAYERS = (
    "policy", "io", "cube", "features", "models", "backtest", "triggers", "fairness",
    "ethics", "report", "tracking", "pipeline", "datasets", "cli",
)
BASE = ("errors", "_names", "_version", "_process")

#: Modules allowed past MAX_LINES, each with the reason and the most lines it may have: a ratchet
#: (lower the number when a module shrinks; split a module rather than raise it).
MAX_LINES = 500
LARGE = {
    "forecast/models/_local.py": (717, "per-area runner, ETS, SARIMAX and the ETS fast path; pickled "
                                  "models refer to _ETSFit by this path, so a split needs an alias"),
    "forecast/backtest/_metrics.py": (690, "every metric with its reference formula beside it"),
    "forecast/ethics/_audit.py": (680, "the hash-chained log: lock, append, verify, signatures"),
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path, *, top_level_only: bool = False) -> list[tuple[str, list[str], int]]:
    """``(imported module, imported names, line)`` for every import of ``module``; imports that
    only type checkers see are left out, function-level ones are kept unless ``top_level_only``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []

    def visit(node, depth):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            nested = depth + isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            if isinstance(child, ast.Import) and not (top_level_only and depth):
                found.extend((a.name, [], child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and not (top_level_only and depth):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                found.append((target, [a.name for a in child.names], child.lineno))
            visit(child, nested)

    visit(tree, 0)
    return found


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "forecast" or len(parts) < 2:
        return None
    return parts[1]


def _resolve(target: str, names: list[str]) -> list[str]:
    """The forecast modules an import statement reaches (``from forecast.x import y`` may name a
    module ``forecast.x.y``)."""
    reached = [target]
    reached += [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
    return [m for m in reached if m == "forecast" or m.startswith("forecast.")]


def _violations_of_layers() -> list[str]:
    rank = {name: i for i, name in enumerate(LAYERS)}
    problems = []
    for module, path in MODULES.items():
        own = _package_of(module)
        if own is None or own in BASE or own == "_config":
            continue
        for target, names, line in _imports(module, path):
            for reached in _resolve(target, names):
                other = _package_of(reached)
                if other is None or other in BASE or other == own:
                    continue
                if own not in rank or other not in rank:
                    problems.append(f"{path.relative_to(ROOT)}:{line}: {own} or {other} has no layer in LAYERS")
                elif rank[other] > rank[own]:
                    problems.append(f"{path.relative_to(ROOT)}:{line}: {own} (layer {rank[own]}) imports "
                                    f"{reached} ({other}, layer {rank[other]}): lower layers never import higher ones")
    return problems


def test_packages_import_only_the_layers_below_them():
    assert _violations_of_layers() == []


def test_the_package_root_imports_no_command_line_code():
    reached = {r for t, n, _ in _imports("forecast", MODULES["forecast"]) for r in _resolve(t, n)}
    assert not {r for r in reached if _package_of(r) == "cli"}


def test_only_tracking_imports_mlflow():
    importers = sorted(
        f"{path.relative_to(ROOT)}:{line}"
        for module, path in MODULES.items()
        for target, _, line in _imports(module, path)
        if (target == "mlflow" or target.startswith("mlflow.")) and _package_of(module) != "tracking"
    )
    assert importers == []


def test_packages_use_each_others_public_exports_only():
    problems = []
    for module, path in MODULES.items():
        own = _package_of(module)
        for target, names, line in _imports(module, path):
            other = _package_of(target)
            if other is None or other == own or other in BASE:
                continue
            where = f"{path.relative_to(ROOT)}:{line}"
            if any(part.startswith("_") for part in target.split(".")[2:]):
                problems.append(f"{where}: imports the private module {target}")
            private = [n for n in names if n.startswith("_") and f"{target}.{n}" not in MODULES]
            if private:
                problems.append(f"{where}: imports private name(s) {private} from {target}")
            hidden = [n for n in names if f"{target}.{n}" in MODULES and n.startswith("_")]
            if hidden:
                problems.append(f"{where}: imports the private module(s) {hidden} of {target}")
    assert problems == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in list(graph):
        if v not in index:
            strong(v)
    return out


def test_there_are_no_import_cycles_between_packages_or_between_modules():
    packages, modules = defaultdict(set), defaultdict(set)
    for module, path in MODULES.items():
        own = _package_of(module)
        for target, names, _ in _imports(module, path):
            for reached in _resolve(target, names):
                other = _package_of(reached)
                if own and other and own != other and not {own, other} & set(BASE):
                    packages[own].add(other)
        for target, names, _ in _imports(module, path, top_level_only=True):
            for reached in _resolve(target, names):
                # a package's __init__ importing its own submodules is how exports are built
                if reached in MODULES and not (path.name == "__init__.py" and reached.startswith(module + ".")):
                    modules[module].add(reached)
    assert _cycles(packages) == []
    assert _cycles(modules) == []


@pytest.mark.parametrize("package", ["forecast", *(f"forecast.{p}" for p in LAYERS)])
def test_every_name_in_all_exists(package):
    imported = importlib.import_module(package)
    missing = [name for name in getattr(imported, "__all__", ()) if not hasattr(imported, name)]
    assert missing == []


def test_no_module_grows_past_the_line_limit_without_a_listed_reason():
    problems = []
    for path in MODULES.values():
        rel = str(path.relative_to(ROOT))
        lines = len(path.read_text(encoding="utf-8").splitlines())
        cap, _ = LARGE.get(rel, (MAX_LINES, ""))
        if lines > cap:
            problems.append(f"{rel}: {lines} lines > {cap}")
    assert problems == []
    assert all(Path(ROOT / rel).is_file() for rel in LARGE), "a listed module no longer exists: drop it from LARGE"


def test_every_package_folder_is_in_the_wheel():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    folders = {".".join(p.relative_to(ROOT).parts) for p in [PACKAGE, *PACKAGE.rglob("*")]
               if p.is_dir() and p.name != "__pycache__"}
    shipped = {"forecast._config", *(f"forecast._config.{p.name}" for p in (ROOT / "ethics").iterdir()
                                     if p.is_dir() and p.name not in ("reviews", "__pycache__")),
               "forecast._specs", *(f"forecast._specs.{p.name}" for p in (ROOT / "models").iterdir()
                                    if p.is_dir() and p.name != "__pycache__")}
    assert folders | shipped == listed


def test_no_module_sits_loose_at_the_package_root_beyond_the_base():
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.stem not in (*BASE, "__init__"))
    assert loose == []


def _tracked(*patterns: str) -> list[Path]:
    import subprocess

    listed = subprocess.run(["git", "ls-files", "--", *patterns], cwd=ROOT, capture_output=True, text=True)
    if listed.returncode != 0:  # not a git checkout (an unpacked source archive): every file counts
        return sorted(p for pattern in patterns for p in ROOT.rglob(pattern) if ".venv" not in p.parts)
    return [ROOT / line for line in listed.stdout.splitlines()]


def test_each_configuration_file_exists_once():
    files = _tracked("*.yaml", "*.yml", "*.j2")
    by_content = defaultdict(list)
    for path in files:
        by_content[path.read_bytes()].append(str(path.relative_to(ROOT)))
    assert [names for names in by_content.values() if len(names) > 1] == []
    shipped = {p.name for p in (ROOT / "ethics").rglob("*") if p.suffix in (".yaml", ".j2")}
    inside = sorted(str(p.relative_to(ROOT)) for p in files if p.is_relative_to(PACKAGE) and p.name in shipped)
    assert inside == [], "ethics/ is the one copy; the package reads it through forecast.policy.ethics_folder()"


def test_the_shipped_ethics_and_models_folders_are_read_in_place_and_carried_by_the_wheel(tmp_path):
    import subprocess
    import sys
    import zipfile

    from forecast.policy import ethics_folder, models_folder

    assert ethics_folder().resolve() == (ROOT / "ethics").resolve()
    assert models_folder().resolve() == (ROOT / "models").resolve()
    source = tmp_path / "source"  # build a copy: pip builds in place and would leave build/ here
    junk = shutil.ignore_patterns("__pycache__", "reviews", "*.jsonl")
    for name in ("forecast", "ethics", "models"):
        shutil.copytree(ROOT / name, source / name, ignore=junk)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path),
                            str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("displacement_forecast-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for rel in ("policy.yaml", "checklists/dseg.yaml", "templates/model_card.md.j2", "templates/model_card.html.j2"):
        assert f"forecast/_config/{rel}" in names
    assert not any(n.startswith("forecast/_config/reviews") or n.endswith("audit.log.jsonl") for n in names)
    # and the shipped specs, triggers and card inputs, loaded by name (load_spec("lightgbm_median"))
    for rel in ("lightgbm_median.yaml", "ets.yaml", "triggers.yaml", "cards/lightgbm_median.yaml",
                "ablation/no_rain.yaml"):
        assert f"forecast/_specs/{rel}" in names


def test_importing_the_package_loads_no_integration():
    # MLflow, plotting, the audit log's cryptography and the report renderer load on first use:
    # `import forecast` in a notebook or a Dask worker stays fast and small
    import subprocess
    import sys

    code = ("import sys, forecast; heavy = ('mlflow', 'matplotlib', 'cryptography', 'weasyprint', 'jinja2', "
            "'forecast.tracking', 'forecast.ethics', 'forecast.report', 'forecast.cli'); "
            "print(sorted(m for m in heavy if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
