"""The pipeline's steps as library calls: ingest raw files, train a model, assess triggers; and the
run-id based operations that join MLflow (:mod:`forecast.tracking`) with the judgements of
:mod:`forecast.ethics` and the rendering of :mod:`forecast.report`.

Each step joins the lower layers (io, cube, features, models, backtest, triggers, fairness)
into one call that the CLI, the MLproject entry points and the notebooks share::

    from forecast.pipeline import ingest, train
    result = ingest(["dtm.csv"], "dtm", areas="adm2.geojson")
    trained = train(result.cube, spec, triggers=triggers)

What if the last season had failed? The same model, on covariates rewritten up to the origin::

    from forecast.pipeline import run_scenario
    result = run_scenario(trained, cube, ["rainfall=-50%", "conflict_incidents=x2"], region="Bay")
    result.table                                         # baseline vs scenario per district
    trained.scenario(["rainfall=-50%"], cube=cube)       # the same, as a method

A train run's card, review, release and report, by run id (tracking reads the evidence once,
ethics or report judges or renders it, tracking writes the outcome back)::

    from forecast.pipeline import build_card, write_card, start_review, answer, sign, review_state
    card = build_card(train_run_id)                      # fails naming any section it cannot fill
    sha256, uris = write_card(card, train_run_id)
    start_review(run_id)                                 # ethics/reviews/<run_id>.yaml
    answer(run_id, "dseg.problem.needs_based", "yes", "the AA framework, p. 3", by="amina")
    sign(run_id, "amina", "ethics", "approve")           # appended to the audit log
    review_state(run_id).problems                        # what still blocks release
    write_answers_template(run_id, "answers.csv")        # one row per open item, with its question
    answer_from_file(run_id, "answers.csv")              # all answers, or none when a row is invalid
    write_checklist_page(run_id, "review.html")          # questions, evidence links, answers so far

    from forecast.pipeline import evaluate_gate, release, release_status
    evaluate_gate(run_id).to_frame()                     # the table `forecast release` prints
    outcome = release(run_id, "somalia-arrivals", by="amina")
    outcome.released, outcome.version                    # (False, None) when refused
    release_status(run_id).label                         # "NOT RELEASED — for review only" until then

    from forecast.pipeline import build_report, log_report
    report = build_report(run_id, boundaries="som_adm2.geojson")
    log_report(report, "out/report.html")                # the next report compares with it

    from forecast.pipeline import build_trigger_card, write_trigger_card
    card = build_trigger_card(run_id, cost_per_activation=250_000)   # backtest, cost, ready / set / go
    write_trigger_card(card, "out/trigger_card")         # HTML and Markdown, also logged to the run

    from forecast.pipeline import export_run
    export_run(run_id, "hxl", "out/export")              # forecasts, ranking, metadata.json for HDX
"""

import importlib

from forecast.pipeline._assess import assess
from forecast.pipeline._ingest import Ingested, ingest
from forecast.pipeline._scenario import ScenarioResult, Shock, parse_shock, run_scenario
from forecast.pipeline._train import TrainedModel, train

#: The run-id operations and their modules. They reach MLflow (forecast.tracking), the card
#: templates, the audit log's cryptography and the report's renderer, so they load on first use
#: (PEP 562), not with ``import forecast``: a notebook that only forecasts never pays for them.
_RUN_OPERATIONS = {
    "build_card": "_card", "write_card": "_card",
    "start_review": "_review", "answer": "_review", "sign": "_review", "review_state": "_review",
    "answer_from_file": "_review", "write_answers_template": "_review", "write_checklist_page": "_review",
    "evaluate_gate": "_release", "release": "_release", "release_status": "_release",
    "build_report": "_report", "log_report": "_report",
    "build_trigger_card": "_trigger_card", "write_trigger_card": "_trigger_card",
    "export_run": "_export",
}

__all__ = [
    # the steps
    "ingest", "Ingested", "train", "TrainedModel", "assess",
    # scenarios: the same model on covariates rewritten ("what if the last season had failed")
    "run_scenario", "ScenarioResult", "Shock", "parse_shock",
    # a train run's model card
    "build_card", "write_card",
    # its review
    "start_review", "answer", "sign", "review_state",
    "write_answers_template", "answer_from_file", "write_checklist_page",
    # the release gate
    "evaluate_gate", "release", "release_status",
    # the forecast report
    "build_report", "log_report",
    # the trigger card: the trigger, its backtest, ready / set / go per district
    "build_trigger_card", "write_trigger_card",
    # exports people can publish (HXL, CSV, GeoJSON, with HDX metadata)
    "export_run",
]


def __getattr__(name: str):
    if name in _RUN_OPERATIONS:
        return getattr(importlib.import_module(f"forecast.pipeline.{_RUN_OPERATIONS[name]}"), name)
    raise AttributeError(f"module 'forecast.pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_RUN_OPERATIONS})
