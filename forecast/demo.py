"""``make demo``: run the pipeline on the shipped Somalia sample and say where everything is.

The pipeline so far: ingest the real sample (PRMN flows, rainfall and conflict counts) into
a cube with its manifest and quarantine; backtest LightGBM against the baselines on rolling
origins and log every run to MLflow; train the model on all months and log it as an MLflow
model. Later stages (the model card, review and the report) are added here as they land.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from forecast._cli_models import _print_summary
from forecast.cli import _summary
from forecast.datasets import ingest_sample, sample_files

SPEC = Path(__file__).resolve().parents[1] / "models" / "lightgbm_median.yaml"

console = Console()
if not console.is_terminal:  # piped: rich assumes 80 columns, too few for the tables
    console.width = max(console.width, 140)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forecast.demo", description=__doc__)
    parser.add_argument("--out", default="out", help="folder for the demo's outputs (default: out)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    files = sample_files()
    console.rule("[bold]displacement-forecast demo: Somalia (UNHCR PRMN, FAO SWALIM, ACLED counts)")
    console.print("1/3 ingest: " + ", ".join(p.name for k, p in files.items() if k not in ("areas", "aliases"))
                  + f" with gazetteer {files['areas'].name}")
    start = time.perf_counter()
    with console.status("ingesting the Somalia sample..."):
        result = ingest_sample()
        paths = result.write(out / "ingest")
    _summary(result.cube, result.manifest)
    console.print(f"done in {time.perf_counter() - start:.1f} s\n")

    import mlflow

    from forecast._train import train
    from forecast.backtest import RollingOrigin, backtest
    from forecast.models import load_spec
    from forecast.tracking import log_backtest, log_trained

    store = f"sqlite:///{out / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    manifest = result.manifest.model_dump(mode="json")
    spec = load_spec(SPEC)
    console.print(f"2/3 backtest: {spec.name} and five baselines, 12 scored origins (+12 calibrating "
                  f"intervals), horizons 1-6, target {spec.target}")
    start = time.perf_counter()
    with console.status("backtesting (a few minutes on two cores)..."):
        bt = backtest(result.cube, [spec], folds=RollingOrigin(n_origins=12, calibration_origins=12))
        run_id = log_backtest(bt, manifest=manifest, experiment="demo")
    _print_summary(bt)
    console.print(f"done in {time.perf_counter() - start:.1f} s\n")
    console.print(f"3/3 train {spec.name} on all months and log it as an MLflow model")
    start = time.perf_counter()
    with console.status("training..."):
        trained = train(result.cube, spec)
        _, model_uri = log_trained(trained, result.cube, manifest=manifest, experiment="demo")
    console.print(f"done in {time.perf_counter() - start:.1f} s\n")

    console.print("[bold]where things are[/]", soft_wrap=True)
    console.print(f"  cube (NetCDF):     {paths['cube']}", soft_wrap=True)
    console.print(f"  manifest (JSON):   {paths['manifest']}", soft_wrap=True)
    console.print(f"  quarantine (CSV):  {paths['quarantine']}  ({len(result.quarantine):,} rows, each with its reason)", soft_wrap=True)
    console.print(f"  MLflow runs:       {store}  (backtest run {run_id}; experiment 'demo')", soft_wrap=True)
    console.print(f"                     browse: mlflow ui --backend-store-uri {store}", soft_wrap=True)
    console.print(f"  trained model:     {model_uri}", soft_wrap=True)
    console.print(f"                     forecast predict --model {model_uri} --cube {paths['cube']} "
                  f"--tracking-uri {store}", soft_wrap=True)
    console.print("  report, model card: not produced yet - the review and report stages are still to "
                  "come (issues 4-6)")
    console.print(f"\nlook at it: forecast info {paths['cube']}", soft_wrap=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
