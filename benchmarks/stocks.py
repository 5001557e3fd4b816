"""Stocks: every shipped spec against the last round, on DTM-like IDP stock panels.

    python benchmarks/stocks.py                 # ~1.5 min on 2 cores
    python benchmarks/stocks.py --panels synthetic --out /tmp/stocks

Two panels, each one backtest with horizons 1-3, 12 scored origins and 6 earlier origins
calibrating the intervals:

- ``synthetic``: :func:`forecast.datasets.make_stock_panel` (60 areas x 72 months, seed 0):
  rounds 1-4 months apart, areas skipped in some rounds, shocks, returns, evictions, new areas,
  and the arrivals, departures and returns that explain the stock;
- ``somalia_dtm``: :func:`forecast.datasets.load_somalia_dtm`, the real IOM DTM Somalia rounds
  2016-01..2018-09 (patchy: 126 district-months in 51 districts, no covariates).

Every shipped spec runs with ``target: idp_stock`` and horizons 1-3 beside the five baselines;
a spec the panel cannot serve (SARIMAX needs a covariate a stock file lacks) is skipped with
its reason. Prints and writes (``--out``, default benchmarks/results/) a Markdown table per panel:
MASE, RMSLE and 80% coverage at h1-3, each model's MASE as a ratio of naive's, the origins where
a global model had too few rounds and naive stood in; then the goals of issue 16, measured, not
asserted: the default stock spec never worse than naive (MASE ratio <= 1.0 at h1-3), the best
model at least 10% better than naive at h1-3, 80% coverage between 0.75 and 0.85. One JSON line
per panel goes to stdout last.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = "lightgbm_stock"
SPECS = ("lightgbm_stock", "local_level", "lightgbm_median", "lightgbm", "hist_gradient_boosting", "ets", "sarimax")
HORIZONS = [1, 2, 3]


def panels(names):
    from forecast.datasets import load_somalia_dtm, make_stock_panel

    makers = {"synthetic": lambda: make_stock_panel(60, 72, seed=0), "somalia_dtm": load_somalia_dtm}
    return {name: makers[name]() for name in names}


def run(name, cube):
    import forecast
    from forecast.backtest import RollingOrigin, backtest

    specs = [forecast.load_spec(ROOT / "models" / f"{s}.yaml", target="idp_stock", horizons=HORIZONS) for s in SPECS]
    # min_train 12: the Somalia rounds span 33 months; the global models say where they lacked rounds
    folds = RollingOrigin(n_origins=12, calibration_origins=6, min_train=12)
    start = time.perf_counter()
    finished = {}  # each model's time of its last origin: its seconds are the gap to the previous one

    def progress(model, done, total):
        finished[model] = time.perf_counter()

    result = backtest(cube, specs, folds=folds, progress=progress)
    ends = [start, *finished.values()]
    seconds = {m: round(b - a, 1) for m, a, b in zip(finished, ends, ends[1:])}
    return result, time.perf_counter() - start, seconds


def table(name, result, seconds, per_model) -> tuple[str, dict]:
    scores = result.scores().set_index(["model", "horizon"])
    naive = scores.loc["naive", "mase"]
    n_scored = int(scores.loc["naive", "n"].sum())
    lines = [f"### {name}: {n_scored} scored forecasts of naive at h1-3, {seconds:.0f} s", "",
             "| model | MASE h1 | MASE h2 | MASE h3 | RMSLE h1 | RMSLE h3 | coverage80 h1 | coverage80 h3 | "
             "MASE / naive h1-3 | seconds |", "| --- | " + "--- | " * 9]
    ratios = {}
    for model in result.models:
        row = scores.loc[model]
        ratio = row["mase"] / naive
        ratios[model] = [round(float(r), 3) for r in ratio]
        cells = [*(f"{row.loc[h, 'mase']:.3f}" for h in HORIZONS), f"{row.loc[1, 'rmsle']:.3f}",
                 f"{row.loc[3, 'rmsle']:.3f}", f"{row.loc[1, 'coverage80']:.2f}", f"{row.loc[3, 'coverage80']:.2f}",
                 " / ".join(f"{r:.2f}" for r in ratio), f"{per_model.get(model, float('nan')):.1f}"]
        lines.append(f"| {'**' + model + '**' if model == DEFAULT else model} | " + " | ".join(cells) + " |")
    for model, why in result.skipped.items():
        lines.append(f"| {model} | {why} |" + " |" * 8)
    for model, notes in result.notes.items():
        lines += ["", f"- {model}: " + "; ".join(notes)]
    models = [m for m in result.models if m not in ("naive",)]
    best = min(models, key=lambda m: float(np.mean(ratios[m])))
    cover = scores.loc[DEFAULT, "coverage80"]
    goals = {
        "default_never_worse_than_naive": bool(max(ratios[DEFAULT]) <= 1.0),
        "default_ratio_h1_3": ratios[DEFAULT],
        "best_model": best, "best_ratio_h1_3": ratios[best],
        "best_10pct_better": bool(max(ratios[best]) <= 0.9),
        "default_coverage80_h1_3": [round(float(c), 3) for c in cover],
        "coverage_in_0.75_0.85": bool(((cover >= 0.75) & (cover <= 0.85)).all()),
    }
    lines += ["", f"Goals: the default ({DEFAULT}) never worse than naive: "
              f"{'reached' if goals['default_never_worse_than_naive'] else 'not reached'} "
              f"(MASE ratio {' / '.join(map(str, ratios[DEFAULT]))}); the best model ({best}) at least 10% better "
              f"than naive at h1-3: {'reached' if goals['best_10pct_better'] else 'not reached'} "
              f"({' / '.join(map(str, ratios[best]))}); the default's 80% coverage in 0.75-0.85: "
              f"{'reached' if goals['coverage_in_0.75_0.85'] else 'not reached'} "
              f"({' / '.join(map(str, goals['default_coverage80_h1_3']))}).", ""]
    return "\n".join(lines), {"panel": name, "seconds": round(seconds, 1), "n_scored_naive": n_scored,
                              "skipped": sorted(result.skipped), **goals}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panels", nargs="+", default=["synthetic", "somalia_dtm"],
                        choices=["synthetic", "somalia_dtm"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    texts, records = [], []
    for name, cube in panels(args.panels).items():
        result, seconds, per_model = run(name, cube)
        text, record = table(name, result, seconds, per_model)
        print(text, flush=True)
        texts.append(text)
        records.append(record)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stocks.md").write_text("\n".join(texts), encoding="utf-8")
    for record in records:
        print(json.dumps(record))


if __name__ == "__main__":
    main()
