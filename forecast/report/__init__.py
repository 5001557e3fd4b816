"""Forecast reports for anticipatory-action teams: one self-contained HTML page or an A4 PDF.

A report is about one ``forecast train --triggers ...`` run: which districts are expected to
cross their trigger within the lead time (probability, expected arrivals and interval) and what
changed since the previous report, a map, fan charts of the most urgent districts, the model's
track record, who it serves less well, what the data cannot say, and the model card summary
with the release status. A model the gate has not released carries "NOT RELEASED — for review
only" on every page.

The run-id based calls are :mod:`forecast.pipeline`'s (they read MLflow through
:mod:`forecast.tracking`)::

    from forecast.pipeline import build_report, log_report
    report = build_report(train_run_id, boundaries="som_adm2.geojson")
    report.headline                                # the areas expected to cross, most urgent first
    write_report(report, "out/report.html")        # or .pdf
    log_report(report, "out/report.html")          # to the train run; the next report compares with it

Here, with no tracking store involved, a report is ranked, assembled and rendered from plain
inputs (a trained model, a cube, the :class:`~forecast.ethics.Evidence` and the model card)::

    from forecast.report import assemble_report, rank_areas, to_html
    ranking = rank_areas(trained, cube, run_id)
    report = assemble_report(evidence, card, ranking, trained, cube, status=status, policy=policy,
                             sensitivity="high")
    to_html(report)

:func:`check_report` opens a written report in headless Chromium as a reader would.
"""

from forecast.report._browser import RenderCheck, check_report, find_chromium
from forecast.report._build import (
    HEADLINE_COLUMNS,
    ForecastReport,
    Ranking,
    assemble_report,
    check_admin_level,
    compare,
    headline_artifact,
    headline_month,
    rank_areas,
    read_headline,
    read_previous,
)
from forecast.report._reasons import NO_BREAKDOWN, area_reasons, reason_for
from forecast.report._render import people, to_html, to_pdf, write_report
from forecast.report._scenario import scenario_section

__all__ = [
    # build
    "rank_areas", "Ranking", "assemble_report", "ForecastReport", "check_admin_level", "HEADLINE_COLUMNS",
    # the reason of each flagged district: its largest drivers, said with facts from the data
    "area_reasons", "reason_for", "NO_BREAKDOWN",
    # the previous report
    "compare", "headline_artifact", "headline_month", "read_headline", "read_previous",
    # a scenario beside the baseline
    "scenario_section",
    # render
    "to_html", "to_pdf", "write_report", "people",
    # check in a browser
    "check_report", "find_chromium", "RenderCheck",
]
