"""``forecast prioritize`` and the trigger / fairness tables of ``forecast backtest``.

The assessment itself is :func:`forecast.pipeline._assess.assess`; this module only prints.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from forecast.cli import _fail, app, out
from forecast.errors import ForecastError


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


@app.command()
def prioritize(
    run: Annotated[str, typer.Option("--run", help="MLflow run id of `forecast train --triggers ...`.")],
    top: Annotated[int, typer.Option(help="Print this many ranked areas (all are saved).")] = 10,
    trigger: Annotated[str | None, typer.Option(help="Trigger name (default: the model's first).")] = None,
    lead: Annotated[int | None, typer.Option(help="Lead time in months (default: the trigger's first).")] = None,
    cube: Annotated[Path | None, typer.Option("--cube", help="Data to forecast from (default: the cube the model was trained on).")] = None,
    weight: Annotated[str | None, typer.Option(help="Area attribute to weight the score by, e.g. population.")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the ranked list (CSV).")] = Path("out/prioritize"),
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI.")] = None,
) -> None:
    """Rank areas for anticipatory action: probability of crossing the trigger x expected arrivals.

    Forecasts from the cube's last month with the run's model, prints the top areas with the
    probability, expected arrivals and interval, the trigger threshold and how recent each
    area's data is, saves every area (unassessed ones flagged, never ranked as safe) to
    OUT/prioritize_<run>_<trigger>_lead<lead>.csv and logs it to the run.
    """
    import mlflow

    from forecast._cli_models import _release_label, _watermark
    from forecast.cube import cube_hash, load_cube

    try:
        if tracking_uri:
            mlflow.set_tracking_uri(tracking_uri)
        from forecast.tracking import get_run

        client, info = get_run(run, kind="train", purpose="prioritize needs a run of "
                               "`forecast train --triggers models/triggers.yaml`")
        path = cube or info.data.tags.get("cube_path")
        if not path:
            raise ForecastError(f"run {run} does not say which cube it was trained on; pass --cube")
        data = load_cube(path)
        try:
            trained = mlflow.pyfunc.load_model(f"runs:/{run}/model").unwrap_python_model().trained
        except Exception as error:  # MLflow raises several types for a run without a model
            raise ForecastError(f"cannot load the model of run {run}: {error}") from None
        ranking = trained.prioritize(data, trigger, lead, weight=weight)
        status = _release_label(run, tracking_uri)
    except ForecastError as error:
        _fail(error)
    ranking.insert(0, "release_status", status)  # travels with every row of the file
    _watermark(status)
    name, lead = ranking["trigger"].iloc[0], int(ranking["lead"].iloc[0])
    spec = next(t for t in trained.triggers if t.name == name)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"prioritize_{run[:8]}_{name}_lead{lead}.csv"
    ranking.to_csv(target, index=False)
    client.log_artifact(run, str(target), "prioritize")
    print_ranking(ranking, spec, str(data["time"].values[-1])[:7], top)
    if cube_hash(data) != info.data.tags.get("cube_hash"):
        out.print("note: this cube differs from the one the model was trained on (newer data is expected; "
                  "retrain if the areas or variables changed)", soft_wrap=True)
    out.print(f"ranking: {target}", soft_wrap=True)
