"""The publishable export of a train run by its id: read the run, its data and release status, then export."""

from __future__ import annotations

from pathlib import Path

from forecast.cube import load_cube
from forecast.errors import ForecastError
from forecast.policy import load_policy, manifest_sensitivity, release_checks
from forecast.report import build_export, check_admin_level, check_export_format, write_export
from forecast.pipeline._release import release_status
from forecast.tracking import load_trained, read_run

__all__ = ["export_run"]

_PURPOSE = "an export publishes the forecasts of a run of `forecast train --triggers models/triggers.yaml`"


def export_run(run_id: str, fmt: str, out: str | Path, *, cube=None, trigger: str | None = None,
               lead: int | None = None, boundaries: str | Path | None = None, policy=None,
               tracking_uri: str | None = None, progress=None) -> list[Path]:
    """Write the forecasts and the ranking of a ``forecast train --triggers ...`` run for publication.

    Parameters
    ----------
    run_id : str
        The train run (its model forecasts from the cube's last month).
    fmt : {"hxl", "csv", "geojson"}
        ``hxl``: the forecasts and the ranking with HXL hashtags on row 2 (the forecasts ingest
        back with ``forecast ingest --format hxl``); ``csv``: the same without hashtags;
        ``geojson``: the ranking as features drawn from ``boundaries``.
    out : path
        The folder to write into (``metadata.json`` beside the files).
    cube : xarray.Dataset, str or Path, optional
        The data to forecast from; default: the cube the run was trained on (tag ``cube_path``).
    trigger, lead : optional
        Default: the model's first trigger, and lead 3 when it has one, else its first lead.
    boundaries : path, optional
        A COD GeoJSON of the areas; needed for ``geojson``.
    policy : Policy, optional
        Default: :func:`forecast.policy.load_policy`; its ``release`` section sets the
        small-cell threshold and the finest admin level the data's sensitivity allows.
    tracking_uri : str, optional
    progress : callable, optional
        Called with a short description of each step.

    Returns
    -------
    list of Path
        The files written, ``metadata.json`` last (``NOT-RELEASED`` in every name of an
        unreleased model's export).

    Raises
    ------
    ForecastError
        An unknown format, ``geojson`` without boundaries, an unknown run or one of another kind,
        a run that does not say its cube, a model without triggers, or data finer than the
        sensitivity allows to publish.

    Examples
    --------
    >>> export_run(run_id, "hxl", "out/export")  # doctest: +SKIP
    [PosixPath('out/export/forecasts_NOT-RELEASED.hxl.csv'), ..., PosixPath('out/export/metadata_NOT-RELEASED.json')]
    """
    step = progress or (lambda _: None)
    check_export_format(fmt, boundaries)  # before the slow steps
    step("reading the run and its data")
    train = read_run(run_id, kind="train", purpose=_PURPOSE, tracking_uri=tracking_uri, artifacts=True)
    rules = load_policy() if policy is None else policy
    release_checks(rules)
    if cube is None:
        cube = train.tags.get("cube_path")
        if not cube:
            raise ForecastError(f"run {run_id} does not say which cube it was trained on; pass --cube")
    data = load_cube(cube) if isinstance(cube, (str, Path)) else cube
    manifest = train.json("manifest.json")
    sensitivity = manifest_sensitivity(manifest) or "unknown"
    check_admin_level(data, sensitivity, rules)  # build_export checks again; here before the model loads
    status = release_status(run_id, tracking_uri=tracking_uri)
    step("forecasting from the last month")
    trained, _ = load_trained(run_id, tracking_uri=tracking_uri)
    export = build_export(trained, data, run_id, policy=rules, sensitivity=sensitivity, status=status,
                          manifest=manifest, trigger=trigger, lead=lead)
    step("writing the files")
    return write_export(export, out, fmt, boundaries=boundaries)
