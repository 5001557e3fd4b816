"""``forecast trigger-card``: a trigger's definition, backtest and ready / set / go, in HTML and Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecast.cli import _console as console
from forecast.cli._app import app, fail
from forecast.errors import ForecastError


@app.command("trigger-card")
def trigger_card_command(
    run: Annotated[str, typer.Option("--run", help="MLflow run id of `forecast train --triggers ...` (with a "
                                     "backtest of the same spec and cube).")],
    trigger: Annotated[str | None, typer.Option(help="Trigger name (default: the model's first).")] = None,
    lead: Annotated[list[int] | None, typer.Option("--lead", help="A lead of the trigger to show from the backtest "
                                                   "(repeatable; default: all its leads).")] = None,
    cost_per_activation: Annotated[float | None, typer.Option("--cost-per-activation", help="What one activation "
                                                              "costs; adds the expected yearly cost.")] = None,
    cube: Annotated[Path | None, typer.Option("--cube", help="Data to forecast ready / set / go from (default: "
                                              "the cube the model was trained on).")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Policy for the admin level the data's sensitivity "
                                                "allows (default: ethics/policy.yaml).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for trigger_card.html and trigger_card.md.")]
    = Path("out/trigger_card"),
    log: Annotated[bool, typer.Option("--log/--no-log", help="Log both files to the train run "
                                      "(trigger_card/<trigger>/).")] = True,
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI.")] = None,
) -> None:
    """Write the trigger card of a trained model, after the trigger reports of OCHA's Centre for
    Humanitarian Data.

    It holds the trigger's definition; per lead, from the backtest behind the model,
    activations per year, return period, hit rate, false-alarm ratio, precision@k and the share
    of crossings caught, each defined in plain words with the origins and years it rests on;
    with --cost-per-activation, the expected yearly cost; "ready / set / go" per district
    (signals at leads 6, 3 and 1 from the data's last month); the trigger's geographic
    condition when it has one; and the release status ("NOT RELEASED" across the top of an
    unreleased model's card).
    """
    from forecast.pipeline import build_trigger_card, write_trigger_card
    from forecast.policy import load_policy

    try:
        card = build_trigger_card(run, trigger=trigger, leads=lead or None, cost_per_activation=cost_per_activation,
                                  cube=cube, policy=None if policy is None else load_policy(policy),
                                  tracking_uri=tracking_uri)
        paths = write_trigger_card(card, out_dir, log=log, tracking_uri=tracking_uri)
    except (ForecastError, OSError) as error:
        fail(error if isinstance(error, ForecastError) else ForecastError(str(error)))
    screen = console.out

    def say(text: str) -> None:
        screen.print(text, soft_wrap=True, highlight=False, markup=False)

    def pct(value: float) -> str:
        return f"{value:.0%}" if value == value else "-"  # NaN: nothing to divide by

    m, d = card.meta, card.definition
    if m["watermark"]:
        screen.print(f"[bold red]{m['watermark']}[/]: the card says so at the top", soft_wrap=True)
    else:
        say(m["release"])
    say(f"trigger {d['name']}: {d['rule']} (activate at P >= {d['probability']:.0%})")
    for r in card.backtest:
        if not r["available"]:
            say(f"  lead {r['lead']}: {r['note']}")
            continue
        cost = "" if r["yearly_cost"] is None else f", expected yearly cost {r['yearly_cost']:,.0f}"
        say(f"  lead {r['lead']}: {r['activations_per_year']:.2f} activations a year, hit rate {pct(r['hit_rate'])}, "
            f"false-alarm ratio {pct(r['false_alarm_ratio'])} ({r['origins']} scored origins, {r['years']:.2f} "
            f"years){cost}")
    for s in card.stages:
        say(f"  {s['stage']} (lead {s['lead']}): "
            + (f"{s['signalling']} district(s) signalling" if s["available"] else s["note"]))
    for name, path in paths.items():
        say(f"{name + ':':<10}{path}")
    if log:
        say(f"logged to run {m['run_id']} under trigger_card/{d['name']}/")
