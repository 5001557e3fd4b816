"""Sample and synthetic data."""

from forecast.datasets._somalia import ingest_sample, load_somalia, sample_files

__all__ = ["load_somalia", "sample_files", "ingest_sample"]
