"""``forecast release``: the release gate as one table, then the registry only when it passes."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer

from forecast.cli import _console as console
from forecast.cli._app import LogOpt, app, fail, open_log
from forecast.errors import ForecastError

@app.command("release")
def release_command(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of `forecast train --triggers ...` (with a model card "
                                          "and a review).", show_default=False)],
    name: Annotated[str, typer.Option("--name", help="Registered model name, e.g. somalia-arrivals.")],
    by: Annotated[str | None, typer.Option("--by", help="Who releases (recorded in the audit log; default: "
                                           "the login name).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Evaluate and print the gate only: register nothing, "
                                        "log nothing.")] = False,
    policy: Annotated[Path | None, typer.Option("--policy", help="The policy to judge by (default: ethics/policy.yaml, "
                                                "else the packaged copy); its SHA-256 is recorded with the release. "
                                                "Only the policy in force counts: the one an ethics reviewer approved "
                                                "last (`forecast review approve-policy`).")] = None,
    reviews: Annotated[Path, typer.Option("--reviews", help="Folder of review records.")] = Path("ethics/reviews"),
    log: LogOpt = None,
    key: Annotated[Path | None, typer.Option("--key", help="Sign the audit entry with this private key "
                                             "(`forecast audit keygen`).")] = None,
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI.")] = None,
) -> None:
    """Release a trained model: evaluate every condition; register it only when all pass.

    Prints one table: automated checks from the policy (skill, coverage, level ratio, fairness),
    published-output checks (identifying columns, small cells, admin level), the model card's
    integrity, the audit log, the checklist and the sign-offs, each pass / fail / insufficient
    evidence. When every condition passes, registers a new version of NAME in the MLflow
    registry, moves the alias `released` to it (load it with
    mlflow.pyfunc.load_model("models:/NAME@released")) and appends `release` to the audit log.
    Otherwise registers nothing, appends `release.refused`, and exits with status 1.
    """
    from forecast.pipeline import evaluate_gate, release
    from forecast.policy import load_policy

    who = by or getpass.getuser()
    try:
        rules = load_policy(policy)
        log = open_log(log, tracking_uri)
        if check:
            report = evaluate_gate(run_id, tracking_uri=tracking_uri, reviews_dir=reviews, log=log, policy=rules)
            outcome = None
        else:
            outcome = release(run_id, name, by=who, tracking_uri=tracking_uri, reviews_dir=reviews, log=log, key=key,
                              policy=rules)
            report = outcome.report
    except ForecastError as error:
        fail(error)
    console.print_gate(report)
    screen = console.out
    unmet = report.unmet
    if outcome is not None and outcome.released:
        screen.print(f"RELEASED: {outcome.name} version {outcome.version} (alias released); audit log entry "
                      f"{outcome.audit_seq} in {log.location}", soft_wrap=True, highlight=False, markup=False)
        screen.print(f"load it: mlflow.pyfunc.load_model({outcome.model_uri!r})", soft_wrap=True,
                      highlight=False, markup=False)
        return
    if report.passed:  # --check
        screen.print("every condition passes: `forecast release` without --check would register it",
                      soft_wrap=True, highlight=False, markup=False)
        return
    screen.print(f"REFUSED: {len(unmet)} condition(s) unmet; nothing registered", soft_wrap=True,
                  highlight=False, markup=False)
    for c in unmet:
        screen.print(f"  {c.verdict}: {c.check}: {c.measured}", soft_wrap=True, highlight=False, markup=False)
    if outcome is not None:
        where = (f"recorded as audit log entry {outcome.audit_seq}" if outcome.audit_seq is not None
                 else "not recorded: the audit log is damaged (forecast audit verify)")
        screen.print(f"refusal {where}", soft_wrap=True, highlight=False, markup=False)
    raise typer.Exit(code=1)
