"""Our backtest beside mlforecast and statsforecast on synthetic DTM-style panels, in one run.

    make bench                                         # the two default sizes, every tool (~15 min)
    python benchmarks/bench.py --sizes 200x96,2000x120,10000x120
    python benchmarks/bench.py --sizes 2000x120 --skip-autoets --tools ours_lightgbm,mlforecast,floor
    python benchmarks/bench.py --tool ours_lightgbm --size 2000x120 --profile out/ours.prof

Every tool sees the same panel (``forecast.datasets.make_panel(n_areas, n_months, seed=0)``,
target ``arrivals`` with unrecorded months read as 0, as our spec resolves it), forecasts the
same 12 origins (the last 12 with 6 months ahead known) at horizons 1-6, and is scored by the
same code (``forecast.backtest.score``, our per-area MASE scale). Tools:

- ``ours_lightgbm``: our backtest of benchmarks/specs/lightgbm_like_mlforecast.yaml (no baselines);
- ``ours_whole``: what a user runs: the five baselines, per-area ETS (models/ets.yaml) and that
  LightGBM, point forecasts only (quantile 0.5), as the peers give;
- ``mlforecast``: ``MLForecast.cross_validation`` with LightGBM, the issue's settings (recursive);
- ``mlforecast_direct``: the same with ``max_horizon=6`` (one model per horizon, as our
  ``--strategy direct``; the spec is recursive, as mlforecast's default);
- ``statsforecast``: ``StatsForecast.cross_validation`` with SeasonalNaive and AutoETS;
- ``floor``: 12 LightGBM trainings on pre-built Datasets of our 12 training matrices (the least
  the LightGBM backtest can cost: no binning, no forecasts, no bookkeeping).

Each tool runs in its own Python process (this script with ``--tool``), so its peak memory is
its own; the wall time covers the tool's work only (not imports, the panel or the peers'
long frame). Prints a table per size, the ratios, and ends with one JSON line, also written to
benchmarks/results/bench.json. Timings are for reading, never asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
LGBM_SPEC = ROOT / "benchmarks" / "specs" / "lightgbm_like_mlforecast.yaml"
ETS_SPEC = ROOT / "models" / "ets.yaml"
OUT = ROOT / "benchmarks" / "results" / "bench.json"
TOOLS = ("ours_lightgbm", "ours_whole", "mlforecast", "mlforecast_direct", "statsforecast", "floor")
H, N_WINDOWS = 6, 12
HORIZONS = list(range(1, H + 1))
PEER_TOOLS = ("mlforecast", "statsforecast")  # the whole comparison's peers


@dataclass(frozen=True)
class Size:
    n_areas: int
    n_months: int

    @classmethod
    def parse(cls, text: str) -> Size:
        try:
            areas, months = (int(part) for part in text.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"a size is AREASxMONTHS, e.g. 2000x120; got {text!r}") from None
        return cls(areas, months)

    def __str__(self) -> str:
        return f"{self.n_areas}x{self.n_months}"


# ---------------------------------------------------------------------------------------------
# The data every tool shares, and the one scorer
# ---------------------------------------------------------------------------------------------

def load_data(size: Size):
    """The seeded synthetic cube and our target panel (arrivals, unrecorded months read as 0)."""
    from forecast.datasets import make_panel
    from forecast.features import build_features

    cube = make_panel(size.n_areas, size.n_months, seed=0, with_flows=False)
    panel = build_features(cube, "arrivals", families=["lags"], missing_target="zero").panel
    return cube, panel


def scored_origins(n_times: int) -> list[int]:
    """Month indices of our 12 scored origins: the last 12 with ``H`` months ahead in the data."""
    from forecast.backtest import RollingOrigin

    return RollingOrigin(n_origins=N_WINDOWS, calibration_origins=0, step=1).origins(n_times, H)[1]


def long_frame(panel) -> pd.DataFrame:
    """Our target panel as the peers' long frame (unique_id, ds, y): every tool sees the same y."""
    frame = pd.DataFrame(panel.y, index=panel.areas, columns=panel.time).stack(future_stack=True)
    frame = frame.rename("y").rename_axis(["unique_id", "ds"]).reset_index()
    frame = frame.dropna(subset=["y"])  # before recording starts: no rows, as in our backtest
    months = frame.groupby("unique_id")["ds"].agg(["min", "max", "size"])
    span = (months["max"].dt.year - months["min"].dt.year) * 12 + months["max"].dt.month - months["min"].dt.month + 1
    if (span != months["size"]).any():  # the peers' lags count rows, so a gap would shift them
        raise SystemExit(f"the target has gaps inside {int((span != months['size']).sum())} series; "
                         "the peers would misread their lags")
    return frame


def truth_frame(panel, origins: list[int]) -> pd.DataFrame:
    """What every forecast is scored against: origin, horizon, area, time, actual, scale.

    The same rows and per-area MASE scale as our backtest (areas with any history at the origin).
    """
    from forecast.backtest import mase_scale

    hs = np.asarray(HORIZONS)
    parts = []
    for o in origins:
        history = panel.y[:, : o + 1]
        keep = ~np.isnan(history).all(axis=1)
        n = int(keep.sum())
        parts.append(pd.DataFrame({
            "origin": panel.time[o], "horizon": np.tile(hs, n),
            "area": np.repeat(panel.areas[keep].to_numpy(), len(hs)),
            "time": np.tile(panel.time[o + hs], n),
            "actual": panel.y[keep][:, o + hs].ravel(),
            "scale": np.repeat(mase_scale(history)[keep], len(hs)),
        }))
    return pd.concat(parts, ignore_index=True)


def mase_table(truth: pd.DataFrame, forecasts: pd.DataFrame) -> dict[str, dict]:
    """Per model: MASE at horizons 1-6 and the rows scored, with ``forecast.backtest.score``.

    ``forecasts`` has model, origin, horizon, area, point. A truth row a model did not forecast
    keeps a NaN point, so its MASE is NaN (never dropped silently).
    """
    from forecast.backtest import score

    keys = ["origin", "horizon", "area"]
    out = {}
    for model, part in forecasts.groupby("model", sort=False):
        rows = truth.merge(part[[*keys, "point"]], on=keys, how="left", validate="one_to_one")
        table = score(rows.assign(model=model), by=("model", "horizon")).set_index("horizon")
        out[str(model)] = {"mase": [float(table.loc[h, "mase"]) for h in HORIZONS],
                           "n": int(table["n"].iloc[0]), "missing": int(rows["point"].isna().sum())}
    return out


def check_origins(tool: str, got, expected) -> None:
    got, expected = sorted(pd.DatetimeIndex(got)), sorted(pd.DatetimeIndex(expected))
    if got != expected:
        raise SystemExit(f"{tool}: its origins differ from ours, so the scores would not compare.\n"
                         f"  ours:  {_months(expected)}\n  {tool}: {_months(got)}")


def _months(months) -> str:
    return ", ".join(f"{m:%Y-%m}" for m in months)


def horizon_of(frame: pd.DataFrame) -> pd.Series:
    """Months from a peer's cutoff to the forecast month."""
    return (frame["ds"].dt.year - frame["cutoff"].dt.year) * 12 + frame["ds"].dt.month - frame["cutoff"].dt.month


# ---------------------------------------------------------------------------------------------
# The tools: each returns (wall seconds, forecasts with model/origin/horizon/area/point, extras)
# ---------------------------------------------------------------------------------------------

def lgbm_spec(strategy: str | None):
    import forecast
    from forecast.errors import ForecastError

    try:
        return forecast.load_spec(LGBM_SPEC, strategy=strategy)
    except ForecastError as err:
        raise SystemExit(f"forecast.load_spec does not accept --strategy {strategy}:\n{err}") from None


def lgbm_params(spec, n_jobs: int) -> dict:
    """LightGBM's parameters as our spec's estimator sets them (see LightGBMForecaster._common)."""
    p = spec.build().get_params()
    objective = {"objective": "quantile", "alpha": 0.5} if p["point"] == "median" else {"objective": p["objective"]}
    if objective["objective"] == "tweedie":
        objective["tweedie_variance_power"] = p["tweedie_variance_power"]
    return dict(**objective, n_estimators=p["n_estimators"], learning_rate=p["learning_rate"],
                num_leaves=p["num_leaves"], min_child_samples=p["min_child_samples"],
                subsample=p["subsample"], subsample_freq=1 if p["subsample"] < 1 else 0,
                colsample_bytree=p["colsample_bytree"], reg_lambda=p["reg_lambda"], max_bin=p["max_bin"],
                random_state=p["random_state"], n_jobs=n_jobs, verbose=-1)


def our_features(cube, spec):
    """The spec's feature matrix, as our backtest builds it (families less exclude_features)."""
    return spec.feature_matrix(cube)


def _our_backtest(tool, cube, specs, baselines, origins, explain=True):
    import forecast
    from forecast.backtest import RollingOrigin

    folds = RollingOrigin(n_origins=N_WINDOWS, calibration_origins=0, step=1)
    start = time.perf_counter()
    result = forecast.backtest(cube, specs, folds=folds, baselines=baselines, explain=explain)
    wall = time.perf_counter() - start
    scored = result.scored
    check_origins(tool, scored["origin"].unique(), cube["time"].values[origins])
    return wall, scored


def run_ours_lightgbm(cube, panel, origins, args):
    spec = lgbm_spec(args.strategy)
    # like for like: the fits and forecasts mlforecast makes, without the drivers (TreeSHAP) of every
    # forecast, which mlforecast does not compute (ours_whole, what a user runs, keeps them)
    wall, scored = _our_backtest("ours_lightgbm", cube, [spec], False, origins, explain=False)
    times = []
    for _ in range(3):  # feature building alone, for its share of the backtest
        start = time.perf_counter()
        fm = our_features(cube, spec)
        times.append(time.perf_counter() - start)
    extra = {"strategy": spec.strategy, "quantiles": spec.quantiles, "features_s": statistics.median(times),
             "n_features": fm.X.shape[1], "feature_columns": list(fm.X.columns)}
    return wall, scored, extra


def run_ours_whole(cube, panel, origins, args):
    import forecast

    lgbm = lgbm_spec(args.strategy)
    shipped = forecast.load_spec(ETS_SPEC)
    # point forecasts only, as the peers give; the ETS fits areas on every core, as statsforecast.
    # --ets-refit-every N estimates its parameters every N origins and filters forward in between;
    # by default models/ets.yaml decides (every 6th origin; 1 estimates at every origin, as
    # statsforecast's refit=True does)
    update = {"quantiles": lgbm.quantiles, "params": {**shipped.params, "n_jobs": args.jobs}}
    if args.ets_refit_every is not None:
        update["refit_every"] = args.ets_refit_every
    ets = forecast.load_spec(ETS_SPEC, **update)
    wall, scored = _our_backtest("ours_whole", cube, [ets, lgbm], True, origins)
    return wall, scored, {"models": sorted(scored["model"].unique()), "ets_n_jobs": args.jobs,
                          "ets_refit_every": ets.refit_every or 1}


def run_mlforecast(cube, panel, origins, args, direct=False):
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean, RollingStd

    params = lgbm_params(lgbm_spec(args.strategy), args.jobs)
    df = long_frame(panel)
    model = MLForecast(models={"mlforecast_lgbm": lgb.LGBMRegressor(**params)}, freq="MS",
                       lags=[1, 2, 3, 6, 12],
                       lag_transforms={1: [RollingMean(3), RollingStd(3), RollingMean(12), RollingStd(12)]},
                       date_features=["month"], num_threads=args.jobs)
    name = "mlforecast_direct_lgbm" if direct else "mlforecast_lgbm"
    start = time.perf_counter()
    cv = model.cross_validation(df, n_windows=N_WINDOWS, h=H, step_size=1, refit=True,
                                max_horizon=H if direct else None)
    wall = time.perf_counter() - start
    check_origins("mlforecast", cv["cutoff"].unique(), panel.time[origins])
    frame = pd.DataFrame({"model": name, "origin": cv["cutoff"], "horizon": horizon_of(cv),
                          "area": cv["unique_id"], "point": cv["mlforecast_lgbm"]})
    features = list(getattr(model.ts, "features_order_", []))
    return wall, frame, {"lgbm_params": params, "num_threads": args.jobs, "n_features": len(features),
                         "feature_columns": features,
                         "strategy": "direct (max_horizon=6)" if direct else "recursive"}


def run_mlforecast_direct(cube, panel, origins, args):
    return run_mlforecast(cube, panel, origins, args, direct=True)


def run_statsforecast(cube, panel, origins, args):
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, SeasonalNaive

    models = [SeasonalNaive(season_length=12)] + ([] if args.skip_autoets else [AutoETS(season_length=12)])
    df = long_frame(panel)
    sf = StatsForecast(models=models, freq="MS", n_jobs=args.jobs)
    start = time.perf_counter()
    cv = sf.cross_validation(h=H, df=df, n_windows=N_WINDOWS, step_size=1, refit=True)
    wall = time.perf_counter() - start
    check_origins("statsforecast", cv["cutoff"].unique(), panel.time[origins])
    names = [str(m) for m in models]
    long = cv.melt(id_vars=["unique_id", "ds", "cutoff"], value_vars=names, var_name="model", value_name="point")
    frame = pd.DataFrame({"model": long["model"], "origin": long["cutoff"], "horizon": horizon_of(long),
                          "area": long["unique_id"], "point": long["point"]})
    return wall, frame, {"models": names, "n_jobs": args.jobs, "autoets": not args.skip_autoets}


def run_floor(cube, panel, origins, args):
    """12 LightGBM trainings, our settings, on pre-built Datasets of our 12 origins' training
    matrices (the rows our backtest fits on; 12 x 6 with ``--strategy direct``), the faster of
    two ways: two at a time with one thread each (the largest first), or one after another with
    every thread.
    Binning is not counted."""
    from concurrent.futures import ThreadPoolExecutor

    import lightgbm as lgb
    from threadpoolctl import threadpool_limits

    from forecast.models import train_rows

    spec = lgbm_spec(args.strategy)
    fm = our_features(cube, spec)
    estimator = spec.build()
    params = estimator._first_params()  # what LightGBMForecaster trains its point model with
    rounds = int(estimator.n_estimators)
    datasets = []  # recursive: one (one-month-ahead) fit per origin; direct: one per origin and horizon
    for o in origins:
        for h in [1] if spec.strategy == "recursive" else HORIZONS:
            X, y = train_rows(fm, int(o), h, spec.drop_incomplete_rows)
            datasets.append(lgb.Dataset(np.ascontiguousarray(X, dtype=np.float32), y, params=params).construct())
    rows = [d.num_data() for d in datasets]

    def train(data, threads):
        lgb.train({**params, "num_threads": threads}, data, num_boost_round=rounds)

    def side_by_side():
        # the latest origins' (largest) first, as our backtest orders them: neither thread is left
        # alone with the largest fit at the end
        with threadpool_limits(limits=1, user_api="openmp"), ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(lambda d: train(d, 1), datasets[::-1]))

    def one_after_another():
        for d in datasets:
            train(d, args.jobs)

    ways = {}
    for name, way in (("side_by_side_1thread", side_by_side), (f"sequential_{args.jobs}threads", one_after_another)):
        start = time.perf_counter()
        way()
        ways[name] = time.perf_counter() - start
    floor_12 = min(ways.values())
    extra = {"rows_per_fit": rows, "rows_mean": float(np.mean(rows)), "columns": int(fm.X.shape[1]),
             "floor_12_fits_s": floor_12, "single_fit_s": floor_12 / len(datasets), "ways_s": ways,
             "n_jobs": args.jobs}
    return floor_12, None, extra


RUNNERS = {"ours_lightgbm": run_ours_lightgbm, "ours_whole": run_ours_whole, "mlforecast": run_mlforecast,
           "mlforecast_direct": run_mlforecast_direct, "statsforecast": run_statsforecast, "floor": run_floor}


# ---------------------------------------------------------------------------------------------
# One tool in this process (the child side)
# ---------------------------------------------------------------------------------------------

class TreeMemory:
    """Samples the summed RSS of this process and its descendants (worker processes) in a thread.

    ``ru_maxrss`` sees only one process; statsforecast and our ETS fit in worker processes.
    Shared pages count once per process, so the sum errs high.
    """

    def __init__(self, every: float = 0.05):
        self.peak, self.every = 0, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            import psutil
        except ImportError:
            return
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.every)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


class Profiled:
    """cProfile of this thread and of every thread started meanwhile (joblib's fitting threads),
    merged, dumped to ``path`` and its top entries printed to stderr; nothing when ``path`` is None."""

    def __init__(self, path: Path | None):
        self.path, self.profiles = path, []

    def _start_in_thread(self, *_):
        sys.setprofile(None)  # this hook only starts the thread's own profiler
        profile = cProfile.Profile()
        self.profiles.append(profile)
        profile.enable()

    def __enter__(self):
        if self.path:
            threading.setprofile(self._start_in_thread)
            self._start_in_thread()
        return self

    def __exit__(self, *exc):
        if not self.path:
            return
        threading.setprofile(None)
        main, *others = self.profiles
        main.disable()
        stats = pstats.Stats(main, stream=sys.stderr)
        for profile in others:  # threads that have ended; their profilers stopped with them
            stats.add(profile)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        stats.dump_stats(self.path)
        print(f"profile of {len(self.profiles)} thread(s), cumulative time summed over threads:", file=sys.stderr)
        stats.sort_stats("cumulative").print_stats(30)


def rss_mb(who=resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_tool(args) -> dict:
    cube, panel = load_data(args.size)
    origins = scored_origins(panel.y.shape[1])
    truth = truth_frame(panel, origins)
    before = current_rss_mb()
    with TreeMemory() as tree, Profiled(args.profile):
        wall, forecasts, extra = RUNNERS[args.tool](cube, panel, origins, args)
        peak_self = rss_mb()  # before scoring: the peak of the panel and the tool's work
    if forecasts is not None and "actual" in forecasts:  # ours: the truth frame must be what we scored
        ours = truth.merge(forecasts, on=["origin", "horizon", "area"], suffixes=("", "_ours"))
        if len(ours) != len(forecasts) or not (np.allclose(ours["actual"], ours["actual_ours"], equal_nan=True)
                                               and np.allclose(ours["scale"], ours["scale_ours"])):
            raise SystemExit(f"{args.tool}: the benchmark's truth frame differs from our backtest's rows")
    return {"tool": args.tool, "size": str(args.size), "wall_s": wall,
            "peak_mb": max(peak_self, tree.peak / 2**20), "maxrss_self_mb": peak_self,
            "maxrss_children_mb": rss_mb(resource.RUSAGE_CHILDREN), "peak_tree_mb": tree.peak / 2**20,
            "rss_before_mb": before,
            "scores": {} if forecasts is None else mase_table(truth, forecasts), **extra}


# ---------------------------------------------------------------------------------------------
# The driver: every tool at every size, each in its own process, then the figures
# ---------------------------------------------------------------------------------------------

def child_command(args, tool: str, size: Size, out: Path) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--tool", tool, "--size", str(size),
           "--jobs", str(args.jobs), "--json-out", str(out)]
    if args.strategy:
        cmd += ["--strategy", args.strategy]
    if args.skip_autoets:
        cmd.append("--skip-autoets")
    if args.ets_refit_every is not None:
        cmd += ["--ets-refit-every", str(args.ets_refit_every)]
    return cmd


def run_child(args, tool: str, size: Size) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        start = time.perf_counter()
        env = {**os.environ, **({"OMP_WAIT_POLICY": "PASSIVE"} if args.omp_passive else {})}
        proc = subprocess.run(child_command(args, tool, size, out), capture_output=True, text=True, env=env,
                              check=False)  # a failed tool is reported, the others still run
        took = time.perf_counter() - start
        if proc.returncode != 0 or not out.exists():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            print(f"  {size} {tool}: FAILED (exit {proc.returncode}) after {took:.0f} s\n{tail}", file=sys.stderr)
            return {"tool": tool, "size": str(size), "error": tail.splitlines()[-1] if tail else "no output"}
        result = json.loads(out.read_text())
    print(f"  {size} {tool}: {result['wall_s']:.1f} s, peak {result['peak_mb']:.0f} MB "
          f"(process {took:.0f} s)", file=sys.stderr)
    return result


def figures(results: dict[str, dict]) -> dict:
    """The per-size JSON figures: walls, peaks, MASE, ratios (None where a tool did not run)."""
    ok = {t: r for t, r in results.items() if "error" not in r}
    wall = {t: r["wall_s"] for t, r in ok.items()}
    fig = {f"wall_{t}": w for t, w in wall.items()}
    fig.update({f"peak_mb_{t}": r["peak_mb"] for t, r in ok.items()})
    # per tool, then model: our LightGBM runs in both of our tools (with identical forecasts)
    fig["mase_by_tool_and_model"] = {t: {m: s["mase"] for m, s in r["scores"].items()} for t, r in ok.items()
                                     if r["scores"]}
    for t, model in (("ours_lightgbm", "ours_lightgbm"), ("mlforecast", "mlforecast_lgbm"),
                     ("mlforecast_direct", "mlforecast_direct_lgbm")):
        if t in ok:
            by_h = ok[t]["scores"][model]["mase"]
            fig[f"mase_h1_{t}"], fig[f"mase_h6_{t}"] = by_h[0], by_h[-1]
    floor12 = ok["floor"]["floor_12_fits_s"] if "floor" in ok else None
    fig["floor_12_fits"] = floor12
    fig["ratio_wall_vs_mlforecast"] = div(wall.get("ours_lightgbm"), wall.get("mlforecast"))
    fig["ratio_wall_vs_mlforecast_direct"] = div(wall.get("ours_lightgbm"), wall.get("mlforecast_direct"))
    fig["ratio_ours_vs_floor"] = div(wall.get("ours_lightgbm"), floor12)
    if "ours_lightgbm" in ok:
        fig["share_features_of_ours"] = ok["ours_lightgbm"]["features_s"] / wall["ours_lightgbm"]
        fig["strategy_ours"] = ok["ours_lightgbm"]["strategy"]
    if "ours_lightgbm" in ok and "mlforecast" in ok:
        ours = ok["ours_lightgbm"]["scores"]["ours_lightgbm"]["mase"]
        theirs = ok["mlforecast"]["scores"]["mlforecast_lgbm"]["mase"]
        fig["mase_ratio_vs_mlforecast_by_horizon"] = [a / b for a, b in zip(ours, theirs)]
        fig["ratio_peak_vs_mlforecast"] = ok["ours_lightgbm"]["peak_mb"] / ok["mlforecast"]["peak_mb"]
    peers_complete = all(t in ok for t in PEER_TOOLS) and ok["statsforecast"]["autoets"]
    fig["peers_complete"] = peers_complete
    fig["ratio_total_vs_peers"] = (div(wall.get("ours_whole"), wall["mlforecast"] + wall["statsforecast"])
                                   if peers_complete else None)
    fig.update(_best(ok))
    return fig


def div(a, b):
    return None if a is None or not b else a / b


def fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _best(ok: dict) -> dict:
    """The best model per side by mean MASE over horizons 1-6 (ours: the whole comparison)."""
    out = {}
    sides = {"ours": ["ours_whole"], "peer": list(PEER_TOOLS)}
    for side, tools in sides.items():
        models = {m: s["mase"] for t in tools if t in ok for m, s in ok[t]["scores"].items()}
        if models:
            best = min(models, key=lambda m: np.mean(models[m]))
            out[f"best_{side}_model"], out[f"best_{side}_mase_mean"] = best, float(np.mean(models[best]))
            out[f"best_{side}_mase_h1"], out[f"best_{side}_mase_h6"] = models[best][0], models[best][-1]
    if "best_ours_mase_mean" in out and "best_peer_mase_mean" in out:
        out["ratio_best_mase_vs_best_peer"] = out["best_ours_mase_mean"] / out["best_peer_mase_mean"]
    return out


def print_size(size: Size, results: dict[str, dict], fig: dict) -> None:
    print(f"\n== {size} (areas x months): 12 origins, horizons 1-6 ==")
    print(f"{'tool / model':<28}{'wall s':>9}{'peak MB':>9}{'MASE h1':>9}{'MASE h6':>9}")
    for tool, r in results.items():
        if "error" in r:
            print(f"{tool:<28}  failed: {r['error']}")
            continue
        wall = r["wall_s"]
        scores = r["scores"]
        one = next(iter(scores.values()))["mase"] if len(scores) == 1 else None
        mase = f"{one[0]:>9.3f}{one[-1]:>9.3f}" if one else ""
        label = f"{tool} ({len(r['rows_per_fit'])} trainings)" if tool == "floor" else tool
        print(f"{label:<28}{wall:>9.1f}{r['peak_mb']:>9.0f}{mase}")
        if len(scores) > 1:
            for model, s in scores.items():
                print(f"  {model:<26}{'':>18}{s['mase'][0]:>9.3f}{s['mase'][-1]:>9.3f}")
    print(f"ours / mlforecast wall:            {fmt(fig.get('ratio_wall_vs_mlforecast'))}   (target <= 0.8)")
    print(f"ours / mlforecast (direct) wall:   {fmt(fig.get('ratio_wall_vs_mlforecast_direct'))}")
    print(f"ours / floor of 12 trainings:      {fmt(fig.get('ratio_ours_vs_floor'))}   (target <= 1.1)")
    print(f"whole: ours / (mlf + statsforecast): {fmt(fig.get('ratio_total_vs_peers'))}   (target <= 0.2)"
          + ("" if fig["peers_complete"] else "   [AutoETS or a peer skipped]"))
    print(f"feature building / ours:           {fmt(fig.get('share_features_of_ours'))}   (target <= 0.10)")
    print(f"peak ours / mlforecast:            {fmt(fig.get('ratio_peak_vs_mlforecast'))}   (target <= 1)")
    if "peak_mb_ours_lightgbm" in fig:
        print(f"peak ours (like-for-like):         {fig['peak_mb_ours_lightgbm']:.0f} MB   (target < 4096 at 10000 areas)")
    if "mase_ratio_vs_mlforecast_by_horizon" in fig:
        print("MASE ours / mlforecast, h1..h6:    "
              + " ".join(f"{v:.3f}" for v in fig["mase_ratio_vs_mlforecast_by_horizon"]) + "   (target <= 1)")
    if "best_ours_model" in fig and "best_peer_model" in fig:
        print(f"best MASE (mean h1-6): ours {fig['best_ours_model']} {fig['best_ours_mase_mean']:.3f}, "
              f"peers {fig['best_peer_model']} {fig['best_peer_mase_mean']:.3f}")


def package_version(name: str) -> str | None:
    """The installed version of ``name``, None when it is not installed."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def cpu_model() -> str | None:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return platform.processor() or None
    return next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")), platform.processor())


def memory_gib() -> float | None:
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return None
    return next((int(line.split()[1]) / 2**20 for line in meminfo.read_text().splitlines()
                 if line.startswith("MemTotal")), None)


def machine() -> dict:
    return {"cpus": os.cpu_count(), "cpu_model": cpu_model(), "memory_gb": memory_gib(), "platform": platform.platform(),
            "python": platform.python_version(),
            **{name: package_version(name) for name in ("displacement-forecast", "lightgbm", "mlforecast",
                                                        "statsforecast", "statsmodels", "numpy", "pandas")},
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "load_average_at_start": os.getloadavg()[0]}


def drive(args) -> None:
    info = machine()
    print(f"bench: sizes {', '.join(map(str, args.sizes))}; tools {', '.join(args.tools)}; "
          f"{args.jobs} jobs; load {info['load_average_at_start']:.1f}", file=sys.stderr)
    report = {"sizes": {}, "machine": info,
              "settings": {"origins": N_WINDOWS, "horizons": HORIZONS, "jobs": args.jobs,
                           "strategy": args.strategy or "from the spec", "skip_autoets": args.skip_autoets,
                           "ets_refit_every": args.ets_refit_every or "from models/ets.yaml",
                           "omp_wait_policy": "PASSIVE" if args.omp_passive else os.environ.get("OMP_WAIT_POLICY"),
                           "spec": str(LGBM_SPEC.relative_to(ROOT))}}
    for size in args.sizes:
        results = {tool: run_child(args, tool, size) for tool in args.tools}
        fig = figures(results)
        fig["errors"] = {t: r["error"] for t, r in results.items() if "error" in r}
        fig["details"] = {t: {k: v for k, v in r.items() if k not in ("scores", "tool", "size")}
                          for t, r in results.items()}
        report["sizes"][str(size)] = fig
        print_size(size, results, fig)
    info["load_average_at_end"] = os.getloadavg()[0]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten: {OUT.relative_to(ROOT)}", file=sys.stderr)
    print(json.dumps(report, separators=(",", ":")))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200x96,2000x120",
                        type=lambda s: [Size.parse(p) for p in s.split(",") if p],
                        help="comma-separated AREASxMONTHS (default 200x96,2000x120)")
    parser.add_argument("--tools", default=",".join(TOOLS), type=lambda s: [t for t in s.split(",") if t],
                        help=f"comma-separated subset of {', '.join(TOOLS)} (default: all)")
    parser.add_argument("--skip-autoets", action="store_true", help="statsforecast runs SeasonalNaive only")
    parser.add_argument("--ets-refit-every", type=int, default=None,
                        help="our ETS estimates its parameters every N origins and filters forward in between "
                             "(default: as models/ets.yaml, every 6th origin; 1: at every origin; 12: once)")
    parser.add_argument("--strategy", choices=["direct", "recursive", "pooled"], default=None,
                        help="our LightGBM's multi-horizon strategy (default: the spec file's)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="cores for the peers, our ETS and the floor fit (default: all)")
    parser.add_argument("--omp-passive", action="store_true",
                        help="OMP_WAIT_POLICY=PASSIVE in every tool's process: on a busy machine, "
                             "multi-threaded LightGBM fits otherwise spin and run many times slower")
    parser.add_argument("--tool", choices=TOOLS, help="run one tool in this process (what the driver calls)")
    parser.add_argument("--size", type=Size.parse, help="with --tool: one size")
    parser.add_argument("--json-out", type=Path, help="with --tool: write the result here (default: stdout)")
    parser.add_argument("--profile", type=Path, help="with --tool: cProfile the tool's work into this file")
    args = parser.parse_args(argv)
    unknown = [t for t in args.tools if t not in TOOLS]
    if unknown:
        parser.error(f"unknown tools {unknown}; known: {', '.join(TOOLS)}")
    if args.tool and not args.size:
        parser.error("--tool needs --size")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if not args.tool:
        drive(args)
        return
    result = run_tool(args)
    text = json.dumps(result, default=str)
    if args.json_out:
        args.json_out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
