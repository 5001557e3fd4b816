"""The cube: a validated monthly panel (``xarray.Dataset``) that every later stage reads."""

from forecast.cube._aggregate import aggregate
from forecast.cube._build import build_cube
from forecast.cube._consistency import check_stock_flow, stock_flow_gaps
from forecast.cube._flows import FlowTable, Routes, check_flow_cells, flow_table, trim_flows, with_flows
from forecast.cube._store import cube_hash, load_cube, save_cube
from forecast.cube._table import cube_from_table, cube_table

__all__ = ["aggregate", "build_cube", "cube_hash", "load_cube", "save_cube", "cube_table", "cube_from_table",
           "stock_flow_gaps", "check_stock_flow", "FlowTable", "Routes", "flow_table", "with_flows", "trim_flows",
           "check_flow_cells"]
