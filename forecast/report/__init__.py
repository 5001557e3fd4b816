"""Forecast reports for anticipatory-action teams: one self-contained HTML page or an A4 PDF.

A report is about one ``forecast train --triggers ...`` run: which districts are expected to
cross their trigger within the lead time (probability, expected arrivals and interval) and what
changed since the previous report, a map, fan charts of the most urgent districts, the model's
track record, who it serves less well, what the data cannot say, and the model card summary
with the release status. A model the gate has not released carries "NOT RELEASED — for review
only" on every page::

    from forecast.report import build_report, write_report
    report = build_report(train_run_id, boundaries="som_adm2.geojson")
    report.headline                                # the areas expected to cross, most urgent first
    write_report(report, "out/report.html")        # or .pdf
    log_report(report, "out/report.html")          # to the train run; the next report compares with it
"""

from forecast.report._build import HEADLINE_COLUMNS, ForecastReport, build_report, compare, find_previous
from forecast.report._log import log_report
from forecast.report._render import people, to_html, to_pdf, write_report

__all__ = [
    # build
    "build_report", "ForecastReport", "compare", "find_previous", "HEADLINE_COLUMNS",
    # render
    "to_html", "to_pdf", "write_report", "people",
    # MLflow
    "log_report",
]
