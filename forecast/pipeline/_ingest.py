"""Ingest: read files in their formats, build the cube, and account for every row."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import xarray as xr

from forecast._names import AREA, SENSITIVITY_LEVELS, TIME
from forecast._version import __version__
from forecast.cube import build_cube, check_stock_flow, cube_hash, save_cube
from forecast.errors import ForecastError, UnusableFileError
from forecast.io import (
    QUARANTINE_COLUMNS,
    AreaAttributes,
    FileRecord,
    Gazetteer,
    Limits,
    Manifest,
    NameKeys,
    ReadResult,
    Sensitivity,
    encrypts,
    highest,
    load_rules,
    make_folder,
    read_acled,
    read_attributes,
    read_dtm,
    read_flows,
    read_hxl,
    read_table,
    secure_folder,
    using_limits,
    write_csv,
)

READERS: dict[str, Callable[..., ReadResult]] = {
    "dtm": read_dtm, "hxl": read_hxl, "flows": read_flows, "acled": read_acled, "table": read_table,
}
FileProgress = Callable[[str, int, int], None]


@dataclass
class Ingested:
    """A cube with its manifest and quarantine, as :func:`ingest` returns them."""

    cube: xr.Dataset
    manifest: Manifest
    quarantine: pd.DataFrame
    results: list[ReadResult]
    attributes: AreaAttributes | None = None
    withheld: pd.DataFrame | None = None
    #: the stock's change between rounds against the flows between (``forecast.cube.stock_flow_gaps``)
    stock_flow: pd.DataFrame | None = None

    def write(self, out: str | Path) -> dict[str, Path]:
        """Write ``cube.nc``, ``manifest.json`` and ``quarantine.csv`` into folder ``out``, and
        ``withheld.csv`` when value rules withheld any value.

        Each file is written whole beside its final name and then renamed over it, the manifest
        last: a write that fails (a full disk) or is killed leaves the previous set in place, or
        a new cube beside an old manifest, which :func:`forecast.load_cube` refuses by the cube
        hash the manifest records. Never a truncated file under a final name.

        Security follows the manifest's sensitivity (:mod:`forecast.io._secure`): at ``high`` and
        ``severe`` the folder is 0700 and every file 0600 whatever the umask; at ``severe`` with
        a data key set (``FORECAST_DATA_KEY``) the cube, the quarantine and the withheld values
        are encrypted, and the manifest says ``"encrypted": true``.
        """
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise UnusableFileError(out, "is a file; the output must be a folder")
        level = self.manifest.sensitivity.level
        manifest = self.manifest.model_copy(update={"encrypted": encrypts(level)})  # a bad key stops here
        secure_folder(make_folder(out, level), level)  # the dataset's own folder, even when it was there
        paths = {"quarantine": out / "quarantine.csv", "cube": out / "cube.nc"}
        if self.withheld is not None and len(self.withheld):
            paths["withheld"] = out / "withheld.csv"
        paths["manifest"] = out / "manifest.json"  # renamed last: it vouches for the others
        writers = {
            "cube": lambda target: save_cube(self.cube, target, sensitivity=level),
            "manifest": manifest.write,
            # raw values a user's file held: a spreadsheet must not run them
            # (owner-only at high and severe; encrypted at severe with a data key)
            "quarantine": lambda target: write_csv(self.quarantine, target, index=False, sensitivity=level,
                                                   encrypt=True),
            "withheld": lambda target: write_csv(self.withheld, target, index=False, sensitivity=level,
                                                 encrypt=True),
        }
        partial = {name: path.with_name(f".{path.name}.partial") for name, path in paths.items()}
        try:
            for name, target in partial.items():
                writers[name](target)
        except BaseException:
            for target in partial.values():
                target.unlink(missing_ok=True)
            raise
        for name in paths:
            os.replace(partial[name], paths[name])
        if "withheld" not in paths:
            (out / "withheld.csv").unlink(missing_ok=True)  # an earlier ingest's, which no longer holds
        return {name: paths[name] for name in ("cube", "manifest", "quarantine", "withheld") if name in paths}


def ingest(
    files: Sequence[str | Path],
    formats: str | Sequence[str],
    *,
    areas: str | Path | Gazetteer | None = None,
    aliases: str | Path | None = None,
    attributes: str | Path | None = None,
    columns: str | Path | None = None,
    drop_columns: Sequence[str] = (),
    sensitivity: str | None = None,
    sensitivity_reason: str | None = None,
    approval: str | None = None,
    audit_log: str | Path | None = None,
    policy=None,
    strict_hierarchy: bool = True,
    sheet: str | None = None,
    rules: str | Path | Mapping | None = None,
    progress: FileProgress | None = None,
    limits: Limits | Mapping[str, object] | None = None,
) -> Ingested:
    """Read ``files`` (each in its format), resolve areas and build one cube.

    Parameters
    ----------
    files : paths of the input files.
    formats : one format for all files, or one per file: ``dtm``, ``hxl``, ``flows``,
        ``acled`` or ``table``.
    areas : gazetteer CSV, COD boundary GeoJSON, or a :class:`Gazetteer`; None keys areas
        by name (the manifest says so).
    aliases : CSV of spelling variants (``alias,pcode``) added to the gazetteer's names.
    attributes : table of per-area attributes keyed by ``pcode`` or ``name`` (region, access,
        settlement, population, ...); each column becomes a coordinate along ``area`` (see
        :func:`forecast.io.read_attributes`). The manifest records it like the other files.
    columns : YAML extending the column-name table for any format.
    drop_columns : columns to drop from every file before reading (e.g. identifying ones).
    sensitivity, sensitivity_reason : override the assessed sensitivity level; the
        manifest records both levels and the reason. A level *below* the assessed one also
        needs ``approval``: the hash of a ``sensitivity.lower`` entry an ethics reviewer of the
        keyring signed for these files and levels (``forecast review lower-sensitivity``), in
        ``audit_log`` (a file or ``mlflow:audit``; default as :func:`forecast.tracking.open_audit_log`), under ``policy``'s pinned keyring
        (:func:`forecast.ethics.check_lowering`).
    strict_hierarchy : quarantine rows whose admin2 lies outside the admin1 they name.
    sheet : the sheet to read in XLSX workbooks of several sheets.
    rules : value rules for area-month tables (YAML path or mapping, see
        :func:`forecast.io.load_rules`): implausible values are withheld (the row is kept) and
        listed in ``withheld.csv`` with their reasons; a rule naming a variable no table file
        has is refused.
    limits : plausibility rules and resource bounds (:class:`forecast.io.Limits`: earliest and
        latest month, largest count, longest time axis, size of the flow array, of an unpacked
        workbook and of a cell), e.g. ``{"max_count": 1e9}``; the defaults otherwise.

    Examples
    --------
    >>> result = ingest(["prmn.csv"], "flows", areas="som_adm2.geojson")  # doctest: +SKIP
    >>> result.write("out/")  # doctest: +SKIP
    """
    files = [Path(f) for f in files]
    formats = [formats] * len(files) if isinstance(formats, str) else list(formats)
    if len(formats) != len(files):
        raise ForecastError(f"give one format for all files or one per file: {len(files)} files, "
                            f"{len(formats)} formats")
    unknown = sorted(set(formats) - set(READERS))
    if unknown:
        raise ForecastError(f"unknown format(s) {unknown}; known: {sorted(READERS)}")
    if sensitivity is not None and sensitivity not in SENSITIVITY_LEVELS:
        raise ForecastError(f"sensitivity must be one of {list(SENSITIVITY_LEVELS)}, got '{sensitivity}'")
    if sensitivity is not None and not (sensitivity_reason or "").strip():
        raise ForecastError("overriding the sensitivity level needs a reason (sensitivity_reason / "
                            "--sensitivity-reason); it is recorded in the manifest")
    if aliases is not None and areas is None:
        raise ForecastError(f"{aliases}: aliases map spelling variants to a gazetteer's P-codes; give the "
                            "gazetteer too (--areas / areas=), or leave the aliases out")
    if aliases is not None and isinstance(areas, Gazetteer):
        raise ForecastError(f"{aliases}: a Gazetteer object carries its aliases; load it with "
                            "Gazetteer.from_file(areas, aliases=...) instead of passing both")
    resolver = (areas if isinstance(areas, Gazetteer)
                else Gazetteer.from_file(areas, aliases=aliases) if areas is not None else NameKeys())
    value_rules = load_rules(rules)
    if value_rules and "table" not in formats:
        raise ForecastError("value rules apply to area-month tables (--format table); no file is one")
    with using_limits(limits) as in_force:  # every reader and the cube builder of this ingest apply them
        results = []
        for path, fmt in zip(files, formats):
            kwargs = {"resolver": resolver, "drop_columns": tuple(drop_columns),
                      "strict_hierarchy": strict_hierarchy, "sheet": sheet}
            if fmt != "hxl":
                kwargs["columns"] = columns
            if fmt == "table":
                kwargs["rules"] = value_rules
            if progress is not None:
                kwargs["progress"] = lambda done, total, name=path.name: progress(name, done, total)
            results.append(READERS[fmt](path, **kwargs))
        variables = {v for r, fmt in zip(results, formats) if fmt == "table" for v in r.table["variable"].unique()}
        unread = sorted(set(value_rules) - variables)
        if unread:
            raise ForecastError(f"value rules name variable(s) no table file has: {unread}; "
                                f"the tables have {sorted(variables)}")
        assessed = highest([r.sensitivity for r in results])
        cube = build_cube(results, resolver, sensitivity=sensitivity or assessed)
        if isinstance(resolver, Gazetteer) and resolver.geometry:
            # bordering areas, for spatial features (comma-separated P-codes per area)
            table = resolver.neighbours(cube[AREA].values)
            cube = cube.assign_coords(neighbours=(AREA, [",".join(table[a]) for a in cube[AREA].values.astype(str)]))
        area_attributes = None
        if attributes is not None:
            # Read after the cube: its areas (and admin level) are what the rows must name.
            path = Path(attributes)
            area_attributes = read_attributes(
                path, resolver, int(cube.attrs["admin_level"]), drop_columns=tuple(drop_columns), sheet=sheet,
                progress=None if progress is None else lambda done, total: progress(path.name, done, total))
            cube = area_attributes.assign_to(cube)
    stock_flow = check_stock_flow(cube)  # warns (DataQualityWarning) when the flows do not explain the stock
    recorded = [*results, area_attributes] if area_attributes is not None else results
    granted = None
    if sensitivity is not None and SENSITIVITY_LEVELS.index(sensitivity) < SENSITIVITY_LEVELS.index(assessed):
        from forecast.ethics import check_lowering  # the audit log and its keys load only when needed
        from forecast.tracking import open_audit_log

        # a lower level loosens every rule downstream: an ethics reviewer's signed decision
        granted = check_lowering(open_audit_log(audit_log), approval, [r.sha256 for r in recorded], assessed, sensitivity,
                                 policy=policy)
    manifest = Manifest(
        toolkit_version=__version__,
        cube_hash=cube_hash(cube),
        area_key=cube.attrs["area_key"],
        gazetteer={"path": resolver.source, "sha256": resolver.sha256,
                   "aliases": len(resolver.aliases)} if isinstance(resolver, Gazetteer) else None,
        admin_level=int(cube.attrs["admin_level"]),
        dims={str(k): int(v) for k, v in cube.sizes.items()},
        variables=sorted(str(v) for v in cube.data_vars),
        time_range=(str(cube[TIME].values[0])[:10], str(cube[TIME].values[-1])[:10]),
        sensitivity=Sensitivity(
            level=cube.attrs["sensitivity"], assessed=assessed,
            reasons=sorted({why for r in recorded for why in r.sensitivity_reasons}),
            override_reason=sensitivity_reason if sensitivity else None,
            approval=granted.hash if granted else None, approved_by=granted.actor if granted else None,
        ),
        files=[_record(r) for r in recorded],
        limits=in_force.changed(),
    )
    parts = [r.quarantine for r in recorded if len(r.quarantine)]
    quarantine = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=QUARANTINE_COLUMNS)
    withheld = [r.ledger.withheld for r in results if r.ledger.values_withheld]
    return Ingested(cube=cube, manifest=manifest, quarantine=quarantine, results=results,
                    attributes=area_attributes, stock_flow=stock_flow,
                    withheld=pd.concat(withheld, ignore_index=True) if withheld
                    else pd.DataFrame(columns=QUARANTINE_COLUMNS))


def _record(r: ReadResult | AreaAttributes) -> FileRecord:
    return FileRecord(
        path=r.ledger.source_file, sha256=r.sha256, format=r.format, admin_level=r.admin_level,
        rows_in=r.ledger.rows_in, rows_kept=r.rows_kept, rows_quarantined=r.ledger.rows_quarantined,
        quarantine_reasons=r.ledger.reasons(), values_withheld=r.ledger.values_withheld,
        withheld_reasons=r.ledger.withheld_reasons(), columns_kept=r.columns_kept,
        columns_dropped=r.columns_dropped, dropped_on_request=r.dropped_on_request,
        duplicates_policy=r.duplicates_policy, sensitivity=r.sensitivity,
        sensitivity_reasons=r.sensitivity_reasons, notes=r.notes,
    )
