"""``forecast prioritize`` and the trigger / fairness tables of ``forecast backtest``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from forecast.cli import _fail, app, out
from forecast.errors import ForecastError


def evaluate(result, cube, triggers_path: Path, routes, k: int, policy_path, progress):
    """Trigger evaluation and fairness report of a backtest (what ``backtest --triggers`` adds)."""
    from forecast.fairness import area_groups, fairness_report, load_policy
    from forecast.triggers import DEFAULT_ROUTES, evaluate_triggers, load_triggers

    triggers = load_triggers(triggers_path)
    evaluation = evaluate_triggers(result, cube, triggers, routes=routes or DEFAULT_ROUTES, k=k, progress=progress)
    policy, groups = load_policy(policy_path), area_groups(cube)
    signals = evaluation.signals
    judged = signals[signals["probability"].notna()]  # an area without a threshold has no signal to judge
    fairness = {route: fairness_report(judged[judged["route"] == route], result.scored, groups,
                                       policy=policy, model=evaluation.model)
                for route in signals["route"].unique()}
    return evaluation, fairness


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


def print_fairness(reports) -> None:
    """The verdict per route, each failed check, and the groups too small to judge."""
    for route, report in (reports or {}).items():
        verdict = {True: "[green]passed[/]", False: "[bold red]FAILED[/]",
                   None: "[yellow]cannot judge[/]"}[report.passed]
        out.print(f"fairness across groups of areas, {route} route (policy {report.policy.source}): {verdict}",
                  soft_wrap=True)
        for line in report.failures:
            out.print(f"  - {line}", soft_wrap=True)
        small = report.by_group[report.by_group["status"].str.startswith("too small: ")]
        if len(small):
            shown = small.drop_duplicates(["group_column", "group"])
            out.print(f"  too small to judge (reported in fairness/{route}/fairness_by_group.csv): "
                      + ", ".join(f"{r.group_column}={r.group}" for r in shown.head(6).itertuples())
                      + (" ..." if len(shown) > 6 else ""), soft_wrap=True)


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

    from forecast.cube import cube_hash, load_cube

    try:
        if tracking_uri:
            mlflow.set_tracking_uri(tracking_uri)
        client = mlflow.MlflowClient()
        try:
            info = client.get_run(run)
        except Exception as error:  # MLflow raises several types for an unknown id
            raise ForecastError(f"no MLflow run {run!r} at {mlflow.get_tracking_uri()}: {error}") from None
        if info.data.tags.get("kind") != "train":
            raise ForecastError(f"run {run} is a {info.data.tags.get('kind', 'non-forecast')} run; prioritize "
                                "needs a run of `forecast train --triggers models/triggers.yaml`")
        path = cube or info.data.tags.get("cube_path")
        if not path:
            raise ForecastError(f"run {run} does not say which cube it was trained on; pass --cube")
        data = load_cube(path)
        trained = mlflow.pyfunc.load_model(f"runs:/{run}/model").unwrap_python_model().trained
        ranking = trained.prioritize(data, trigger, lead, weight=weight)
    except ForecastError as error:
        _fail(error)
    name, lead = ranking["trigger"].iloc[0], int(ranking["lead"].iloc[0])
    spec = next(t for t in trained.triggers if t.name == name)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"prioritize_{run[:8]}_{name}_lead{lead}.csv"
    ranking.to_csv(target, index=False)
    client.log_artifact(run, str(target), "prioritize")
    origin = str(data["time"].values[-1])[:7]
    table = Table("rank", "area", "name", "region", "P(cross)", "expected (80% interval)", "threshold",
                  "last data", title=f"areas to act on first: {name} ({spec.describe()}) within {lead} "
                  f"month(s) of {origin}")
    for _, r in ranking.head(top).iterrows():
        flag = " [bold]*[/]" if r["signal"] else ""
        table.add_row(_num(r["rank"], "{:.0f}"), r["area"], r["area_name"], r["region"],
                      f"{r['probability']:.2f}{flag}", f"{r['expected']:,.0f} ({r['lower']:,.0f}-{r['upper']:,.0f})",
                      f"{r['threshold']:,.0f}", r["last_data"])
    if not out.is_terminal:
        out.width = max(out.width, 140)
    out.print(table)
    unassessed = ranking[ranking["rank"].isna()]
    out.print(f"* signal: P >= {spec.probability:g}. {int(ranking['signal'].sum())} area(s) signalled; "
              f"{len(unassessed)} not ranked (no recent data or no threshold): "
              + (", ".join(f"{r.area_name or r.area} ({r.status})" for r in unassessed.head(5).itertuples()) or "none"),
              soft_wrap=True)
    if cube_hash(data) != info.data.tags.get("cube_hash"):
        out.print("note: this cube differs from the one the model was trained on (newer data is expected; "
                  "retrain if the areas or variables changed)", soft_wrap=True)
    out.print(f"ranking: {target}", soft_wrap=True)
