"""``make demo``: run the pipeline on the shipped Somalia sample and say where everything is.

Today the pipeline is the data layer: ingest the real sample (PRMN flows, rainfall and
conflict counts) into a cube with its manifest and quarantine. Later stages (backtests,
MLflow runs, the model card and the report) are added here as they land.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from forecast.cli import _summary
from forecast.datasets import ingest_sample, sample_files

console = Console()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forecast.demo", description=__doc__)
    parser.add_argument("--out", default="out", help="folder for the demo's outputs (default: out)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    files = sample_files()
    console.rule("[bold]displacement-forecast demo: Somalia (UNHCR PRMN, FAO SWALIM, ACLED counts)")
    console.print("1/1 ingest: " + ", ".join(p.name for k, p in files.items() if k not in ("areas", "aliases"))
                  + f" with gazetteer {files['areas'].name}")
    start = time.perf_counter()
    with console.status("ingesting the Somalia sample..."):
        result = ingest_sample()
        paths = result.write(out / "ingest")
    _summary(result.cube, result.manifest)
    console.print(f"done in {time.perf_counter() - start:.1f} s\n")
    console.print("[bold]where things are[/]")
    console.print(f"  cube (NetCDF):     {paths['cube']}")
    console.print(f"  manifest (JSON):   {paths['manifest']}")
    console.print(f"  quarantine (CSV):  {paths['quarantine']}  ({len(result.quarantine):,} rows, each with its reason)")
    console.print("  report, MLflow runs, model card: not produced yet - the forecasting, review and "
                  "report stages are still to come (issues 3-6)")
    console.print(f"\nlook at it: forecast info {paths['cube']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
