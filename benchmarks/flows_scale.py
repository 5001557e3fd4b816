"""Flows at admin3 scale: ingest, features, backtest (and the same on Dask) by number of areas.

    python benchmarks/flows_scale.py                                  # 500, 5,000 and 20,000 areas
    python benchmarks/flows_scale.py --sizes 500 --dask-sizes 500     # a quick check (~30 s)
    python benchmarks/flows_scale.py --sizes 20000 --skip-backtest-above 5000
    python benchmarks/flows_scale.py --one 5000 --profile out/prof    # one size here, cProfile per step

Per size, in a fresh Python process of its own (this script with ``--one N``) so that its peak
memory is that size's own, each step timed apart:

1. ``panel``: ``forecast.datasets.make_panel(N, 120, seed=0)`` (flows on ~5 routes per area and
   month: stays and the 4 grid neighbours, zeros included).
2. ``ingest``: the panel's flow records with people > 0 (flow monitoring logs movements only)
   written as a flow-monitoring CSV (``Month End``, arrival / departure region and district
   P-codes, ``Number of Individuals``: the columns ``forecast ingest --format flows`` reads) and a
   gazetteer CSV (``pcode,name,admin_level,parent_pcode``, the admin1 regions and the areas);
   writing them is timed apart (``write``) and not counted. Then ``forecast.ingest([csv],
   "flows", areas=gazetteer)``, checked: the cube's flow records equal the panel's non-zero ones
   and every row is accounted for (rows_in = kept + quarantined, nothing quarantined).
3. ``features``: the panel's covariates (rainfall, rain_anomaly, conflict_events,
   conflict_fatalities and their ``*_observed`` masks) merged into the ingested cube, and
   ``build_features(cube, "arrivals", families=<the spec's>)``.
4. ``backtest``: ``forecast.backtest(cube, [benchmarks/specs/lightgbm_admin3.yaml], folds=
   RollingOrigin(n_origins=3, calibration_origins=3, refit_every=3))`` with the five baselines.
5. ``dask`` (``--dask-sizes``, 5,000 by default): the same backtest on a ``distributed``
   LocalCluster of 2 worker processes (one thread each), its start-up timed apart; the forecasts
   must equal the local run's exactly. Peak memory is the driver's (the workers' is listed).

Peak memory per step is the process's ``ru_maxrss`` over that step alone: before each step
garbage is collected, freed heap handed back (Arrow's pool, ``malloc_trim``) and the
high-water mark reset through ``/proc/self/clear_refs`` (where that is not allowed the marks
are cumulative and the JSON says so). It includes what the process holds when the step starts
(``rss_before_mib``: the panel, and from ``features`` on the ingested cube; the ingest's other
results are let go); the size's peak is the largest. Prints a table per size and ends with one
JSON line, also written to benchmarks/results/flows_scale.json. Timings are for reading, never
asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import cpu_model, memory_gib, package_version  # the machine, as bench.py records it

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "benchmarks" / "specs" / "lightgbm_admin3.yaml"
OUT = ROOT / "benchmarks" / "results" / "flows_scale.json"
_CHUNK = 1_000_000  # CSV rows written at a time
COVARIATES = ("rainfall", "rain_anomaly", "conflict_events", "conflict_fatalities")
STEPS = ("panel", "write", "ingest", "features", "backtest", "dask_startup", "dask")
FOLDS = {"n_origins": 3, "calibration_origins": 3, "refit_every": 3}
# PRMN-like headers (forecast/io/columns.yaml, format "flows"); P-codes, names or both
HEADERS = {
    "date": "Month End",
    "dest1_pcode": "Arrival Region Pcode", "dest2_pcode": "Arrival District Pcode",
    "orig1_pcode": "Departure Region Pcode", "orig2_pcode": "Departure District Pcode",
    "dest1_name": "Current (Arrival) Region", "dest2_name": "Current (Arrival) District",
    "orig1_name": "Previous (Departure) Region", "orig2_name": "Previous (Departure) District",
    "people": "Number of Individuals",
}


# ---------------------------------------------------------------------------------------------
# Memory and machine


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _reset_peak() -> bool:
    """Reset the process's RSS high-water mark (and so ``ru_maxrss``); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _release_memory() -> None:
    """Collect garbage and hand freed heap back to the system (Arrow's pool, glibc
    ``malloc_trim``), so that a step's peak starts from what is still in use, not from what an
    earlier step freed."""
    import ctypes
    import gc

    gc.collect()
    if "pyarrow" in sys.modules:  # pandas' text columns: Arrow's own allocator keeps freed blocks
        sys.modules["pyarrow"].default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _current_rss_mib() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def machine() -> dict:
    mem = memory_gib()
    return {"cores": os.cpu_count(), "cpu_model": cpu_model(), "memory_gib": None if mem is None else round(mem, 1),
            "platform": platform.platform(), "python": platform.python_version(),
            **{name: package_version(name) for name in ("displacement-forecast", "numpy", "pandas", "xarray",
                                                        "lightgbm", "dask", "distributed")},
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "load_average_at_start": list(os.getloadavg())}


# ---------------------------------------------------------------------------------------------
# One size, in this process


class Steps:
    """Times each step and its own peak memory; saves the result after every step, so that a
    size that fails or is killed still reports the steps it finished."""

    def __init__(self, result: dict, path: Path | None, profile: Path | None):
        self.result, self.path, self.profile = result, path, profile
        result.setdefault("seconds", {})
        result.setdefault("peak_mib_by_step", {})
        self.save()

    def save(self) -> None:
        if self.path is not None:
            self.path.write_text(json.dumps(self.result, default=str))

    def run(self, name: str, func, *args, **kwargs):
        print(f"  [{self.result['n_areas']:,} areas] {name} ...", file=sys.stderr, flush=True)
        self.result["step_running"] = name
        self.save()
        _release_memory()
        reset = _reset_peak()
        self.result["peak_per_step"] = "reset before each step" if reset else "cumulative (clear_refs not allowed)"
        self.result.setdefault("rss_before_mib", {})[name] = _current_rss_mib()
        profiler = None
        if self.profile is not None and name in ("ingest", "features", "backtest", "dask"):
            import cProfile

            profiler = cProfile.Profile()
        start = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        try:
            out = func(*args, **kwargs)
        finally:
            if profiler is not None:
                profiler.disable()
                self.profile.mkdir(parents=True, exist_ok=True)
                target = self.profile / f"{self.result['n_areas']}_{name}.prof"
                profiler.dump_stats(target)
                print(f"  profile: {target}", file=sys.stderr)
        self.result["seconds"][name] = round(time.perf_counter() - start, 3)
        self.result["peak_mib_by_step"][name] = round(_maxrss_mib(), 1)
        self.result.pop("step_running", None)
        self.save()
        return out


def write_inputs(panel, folder: Path, layout: str):
    """The panel's non-zero flow records as a flow-monitoring CSV, and a gazetteer CSV.

    Returns (csv path, gazetteer path, the records written as a ``FlowTable``, counts)."""
    import numpy as np
    import pandas as pd

    from forecast.cube import FlowTable, flow_table

    table = flow_table(panel)
    keep = table.value > 0
    if not keep.any():
        raise ValueError("the panel has no flow record with people > 0 to write")
    written = FlowTable(table.origin[keep], table.destination[keep], table.time[keep], table.value[keep],
                        table.areas, table.months)
    areas = panel["area"].values.astype(str)
    parent = panel["parent_pcode"].values.astype(str)
    names = panel["area_name"].values.astype(str)
    region_names = dict(zip(panel["admin1_pcode"].values.astype(str), panel["admin1_name"].values.astype(str)))
    month_end = np.asarray((written.months + pd.offsets.MonthEnd(0)).strftime("%Y-%m-%d"))
    region = np.asarray([region_names[p] for p in parent])
    csv = folder / "flows.csv"
    for start in range(0, len(written), _CHUNK):  # in chunks: the file, not a frame of it all, is the output
        part = slice(start, start + _CHUNK)
        o, d = written.origin[part], written.destination[part]   # positions in the panel's areas
        columns = {HEADERS["date"]: month_end[written.time[part]]}
        if layout in ("pcodes", "both"):
            columns.update({HEADERS["dest1_pcode"]: parent[d], HEADERS["dest2_pcode"]: areas[d],
                            HEADERS["orig1_pcode"]: parent[o], HEADERS["orig2_pcode"]: areas[o]})
        if layout in ("names", "both"):
            columns.update({HEADERS["dest1_name"]: region[d], HEADERS["dest2_name"]: names[d],
                            HEADERS["orig1_name"]: region[o], HEADERS["orig2_name"]: names[o]})
        columns[HEADERS["people"]] = written.value[part].astype(np.int64)
        pd.DataFrame(columns).to_csv(csv, index=False, mode="w" if start == 0 else "a", header=start == 0)
    regions = pd.DataFrame({"pcode": list(region_names), "name": list(region_names.values()),
                            "admin_level": 1, "parent_pcode": ""})
    districts = pd.DataFrame({"pcode": areas, "name": names, "admin_level": 2, "parent_pcode": parent})
    gazetteer = folder / "gazetteer.csv"
    pd.concat([regions, districts], ignore_index=True).to_csv(gazetteer, index=False)
    pairs = np.unique(written.origin.astype(np.int64) * len(areas) + written.destination)
    counts = {
        "flow_records": int(len(table)),
        "flow_records_nonzero": int(keep.sum()),
        "csv_rows": int(keep.sum()),
        "csv_mib": round(csv.stat().st_size / 2**20, 1),
        "csv_layout": layout,
        "routes": int(len(pairs)),
        "active_routes_per_month_mean": round(float(keep.sum()) / panel.sizes["time"], 1),
        "active_routes_per_area_month": round(float(keep.sum()) / panel.sizes["time"] / len(areas), 2),
        "gazetteer_rows": len(regions) + len(districts),
    }
    return csv, gazetteer, written, counts


def check_ingest(ingested, written, n_rows: int, panel_areas) -> dict:
    """The ingested cube's flow records are the ones written, and every row is accounted for."""
    import numpy as np
    import pandas as pd

    from forecast.cube import flow_table

    files = ingested.manifest.files
    rows_in = sum(f.rows_in for f in files)
    kept = sum(f.rows_kept for f in files)
    quarantined = sum(f.rows_quarantined for f in files)
    assert rows_in == kept + quarantined, f"rows_in {rows_in} != kept {kept} + quarantined {quarantined}"
    assert quarantined == 0, f"{quarantined} rows quarantined: {files[0].quarantine_reasons}"
    assert rows_in == n_rows, f"the manifest counts {rows_in} rows in, the CSV has {n_rows}"
    assert np.array_equal(ingested.cube["area"].values.astype(str), np.asarray(panel_areas).astype(str)), \
        "the ingested cube's areas differ from the panel's"
    got = flow_table(ingested.cube).frame()
    key = ["origin", "destination", "time"]
    pd.testing.assert_frame_equal(got.sort_values(key, kind="stable").reset_index(drop=True),
                                  written.frame().sort_values(key, kind="stable").reset_index(drop=True),
                                  check_exact=True)
    return {"rows_in": rows_in, "rows_kept": kept, "rows_quarantined": quarantined,
            "flows_equal_panel_nonzero": True, "cube_flow_records": int(len(got))}


def run_one(args) -> dict:
    import forecast  # noqa: F401  (imported before the first step: not counted in it)
    from forecast.models._spec import load_spec

    n, months = args.one, args.months
    result = {"n_areas": n, "n_months": months, "load_average_at_start": list(os.getloadavg()),
              "rss_after_imports_mib": _current_rss_mib()}
    steps = Steps(result, args.result, args.profile)
    folder = Path(tempfile.mkdtemp(prefix=f"flows_scale_{n}_", dir=args.workdir))
    try:
        return _steps(args, steps, load_spec(args.spec), folder, result)
    except Exception as error:
        result["error"] = f"{type(error).__name__}: {error}"[:800]
        raise
    finally:
        result["peak_mib"] = max(result["peak_mib_by_step"].values(), default=round(_maxrss_mib(), 1))
        result["load_average_at_end"] = list(os.getloadavg())
        steps.save()
        if not args.keep_files:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            result["files"] = str(folder)


def _steps(args, steps: Steps, spec, folder: Path, result: dict) -> dict:
    import pandas as pd
    import xarray as xr

    import forecast
    from forecast.backtest import RollingOrigin, backtest
    from forecast.datasets import make_panel
    from forecast.features import build_features

    n, months = args.one, args.months
    panel = steps.run("panel", make_panel, n, months, seed=0)
    csv, gazetteer, written, counts = steps.run("write", write_inputs, panel, folder, args.layout)
    result.update(counts)
    steps.save()
    ingested = steps.run("ingest", forecast.ingest, [csv], "flows", areas=gazetteer)
    result["ingest_check"] = check_ingest(ingested, written, counts["csv_rows"], panel["area"].values)
    ingested_cube = ingested.cube  # what a later `forecast backtest --cube` would read; the rest is let go
    del written, ingested
    steps.save()

    def merge_and_build():
        wanted = [v for name in COVARIATES for v in (name, f"{name}_observed")]
        cube = xr.merge([ingested_cube, panel[wanted]], join="left", compat="override",
                        combine_attrs="override")
        fm = build_features(cube, spec.target, families=spec.features, params=spec.feature_params,
                            missing_target=spec.resolved_missing_target)
        return cube, fm

    cube, fm = steps.run("features", merge_and_build)
    columns = list(fm.X.columns)
    result.update(feature_rows=int(fm.X.shape[0]), feature_columns=len(columns),
                  flow_feature_columns=[c for c in columns if c.startswith("from_")],
                  feature_families=list(spec.features))
    del fm, panel, ingested_cube
    steps.save()

    if args.skip_backtest_above is not None and n > args.skip_backtest_above:
        result["outcome"] = f"backtest not run: {n:,} areas > --skip-backtest-above {args.skip_backtest_above:,}"
        return result
    folds = RollingOrigin(**FOLDS)
    local = steps.run("backtest", backtest, cube, [spec], folds=folds, progress=False)
    scored = local.scores()
    mase = scored.set_index(["model", "horizon"])["mase"]
    result.update(forecast_rows=int(len(local.forecasts)),
                  mase={m: [round(float(mase[(m, h)]), 4) for h in spec.horizons]
                        for m in (spec.name, "naive", "seasonal_naive")})
    steps.save()

    if n in args.dask_sizes:
        import distributed

        def start():
            cluster = distributed.LocalCluster(n_workers=args.dask_workers, threads_per_worker=1,
                                               processes=True, dashboard_address=":0")
            return cluster, distributed.Client(cluster)

        cluster, client = steps.run("dask_startup", start)
        try:
            remote = steps.run("dask", backtest, cube, [spec], folds=folds, progress=False, dask=client)
            workers = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
            result["dask_workers"] = len(workers)
            result["dask_worker_peak_mib"] = sorted(round(v, 1) for v in workers.values())
        finally:
            client.close()
            cluster.close()
        identical = local.forecasts.equals(remote.forecasts)
        try:
            pd.testing.assert_frame_equal(local.forecasts, remote.forecasts, check_exact=True)
        except AssertionError as error:
            identical = False
            result["dask_difference"] = str(error)[:500]
        result["dask_forecasts_identical"] = bool(identical)
        result["dask_forecast_rows"] = int(len(remote.forecasts))
        steps.save()
        if not identical:
            raise AssertionError("the Dask backtest's forecasts differ from the local run's: "
                                 + result.get("dask_difference", "frames differ"))
    result["outcome"] = "ok"
    return result


# ---------------------------------------------------------------------------------------------
# The driver: one process per size


def run_child(args, n: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        result_path = Path(fh.name)
    workdir = Path(tempfile.mkdtemp(prefix=f"flows_scale_{n}_", dir=args.workdir))  # removed here, even if killed
    command = [sys.executable, str(Path(__file__).resolve()), "--one", str(n), "--months", str(args.months),
               "--result", str(result_path), "--layout", args.layout, "--spec", str(args.spec),
               "--dask-sizes", ",".join(map(str, args.dask_sizes)), "--dask-workers", str(args.dask_workers)]
    if args.skip_backtest_above is not None:
        command += ["--skip-backtest-above", str(args.skip_backtest_above)]
    command += ["--workdir", str(workdir)]
    if args.profile:
        command += ["--profile", str(args.profile)]
    if args.keep_files:
        command += ["--keep-files"]
    print(f"flows_scale: {n:,} areas x {args.months} months ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    try:  # the child's progress and warnings go straight to our stderr; its result to the file
        code = subprocess.run(command, timeout=args.timeout).returncode
        failure = None if code == 0 else f"exit status {code}" + (" (killed: out of memory?)" if code < 0 else "")
    except subprocess.TimeoutExpired:
        failure = f"timed out after {args.timeout} s"
    try:
        result = json.loads(result_path.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        result = {}
    result_path.unlink(missing_ok=True)
    if not args.keep_files:
        shutil.rmtree(workdir, ignore_errors=True)
    result.setdefault("n_areas", n)
    result.setdefault("n_months", args.months)
    result["process_wall_s"] = round(time.perf_counter() - start, 1)
    if failure:
        step = result.pop("step_running", None)
        done = list(result.get("seconds", {}))
        where = f" in step {step}" if step else f" after step {done[-1]}" if done else ""
        error = result.get("error", "")
        result["outcome"] = f"failed{where}: {failure}" + (f"; {error}" if error else "")
        result.setdefault("peak_mib", max(result.get("peak_mib_by_step", {}).values(), default=None))
    return result


def fmt_cell(result: dict, step: str) -> str:
    seconds = result.get("seconds", {}).get(step)
    peak = result.get("peak_mib_by_step", {}).get(step)
    if seconds is None:
        return "-"
    return f"{seconds:,.1f} s / {peak:,.0f} MiB" if peak is not None else f"{seconds:,.1f} s"


def print_size(result: dict) -> None:
    n, m = result["n_areas"], result["n_months"]
    print(f"\n{n:,} areas x {m} months: {result.get('outcome', '?')}")
    if "csv_rows" in result:
        print(f"  flow records {result['flow_records']:,} (non-zero {result['flow_records_nonzero']:,}); "
              f"CSV {result['csv_rows']:,} rows, {result['csv_mib']:,} MiB; {result['routes']:,} routes; "
              f"active routes per month {result['active_routes_per_month_mean']:,.1f} "
              f"({result['active_routes_per_area_month']} per area)")
    if "ingest_check" in result:
        c = result["ingest_check"]
        print(f"  ingest check: rows in {c['rows_in']:,} = kept {c['rows_kept']:,} + quarantined "
              f"{c['rows_quarantined']}; cube flows equal the panel's non-zero records: "
              f"{c['flows_equal_panel_nonzero']}")
    if "feature_columns" in result:
        print(f"  features: {result['feature_rows']:,} rows x {result['feature_columns']} columns "
              f"({len(result['flow_feature_columns'])} from flows: {', '.join(result['flow_feature_columns'])})")
    print(f"  {'step':<14}{'seconds':>10}{'peak MiB':>11}")
    for step in STEPS:
        if step in result.get("seconds", {}):
            note = "  (not counted)" if step == "write" else ""
            peak = result["peak_mib_by_step"].get(step, float("nan"))
            print(f"  {step:<14}{result['seconds'][step]:>10,.1f}{peak:>11,.0f}{note}")
    if result.get("peak_mib") is not None:
        print(f"  peak RSS {result['peak_mib']:,.0f} MiB ({result.get('peak_per_step', '')})")
    if "mase" in result:
        print("  MASE h1..h3: " + "; ".join(f"{k} {' / '.join(f'{v:.3f}' for v in vals)}"
                                           for k, vals in result["mase"].items()))
    if "dask_forecasts_identical" in result:
        print(f"  dask: {result['dask_workers']} workers (peak {result['dask_worker_peak_mib']} MiB each); "
              f"forecasts identical to the local run's: {result['dask_forecasts_identical']}")


def print_summary(results: list[dict]) -> None:
    print("\nseconds / peak MiB per step (write not counted in ingest):")
    print("| step | " + " | ".join(f"{r['n_areas']:,} areas" for r in results) + " |")
    print("| --- |" + " --- |" * len(results))
    for step in STEPS:
        if any(step in r.get("seconds", {}) for r in results):
            print(f"| {step} | " + " | ".join(fmt_cell(r, step) for r in results) + " |")
    print("| peak RSS | " + " | ".join(f"{r['peak_mib']:,.0f} MiB" if r.get("peak_mib") else "-" for r in results)
          + " |")


def drive(args) -> None:
    info = machine()
    print(f"flows_scale: sizes {', '.join(f'{n:,}' for n in args.sizes)} x {args.months} months; dask at "
          f"{', '.join(f'{n:,}' for n in args.dask_sizes) or 'none'}; load {info['load_average_at_start'][0]:.2f}",
          file=sys.stderr)
    results = []
    for n in args.sizes:
        result = run_child(args, n)
        results.append(result)
        print_size(result)
    info["load_average_at_end"] = list(os.getloadavg())
    print_summary(results)
    spec = Path(args.spec).resolve()
    report = {"benchmark": "flows_scale",
              "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
              "machine": info,
              "settings": {"n_months": args.months, "seed": 0, "csv_layout": args.layout,
                           "spec": str(spec.relative_to(ROOT)) if spec.is_relative_to(ROOT) else str(args.spec),
                           "folds": FOLDS, "baselines": True, "dask_sizes": args.dask_sizes,
                           "dask_workers": args.dask_workers, "skip_backtest_above": args.skip_backtest_above,
                           "memory": "ru_maxrss of each size's own process, per step: garbage collected, "
                                     "freed heap released, high-water mark reset before each step"},
              "sizes": results}
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {out}", file=sys.stderr)
    print(json.dumps(report, separators=(",", ":")))
    if any(r.get("outcome") != "ok" and not str(r.get("outcome", "")).startswith("backtest not run") for r in results):
        sys.exit(1)


def _ints(text: str) -> list[int]:
    return [int(p.replace("_", "")) for p in text.split(",") if p.strip()]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=_ints, default=[500, 5000, 20000],
                        help="comma-separated numbers of areas (default 500,5000,20000)")
    parser.add_argument("--months", type=int, default=120, help="months per panel (default 120)")
    parser.add_argument("--dask-sizes", type=_ints, default=[5000],
                        help="sizes at which the backtest also runs on a Dask LocalCluster (default 5000; '' none)")
    parser.add_argument("--dask-workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    parser.add_argument("--skip-backtest-above", type=int, default=None,
                        help="report panel, ingest and features only above this many areas (default: run every step)")
    parser.add_argument("--layout", choices=["pcodes", "names", "both"], default="pcodes",
                        help="the CSV's area columns: region and district P-codes (default), names (as PRMN), or both")
    parser.add_argument("--spec", type=Path, default=SPEC, help=f"model spec (default {SPEC.relative_to(ROOT)})")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds one size may take (default 3600)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the CSV files go (default: the temp dir)")
    parser.add_argument("--keep-files", action="store_true", help="keep the CSV and gazetteer written")
    parser.add_argument("--out", type=Path, default=OUT, help=f"JSON output (default {OUT.relative_to(ROOT)})")
    parser.add_argument("--profile", type=Path, default=None,
                        help="cProfile the ingest, features, backtest and dask steps into this folder")
    parser.add_argument("--one", type=int, help="run one size in this process (what the driver calls)")
    parser.add_argument("--result", type=Path, help="with --one: write the result here as JSON")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.one is None:
        drive(args)
        return
    result = run_one(args)
    if args.result is None:
        print_size(result)
        print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
