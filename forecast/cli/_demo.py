"""``forecast demo`` (``make demo``): run the pipeline on the shipped Somalia sample and say where everything is.

The whole pipeline: ingest the real sample (PRMN flows, FAO FSNAU district-month covariates:
rainfall, NDVI, prices, insecurity; IPC rounds; district attributes) into a cube with its
manifest, quarantine and withheld values; backtest LightGBM and per-area ETS (statsmodels)
against the baselines on rolling origins, evaluate the anticipatory-action trigger
(models/triggers.yaml) and its fairness across groups of districts, and log every run to
MLflow; train the model on all months and log it as an MLflow model; rank districts for action
from the last month; ask what a failed last season would change (a drought scenario: each
district's rain at its driest year in ten, logged under the train run); write the model card
from those runs; answer the review as clearly marked DEMO reviewers and put the model through
the release gate (ethics/policy.yaml), which registers it only when every condition passes;
write the forecast report (HTML and PDF) that an anticipatory-action team reads, with the
scenario beside the baseline. Runs go to MLFLOW_TRACKING_URI when it is set, else to a sqlite
store in the output folder.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import typer

from forecast.cli import _console as console
from forecast.cli._app import app

SPEC = Path(__file__).resolve().parents[2] / "models" / "lightgbm_median.yaml"
ETS = SPEC.with_name("ets.yaml")
TRIGGERS = SPEC.with_name("triggers.yaml")
CARDS = SPEC.parent / "cards"
#: The demo's scenario: the last season failed in every district (each month's rain at the
#: district's 10th percentile of the same month in earlier years: a one-year-in-ten dry season).
DROUGHT = ("rainfall=p10",)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the demo's outputs.")] = Path("out"),
) -> None:
    """Run the whole pipeline on the shipped Somalia sample and say where everything is.

    Ingest, backtest (LightGBM, per-area ETS and five baselines), trigger and fairness
    evaluation, training, prioritization, a drought scenario, model card, a DEMO review and the release gate,
    and the forecast report (HTML and PDF). MLflow runs go to MLFLOW_TRACKING_URI when it is
    set, else to OUT/mlflow.db with artifacts in OUT/mlartifacts.
    """
    from forecast.datasets import ingest_sample, sample_files
    from forecast.ethics import NOT_RELEASED

    out = out_dir.resolve()
    files = sample_files()
    console.out.rule("[bold]displacement-forecast demo: Somalia (UNHCR PRMN, FAO FSNAU, IPC)")
    console.out.print("1/8 ingest: " + ", ".join(p.name for k, p in files.items() if k not in ("areas", "aliases"))
                  + f" with gazetteer {files['areas'].name}")
    start = time.perf_counter()
    with console.out.status("ingesting the Somalia sample..."):
        result = ingest_sample()
        paths = result.write(out / "ingest")
    console.print_cube(result.cube, result.manifest)
    console.out.print(f"done in {time.perf_counter() - start:.1f} s\n")

    from forecast.backtest import RollingOrigin, backtest
    from forecast.models import load_spec
    from forecast.pipeline import assess, train
    from forecast.tracking import log_artifact, log_backtest, log_trained, prepare_store
    from forecast.triggers import load_triggers

    given = os.environ.get("MLFLOW_TRACKING_URI")
    store = given or f"sqlite:///{out / 'mlflow.db'}"
    # artifacts beside the store, not in ./mlruns of whatever folder the demo runs from
    prepare_store(store, "demo", artifacts=None if given else out / "mlartifacts")
    manifest = result.manifest.model_dump(mode="json")
    spec, ets = load_spec(SPEC), load_spec(ETS)
    triggers = load_triggers(TRIGGERS)
    console.out.print(f"2/8 backtest: {spec.name}, per-area {ets.name} (statsmodels) and five baselines, 12 scored origins (+12 calibrating "
                  f"intervals), horizons 1-6, target {spec.target}; trigger '{triggers[0].name}' "
                  f"({triggers[0].describe()}) and its fairness across groups of districts")
    start = time.perf_counter()
    with console.bar() as bar:
        bt = backtest(result.cube, [ets, spec], folds=RollingOrigin(n_origins=12, calibration_origins=12),
                      progress=console.tracker(bar))
    with console.out.status("evaluating the trigger and its fairness..."):
        evaluation, fairness, _ = assess(bt, result.cube, triggers)
        run_id = log_backtest(bt, manifest=manifest, experiment="demo", triggers=evaluation, fairness=fairness)
    console.print_backtest(bt)
    console.print_triggers(evaluation)
    console.print_fairness(fairness)
    console.out.print(f"done in {time.perf_counter() - start:.1f} s\n")
    console.out.print(f"3/8 train {spec.name} on all months (with the trigger) and log it as an MLflow model")
    start = time.perf_counter()
    with console.bar() as bar:
        trained = train(result.cube, spec, triggers=triggers, progress=console.tracker(bar))
    with console.out.status("logging the model..."):
        train_run, model_uri = log_trained(trained, result.cube, manifest=manifest, experiment="demo",
                                           cube_path=paths["cube"])
    console.out.print(f"done in {time.perf_counter() - start:.1f} s\n")
    lead = 3 if 3 in triggers[0].leads else triggers[0].leads[0]
    console.out.print(f"4/8 prioritize: districts ranked for action within {lead} months of the last month")
    ranking = trained.prioritize(result.cube, triggers[0].name, lead)
    ranking_path = out / "prioritize" / f"prioritize_{train_run[:8]}_{triggers[0].name}_lead{lead}.csv"
    ranking_path.parent.mkdir(parents=True, exist_ok=True)
    ranking.to_csv(ranking_path, index=False)
    log_artifact(train_run, ranking_path, "prioritize")
    console.print_ranking(ranking, triggers[0], str(result.cube["time"].values[-1])[:7], 10)
    console.out.print()

    import pandas as pd

    from forecast.pipeline import run_scenario
    from forecast.tracking import log_scenario

    last = pd.Timestamp(result.cube["time"].values[-1])
    season = f"{last - pd.DateOffset(months=2):%Y-%m}..{last:%Y-%m}"
    console.out.print(f"5/8 scenario: what if the last season ({season}) had failed everywhere, each district's rain "
                      "as low as in its driest year in ten? The same model forecasts again from the same month",
                      soft_wrap=True)
    with console.out.status("forecasting the drought scenario..."):
        drought = run_scenario(trained, result.cube, DROUGHT, months=season, trigger=triggers[0].name, lead=lead,
                               name="drought")
        scenario_run = log_scenario(train_run, drought)
    console.print_scenario(drought, 8)
    for note in drought.notes:
        console.out.print(f"note: {note}", soft_wrap=True, highlight=False, markup=False)
    console.out.print()

    from forecast.pipeline import build_card, write_card

    console.out.print(f"6/8 model card of the trained model, from its MLflow runs and models/cards/{spec.name}.yaml")
    card = build_card(train_run, CARDS / f"{spec.name}.yaml")
    card_sha, card_uris = write_card(card, train_run)
    card_dir = out / "model_card"
    card_dir.mkdir(parents=True, exist_ok=True)
    (card_dir / "model_card.md").write_text(card.to_markdown(), encoding="utf-8")
    (card_dir / "model_card.html").write_text(card.to_html(), encoding="utf-8")
    console.out.print(f"card SHA-256 {card_sha} (what reviewers will sign); status: not reviewed\n", soft_wrap=True)

    console.out.print("7/8 review and release gate: DEMO reviewers answer the checklists and sign; the gate judges "
                  "every condition under ethics/policy.yaml")
    reviews, log = out / "ethics" / "reviews", out / "ethics" / "audit.log.jsonl"
    outcome = _demo_review_and_release(train_run, reviews, log)
    console.print_gate(outcome.report)
    unmet = outcome.report.unmet
    if outcome.released:
        console.out.print(f"RELEASED as {outcome.name} version {outcome.version}: {outcome.model_uri}", soft_wrap=True)
    else:
        console.out.print(f"REFUSED: {len(unmet)} condition(s) unmet, nothing registered; every prediction and ranking "
                      f"from this model says '{NOT_RELEASED}'", soft_wrap=True)
    console.out.print()

    console.out.print(f"8/8 forecast report for anticipatory-action teams (trigger '{triggers[0].name}', lead {lead})")
    start = time.perf_counter()
    report_paths = _demo_report(train_run, out / "report", lead, drought.name)
    console.out.print(f"done in {time.perf_counter() - start:.1f} s\n")

    console.out.print("[bold]where things are[/]", soft_wrap=True)
    console.out.print(f"  forecast report:   {report_paths['html']}  (open it in a browser; A4 PDF: {report_paths['pdf']})",
                  soft_wrap=True)
    console.out.print(f"  cube (NetCDF):     {paths['cube']}", soft_wrap=True)
    console.out.print(f"  manifest (JSON):   {paths['manifest']}", soft_wrap=True)
    console.out.print(f"  quarantine (CSV):  {paths['quarantine']}  ({len(result.quarantine):,} rows, each with its reason)", soft_wrap=True)
    console.out.print(f"  MLflow runs:       {store}  (backtest run {run_id}; experiment 'demo')", soft_wrap=True)
    console.out.print(f"                     browse: .venv/bin/mlflow ui --backend-store-uri {store}", soft_wrap=True)
    console.out.print(f"  trigger evaluation: MLflow backtest run {run_id}: triggers/ and fairness/ artifacts, "
                  "metrics hit_rate_l3_forecast_surge, ...", soft_wrap=True)
    console.out.print(f"  ranked districts:  {ranking_path}", soft_wrap=True)
    console.out.print(f"                     forecast prioritize --run {train_run} --tracking-uri {store}", soft_wrap=True)
    console.out.print(f"  drought scenario:  MLflow run {scenario_run}, under the train run, and in the report", soft_wrap=True)
    console.out.print(f"                     forecast scenario --run {train_run} {' '.join('--set ' + s for s in DROUGHT)} "
                      f"--months {season} --tracking-uri {store}", soft_wrap=True)
    console.out.print(f"  trained model:     {model_uri}", soft_wrap=True)
    console.out.print(f"                     forecast predict --model {model_uri} --cube {paths['cube']} "
                  f"--tracking-uri {store}", soft_wrap=True)
    console.out.print(f"  model card:        {card_dir / 'model_card.html'} (and .md; logged to train run "
                  f"{train_run}, tag card_sha256)", soft_wrap=True)
    console.out.print(f"  review (DEMO):     {reviews / (train_run + '.yaml')}  (answered by demo reviewers)", soft_wrap=True)
    console.out.print(f"  audit log:         {log}  (forecast audit verify --log {log})", soft_wrap=True)
    console.out.print(f"  release gate:      forecast release {train_run} --name {DEMO_NAME} --check --tracking-uri "
                  f"{store} --reviews {reviews} --log {log}", soft_wrap=True)
    console.out.print(f"\nlook at it: forecast info {paths['cube']}; make report-check (a Chromium screenshot of the "
                  "report)", soft_wrap=True)


def _demo_report(train_run: str, folder: Path, lead: int, scenario: str) -> dict[str, Path]:
    """The forecast report of the trained model with the scenario beside it, HTML (with the map)
    and PDF, logged to its run."""
    from forecast.datasets import sample_files
    from forecast.pipeline import build_report, log_report
    from forecast.report import to_pdf, write_report

    with console.out.status("building the report...") as status:
        report = build_report(train_run, lead=lead, boundaries=sample_files()["areas"],
                              card_inputs=CARDS / f"{Path(SPEC).stem}.yaml", scenario=scenario,
                              progress=lambda text: status.update(f"report: {text}..."))
        html = write_report(report, folder / "report.html")
        pdf = to_pdf(report, folder / "report.pdf")
        log_report(report, html)
    names = ", ".join(f"{r.area_name} ({r.probability:.0%})" for r in report.headline.head(8).itertuples())
    more = f" and {len(report.headline) - 8} more" if len(report.headline) > 8 else ""
    console.out.print(f"{len(report.headline)} district(s) expected to cross the trigger: {names or 'none'}{more}; "
                  f"{len(report.unassessed)} unassessed; "
                  f"{report.meta['watermark'] or report.meta['release']} on every page", soft_wrap=True)
    return {"html": html, "pdf": pdf}


DEMO_NAME = "somalia-arrivals-demo"
DEMO_REVIEWERS = (("DEMO technical reviewer", "technical"), ("DEMO ethics reviewer", "ethics"))


def _demo_review_and_release(train_run: str, reviews: Path, log: Path):
    """Answer every checklist item as DEMO reviewers would (marked as such in every answer),
    sign as both roles, and put the model through the real gate under the real policy."""
    import yaml

    from forecast.pipeline import release, sign, start_review

    path = start_review(train_run, reviews_dir=reviews, restart=(reviews / f"{train_run}.yaml").exists())
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for item in data["items"]:
        who = next(name for name, role in DEMO_REVIEWERS if role == item["answered_by"])
        item.update(answer="yes", answered_by_name=who,
                    evidence="DEMO ANSWER, not a real review: the demo shows the mechanics of the gate")
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    for name, role in DEMO_REVIEWERS:
        sign(train_run, name, role, "approve", "DEMO sign-off, not a real review", log=log, reviews_dir=reviews)
    return release(train_run, DEMO_NAME, by="make demo", reviews_dir=reviews, log=log)
