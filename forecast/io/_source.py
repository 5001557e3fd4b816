"""Read a CSV, XLSX or JSON file into a frame of strings, one row per record.

Everything is read as text so that nothing is coerced before validation; parsing happens
field by field in the readers, and a value that cannot be read is quarantined, not guessed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forecast.errors import UnusableFileError
from forecast.io._ledger import ROW, Ledger
from forecast.io._limits import current_limits

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` in bytes while a file is read."""

_SNIFF_BYTES = 8192
_PROGRESS_EVERY = 20_000


@dataclass
class RawTable:
    """A file's records as strings, with ``_row`` record numbers and the file's ledger."""

    frame: pd.DataFrame
    ledger: Ledger
    kind: str
    sha256: str


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_source(
    path: str | Path,
    *,
    header_rows: int = 1,
    sheet: str | int | None = None,
    progress: ProgressCallback | None = None,
) -> RawTable:
    """Read ``path`` (CSV, XLSX or JSON, told apart by content) into strings.

    ``header_rows`` is 1 for plain tables and 2 for HXL (header row + hashtag row); the
    second header row is returned in ``frame.attrs["hxl_tags"]``.
    """
    path = Path(path)
    if not path.exists():
        raise UnusableFileError(path, "no such file")
    if path.is_dir():
        raise UnusableFileError(path, "is a folder, not a file")
    size = path.stat().st_size
    if size == 0:
        raise UnusableFileError(path, "the file is empty")
    with open(path, "rb") as fh:
        head = fh.read(_SNIFF_BYTES)
    ledger = Ledger(str(path))
    sha = file_sha256(path)
    if head.startswith(b"PK\x03\x04"):
        frame, tags = _read_xlsx(path, header_rows, sheet)
        kind = "xlsx"
    elif head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
        frame, tags = _read_json(path), None
        kind = "json"
    elif b"\x00" in head:
        raise UnusableFileError(
            path, "looks binary (it has NUL bytes); expected CSV, XLSX or JSON text"
        )
    else:
        frame, tags = _read_csv(path, header_rows, ledger, size, progress)
        kind = "csv"
    if frame.empty and ledger.rows_in == 0:
        raise UnusableFileError(path, "has a header but no data rows")
    frame.attrs["hxl_tags"] = tags
    ledger.rows_in += len(frame)
    if progress is not None:
        progress(size, size)
    return RawTable(frame=frame, ledger=ledger, kind=kind, sha256=sha)


def _header(path: Path, names: list[str]) -> list[str]:
    cleaned = [str(n).strip() for n in names]
    if not any(cleaned):
        raise UnusableFileError(path, "the header row is empty")
    # Blank header cells (trailing commas, formatted-but-empty Excel columns) get a name by
    # position, so that every column can be addressed and listed in the manifest.
    cleaned = [n or f"(unnamed column {i})" for i, n in enumerate(cleaned, start=1)]
    seen: set[str] = set()
    dupes = [n for n in cleaned if n in seen or seen.add(n)]
    if dupes:
        raise UnusableFileError(
            path, f"the header names these columns more than once: {sorted(set(dupes))}"
        )
    return cleaned


def _read_csv(
    path: Path,
    header_rows: int,
    ledger: Ledger,
    size: int,
    progress: ProgressCallback | None,
) -> tuple[pd.DataFrame, list[str] | None]:
    # UTF-8 (with or without BOM) first; Excel's "CSV" on Windows writes cp1252.
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            return _read_csv_as(path, header_rows, ledger, size, progress, encoding)
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def _read_csv_as(
    path: Path,
    header_rows: int,
    ledger: Ledger,
    size: int,
    progress: ProgressCallback | None,
    encoding: str,
) -> tuple[pd.DataFrame, list[str] | None]:
    with open(path, encoding=encoding, newline="") as text:
        sample = text.read(_SNIFF_BYTES)
        text.seek(0)
        try:
            delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
        reader = csv.reader(text, delimiter=delimiter)
        try:
            header = next(reader)
            tags = next(reader) if header_rows == 2 else None
        except StopIteration:
            raise UnusableFileError(path, f"has fewer than {header_rows} header row(s)") from None
        except csv.Error as err:
            raise UnusableFileError(path, f"is not readable as CSV text ({err})") from None
        columns = _header(path, header)
        width = len(columns)
        rows: list[list[str]] = []
        numbers: list[int] = []
        bad: list[tuple[int, str, str, str]] = []
        record = header_rows
        try:
            for fields in reader:
                record += 1
                if len(fields) == width and (fields[0] or any(f.strip() for f in fields)):
                    # one string object per distinct value: a flow file repeats few codes and
                    # dates over millions of rows, and each field read is a new object otherwise
                    rows.append(list(map(sys.intern, fields)))
                    numbers.append(record)
                elif not any(f.strip() for f in fields):
                    bad.append((record, "", "", "blank row"))
                else:
                    bad.append(
                        (record, "", f"{len(fields)} fields",
                         f"wrong number of fields: expected {width}, got {len(fields)}")
                    )
                if progress is not None and record % _PROGRESS_EVERY == 0:
                    progress(_approx_pos(text, size), size)
        except csv.Error as err:
            raise UnusableFileError(
                path, f"stopped being readable as CSV at row {record + 1} ({err})"
            ) from None
    ledger.rows_in += len(bad)
    ledger.reject_rows(bad)
    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    frame[ROW] = numbers
    return frame, tags


def _approx_pos(text, size: int) -> int:
    try:
        return min(size, text.buffer.tell())
    except (OSError, ValueError):
        return 0


def _check_unpacked_size(path: Path) -> None:
    """Refuse a workbook that would unpack past the limit (a zip bomb) before opening it: the
    sizes come from the zip's directory, and reading never returns more than they declare."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(item.file_size for item in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise UnusableFileError(path, f"is not a readable XLSX workbook ({err})") from None
    most = current_limits().max_unpacked_bytes
    if unpacked > most:
        raise UnusableFileError(
            path, f"would unpack to {unpacked / 2**20:,.0f} MiB from {path.stat().st_size / 2**20:,.1f} MiB, more "
            f"than the limit max_unpacked_bytes={most:,}",
            hint="a workbook this large is more safely read as CSV; or raise the limit with --limit max_unpacked_bytes=N")


def _read_xlsx(
    path: Path, header_rows: int, sheet: str | int | None
) -> tuple[pd.DataFrame, list[str] | None]:
    _check_unpacked_size(path)
    try:
        workbook = pd.ExcelFile(path, engine="openpyxl")
        sheets = workbook.sheet_names
    except Exception as err:  # openpyxl raises many types on damaged workbooks; all mean "unusable"
        raise UnusableFileError(path, f"is not a readable XLSX workbook ({err})") from None
    try:
        if sheet is not None and sheet not in sheets and not (isinstance(sheet, int) and 0 <= sheet < len(sheets)):
            raise UnusableFileError(path, f"has no sheet {sheet!r}; sheets: {sheets}")
        if sheet is None and len(sheets) > 1:
            raise UnusableFileError(path, f"has {len(sheets)} sheets {sheets}; say which to read",
                                    hint="--sheet NAME (Python: sheet=...)")
        book = pd.read_excel(workbook, sheet_name=0 if sheet is None else sheet, header=None, dtype=object)
    except UnusableFileError:
        raise
    except Exception as err:  # as above: a damaged sheet is an unusable file
        raise UnusableFileError(path, f"is not a readable XLSX workbook ({err})") from None
    finally:
        workbook.close()
    if len(book) < header_rows:
        raise UnusableFileError(path, f"has fewer than {header_rows} header row(s)")
    book = book.astype(object).where(book.notna(), "")
    columns = _header(path, [str(v) for v in book.iloc[0]])
    tags = [str(v) for v in book.iloc[1]] if header_rows == 2 else None
    body = book.iloc[header_rows:].map(_cell_text)
    body.columns = columns
    body[ROW] = range(header_rows + 1, header_rows + 1 + len(body))
    # Trailing formatted-but-empty rows are not records.
    filled = body.drop(columns=ROW).ne("").any(axis=1)
    last = filled[filled].index.max() if filled.any() else None
    body = body.loc[:last] if last is not None else body.iloc[0:0]
    return body.reset_index(drop=True), tags


def _cell_text(value: object) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return value.isoformat()[:10]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _read_json(path: Path) -> pd.DataFrame:
    try:
        with open(path, encoding="utf-8-sig") as fh:
            payload = json.load(fh)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UnusableFileError(path, f"is not valid JSON ({err})") from None
    except RecursionError:
        raise UnusableFileError(path, "nests its JSON too deeply to read (a table's records are one level deep)") from None
    if isinstance(payload, dict):
        if payload.get("isSuccess") is False:
            errors = payload.get("errorMessages") or payload.get("errors") or "no message"
            raise UnusableFileError(path, f"is a failed DTM API response: {errors}")
        records = payload.get("result", payload.get("data"))
        if not isinstance(records, list):
            raise UnusableFileError(
                path,
                "is a JSON object without a 'result' list",
                hint="expected the DTM API envelope {\"isSuccess\": true, \"result\": [...]} "
                "or a bare list of records",
            )
    elif isinstance(payload, list):
        records = payload
    else:
        raise UnusableFileError(path, "JSON must be a list of records or the DTM API envelope")
    if not records:
        raise UnusableFileError(path, "the JSON holds no records")
    columns: dict[str, None] = {}
    for rec in records:
        if isinstance(rec, dict):
            columns.update(dict.fromkeys(str(k) for k in rec))
    if not columns:
        raise UnusableFileError(path, "the JSON records are not objects with fields")
    names = _header(path, list(columns))
    rows = []
    for rec in records:
        rec = rec if isinstance(rec, dict) else {}
        rows.append([_json_text(rec.get(c)) for c in columns])
    frame = pd.DataFrame(rows, columns=names, dtype=object)
    frame[ROW] = range(1, len(frame) + 1)
    return frame


def _json_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)
