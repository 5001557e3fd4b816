"""Sample and synthetic data."""

from forecast.datasets._somalia import ingest_sample, load_somalia, sample_files
from forecast.datasets._somalia_dtm import load_somalia_dtm
from forecast.datasets._stocks import make_stock_panel
from forecast.datasets._synthetic import dtm_export, make_panel

__all__ = [
    # the real Somalia sample
    "load_somalia", "sample_files", "ingest_sample",
    # the real IOM DTM Somalia IDP stock rounds, 2016-2018, on the sample's districts
    "load_somalia_dtm",
    # seeded synthetic DTM-style panels for tests and scale benchmarks
    "make_panel", "dtm_export",
    # seeded synthetic DTM-like stock rounds with the flows that explain them
    "make_stock_panel",
]
