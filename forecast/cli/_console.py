"""The consoles and the printers several commands share (tables of backtests, triggers, gates).

Commands read ``out`` and ``err`` from this module at call time, so that a test can widen them.
"""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

out = Console()
err = Console(stderr=True)
if not out.is_terminal:  # piped (make demo, CI logs): rich assumes 80 columns, too few for tables
    out.width = max(out.width, 140)

_STYLE = {"pass": "green", "fail": "bold red", "insufficient evidence": "yellow"}


def bar():
    return Progress(TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, transient=True)


def tracker(bar):
    tasks: dict[str, int] = {}

    def progress(name: str, done: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = bar.add_task(name, total=total)
        bar.update(tasks[name], completed=done)
    return progress


def print_cube(cube, manifest) -> None:
    from forecast._names import DESTINATION, FLOW, OBSERVED_SUFFIX, ORIGIN

    times = cube["time"].values
    out.print(f"[bold]cube[/] {cube.sizes['area']} areas (admin{cube.attrs.get('admin_level')}, keyed by "
              f"{cube.attrs.get('area_key')}) x {cube.sizes['time']} months "
              f"({str(times[0])[:7]} to {str(times[-1])[:7]}); sensitivity [bold]{cube.attrs.get('sensitivity')}[/]")
    table = Table("variable", "dims", "observed cells", "total", title="variables")
    for name, var in cube.data_vars.items():
        if name.endswith(OBSERVED_SUFFIX):
            continue
        dims = " x ".join(var.dims)
        observed = float(var.notnull().mean()) if var.size else 0.0
        if var.dims == (FLOW,):  # sparse flow records: the share of the dense cells they fill
            dims = f"{ORIGIN} x {DESTINATION} x time ({var.size:,} records)"
            observed = var.size / max(cube.sizes["area"] ** 2 * cube.sizes["time"], 1)
        table.add_row(name, dims, f"{observed:.0%}", f"{float(var.sum()):,.0f}")
    out.print(table)
    if manifest is None:
        return
    rows = Table("file", "format", "rows_in", "rows_kept", "rows_quarantined", "top reasons", title="rows")
    for f in manifest.files:
        reasons = ", ".join(f"{k} ({v})" for k, v in list(f.quarantine_reasons.items())[:3])
        rows.add_row(Path(f.path).name, f.format, f"{f.rows_in:,}", f"{f.rows_kept:,}", f"{f.rows_quarantined:,}", reasons or "-")
    out.print(rows)
    for f in manifest.files:
        if f.values_withheld:
            kinds = ", ".join(f"{k} ({v})" for k, v in f.withheld_reasons.items())
            out.print(f"{Path(f.path).name}: {f.values_withheld:,} value(s) withheld by value rules, rows kept: {kinds}",
                      soft_wrap=True)
    out.print(f"sensitivity: {manifest.sensitivity.level} ({'; '.join(manifest.sensitivity.reasons)})"
              + (f" - overridden from {manifest.sensitivity.assessed}: {manifest.sensitivity.override_reason}"
                 if manifest.sensitivity.override_reason else ""))
    out.print(f"cube hash:   {manifest.cube_hash}")


def print_levels(levels, triggers=None) -> None:
    """Every admin level of one spec, base and reconciled: MASE, 80% coverage, level ratio of the
    point and of the mean; with ``triggers`` (:func:`forecast.triggers.level_trigger_metrics`),
    each trigger's hit rate and false alarms per level."""
    scores = levels.scores()
    horizons = [h for h in (1, 3, 6) if h in set(scores["horizon"])] or sorted(set(scores["horizon"]))[:3]
    metrics = [m for m in ("mase", "coverage80", "level_ratio", "mean_level_ratio") if m in scores]
    table = Table("level", "forecast", *[f"{m} h{h}" for m in metrics for h in horizons],
                  title=f"{levels.spec.name} at every admin level, reconciled by {levels.method} (forecasts add up; "
                        "level_ratio should be near 1)")
    for (level, kind), part in scores.groupby(["level", "forecast"], sort=False):
        row = part.set_index("horizon")
        cells = [_cell(row[m].get(h, float("nan")), m) for m in metrics for h in horizons]
        table.add_row(_level_name(level), escape(str(kind)), *cells)
    if not out.is_terminal:
        out.width = max(out.width, 230)
    out.print(table)
    for level, notes in levels.notes.items():
        for note in notes:
            out.print(f"[yellow]{_level_name(level)}[/]: {escape(note)}", soft_wrap=True)
    if triggers is None or triggers.empty:
        return
    table = Table("level", "forecast", "trigger", "lead", "events", "signals", "hit rate", "false alarms",
                  title=f"triggers at every admin level (forecast route, {levels.method}); hit rate: share of "
                        "crossings signalled; false alarms: share of signals with no crossing; - : no interval")
    for _, r in triggers.iterrows():
        table.add_row(_level_name(int(r["level"])), escape(str(r["forecast"])), escape(str(r["trigger"])),
                      str(r["lead"]), str(r["events"]), str(r["signals"]), _num(r["hit_rate"]),
                      _num(r["false_alarm_ratio"]))
    out.print(table)


def _level_name(level: int) -> str:
    return f"admin{level}" if level else "national"


def _cell(value: float, metric: str) -> str:
    return "-" if value != value else f"{value:,.0f}" if metric == "crps" else f"{value:,.3f}"


def print_backtest(result) -> None:
    scores = result.scores()
    horizons = [h for h in (1, 3, 6) if h in set(scores["horizon"])] or sorted(set(scores["horizon"]))[:3]
    metrics = [m for m in ("mase", "rmsle", "crps", "coverage80") if m in scores]
    table = Table("model", *[f"{m} h{h}" for m in metrics for h in horizons],
                  title=f"backtest of {result.target}: {result.folds.n_origins} origins "
                        f"(lower is better; coverage80 should be near 0.80)")
    best = {(m, h): scores[scores["horizon"] == h][m].min() for m in metrics for h in horizons}
    for name in result.models:
        row = scores[scores["model"] == name].set_index("horizon")
        cells = []
        for m in metrics:
            for h in horizons:
                v = row[m].get(h, float("nan"))
                text = _cell(v, m)
                cells.append(f"[bold]{text}[/]" if m != "coverage80" and v == best[(m, h)] else text)
        table.add_row(name, *cells)
    for name in result.skipped:
        table.add_row(escape(name), *["[yellow]skipped[/]"] + [""] * (len(metrics) * len(horizons) - 1))
    if not out.is_terminal:  # piped or captured output is 80 columns to rich: too narrow here
        out.width = max(out.width, 160)
    out.print(table)
    for name, why in result.skipped.items():
        out.print(f"[yellow]{escape(name)}[/] {escape(why)}", soft_wrap=True)
    said: dict[str, list[str]] = {}  # one line per note, naming every model it applies to
    for name, notes in result.notes.items():
        for note in notes:
            said.setdefault(note, []).append(name)
    for note, names in said.items():
        out.print(f"[yellow]{escape(', '.join(names))}[/]: {escape(note)}", soft_wrap=True)


def print_gate(report) -> None:
    """The gate's conditions as one table, then the verdict."""
    table = Table("group", "check", "verdict", "measured", "required",
                  title=f"release gate: {report.model} (run {report.run_id})", show_lines=False)
    for c in report.conditions:
        table.add_row(escape(c.group), escape(c.check), f"[{_STYLE[c.verdict]}]{c.verdict}[/]", escape(c.measured),
                      escape(c.required))
    console = out
    if not console.is_terminal:
        console.width = max(console.width, 180)
    console.print(table)
    console.print(f"policy {report.policy_source} (sha256 {report.policy_sha256[:12]}); card sha256 "
                  f"{report.card_sha256 or '-'}; evidence: backtest run {report.backtest_run_id or '-'}",
                  soft_wrap=True, highlight=False, markup=False)


def print_tradeoff(tradeoff) -> None:
    """Skill and disparity before and after group-aware thresholds, per lead and route."""
    if tradeoff is None:
        return
    column = tradeoff["group_column"].iloc[0]
    wanted = {"skill": ("hit_rate", "false_alarm_ratio", "peirce_skill"),
              "disparity": ("hit_rate_difference", "false_alarm_ratio_difference", "equalized_odds_difference")}
    rows = tradeoff[[m in wanted.get(k, ()) for k, m in zip(tradeoff["kind"], tradeoff["metric"])]]
    table = Table("lead", "route", "measure", "before", "after", title=f"group-aware thresholds by {column} "
                  "(fitted on past origins only): overall skill vs gap between groups")
    for _, r in rows.iterrows():
        table.add_row(str(r["lead"]), str(r.get("route", "")), f"{r['kind']}: {r['metric']}",
                      _num(r["before"]), _num(r["after"]))
    out.print(table)
    if tradeoff.attrs.get("note"):
        out.print(f"  {tradeoff.attrs['note']}", soft_wrap=True)


def _num(v, fmt="{:.2f}") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float) and math.isinf(v):
        return "never"
    return fmt.format(v)


def print_triggers(evaluation) -> None:
    m = evaluation.metrics()
    k = evaluation.k
    table = Table("trigger", "lead", "route", "events", "signals", "hit rate", "false alarms", f"prec@{k}",
                  f"recall@{k}", "Brier (raw)", "skill", "activations", "return period (events)",
                  title=f"trigger signals on the scored origins ({evaluation.model}); hit rate: share of "
                        "crossings signalled; false alarms: share of signals with no crossing")
    for _, r in m.iterrows():
        table.add_row(r["trigger"], str(r["lead"]), r["route"], str(r["events"]), str(r["signals"]),
                      _num(r["hit_rate"]), _num(r["false_alarm_ratio"]), _num(r[f"precision_at_{k}"]),
                      _num(r[f"recall_at_{k}"]), f"{_num(r['brier'], '{:.3f}')} ({_num(r['brier_raw'], '{:.3f}')})",
                      _num(r["brier_skill"]), str(r["activations"]),
                      f"{_num(r['return_period'], '{:.1f}')} ({_num(r['event_return_period'], '{:.1f}')}) y")
    if not out.is_terminal:
        out.width = max(out.width, 160)
    out.print(table)
    for t in evaluation.triggers:
        out.print(f"  {t.name}: {t.describe()}; activates at P >= {t.probability:g}")
    for _, r in evaluation.regional().iterrows():  # triggers with a geographic condition (region:)
        out.print(f"  {r['trigger']} per region, lead {r['lead']}, {r['route']}: hit rate {_num(r['hit_rate'])}, "
                  f"false alarms {_num(r['false_alarm_ratio'])}, {r['activations']} activations in {r['regions']} "
                  f"regions, return period {_num(r['return_period'], '{:.1f}')} y", soft_wrap=True)


def print_fairness(reports, route: str = "forecast") -> None:
    """A table of the checks for ``route`` (the one that ranks areas), a verdict line for the rest.

    Every failed check is in the MLflow run (fairness/<route>/summary.txt and the tables).
    """
    words = {True: "[green]passed[/]", False: "[bold red]FAILED[/]", None: "[yellow]cannot judge[/]"}
    for name, report in (reports or {}).items():
        d = report.disparities
        failed, judged = int((d["status"] == "failed").sum()), int(d["passed"].notna().sum())
        out.print(f"fairness, {name} route: {words[report.passed]} ({failed} of {judged} judged checks "
                  f"failed; policy {report.policy.source})", soft_wrap=True)
    report = (reports or {}).get(route)
    if report is None:
        return
    d = report.disparities
    metrics = [m for m in ("hit_rate", "false_alarm_ratio", "equalized_odds", "mase") if m in set(d["metric"])]
    table = Table("lead", "groups", *metrics, title=f"fairness checks, {route} route: worst vs best group "
                  "where a limit is broken (ok: within the limit; n/a: fewer than 2 groups large enough)")
    for (lead, column), part in d.groupby(["lead", "group_column"], sort=False):
        cells = []
        for m in metrics:
            row = part[part["metric"] == m]
            if row.empty:
                cells.append("")
                continue
            r = row.iloc[0]
            cells.append("ok" if r["status"] == "passed" else
                         f"[red]{str(r['worst_group']).removeprefix(column + ': ')} {r['worst_value']:.2f} vs {r['best_value']:.2f}[/]"
                         if r["status"] == "failed" else "n/a")
        table.add_row(str(lead), column, *cells)
    if not out.is_terminal:
        out.width = max(out.width, 160)
    out.print(table)
    small = report.by_group[report.by_group["status"].str.startswith("too small: ")]
    if len(small):
        shown = small.drop_duplicates(["group_column", "group"])
        out.print("  groups too small to judge (reported, not compared): "
                  + ", ".join(f"{r.group_column}={r.group}" for r in shown.head(8).itertuples())
                  + (" ..." if len(shown) > 8 else ""), soft_wrap=True)


def print_ranking(ranking, spec, origin: str, top: int) -> None:
    """The top of a ranked list, then the signalled count and the areas not ranked and why."""
    name, lead = spec.name, int(ranking["lead"].iloc[0])
    table = Table("rank", "area", "name", "region", "P(cross)", "expected (80% interval)", "threshold",
                  "last data", title=f"areas to act on first: {name} ({spec.describe()}) within {lead} "
                  f"month(s) of {origin}")
    for _, r in ranking.head(top).iterrows():
        flag = " [bold]*[/]" if r["signal"] else ""
        table.add_row(_num(r["rank"], "{:.0f}"), r["area"], r["area_name"], r["region"],
                      f"{_num(r['probability'])}{flag}",
                      f"{_num(r['expected'], '{:,.0f}')} ({_num(r['lower'], '{:,.0f}')}-{_num(r['upper'], '{:,.0f}')})",
                      _num(r["threshold"], "{:,.0f}"), r["last_data"])
    if not out.is_terminal:
        out.width = max(out.width, 140)
    out.print(table)
    unassessed = ranking[ranking["rank"].isna()]
    out.print(f"* signal: P >= {spec.probability:g}. {int(ranking['signal'].sum())} area(s) signalled; "
              f"{len(unassessed)} not ranked (no recent data, no threshold or no forecast): "
              + (", ".join(f"{r.area_name or r.area} ({r.status})" for r in unassessed.head(5).itertuples())
                 or "none") + (" ..." if len(unassessed) > 5 else ""), soft_wrap=True)


def release_label(run_id: str | None, tracking_uri: str | None) -> str:
    """``released: NAME version V`` or the NOT RELEASED watermark for the model of ``run_id``."""
    from forecast.ethics import NOT_RELEASED
    from forecast.pipeline import release_status

    if not run_id:
        return NOT_RELEASED
    status = release_status(run_id, tracking_uri=tracking_uri)
    if status.why:  # the registry says released, the audit log or the files do not
        out.print(f"[bold red]not released[/]: {status.why}", soft_wrap=True)
    return status.label


def print_watermark(status: str) -> None:
    """Say loudly, before any number, that a model has not passed the release gate."""
    from forecast.ethics import NOT_RELEASED

    if status == NOT_RELEASED:
        out.print(f"[bold red]{NOT_RELEASED}[/]: this model has not passed `forecast release`; its numbers are "
                  "not for operational decisions", soft_wrap=True)
    else:
        out.print(status, soft_wrap=True, highlight=False, markup=False)


def print_scenario(result, top: int) -> None:
    """A scenario beside the baseline: its description, then the districts, largest rise in
    trigger probability first (a district the scenario changed is marked *)."""
    lo, hi = result.interval
    band = "80% interval" if (lo, hi) == ("q0.1", "q0.9") else f"{lo}-{hi}"
    window = (f"expected within {result.lead} month(s)" if result.trigger is not None
              else "expected in the month")
    columns = ["area", "name", "region", f"baseline ({band})", f"scenario ({band})", "change"]
    if result.trigger is not None:
        columns += ["P baseline", "P scenario", "P change"]
    else:
        columns.insert(3, "horizon")
    out.print(result.describe(), soft_wrap=True, highlight=False, markup=False)
    table = Table(*columns, title=f"scenario {escape(result.name)} vs baseline: {window}; * district changed "
                  "by the scenario")
    t = result.table
    rows = t if top <= 0 else t.head(top)
    for _, r in rows.iterrows():
        cells = [r["area"] + (" *" if r["shocked"] else ""), escape(r["area_name"]), escape(r["region"]),
                 _arrivals(r["baseline"], r[f"baseline_{lo}"], r[f"baseline_{hi}"]),
                 _arrivals(r["scenario"], r[f"scenario_{lo}"], r[f"scenario_{hi}"]),
                 _num(r["change"], "{:+,.0f}")]
        if result.trigger is not None:
            cells += [_num(r["baseline_probability"]), _num(r["scenario_probability"]),
                      _num(r["probability_change"], "{:+.2f}")]
        else:
            cells.insert(3, str(r["horizon"]))
        table.add_row(*cells)
    if not out.is_terminal:
        out.width = max(out.width, 160)
    out.print(table)
    if top > 0 and len(t) > top:
        out.print(f"({len(t) - top} more in the table)")


def _arrivals(point, lower, upper) -> str:
    return f"{_num(point, '{:,.0f}')} ({_num(lower, '{:,.0f}')}-{_num(upper, '{:,.0f}')})"
