"""What a user waits on: the shipped backtest command against mlforecast's cross-validation, in one run.

    pip install -e '.[bench]'                     # adds mlforecast
    python benchmarks/user_path.py                # every variant: ~10 min on 2 idle cores
    python benchmarks/user_path.py --variants shipped,outer100
    python benchmarks/user_path.py --spec hist_gradient_boosting --variants shipped,outer100   # ~8 min

Each variant runs ``forecast backtest --cube <the Somalia sample> --spec ...`` as a user types it
(a fresh process: imports, five baselines, 12 scored + 12 calibrating origins, MLflow logging to
a temporary sqlite store), timed end to end. ``--spec NAME`` picks the shipped spec
(``models/NAME.yaml``; default ``lightgbm_median``, or ``lightgbm``, ``hist_gradient_boosting``).
Variants (issue 21's levers; rounds are scikit-learn's iterations for ``hist_gradient_boosting``):

- ``shipped``: the spec as it is (``lightgbm_median``: ``quantile_n_estimators: 20``, the 0.1 and
  0.9 models take 20 rounds and the median 100; ``hist_gradient_boosting``: ``quantile_max_iter:
  30``, the Poisson point and the median 100);
- ``outer100``: the same with 100 rounds for every quantile model (the specs before issue 21);
- ``outer30``, ``outer20``, ``outer15``: ``shipped`` with 30, 20 or 15 rounds for the 0.1 and 0.9 models;
- ``refit2``: ``shipped`` with ``--refit-every 2``;
- ``calrefit2``, ``calrefit3``: ``shipped`` with ``--calibration-refit-every 2`` or ``3``: the 12
  calibration origins (whose forecasts only set the intervals) refitted every 2 or 3, every
  scored origin still refitted;
- ``pooled``: ``shipped`` with one model over every horizon (``strategy: pooled``, the
  horizon a feature) instead of one per horizon. (``strategy: recursive`` cannot take the
  spec's covariate families: it rebuilds only the target's own features from its forecasts.)
- ``no_covariates``: ``shipped`` without the covariate families' data (the ablation spec
  ``models/ablation/no_covariates.yaml``'s ``exclude_variables``: the families a backtest shows
  add nothing on the sample, the README's covariate table), so the fits see the displacement
  data's columns only;
- ``rounds1``: ``shipped`` with one boosting round per model: not a model to use, but what the
  command costs around the boosting (imports, features, baselines, calibration, TreeSHAP of
  one-tree models, MLflow logging): the part that fewer or cheaper fits cannot remove.

mlforecast's side is ``MLForecast.cross_validation`` of the LightGBM median model on the
same panel and origins (``benchmarks/backtest_vs_mlforecast.py``'s setup), timed in the same run.
Accuracy comes from each run's logged metrics (MASE, CRPS, 80% coverage at h1 / h3 / h6).
Prints a table and one JSON line last: each variant's time over mlforecast's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CUBE = ROOT / "forecast" / "datasets" / "data" / "somalia" / "somalia.nc"
MODELS = ROOT / "models"
#: name: (params changed, spec fields changed, command-line options added); "rounds" and "outer"
#: are the estimator's parameters for every model's rounds and the 0.1 / 0.9 models' (PARAMS)
VARIANTS = {"shipped": ({}, {}, []), "outer100": ({"outer": 100}, {}, []),
            "refit2": ({}, {}, ["--refit-every", "2"]), "pooled": ({}, {"strategy": "pooled"}, []),
            "calrefit2": ({}, {}, ["--calibration-refit-every", "2"]),
            "calrefit3": ({}, {}, ["--calibration-refit-every", "3"]),
            "outer30": ({"outer": 30}, {}, []), "outer20": ({"outer": 20}, {}, []),
            "outer15": ({"outer": 15}, {}, []),
            "no_covariates": ({}, {"exclude_variables": yaml.safe_load(
                (MODELS / "ablation" / "no_covariates.yaml").read_text(encoding="utf-8"))["exclude_variables"]}, []),
            "rounds1": ({"rounds": 1, "outer": 1}, {}, [])}
PARAMS = {"lightgbm": {"rounds": "n_estimators", "outer": "quantile_n_estimators"},
          "hist_gradient_boosting": {"rounds": "max_iter", "outer": "quantile_max_iter"}}
METRICS = [f"{m}_h{h}" for m in ("mase", "crps", "coverage80") for h in (1, 3, 6)]


def run_variant(name: str, folder: Path, spec_name: str = "lightgbm_median") -> dict:
    changes, fields, extra = VARIANTS[name]
    spec = yaml.safe_load((MODELS / f"{spec_name}.yaml").read_text(encoding="utf-8"))
    params = {PARAMS[spec["estimator"]][k]: v for k, v in changes.items()}
    spec["params"] = {**spec["params"], **params}
    spec.update(fields)
    spec_file = folder / f"{name}.yaml"
    spec_file.write_text(yaml.safe_dump(spec), encoding="utf-8")
    uri = f"sqlite:///{folder / name}.db"
    command = [str(Path(sys.executable).parent / "forecast"), "backtest", "--cube", str(CUBE), "--spec",
               str(spec_file), "--tracking-uri", uri, *extra]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{name}: forecast backtest failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    run_id = re.search(r"MLflow run ([0-9a-f]{32})", done.stdout).group(1)
    return {"wall_s": round(wall, 1), **_metrics(uri, run_id, spec["name"])}


def _metrics(uri: str, run_id: str, model: str) -> dict:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=uri)
    children = client.search_runs([client.get_run(run_id).info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{run_id}' and tags.model = '{model}'")
    values = children[0].data.metrics
    return {m: round(values[m], 4) for m in METRICS if m in values}


def mlforecast_seconds() -> float:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from backtest_vs_mlforecast import long_frame, mlforecast_model

    import forecast

    df = long_frame(forecast.load_somalia())
    start = time.perf_counter()
    mlforecast_model().cross_validation(df, n_windows=12, h=6, step_size=1, max_horizon=6)
    return time.perf_counter() - start


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated: {', '.join(VARIANTS)}")
    parser.add_argument("--spec", default="lightgbm_median", help="a shipped spec: models/<SPEC>.yaml")
    args = parser.parse_args(argv)
    if not (MODELS / f"{args.spec}.yaml").exists():
        raise SystemExit(f"no spec models/{args.spec}.yaml")
    estimator = yaml.safe_load((MODELS / f"{args.spec}.yaml").read_text(encoding="utf-8"))["estimator"]
    if estimator not in PARAMS:
        raise SystemExit(f"{args.spec}: variants change boosting rounds; estimator {estimator!r} has none "
                         f"(known: {', '.join(PARAMS)})")
    names = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    t_mlf = mlforecast_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        results = {name: run_variant(name, Path(tmp), args.spec) for name in names}
    print(f"{'variant':16} {'wall':>7} {'x mlforecast':>13}  " + "  ".join(f"{m:>13}" for m in METRICS))
    for name, r in results.items():
        print(f"{name:16} {r['wall_s']:6.1f}s {r['wall_s'] / t_mlf:12.1f}x  "
              + "  ".join(f"{r.get(m, float('nan')):13.3f}" for m in METRICS))
    line = {"spec": args.spec, "mlforecast_cv_s": round(t_mlf, 2), "load_average_at_end": round(os.getloadavg()[0], 2),
            **{f"{name}_over_mlforecast": round(r["wall_s"] / t_mlf, 2) for name, r in results.items()},
            "variants": results}
    print(json.dumps(line))
    return line


if __name__ == "__main__":
    main()
