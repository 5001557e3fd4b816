"""What the covariates are worth: one backtest of the sample with and without each covariate family.

    python benchmarks/ablation.py                   # ~5 min on 2 idle cores; MLflow runs in ./mlflow.db
    python benchmarks/ablation.py --tracking-uri sqlite:///out/ablation/mlflow.db --out out/ablation \
        --artifacts out/ablation/mlartifacts       # what `make ablation` runs

One backtest of the shipped Somalia sample (the origins of the README's table: 12 scored origins
2022-07..2023-06, 12 earlier ones calibrating the intervals, horizons 1-6) holding
``models/lightgbm_median.yaml`` (every covariate), ``models/ablation/no_covariates.yaml``
(displacement data only) and one ablation per covariate family (``models/ablation/no_*.yaml``:
rain and drought, conflict, markets, IPC, origin pressure), beside the five baselines. Every
model is a child run of one MLflow parent run; the table below goes to the parent as an artifact.

Prints a Markdown table per model: MASE, RMSLE, CRPS, 80% coverage and level ratio at h1/h3/h6,
and the ``surge`` trigger's hit rate and false-alarm ratio at lead 3 (forecast route); then the
issue's goals, measured: the best model's RMSLE gain over the best baseline at h1-3, and whether
the trigger reaches a hit rate of 0.5 at a false-alarm ratio of at most 0.5. Read, never asserted.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SPECS = [ROOT / "models" / "lightgbm_median.yaml",
         *(ROOT / "models" / "ablation" / f"no_{k}.yaml"
           for k in ("covariates", "rain", "conflict", "markets", "ipc", "pressure"))]
TRIGGERS = ROOT / "models" / "triggers.yaml"
HORIZONS = (1, 3, 6)
METRICS = ("mase", "rmsle", "crps", "coverage80", "level_ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--experiment", default="ablation")
    parser.add_argument("--artifacts", type=Path, default=None,
                        help="Folder of the experiment's artifacts when it is new (default: MLflow's choice)")
    args = parser.parse_args()

    import forecast
    from forecast.backtest import RollingOrigin, backtest
    from forecast.triggers import evaluate_triggers, load_triggers
    from forecast.tracking import log_artifact, log_backtest, prepare_store

    if args.tracking_uri:
        prepare_store(args.tracking_uri, args.experiment, artifacts=args.artifacts)

    cube = forecast.load_somalia()
    specs = [forecast.load_spec(p) for p in SPECS]
    triggers = load_triggers(TRIGGERS)
    start = time.perf_counter()
    result = backtest(cube, specs, folds=RollingOrigin(n_origins=12, calibration_origins=12))
    seconds = time.perf_counter() - start
    rows = []
    for name in result.models:
        evaluation = evaluate_triggers(result, cube, triggers, model=name, routes=("forecast",))
        m = evaluation.metrics()
        lead3 = m[(m["trigger"] == "surge") & (m["lead"] == 3)].iloc[0]
        rows.append({"model": name, "hit_rate_l3": lead3["hit_rate"], "false_alarm_ratio_l3": lead3["false_alarm_ratio"]})
    triggers_table = pd.DataFrame(rows).set_index("model")
    scores = result.scores()
    table = _table(scores, triggers_table, result.models)
    args.out.mkdir(parents=True, exist_ok=True)
    markdown = args.out / "ablation.md"
    text = _markdown(table) + "\n\n" + _goals(scores, triggers_table, [s.name for s in result.specs if s.kind == "series"])
    markdown.write_text(text + "\n", encoding="utf-8")
    table.to_csv(args.out / "ablation.csv")
    from forecast.datasets._somalia import SAMPLE_MANIFEST

    manifest = json.loads(SAMPLE_MANIFEST.read_text(encoding="utf-8"))
    run_id = log_backtest(result, manifest=manifest, experiment=args.experiment, tracking_uri=args.tracking_uri)
    log_artifact(run_id, markdown, "ablation", tracking_uri=args.tracking_uri)
    print(text)
    print(f"\nbacktest {seconds / 60:.1f} min; MLflow parent run {run_id} (experiment {args.experiment!r}); "
          f"table: {markdown}")


def _table(scores: pd.DataFrame, triggers: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    wide = scores[scores["horizon"].isin(HORIZONS)].pivot(index="model", columns="horizon", values=list(METRICS))
    wide.columns = [f"{m}_h{h}" for m, h in wide.columns]
    return wide.join(triggers).loc[models]


def _markdown(table: pd.DataFrame) -> str:
    header = ["model"] + [f"{m} h{h}" for m in METRICS for h in HORIZONS] + ["surge hit rate l3", "false alarms l3"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, r in table.iterrows():
        cells = [name]
        for m in METRICS:
            for h in HORIZONS:
                v = r[f"{m}_h{h}"]
                cells.append(f"{v:,.0f}" if m == "crps" else f"{v:.2f}")
        cells += [f"{r['hit_rate_l3']:.2f}", f"{r['false_alarm_ratio_l3']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _goals(scores: pd.DataFrame, triggers: pd.DataFrame, baselines: list[str]) -> str:
    early = scores[scores["horizon"].isin((1, 2, 3))].groupby("model")["rmsle"].mean()
    models = [m for m in early.index if m not in baselines]
    best, base = early[models].idxmin(), early[baselines].idxmin()
    gain = 1 - early[best] / early[base]
    reached = triggers[(triggers["hit_rate_l3"] >= 0.5) & (triggers["false_alarm_ratio_l3"] <= 0.5)]
    return (f"RMSLE, mean of h1-3: best model {best} {early[best]:.3f}, best baseline {base} {early[base]:.3f}: "
            f"{gain:.1%} better (goal: 17%).\n"
            f"surge trigger at lead 3: hit rate >= 0.5 at false-alarm ratio <= 0.5 reached by "
            f"{', '.join(reached.index) or 'no model'} (best hit rate {triggers['hit_rate_l3'].max():.2f}).")


if __name__ == "__main__":
    main()
