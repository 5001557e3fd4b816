"""One design matrix for the whole panel, computed once and sliced per forecast origin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import warnings
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import xarray as xr

from forecast._names import AREA, FLOWS, PARENT_PCODE, TIME
from forecast.cube import flow_table
from forecast.errors import DataQualityWarning, ForecastError
from forecast.features import _drivers  # noqa: F401  (registers the driver families named in ALL)
from forecast.features._families import DEFAULT_PARAMS, FAMILIES, LOOKS_FOR, Inputs
from forecast.features._panel import Panel, observed_mask
from forecast.features._windows import forward_fill

__all__ = ["FeatureMatrix", "build_features", "resolve_families", "neighbours_from_cube",
           "NEIGHBOURS"]

#: Cube coordinate holding each area's bordering areas as comma-separated keys.
NEIGHBOURS = "neighbours"
#: Every registered family except user additions, in a stable order.
ALL = ("lags", "rolling", "since_large", "season", "covariates", "stock_flow",
       "drought", "conflict", "markets", "food_security", "pressure", "spatial", "admin", "masks")
#: Families that read only the target and the calendar (the panel then holds no covariates).
TARGET_ONLY = ("lags", "rolling", "since_large", "season")


@dataclass(frozen=True)
class FeatureMatrix:
    """Features for every area-month, rows ordered by time then area.

    Attributes
    ----------
    X : pandas.DataFrame
        float32 features, index ``(time, area)``; row ``t * n_areas + a``.
    panel : Panel
        The target (after ``missing_target``) and covariates the features came from.
    families : dict of str to tuple of str
        The columns each family produced.
    """

    X: pd.DataFrame
    panel: Panel
    families: dict[str, tuple[str, ...]]

    @property
    def n_areas(self) -> int:
        return len(self.panel.areas)

    def rows_at(self, t: int) -> slice:
        """The rows of month index ``t`` (one per area)."""
        return slice(t * self.n_areas, (t + 1) * self.n_areas)

    def rows_upto(self, t: int) -> slice:
        """The rows of every month up to and including index ``t``."""
        return slice(0, (t + 1) * self.n_areas)

    @cached_property
    def complete(self) -> np.ndarray:
        """Per row: is every feature observed (no NaN)? Computed once per matrix."""
        return np.isfinite(self.X.to_numpy()).all(axis=1)

    @cached_property
    def anchor(self) -> np.ndarray:
        """Per row: the last target value observed up to and including the row's month (NaN
        before an area's first observation), row-aligned. A stock model's change is measured
        from it (a spec's ``target_transform: log_ratio``)."""
        return forward_fill(self.panel.y).T.ravel()

    def target(self, horizon: int) -> np.ndarray:
        """The target ``horizon`` months after each row's month (NaN past the end), row-aligned."""
        y = self.panel.y
        ahead = np.full_like(y, np.nan)
        if horizon < y.shape[1]:
            ahead[:, : y.shape[1] - horizon] = y[:, horizon:]
        return ahead.T.ravel()


def resolve_families(names: Sequence[str] | str) -> tuple[str, ...]:
    """Expand ``"all"`` and check each family name, listing the known ones on a typo."""
    if isinstance(names, str):
        names = ALL if names == "all" else (names,)
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        raise ForecastError(f"unknown feature family {', '.join(map(repr, unknown))}; "
                            f"known families: {', '.join(FAMILIES)}")
    return tuple(names)


def build_features(
    cube: xr.Dataset,
    target: str = "arrivals",
    *,
    families: Sequence[str] | str = "all",
    params: Mapping[str, object] | None = None,
    missing_target: str = "skip",
    neighbours: Mapping[str, Sequence[str]] | None = None,
    exclude: Sequence[str] = (),
    exclude_variables: Sequence[str] = (),
) -> FeatureMatrix:
    """Build the design matrix for ``target`` from a cube.

    Parameters
    ----------
    cube : xarray.Dataset
        A cube from :func:`forecast.ingest` or :func:`forecast.load_cube`.
    target : str
        The variable to forecast, e.g. ``arrivals`` or ``idp_stock``.
    families : sequence of str or "all"
        Feature families by name (see ``forecast.features.FAMILIES``). ``"all"`` takes what the
        cube has; a family named in a list that finds none of the variables it reads gives a
        :class:`~forecast.errors.DataQualityWarning` naming them (a spec asking for
        ``covariates`` on a cube without any would otherwise run silently without them).
    params : mapping, optional
        Overrides of ``DEFAULT_PARAMS`` (lags, windows, covariate_lags, ...).
    missing_target : {"skip", "zero"}
        How an unobserved target cell is read; see :class:`forecast.models.Panel`.
    neighbours : mapping of area to areas, optional
        Bordering areas. Default: the cube's ``neighbours`` coordinate when it has one (ingest
        writes it from boundary polygons), else areas with the same parent.
    exclude : sequence of str
        Columns to leave out (a spec's ``exclude_features``), dropped as each family is
        computed; a name no family produces is refused.
    exclude_variables : sequence of str
        Cube variables no family may read (a spec's ``exclude_variables``, for ablations):
        they are left out of the panel's covariates (``flows`` too, when named), so that no
        column of any family comes from them. A name the cube does not have, or the target,
        is refused.

    Returns
    -------
    FeatureMatrix

    Examples
    --------
    >>> fm = build_features(forecast.load_somalia(), "arrivals", missing_target="zero")  # doctest: +SKIP
    >>> fm.X.loc["2020-01-01"]                                                           # doctest: +SKIP
    """
    named = not isinstance(families, str) or families != "all"  # asked for by name: say when it finds nothing
    names = resolve_families(families)
    merged = {**DEFAULT_PARAMS, **(params or {})}
    unknown = set(merged) - set(DEFAULT_PARAMS) - {"covariates"}
    if unknown:
        raise ForecastError(f"unknown feature parameter(s) {sorted(unknown)}; "
                            f"known: {sorted(DEFAULT_PARAMS) + ['covariates']}")
    withheld = _withheld(cube, target, exclude_variables)
    exog = tuple(v for v, da in cube.data_vars.items()
                 if da.dims == (AREA, TIME) and not v.endswith("_observed") and v != target
                 and v not in withheld)
    if names and set(names) <= set(TARGET_ONLY):  # nothing reads the covariates: do not load them
        exog = ()
    panel = Panel.from_cube(cube, target, exog=exog, missing_target=missing_target)
    index = pd.MultiIndex.from_product([panel.time, panel.areas], names=[TIME, AREA])
    if not names:  # the panel alone: what series models read
        return FeatureMatrix(X=pd.DataFrame(index=index), panel=panel, families={})
    inputs = Inputs(
        y=panel.y, exog=panel.exog, time=panel.time, target=target,
        parents=_parents(cube), neighbours=_neighbour_index(cube, panel.areas, neighbours),
        flows=None if FLOWS in withheld else flow_table(cube, panel.areas),
        observed={target: observed_mask(cube, target)},
    )
    exclude = set(exclude)
    columns, produced, seen = {}, {}, set()
    for name in names:
        arrays = FAMILIES[name](inputs, merged)
        clash = set(arrays) & seen
        if clash:
            raise ForecastError(f"feature family {name!r} repeats columns {sorted(clash)}")
        seen.update(arrays)
        if named and not arrays and name in LOOKS_FOR:
            _warn_empty(name, LOOKS_FOR[name](inputs, merged), inputs, withheld)
        produced[name] = tuple(k for k in arrays if k not in exclude)
        # float32 rows (time, area) as each family comes, so that its float64 arrays can go
        columns.update({k: np.asarray(v, dtype=np.float32).T.ravel() for k, v in arrays.items() if k not in exclude})
        del arrays
    unknown = sorted(exclude - seen)
    if unknown:
        raise ForecastError(f"exclude_features names columns the features do not have: {unknown}; "
                            f"they have {', '.join(sorted(seen))}")
    names_out = list(columns)
    matrix = np.empty((len(index), len(names_out)), dtype=np.float32)
    for j, name in enumerate(names_out):  # one float32 block, each column freed once copied
        matrix[:, j] = columns.pop(name)
    X = pd.DataFrame(matrix, index=index, columns=names_out, copy=False)
    return FeatureMatrix(X=X, panel=panel, families=produced)


def _warn_empty(family: str, sought: str | None, inputs: Inputs, withheld) -> None:
    if sought is None:
        return
    have = sorted(inputs.exog)
    has = (f"the cube's covariates are {', '.join(have[:12])}{' ...' if len(have) > 12 else ''}" if have
           else "the cube has no covariate besides the target")
    if withheld:
        has += f" (exclude_variables withholds {', '.join(sorted(withheld))})"
    warnings.warn(f"feature family {family!r} found nothing in the cube: it looks for {sought}; {has}. "
                  f"The model runs without {family!r} features: add those variables to the cube (forecast "
                  f"ingest), or drop {family!r} from the spec's features", DataQualityWarning, stacklevel=3)


def _withheld(cube: xr.Dataset, target: str, names: Sequence[str]) -> frozenset[str]:
    """The variables named in ``exclude_variables``, checked against the cube."""
    if isinstance(names, str):
        names = (names,)
    known = [str(v) for v in cube.data_vars if not str(v).endswith("_observed")]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ForecastError(f"exclude_variables names variables the cube does not have: {unknown}; "
                            f"it has {', '.join(known)}")
    if target in names:
        raise ForecastError(f"exclude_variables cannot withhold the target {target!r}: the model forecasts it; "
                            "to leave out features of its past, use exclude_features or fewer families")
    return frozenset(names)


def _parents(cube: xr.Dataset) -> np.ndarray:
    if PARENT_PCODE in cube.coords:
        return cube[PARENT_PCODE].values.astype(str)
    return np.full(cube.sizes[AREA], "")


def neighbours_from_cube(cube: xr.Dataset) -> dict[str, list[str]]:
    """The cube's ``neighbours`` coordinate as a mapping (empty when it has none)."""
    if NEIGHBOURS not in cube.coords:
        return {}
    return {str(a): [n for n in str(v).split(",") if n]
            for a, v in zip(cube[AREA].values, cube[NEIGHBOURS].values)}


def _neighbour_index(cube, areas: pd.Index, neighbours) -> list[np.ndarray]:
    table = dict(neighbours) if neighbours is not None else neighbours_from_cube(cube)
    if not table:  # no boundaries: areas under the same parent stand in for neighbours
        parents = _parents(cube)
        return [np.flatnonzero((parents == p) & (np.arange(len(areas)) != i)) if p else np.array([], int)
                for i, p in enumerate(parents)]
    pos = {a: i for i, a in enumerate(areas)}
    return [np.array(sorted(pos[n] for n in table.get(a, ()) if n in pos), dtype=int) for a in areas]


