"""Canonical names shared by every stage (see DESIGN.md, "Canonical names").

The cube is an ``xarray.Dataset``:

* dims ``area`` (P-code, or a name key when no gazetteer was given) and ``time``
  (``datetime64[ns]``, the first day of each month, contiguous);
* ``flows`` is stored sparsely, one record per observed route and month (dim ``flow``, with
  coordinates ``flow_origin``, ``flow_destination`` and ``flow_time``; see
  :mod:`forecast.cube._flows`); its dense view has dims ``origin``, ``destination``, ``time``;
* ``arrivals_by_reason`` has dims ``area``, ``time``, ``reason``;
* every observed variable ``X`` on (area, time) is float64 with NaN where the cell was not
  observed (never 0), and a boolean companion ``X_observed``;
* area coordinates: ``area_name``, ``admin_level``, ``parent_pcode`` and, for each coarser
  level k, ``admin{k}_pcode`` / ``admin{k}_name``; optional group coordinates
  (``region``, ``access``, ``settlement``) used later as fairness groups;
* attributes: ``area_key`` (``"pcode"`` or ``"name"``), ``admin_level`` and ``sensitivity``.
"""

from __future__ import annotations

AREA = "area"
TIME = "time"
ORIGIN = "origin"
DESTINATION = "destination"
REASON = "reason"

ARRIVALS = "arrivals"
DEPARTURES = "departures"
IDP_STOCK = "idp_stock"
RETURNS = "returns"
FLOWS = "flows"
FLOW = "flow"                          # the dim of the flow records
FLOW_AREA = "flow_area"                # the area labels the records' positions refer to
FLOW_ORIGIN = "flow_origin"
FLOW_DESTINATION = "flow_destination"
FLOW_TIME = "flow_time"
ARRIVALS_BY_REASON = "arrivals_by_reason"
CONFLICT_EVENTS = "conflict_events"
CONFLICT_FATALITIES = "conflict_fatalities"
RAINFALL = "rainfall"
RAIN_ANOMALY = "rain_anomaly"

OBSERVED_SUFFIX = "_observed"

AREA_NAME = "area_name"
ADMIN_LEVEL = "admin_level"
PARENT_PCODE = "parent_pcode"
GROUP_COLUMNS = ("region", "access", "settlement")

SENSITIVITY_LEVELS = ("low", "moderate", "high", "severe")


def observed_name(variable: str) -> str:
    """Name of the boolean mask that says which cells of ``variable`` were observed."""
    return f"{variable}{OBSERVED_SUFFIX}"


def admin_pcode(level: int) -> str:
    return f"admin{level}_pcode"


def admin_name(level: int) -> str:
    return f"admin{level}_name"


#: Flow-monitoring variables: event logs of people moving in a month (no record = nobody moved).
FLOW_TARGETS = (ARRIVALS, DEPARTURES, RETURNS)
#: The kinds of target a model can forecast (see :func:`target_kind`).
TARGET_KINDS = ("flow", "stock")


def target_kind(target: str) -> str:
    """``"flow"`` for flow-monitoring counts (arrivals, departures, returns: people moving in a
    month), ``"stock"`` for everything else (``idp_stock``: people displaced at a round, observed
    in round months only). The kind decides a spec's defaults and the release gate's baseline."""
    return "flow" if target in FLOW_TARGETS else "stock"
