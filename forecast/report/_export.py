"""Exports people can publish: a run's forecasts and ranking as HXL, CSV or GeoJSON, with HDX metadata.

:func:`forecast.pipeline.export_run` reads a ``forecast train --triggers ...`` run; here, from
plain inputs (a trained model, a cube, the run's manifest, the policy and the release status),
:func:`build_export` makes two tables from the cube's last month and :func:`write_export` writes
them with a ``metadata.json`` beside them:

* **forecasts**: one row per area and forecast month: the area's P-codes and names at each admin
  level of the cube, the month, the median and the 80% interval, the probability that the month
  reaches the trigger's threshold (for the months of the trigger's window, and only for areas
  the ranking assesses), the threshold, the area's status;
* **ranking**: one row per area (unassessed areas included, with their status), as
  :meth:`TrainedModel.prioritize` ranks them: rank, the window's probability, the signal, the
  expected number over the window with its 80% interval, the threshold.

The policy's publication rule applies as in the report: a cube finer than the admin level the
data's sensitivity allows is refused, and counts of 1 to k-1 people are withheld (left blank;
``metadata.json`` says how many). Counts are published in whole people. An unreleased model's
files carry a ``release_status`` column on every row and ``NOT-RELEASED`` in their names.

HXL hashtags (row 2 of the ``hxl`` files; ``csv`` is the same without it). ``<t>`` is the target's
attribute: ``arrivals``, ``departures``, ``returns``, or ``idps`` for ``idp_stock`` (the attribute
DTM files give the stock). Core HXL tags and attributes where the standard has them; the others
are custom attributes, as the standard allows:

====================================  ==============================  ========================================
column                                hashtag                         meaning
====================================  ==============================  ========================================
``admin0_pcode``, ``admin0_name``     ``#country+code``, ``+name``    the country (when the cube says it)
``admin<k>_pcode``                    ``#adm<k>+code``                P-code at admin level k (1, 2, ...)
``admin<k>_name``                     ``#adm<k>+name``                name at admin level k
``forecast_month``                    ``#date+forecast``              the month forecast (``YYYY-MM``)
``horizon``                           ``#meta+horizon``               months after the data's last month
``<target>_median``                   ``#affected+<t>+median``        median forecast, people in the month
``<target>_lower80``                  ``#affected+<t>+lower80``       lower bound of the 80% interval (q0.1)
``<target>_upper80``                  ``#affected+<t>+upper80``       upper bound of the 80% interval (q0.9)
``probability`` (forecasts)           ``#indicator+probability``      P(the month reaches the threshold),
                                      ``+monthly``                    recalibrated as the window's; blank
                                                                      after the window
``threshold``                         ``#affected+<t>+threshold``     the trigger's threshold, people a month
``trigger``, ``lead``                 ``#meta+trigger``, ``+lead``    the trigger and its lead (months)
``rank`` (ranking)                    ``#indicator+rank``             1 = most urgent; blank: unassessed
``probability`` (ranking)             ``#indicator+probability``      P(some month of the window reaches
                                      ``+window``                     the threshold)
``signal``                            ``#indicator+signal``           ``yes``: the probability reaches the
                                                                      trigger's; blank: unassessed
``<target>_expected``                 ``#affected+<t>+expected``      sum of the medians over the window
``<target>_lower80``, ``_upper80``    as above                        the window's 80% interval (sums)
``<target>_mean``                     ``#affected+<t>+mean``          the mean forecast (forecasts: the
                                                                      month's; ranking: the window's sum):
                                                                      what adds up to regional and
                                                                      national totals
``last_data``                         ``#date+observed``              last month with a record
``status``                            ``#status+assessment``          ``ok``, or why the area is unassessed
                                                                      (then no probability in either file)
``release_status``                    ``#status+release``             only an unreleased model's files
====================================  ==============================  ========================================

The forecasts file ingests back (``forecast ingest --format hxl``): its median returns as the
target per area and forecast month (:data:`forecast.io.HXL_TARGETS`). A text cell a spreadsheet
would run as a formula (an area name starting with ``=``, ``+``, ``-`` or ``@``) is written with
a leading ``'`` (:func:`forecast.io.write_csv`); P-codes, months and numbers never are.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from forecast._names import AREA, AREA_NAME, TIME, admin_name, admin_pcode
from forecast.backtest import quantile_column
from forecast.errors import ForecastError
from forecast.io import (
    HXL_TARGETS,
    Gazetteer,
    make_folder,
    neutralise_cells,
    open_output,
    write_csv,
    write_output,
)
from forecast.policy import published_name, small_cell_k, suppress_small_cells
from forecast.report._build import check_admin_level, one_ranking
from forecast.triggers import monthly_outlook

__all__ = ["Export", "build_export", "write_export", "check_export_format", "EXPORT_FORMATS", "NOT_RELEASED_MARK"]

#: What ``forecast export --format`` writes.
EXPORT_FORMATS = ("hxl", "csv", "geojson")
#: In every file name of an unreleased model's export.
NOT_RELEASED_MARK = "NOT-RELEASED"
_BOUNDS = (0.1, 0.9)  # the 80% interval


@dataclass(frozen=True)
class Export:
    """A run's forecasts and ranking as published, their hashtags and metadata.

    Attributes
    ----------
    forecasts, ranking : DataFrame
        The tables as written: counts in whole people, small cells blank.
    tags : dict of str to str
        The HXL hashtag of each column (both tables).
    metadata : dict
        What ``metadata.json`` holds (:func:`write_export` adds the files written).
    released : bool
    """

    forecasts: pd.DataFrame
    ranking: pd.DataFrame
    tags: dict
    metadata: dict
    released: bool

    def name(self, table: str, suffix: str) -> str:
        """``forecasts.hxl.csv``; ``forecasts_NOT-RELEASED.hxl.csv`` for an unreleased model."""
        return f"{table}{'' if self.released else '_' + NOT_RELEASED_MARK}{suffix}"


def check_export_format(fmt: str, boundaries=None) -> str:
    """Refuse an unknown format, or GeoJSON without boundaries to draw the areas with."""
    if fmt not in EXPORT_FORMATS:
        raise ForecastError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    if fmt == "geojson" and boundaries is None:
        raise ForecastError("a GeoJSON export draws each area from its boundaries: pass --boundaries "
                            "FILE.geojson (the COD boundaries of the cube's admin level), or choose "
                            "--format hxl or csv")
    if fmt == "geojson" and not Path(boundaries).is_file():
        raise ForecastError(f"boundaries {boundaries} not found: pass the COD GeoJSON of the cube's areas")
    return fmt


def build_export(trained, data, run_id: str, *, policy, sensitivity: str, status, manifest: dict | None = None,
                 trigger: str | None = None, lead: int | None = None) -> Export:
    """The forecasts and the ranking of train run ``run_id`` from the last month of ``data``, as published.

    Parameters
    ----------
    trained : TrainedModel
        The run's model (:func:`forecast.tracking.load_trained`), trained with triggers.
    data : xarray.Dataset
        The cube to forecast from.
    run_id : str
    policy : Policy
        Its ``release`` section sets the small-cell threshold and the finest admin level.
    sensitivity : str
        The data's sensitivity (from the manifest).
    status : ReleaseStatus
        Whether the model is released; an unreleased one is marked on every row.
    manifest : dict, optional
        The run's ``manifest.json``: the source datasets, by file name and hash.
    trigger, lead : optional
        Default: the model's first trigger, and lead 3 when it has one, else its first lead.

    Raises
    ------
    ForecastError
        Data finer than the sensitivity allows, a model without triggers or an 80% interval,
        an unknown trigger or lead.
    """
    check_admin_level(data, sensitivity, policy)
    spec, lead = _trigger(trained, run_id, trigger, lead)
    levels = [float(q) for q in trained.spec.quantiles]
    if not set(_BOUNDS) <= set(levels) or (min(levels), max(levels)) != _BOUNDS:
        raise ForecastError(f"run {run_id}'s model forecasts the quantiles {levels}; an export publishes the "
                            "80% interval (0.1 and 0.9 as the outermost levels): train it with "
                            "quantiles: [0.1, 0.5, 0.9]")
    k = small_cell_k(policy)
    target = trained.spec.target
    forecasts = trained.predict(data)
    ranked = one_ranking(trained.prioritize(data, spec.name, lead))  # numbered as the report numbers it
    outlook = monthly_outlook(forecasts, data, spec, lead, quantiles=levels,
                              missing_target=trained.spec.resolved_missing_target,
                              calibrator=trained.trigger_calibration.get((spec.name, lead)))
    keys, key_tags = _area_keys(data)
    month = pd.Timestamp(data[TIME].values[-1])
    t = target
    fc = pd.DataFrame({AREA: forecasts[AREA].astype(str).to_numpy(),
                       "forecast_month": [f"{m:%Y-%m}" for m in pd.DatetimeIndex(forecasts[TIME])],
                       "horizon": forecasts["horizon"].astype(int).to_numpy(),
                       f"{t}_median": forecasts[quantile_column(0.5) if 0.5 in levels else "point"].to_numpy(float),
                       f"{t}_lower80": forecasts[quantile_column(_BOUNDS[0])].to_numpy(float),
                       f"{t}_upper80": forecasts[quantile_column(_BOUNDS[1])].to_numpy(float),
                       f"{t}_mean": forecasts["mean"].to_numpy(float) if "mean" in forecasts else np.nan})
    monthly = outlook.set_index([AREA, "horizon"])["probability"]
    fc["probability"] = [monthly.get((a, h), np.nan) for a, h in zip(fc[AREA], fc["horizon"])]
    by_area = ranked.set_index(AREA)
    fc["threshold"] = fc[AREA].map(by_area["threshold"]).to_numpy(float)
    fc["status"] = fc[AREA].map(by_area["status"]).fillna("no forecast").astype(str)
    # an area the ranking cannot assess (stale, no threshold) is never given a probability that reads as safe
    fc.loc[~fc["status"].str.startswith("ok"), "probability"] = np.nan
    fc["trigger"], fc["lead"] = spec.name, lead
    fc = keys.merge(fc, on=AREA, how="inner").sort_values([AREA, "horizon"], kind="stable")
    assessed = ranked["status"].astype(str).str.startswith("ok").to_numpy() & ranked["probability"].notna().to_numpy()
    rk = pd.DataFrame({AREA: ranked[AREA].astype(str).to_numpy(), "rank": ranked["rank"].to_numpy(float),
                       "probability": np.where(assessed, ranked["probability"].to_numpy(float), np.nan),
                       "signal": np.where(assessed, np.where(ranked["signal"].astype(bool), "yes", "no"), ""),
                       f"{t}_expected": ranked["expected"].to_numpy(float),
                       f"{t}_lower80": ranked["lower"].to_numpy(float), f"{t}_upper80": ranked["upper"].to_numpy(float),
                       f"{t}_mean": ranked["mean"].to_numpy(float),
                       "threshold": ranked["threshold"].to_numpy(float), "last_data": ranked["last_data"].to_numpy(),
                       "status": ranked["status"].to_numpy(), "trigger": spec.name, "lead": lead})
    rk = keys.merge(rk, on=AREA, how="right")
    rk = rk[["rank", *[c for c in rk.columns if c != "rank"]]]
    fc, fc_withheld = _publish(fc, [f"{t}_median", f"{t}_lower80", f"{t}_upper80", f"{t}_mean", "threshold"], k)
    rk, rk_withheld = _publish(rk, [f"{t}_expected", f"{t}_lower80", f"{t}_upper80", f"{t}_mean", "threshold"], k)
    rk["rank"] = rk["rank"].round().astype("Int64")
    if not status.released:
        fc["release_status"] = rk["release_status"] = status.label
    fc, rk = fc.drop(columns=AREA).reset_index(drop=True), rk.drop(columns=AREA).reset_index(drop=True)
    tags = {**key_tags, **_tags(t, spec.target)}
    meta = _metadata(trained, run_id, spec, lead, month, fc, status, policy, sensitivity, manifest, data, k,
                     {"forecasts": fc_withheld, "ranking": rk_withheld})
    return Export(forecasts=fc, ranking=rk, tags=tags, metadata=meta, released=bool(status.released))


def write_export(export: Export, out: str | Path, fmt: str, *, boundaries: str | Path | None = None) -> list[Path]:
    """Write ``export`` into folder ``out`` as ``hxl``, ``csv`` or ``geojson``, and ``metadata.json``.

    ``hxl`` and ``csv`` write the forecasts and the ranking (``forecasts.hxl.csv``,
    ``ranking.hxl.csv``; ``.csv`` without the hashtag row); ``geojson`` writes the ranking as
    features drawn from ``boundaries`` (a COD GeoJSON). Returns the paths written, metadata last.
    From ``high`` or ``severe`` data (the metadata's sensitivity, the manifest's) every file is
    owner-only (0600) and a folder created for them 0700.
    """
    check_export_format(fmt, boundaries)
    out = Path(out)
    level = export.metadata.get("sensitivity")  # the manifest's: high and severe files are owner-only
    make_folder(out, level)
    tables = {"forecasts": export.forecasts, "ranking": export.ranking}
    written, described, withheld = [], [], 0
    if fmt == "geojson":
        path = out / export.name("ranking", ".geojson")
        missing = _write_geojson(export.ranking, path, boundaries, level)
        written.append(path)
        described.append(_describe(path, "ranking", export, len(export.ranking), geometry_missing=missing))
        withheld = export.metadata["small_cells"]["withheld_by_table"]["ranking"]
    else:
        for table, frame in tables.items():
            path = out / export.name(table, ".hxl.csv" if fmt == "hxl" else ".csv")
            _write_table(frame, path, export.tags if fmt == "hxl" else None, level)
            written.append(path)
            described.append(_describe(path, table, export, len(frame)))
            withheld += export.metadata["small_cells"]["withheld_by_table"][table]
    meta = {**export.metadata, "format": fmt, "files": described}
    meta["small_cells"] = {**meta["small_cells"], "withheld": withheld}
    path = out / export.name("metadata", ".json")
    write_output(path, json.dumps(meta, indent=2, ensure_ascii=False) + "\n", level)
    return [*written, path]


# --- the tables ----------------------------------------------------------------------------

def _trigger(trained, run_id: str, trigger: str | None, lead: int | None):
    if not trained.triggers:
        raise ForecastError(f"run {run_id} was trained without triggers; an export ranks areas against one: "
                            "forecast train --triggers models/triggers.yaml")
    spec = trained.triggers[0] if trigger is None else next((t for t in trained.triggers if t.name == trigger), None)
    if spec is None:
        raise ForecastError(f"run {run_id} has no trigger {trigger!r}; it has "
                            f"{', '.join(t.name for t in trained.triggers)}")
    lead = (3 if 3 in spec.leads else spec.leads[0]) if lead is None else int(lead)
    if lead not in spec.leads:
        raise ForecastError(f"trigger {spec.name!r} has leads {spec.leads}; lead {lead} is not one of them")
    return spec, lead


def _area_keys(data) -> tuple[pd.DataFrame, dict]:
    """Per area of the cube: P-code and name at each admin level it has, and their hashtags."""
    areas = data[AREA].values.astype(str)
    level = _level(data)
    coords = {c: data[c].values.astype(str) for c in data.coords if data[c].dims == (AREA,)}
    keys, tags = pd.DataFrame({AREA: areas}), {}
    for k in range(0, level + 1):
        hxl = "#country" if k == 0 else f"#adm{k}"
        if k == level:
            code = areas if data.attrs.get("area_key", "pcode") == "pcode" else None
            name = coords.get(AREA_NAME, areas)
        else:
            code = coords.get(admin_pcode(k), coords.get("parent_pcode") if k == level - 1 else None)
            name = coords.get(admin_name(k), coords.get("region") if k == 1 else None)
        for column, values, attribute in ((admin_pcode(k), code, "code"), (admin_name(k), name, "name")):
            if values is not None:
                keys[column], tags[column] = values, f"{hxl}+{attribute}"
    return keys, tags


def _level(data) -> int:
    """The cube's admin level, as :func:`check_admin_level` reads it (it has refused a cube without one)."""
    level = data.attrs.get("admin_level")
    return int(level if level is not None else np.max(data["admin_level"].values))


def _publish(frame: pd.DataFrame, counts: list[str], k: int) -> tuple[pd.DataFrame, int]:
    """Counts in whole people, those from 1 to k-1 blank; probabilities to 3 decimals."""
    frame = frame.copy()
    frame[counts] = frame[counts].astype(float).round(0)
    frame = suppress_small_cells(frame, counts, k=k)
    flags = [f"{c}_suppressed" for c in counts]
    withheld = int(frame[flags].to_numpy().sum())
    frame = frame.drop(columns=flags)
    for c in counts:
        frame[c] = frame[c].astype("Int64")
    frame["probability"] = frame["probability"].astype(float).round(3)
    return frame, withheld


def _tags(target: str, trigger_target: str) -> dict:
    t, u = HXL_TARGETS.get(target, target.replace("_", "")), HXL_TARGETS.get(trigger_target, trigger_target)
    return {"forecast_month": "#date+forecast", "horizon": "#meta+horizon",
            f"{target}_median": f"#affected+{t}+median", f"{target}_lower80": f"#affected+{t}+lower80",
            f"{target}_upper80": f"#affected+{t}+upper80", f"{target}_expected": f"#affected+{t}+expected",
            f"{target}_mean": f"#affected+{t}+mean",
            "threshold": f"#affected+{u}+threshold", "trigger": "#meta+trigger", "lead": "#meta+lead",
            "rank": "#indicator+rank", "signal": "#indicator+signal", "last_data": "#date+observed",
            "status": "#status+assessment", "release_status": "#status+release",
            # one column name, two meanings: a month's probability, or the window's
            "probability@forecasts": "#indicator+probability+monthly",
            "probability@ranking": "#indicator+probability+window"}


def _tag(tags: dict, table: str, column: str) -> str:
    return tags.get(f"{column}@{table}", tags.get(column, ""))


# --- the files -----------------------------------------------------------------------------

def _write_table(frame: pd.DataFrame, path: Path, tags: dict | None, level: str | None) -> None:
    table = "forecasts" if path.name.startswith("forecasts") else "ranking"
    with open_output(path, level, "w", encoding="utf-8", newline="") as handle:
        # the header and the hashtag row are written apart from the frame, so neutralised apart too
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(neutralise_cells(frame.columns))
        if tags is not None:
            writer.writerow(neutralise_cells(pd.Index([_tag(tags, table, c) for c in frame.columns], dtype=object)))
        write_csv(frame, handle, header=False, index=False, lineterminator="\n")


def _write_geojson(ranking: pd.DataFrame, path: Path, boundaries, level: str | None) -> list[str]:
    """The ranking as features drawn from ``boundaries``; returns the areas it has no geometry for."""
    gazetteer = Gazetteer.from_file(boundaries)
    code = [c for c in ranking.columns if re.fullmatch(r"admin\d+_pcode", c)]
    if not code:
        raise ForecastError("a GeoJSON export needs the areas' P-codes, and this cube keys its areas by name: "
                            "ingest the data with --areas (a gazetteer) or export --format hxl or csv")
    pcodes = ranking[max(code, key=lambda c: int(c[5:-6]))].astype(str)
    if not pcodes.isin(list(gazetteer.geometry)).any():
        raise ForecastError(f"the boundaries {Path(boundaries).name} draw none of the ranked areas "
                            f"({', '.join(pcodes.head(3))}, ...): pass the COD GeoJSON of the cube's admin level")
    features, missing = [], []
    for pcode, (_, row) in zip(pcodes, ranking.iterrows()):
        polygons = gazetteer.geometry.get(pcode)
        if not polygons:
            missing.append(pcode)
        geometry = None if not polygons else {
            "type": "MultiPolygon", "coordinates": [[ring.tolist() for ring in poly] for poly in polygons]}
        features.append({"type": "Feature", "geometry": geometry,
                         "properties": {c: _plain(v) for c, v in row.items()}})
    write_output(path, json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False) + "\n",
                 level)
    return missing


def _plain(value):
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _describe(path: Path, table: str, export: Export, rows: int, **more) -> dict:
    columns = list((export.ranking if table == "ranking" else export.forecasts).columns)
    return {"name": path.name, "table": table, "rows": rows,
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "columns": [{"column": c, "hxl": _tag(export.tags, table, c)} for c in columns], **more}


# --- metadata ------------------------------------------------------------------------------

def _file_name(path: str) -> str:
    """A file's name alone, whichever machine wrote the path (``C:\\data\\x.csv`` or ``/data/x.csv``)."""
    return re.split(r"[\\/]", str(path))[-1]


def _sources(manifest: dict | None) -> list[dict]:
    return [{"file": _file_name(f.get("path", "")), "sha256": f.get("sha256"), "format": f.get("format"),
             "rows_kept": f.get("rows_kept")} for f in (manifest or {}).get("files", [])]


def _metadata(trained, run_id, spec, lead, month, forecasts, status, policy, sensitivity, manifest, data, k,
              withheld) -> dict:
    manifest = manifest or {}
    sources = _sources(manifest)
    gazetteer = manifest.get("gazetteer") or None
    model = trained.spec
    months = sorted(forecasts["forecast_month"].unique())
    level = _level(data)
    files = ", ".join(s["file"] for s in sources) or "the run's manifest lists none"
    title = f"Forecast {model.target.replace('_', ' ')} per admin{level} area, {months[0]} to {months[-1]}"
    caveats = (f"Forecasts of a statistical model, not observations. The 80% interval is calibrated to hold 4 "
               "times in 5 on the model's own backtest errors (its measured coverage is in the model card); the "
               f"probability is that of reaching the trigger's threshold "
               f"({spec.describe()}). Counts of 1 to {k - 1} people are withheld (blank) and counts are "
               "rounded to whole people. Areas the model could not assess are listed with their status, "
               "never as safe." + ("" if status.released else f" {status.label}: the model has not passed "
                                   "the release gate; do not publish."))
    return {
        "title": title, "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "run_id": run_id,
        "model": {"name": model.name, "estimator": model.estimator, "target": model.target,
                  "spec_hash": model.hash(), "cube_hash": trained.cube_hash, "quantiles": list(model.quantiles)},
        "trigger": {"name": spec.name, "rule": spec.describe(), "probability": spec.probability, "lead": lead},
        "data_month": f"{month:%Y-%m}", "forecast_months": months,
        "release_status": {"released": bool(status.released), "label": status.label,
                           "registered_model": status.name, "version": status.version},
        "sensitivity": sensitivity, "admin_level": level,
        "source_datasets": sources,
        "gazetteer": None if not gazetteer else {"file": _file_name(gazetteer.get("path", "")),
                                                 "sha256": gazetteer.get("sha256")},
        "policy": {"file": published_name(policy.source), "sha256": policy.hash()},
        "small_cells": {"k": k, "rule": f"counts from 1 to {k - 1} people are left blank", "withheld": None,
                        "withheld_by_table": withheld},
        "hdx": {"title": title,
                "dataset_source": f"Forecasts by the displacement-forecast toolkit (model {model.name}, run {run_id}) "
                                  f"from: {files}",
                "methodology": "Other",
                "methodology_other": (f"{model.estimator} model {model.name} (trained on the data with sha256 "
                                      f"{trained.cube_hash[:12]}), forecasting from the data to {month:%Y-%m}; 80% intervals calibrated on the model's own "
                                      "backtest errors (conformal); probabilities read off the forecast quantiles "
                                      "and recalibrated on past origins."),
                "caveats": caveats,
                "license_id": "hdx-other",
                "license_other": ("None stated for this export. The source data's terms apply: "
                                  f"{manifest.get('licence') or 'as stated by each source'}; attribute the "
                                  f"sources ({files})."),
                "dataset_date": f"[{months[0]}-01 TO {pd.Period(months[-1], 'M').end_time:%Y-%m-%d}]"},
    }
