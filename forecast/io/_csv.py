"""Every CSV the toolkit writes, written so that a spreadsheet shows its text and runs none of it.

Area names come from a user's gazetteer, column names from a user's table, and both reach the
CSVs we write (rankings, report headlines, the quarantine ledger, metrics, scenario tables,
exports). Excel, LibreOffice and Google Sheets read a cell that starts with ``=``, ``+``, ``-``
or ``@`` (and, in some versions, a tab or a carriage return) as a formula and run it when the
file is opened: ``=HYPERLINK("http://x","click")`` becomes a link, ``=cmd|' /C calc'!A0`` a
command ("CSV injection"). Following OWASP, :func:`neutralise_cells` prefixes such a text cell
with a single quote ``'``, which a spreadsheet shows as text and a reader sees as one more
character; :func:`write_csv` writes every CSV through it.

Left alone: numeric, boolean and datetime columns; missing values (NaN, None, NA); a text cell
that is a plain number (``-5``, ``-0.25``, ``+3``, ``1e-3``), so negative numbers and covariate
anomalies stay numbers; and a text cell that already starts with ``'``. Column headers and the
index are cells too (a header can be a user's column name) and follow the same rule.
"""

from __future__ import annotations

import os
import re
from typing import Any

import pandas as pd

from forecast.io._secure import encrypts, reserve_file, secure_file, write_output

__all__ = ["neutralise_cells", "write_csv", "FORMULA_PREFIXES"]

#: The leading characters a spreadsheet reads as the start of a formula (OWASP's list).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

# a plain decimal number, signed or not, with an optional exponent: "-5", "+3", "-0.25", "1e-3"
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def _is_text(values) -> bool:
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    return pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)


def _column(series: pd.Series) -> pd.Series:
    if not _is_text(series):
        return series
    if isinstance(series.dtype, pd.CategoricalDtype):  # the categories are the text
        return series.map(_cell, na_action="ignore")
    flagged = [i for i, value in enumerate(series) if _cell(value) is not value]
    if not flagged:
        return series
    out = series.copy()  # only the flagged cells change: None, NaN and NA stay as they were
    out.iloc[flagged] = ["'" + series.iloc[i] for i in flagged]
    return out


def _index(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        levels = [_index(index.get_level_values(i)) for i in range(index.nlevels)]
        return pd.MultiIndex.from_arrays(levels, names=[_cell(n) for n in index.names])
    if _is_text(index):
        index = index.map(_cell)
    return index.rename(_cell(index.name))


def neutralise_cells(frame: pd.DataFrame | pd.Series | pd.Index) -> pd.DataFrame | pd.Series | pd.Index:
    """A copy of ``frame`` whose formula-like text cells start with ``'``.

    A text cell (in a text or categorical column, the column headers or the index) that starts
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gains a leading ``'``, unless it
    is a plain number such as ``-5`` or ``1e-3``. Numeric columns and missing values are left
    as they are. A Series or an Index is neutralised as a one-column frame and returned as such.

    Examples
    --------
    >>> import pandas as pd
    >>> neutralise_cells(pd.DataFrame({"name": ['=HYPERLINK("http://x","y")', "-5", "Baidoa"]}))["name"].tolist()
    ['\\'=HYPERLINK("http://x","y")', '-5', 'Baidoa']
    """
    if isinstance(frame, pd.Index):
        return _index(frame)
    if isinstance(frame, pd.Series):
        return _column(frame).rename(_cell(frame.name)).set_axis(_index(frame.index))
    out = frame.copy()
    for position in range(out.shape[1]):  # by position: headers may repeat
        out.isetitem(position, _column(out.iloc[:, position]))
    out.columns = _index(out.columns)
    out.index = _index(out.index)
    return out


def write_csv(frame: pd.DataFrame | pd.Series, path_or_buffer=None, *, sensitivity: str | None = None,
              encrypt: bool = False, **to_csv_kwargs):
    """Write ``frame`` as CSV with its formula-like text cells neutralised (:func:`neutralise_cells`).

    Takes :meth:`pandas.DataFrame.to_csv`'s arguments; a ``header`` given as a list of names and
    an ``index_label`` are neutralised too. Returns what ``to_csv`` returns (the text when
    ``path_or_buffer`` is None). ``sensitivity`` is the level of the data the rows come from
    (the manifest's): a file written by path from ``high`` or ``severe`` data is owner-only
    (0600, :mod:`forecast.io._secure`); a buffer is the caller's to protect. ``encrypt``: rows
    of ``severe`` data are encrypted at rest when a data key is set (the ingest's quarantine and
    withheld values; read them back with :func:`forecast.io.read_at_rest`).
    """
    header = to_csv_kwargs.get("header")
    if isinstance(header, (list, tuple)):
        to_csv_kwargs["header"] = [_cell(h) for h in header]
    label = to_csv_kwargs.get("index_label")
    if label is not None:
        to_csv_kwargs["index_label"] = ([_cell(v) for v in label] if isinstance(label, (list, tuple))
                                        else _cell(label))
    if not isinstance(path_or_buffer, (str, os.PathLike)):
        return neutralise_cells(frame).to_csv(path_or_buffer, **to_csv_kwargs)
    if encrypt and encrypts(sensitivity):  # encrypted in memory: the rows never reach the disk in plain text
        text = neutralise_cells(frame).to_csv(None, **to_csv_kwargs)
        write_output(path_or_buffer, text, sensitivity, encrypt=True)
        return None
    reserve_file(path_or_buffer, sensitivity)  # created owner-only before pandas writes a row
    written = neutralise_cells(frame).to_csv(path_or_buffer, **to_csv_kwargs)
    secure_file(path_or_buffer, sensitivity)
    return written
