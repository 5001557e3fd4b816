"""Readers for the formats users have, and the gazetteer. :func:`forecast.ingest` combines them."""

from forecast.io._areas import Gazetteer, NameKeys, read_aliases
from forecast.io._attributes import AreaAttributes, read_attributes
from forecast.io._common import ReadResult
from forecast.io._covariates import read_acled, read_table
from forecast.io._csv import neutralise_cells, write_csv
from forecast.io._dtm import HXL_TARGETS, read_dtm, read_hxl
from forecast.io._flows import read_flows
from forecast.io._ledger import QUARANTINE_COLUMNS
from forecast.io._limits import Limits, current_limits, using_limits
from forecast.io._manifest import FileRecord, Manifest, Sensitivity
from forecast.io._privacy import find_identifying, highest
from forecast.io._rules import ValueRule, load_rules
from forecast.io._secure import (
    DATA_KEY_ENV,
    DATA_KEY_FILE_ENV,
    at_rest_notice,
    encrypts,
    is_encrypted,
    make_folder,
    open_output,
    owner_only,
    owner_only_process,
    read_at_rest,
    reserve_file,
    secure_file,
    secure_folder,
    write_output,
)

__all__ = [
    # readers, one per format
    "read_dtm", "read_hxl", "read_flows", "read_acled", "read_table", "ReadResult",
    # the HXL attribute of each target (a forecast export's #affected+arrivals+median reads back)
    "HXL_TARGETS",
    # areas and their attributes (fairness groups)
    "Gazetteer", "NameKeys", "read_aliases", "read_attributes", "AreaAttributes",
    # privacy: columns that identify people; the highest of several sensitivity levels
    "find_identifying", "highest",
    # every row kept or quarantined; implausible values withheld by rules
    "QUARANTINE_COLUMNS", "ValueRule", "load_rules",
    # plausibility rules and resource bounds a file may not pass (a hostile file is refused, not obeyed)
    "Limits", "current_limits", "using_limits",
    # lineage: what was read, kept and quarantined, and how sensitive it is
    "Manifest", "FileRecord", "Sensitivity",
    # every CSV we write: formula-like text cells prefixed with ' (spreadsheets run them)
    "neutralise_cells", "write_csv",
    # security in proportion to sensitivity: owner-only outputs at high/severe, severe data encrypted at rest
    "owner_only", "owner_only_process", "secure_file", "secure_folder", "make_folder", "reserve_file",
    "open_output", "write_output",
    "encrypts", "is_encrypted", "read_at_rest", "at_rest_notice", "DATA_KEY_ENV", "DATA_KEY_FILE_ENV",
]
