"""Stock-flow consistency: does the change of a stock between two rounds match the flows between?

Between two observed rounds t0 < t1 of an area, the IDP stock should change by the people who
arrived minus those who left (departed onward or returned) in months t0+1 .. t1:

    stock[t1] - stock[t0] = sum(arrivals - departures - returns)

Real data never closes exactly (flow monitoring misses people, rounds count differently), so a
gap is a warning worth a look, never an error.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from forecast._names import AREA, ARRIVALS, DEPARTURES, IDP_STOCK, RETURNS, TIME
from forecast.errors import DataQualityWarning

#: Sign of each flow variable in the stock's change.
FLOW_SIGNS = {ARRIVALS: 1.0, DEPARTURES: -1.0, RETURNS: -1.0}
GAP_COLUMNS = ["area", "from", "to", "stock_from", "stock_to", "stock_change", "net_flow", "gap",
               "gap_share", "flow_months_missing"]


def _on_area_time(cube: xr.Dataset, name: str) -> bool:
    return name in cube.data_vars and set(cube[name].dims) == {AREA, TIME}


def stock_flow_gaps(cube: xr.Dataset, stock: str = IDP_STOCK) -> pd.DataFrame:
    """Compare each change of a stock between consecutive observed rounds with the net flow.

    Parameters
    ----------
    cube : a cube with ``stock`` on (area, time) and any of ``arrivals``, ``departures``,
        ``returns`` on (area, time); the flows it lacks count as 0.
    stock : the stock variable.

    Returns
    -------
    pandas.DataFrame
        One row per area and pair of consecutive observed rounds ``from`` < ``to`` (months):
        ``stock_from``, ``stock_to``, ``stock_change`` (= to - from), ``net_flow`` (arrivals -
        departures - returns summed over the months after ``from`` up to ``to``, missing cells
        skipped), ``gap`` (= stock_change - net_flow), ``gap_share`` (gap / stock_from; the
        denominator is at least 1 person, so a gap out of an empty area counts in people) and
        ``flow_months_missing`` (months in the span where any flow variable was not observed).
        Empty (same columns) when the cube lacks the stock or every flow variable;
        ``table.attrs["flows"]`` names the flow variables used.
    """
    flows = [name for name in FLOW_SIGNS if _on_area_time(cube, name)]
    if not _on_area_time(cube, stock) or not flows:
        table = pd.DataFrame({c: pd.Series(dtype="float64") for c in GAP_COLUMNS})
        table = table.astype({"area": str, "from": "datetime64[ns]", "to": "datetime64[ns]",
                              "flow_months_missing": "int64"})
        table.attrs["flows"] = flows
        return table
    values = cube[stock].transpose(AREA, TIME).to_numpy().astype("float64")
    net = np.zeros_like(values)
    missing = np.zeros(values.shape, dtype=bool)
    for name in flows:
        flow = cube[name].transpose(AREA, TIME).to_numpy().astype("float64")
        missing |= np.isnan(flow)
        net += FLOW_SIGNS[name] * np.nan_to_num(flow)
    # cumulative sums with a leading 0: the sum over months t0+1..t1 is c[:, t1+1] - c[:, t0+1]
    c_net = np.concatenate([np.zeros((len(values), 1)), np.cumsum(net, axis=1)], axis=1)
    c_miss = np.concatenate([np.zeros((len(values), 1), dtype="int64"),
                             np.cumsum(missing, axis=1)], axis=1)
    a, t = np.nonzero(~np.isnan(values))          # area-major, time ascending within an area
    pair = a[:-1] == a[1:]
    a, t0, t1 = a[:-1][pair], t[:-1][pair], t[1:][pair]
    s0, s1 = values[a, t0], values[a, t1]
    net_flow = c_net[a, t1 + 1] - c_net[a, t0 + 1]
    gap = (s1 - s0) - net_flow
    time = pd.DatetimeIndex(cube[TIME].to_numpy())
    table = pd.DataFrame({
        "area": cube[AREA].to_numpy().astype(str)[a], "from": time[t0], "to": time[t1],
        "stock_from": s0, "stock_to": s1, "stock_change": s1 - s0, "net_flow": net_flow,
        "gap": gap, "gap_share": gap / np.maximum(s0, 1.0),
        "flow_months_missing": (c_miss[a, t1 + 1] - c_miss[a, t0 + 1]).astype("int64"),
    }, columns=GAP_COLUMNS)
    table.attrs["flows"] = flows
    return table


def check_stock_flow(cube: xr.Dataset, tolerance: float = 0.25, *, stock: str = IDP_STOCK) -> pd.DataFrame:
    """:func:`stock_flow_gaps`, warning (:class:`~forecast.errors.DataQualityWarning`) when the
    gap of any round pair exceeds ``tolerance`` as a share of the earlier stock.

    The warning says how many round pairs exceed it, the largest gap in people and as a share,
    and a few areas; it never raises. Returns the table of every round pair.
    """
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance >= 0:
        raise ValueError(f"tolerance must be a share >= 0 (e.g. 0.25); got {tolerance!r}")
    table = stock_flow_gaps(cube, stock)
    over = table[table["gap_share"].abs() > tolerance]
    if len(over):
        worst = over.loc[over["gap"].abs().idxmax()]
        share = over.loc[over["gap_share"].abs().idxmax()]
        ranked = over.assign(size=over["gap"].abs()).sort_values("size", ascending=False)
        examples = ", ".join(list(dict.fromkeys(ranked["area"]))[:3])
        terms = " ".join(("+" if FLOW_SIGNS[f] > 0 else "-") + f for f in table.attrs["flows"])
        partial = int((over["flow_months_missing"] > 0).sum())
        warnings.warn(
            f"'{stock}' does not follow its flows ({terms}): "
            f"{len(over)} of {len(table)} round pairs differ by more than {tolerance:.0%} of the "
            f"earlier stock; largest gap {worst['gap']:+,.0f} people ({worst['area']}, "
            f"{worst['from']:%Y-%m} to {worst['to']:%Y-%m}), largest share {share['gap_share']:+,.0%} "
            f"({share['area']}); areas {examples}"
            + (f"; {partial} of these pairs have months with missing flows" if partial else ""),
            DataQualityWarning, stacklevel=2)
    return table


__all__ = ["stock_flow_gaps", "check_stock_flow", "GAP_COLUMNS"]
