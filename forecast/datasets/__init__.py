"""Sample and synthetic data."""

from forecast.datasets._somalia import ingest_sample, load_somalia, sample_files
from forecast.datasets._synthetic import dtm_export, make_panel

__all__ = [
    # the real Somalia sample
    "load_somalia", "sample_files", "ingest_sample",
    # seeded synthetic DTM-style panels for tests and scale benchmarks
    "make_panel", "dtm_export",
]
