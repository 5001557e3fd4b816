"""``make demo``: run the pipeline on the shipped Somalia sample and say where everything is.

The whole pipeline: ingest the real sample (PRMN flows, rainfall and conflict counts, district
attributes) into a cube with its manifest and quarantine; backtest LightGBM and per-area ETS
(statsmodels) against the baselines on rolling origins, evaluate the anticipatory-action
trigger (models/triggers.yaml) and its fairness across groups of districts, and log every run
to MLflow; train the model on all months and log it as an MLflow model; rank districts for
action from the last month; write the model card from those runs; answer the review as clearly
marked DEMO reviewers and put the model through the release gate (ethics/policy.yaml), which
registers it only when every condition passes; write the forecast report (HTML and PDF) that an
anticipatory-action team reads. Runs go to MLFLOW_TRACKING_URI when it is set, else to a sqlite
store in the output folder.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from rich.console import Console

from forecast._cli_models import _bar, _print_summary, _tracker
from forecast._cli_release import print_gate
from forecast.cli import _summary
from forecast.datasets import ingest_sample, sample_files
from forecast.ethics import NOT_RELEASED

SPEC = Path(__file__).resolve().parents[1] / "models" / "lightgbm_median.yaml"
ETS = SPEC.with_name("ets.yaml")
TRIGGERS = SPEC.with_name("triggers.yaml")
CARDS = SPEC.parent / "cards"

console = Console()
if not console.is_terminal:  # piped: rich assumes 80 columns, too few for the tables
    console.width = max(console.width, 140)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forecast.demo", description=__doc__)
    parser.add_argument("--out", default="out", help="folder for the demo's outputs (default: out)")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    files = sample_files()
    console.rule("[bold]displacement-forecast demo: Somalia (UNHCR PRMN, FAO SWALIM, ACLED counts)")
    console.print("1/7 ingest: " + ", ".join(p.name for k, p in files.items() if k not in ("areas", "aliases"))
                  + f" with gazetteer {files['areas'].name}")
    start = time.perf_counter()
    with console.status("ingesting the Somalia sample..."):
        result = ingest_sample()
        paths = result.write(out / "ingest")
    _summary(result.cube, result.manifest)
    console.print(f"done in {time.perf_counter() - start:.1f} s\n")

    import mlflow

    from forecast.pipeline._assess import assess
    from forecast._cli_triggers import print_fairness, print_ranking, print_triggers
    from forecast.pipeline._train import train
    from forecast.backtest import RollingOrigin, backtest
    from forecast.models import load_spec
    from forecast.tracking import log_backtest, log_trained
    from forecast.triggers import load_triggers

    store = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{out / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    if not os.environ.get("MLFLOW_TRACKING_URI") and mlflow.get_experiment_by_name("demo") is None:
        # artifacts beside the store, not in ./mlruns of whatever folder the demo runs from
        mlflow.create_experiment("demo", artifact_location=(out / "mlartifacts").as_uri())
    manifest = result.manifest.model_dump(mode="json")
    spec, ets = load_spec(SPEC), load_spec(ETS)
    triggers = load_triggers(TRIGGERS)
    console.print(f"2/7 backtest: {spec.name}, per-area {ets.name} (statsmodels) and five baselines, 12 scored origins (+12 calibrating "
                  f"intervals), horizons 1-6, target {spec.target}; trigger '{triggers[0].name}' "
                  f"({triggers[0].describe()}) and its fairness across groups of districts")
    start = time.perf_counter()
    with _bar() as bar:
        bt = backtest(result.cube, [ets, spec], folds=RollingOrigin(n_origins=12, calibration_origins=12),
                      progress=_tracker(bar))
    with console.status("evaluating the trigger and its fairness..."):
        evaluation, fairness, _ = assess(bt, result.cube, triggers)
        run_id = log_backtest(bt, manifest=manifest, experiment="demo", triggers=evaluation, fairness=fairness)
    _print_summary(bt)
    print_triggers(evaluation)
    print_fairness(fairness)
    console.print(f"done in {time.perf_counter() - start:.1f} s\n")
    console.print(f"3/7 train {spec.name} on all months (with the trigger) and log it as an MLflow model")
    start = time.perf_counter()
    with _bar() as bar:
        trained = train(result.cube, spec, triggers=triggers, progress=_tracker(bar))
    with console.status("logging the model..."):
        train_run, model_uri = log_trained(trained, result.cube, manifest=manifest, experiment="demo",
                                           cube_path=paths["cube"])
    console.print(f"done in {time.perf_counter() - start:.1f} s\n")
    lead = 3 if 3 in triggers[0].leads else triggers[0].leads[0]
    console.print(f"4/7 prioritize: districts ranked for action within {lead} months of the last month")
    ranking = trained.prioritize(result.cube, triggers[0].name, lead)
    ranking_path = out / "prioritize" / f"prioritize_{train_run[:8]}_{triggers[0].name}_lead{lead}.csv"
    ranking_path.parent.mkdir(parents=True, exist_ok=True)
    ranking.to_csv(ranking_path, index=False)
    mlflow.MlflowClient().log_artifact(train_run, str(ranking_path), "prioritize")
    print_ranking(ranking, triggers[0], str(result.cube["time"].values[-1])[:7], 10)
    console.print()

    from forecast.ethics import build_card, write_card

    console.print(f"5/7 model card of the trained model, from its MLflow runs and models/cards/{spec.name}.yaml")
    card = build_card(train_run, CARDS / f"{spec.name}.yaml")
    card_sha, card_uris = write_card(card, train_run)
    card_dir = out / "model_card"
    card_dir.mkdir(parents=True, exist_ok=True)
    (card_dir / "model_card.md").write_text(card.to_markdown(), encoding="utf-8")
    (card_dir / "model_card.html").write_text(card.to_html(), encoding="utf-8")
    console.print(f"card SHA-256 {card_sha} (what reviewers will sign); status: not reviewed\n", soft_wrap=True)

    console.print("6/7 review and release gate: DEMO reviewers answer the checklists and sign; the gate judges "
                  "every condition under ethics/policy.yaml")
    reviews, log = out / "ethics" / "reviews", out / "ethics" / "audit.log.jsonl"
    outcome = _demo_review_and_release(train_run, reviews, log)
    print_gate(outcome.report)
    unmet = outcome.report.unmet
    if outcome.released:
        console.print(f"RELEASED as {outcome.name} version {outcome.version}: {outcome.model_uri}", soft_wrap=True)
    else:
        console.print(f"REFUSED: {len(unmet)} condition(s) unmet, nothing registered; every prediction and ranking "
                      f"from this model says '{NOT_RELEASED}'", soft_wrap=True)
    console.print()

    console.print(f"7/7 forecast report for anticipatory-action teams (trigger '{triggers[0].name}', lead {lead})")
    start = time.perf_counter()
    report_paths = _demo_report(train_run, out / "report", lead)
    console.print(f"done in {time.perf_counter() - start:.1f} s\n")

    console.print("[bold]where things are[/]", soft_wrap=True)
    console.print(f"  forecast report:   {report_paths['html']}  (open it in a browser; A4 PDF: {report_paths['pdf']})",
                  soft_wrap=True)
    console.print(f"  cube (NetCDF):     {paths['cube']}", soft_wrap=True)
    console.print(f"  manifest (JSON):   {paths['manifest']}", soft_wrap=True)
    console.print(f"  quarantine (CSV):  {paths['quarantine']}  ({len(result.quarantine):,} rows, each with its reason)", soft_wrap=True)
    console.print(f"  MLflow runs:       {store}  (backtest run {run_id}; experiment 'demo')", soft_wrap=True)
    console.print(f"                     browse: .venv/bin/mlflow ui --backend-store-uri {store}", soft_wrap=True)
    console.print(f"  trigger evaluation: MLflow backtest run {run_id}: triggers/ and fairness/ artifacts, "
                  "metrics hit_rate_l3_forecast_surge, ...", soft_wrap=True)
    console.print(f"  ranked districts:  {ranking_path}", soft_wrap=True)
    console.print(f"                     forecast prioritize --run {train_run} --tracking-uri {store}", soft_wrap=True)
    console.print(f"  trained model:     {model_uri}", soft_wrap=True)
    console.print(f"                     forecast predict --model {model_uri} --cube {paths['cube']} "
                  f"--tracking-uri {store}", soft_wrap=True)
    console.print(f"  model card:        {card_dir / 'model_card.html'} (and .md; logged to train run "
                  f"{train_run}, tag card_sha256)", soft_wrap=True)
    console.print(f"  review (DEMO):     {reviews / (train_run + '.yaml')}  (answered by demo reviewers)", soft_wrap=True)
    console.print(f"  audit log:         {log}  (forecast audit verify --log {log})", soft_wrap=True)
    console.print(f"  release gate:      forecast release {train_run} --name {DEMO_NAME} --check --tracking-uri "
                  f"{store} --reviews {reviews} --log {log}", soft_wrap=True)
    console.print(f"\nlook at it: forecast info {paths['cube']}; make report-check (a Chromium screenshot of the "
                  "report)", soft_wrap=True)
    return 0


def _demo_report(train_run: str, folder: Path, lead: int) -> dict[str, Path]:
    """The forecast report of the trained model, HTML (with the map) and PDF, logged to its run."""
    from forecast.report import build_report, log_report, to_pdf, write_report

    with console.status("building the report...") as status:
        report = build_report(train_run, lead=lead, boundaries=sample_files()["areas"],
                              card_inputs=CARDS / f"{Path(SPEC).stem}.yaml",
                              progress=lambda text: status.update(f"report: {text}..."))
        html = write_report(report, folder / "report.html")
        pdf = to_pdf(report, folder / "report.pdf")
        log_report(report, html)
    names = ", ".join(f"{r.area_name} ({r.probability:.0%})" for r in report.headline.head(8).itertuples())
    more = f" and {len(report.headline) - 8} more" if len(report.headline) > 8 else ""
    console.print(f"{len(report.headline)} district(s) expected to cross the trigger: {names or 'none'}{more}; "
                  f"{len(report.unassessed)} unassessed; "
                  f"{report.meta['watermark'] or report.meta['release']} on every page", soft_wrap=True)
    return {"html": html, "pdf": pdf}


DEMO_NAME = "somalia-arrivals-demo"
DEMO_REVIEWERS = (("DEMO technical reviewer", "technical"), ("DEMO ethics reviewer", "ethics"))


def _demo_review_and_release(train_run: str, reviews: Path, log: Path):
    """Answer every checklist item as DEMO reviewers would (marked as such in every answer),
    sign as both roles, and put the model through the real gate under the real policy."""
    import yaml

    from forecast.ethics import release, sign, start_review

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


if __name__ == "__main__":
    raise SystemExit(main())
