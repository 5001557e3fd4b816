"""Totals of regions and the country over a window, as the forecast report shows them, scored.

    python benchmarks/totals.py                  # ~1.5 min on 2 cores
    python benchmarks/totals.py --spec lightgbm --leads 1,2,3

One backtest of the spec on the shipped Somalia sample (12 scored origins, 12 earlier ones
calibrating; no baselines), then per level (the 18 regions; the country, which borrows the
regions' errors until it has 30 totals of its own) and window length: the totals with an
outcome, how many had an interval, 80% coverage, the level ratio of the summed ``mean``
forecasts, and the median interval width over the total (:func:`forecast.backtest.window_totals`,
:func:`forecast.backtest.score_totals`). Prints the table and one JSON line last.
"""

from __future__ import annotations

import argparse
import json
import time

import pandas as pd

from forecast.backtest import RollingOrigin, backtest, level_groups, score_totals, window_totals
from forecast.datasets import load_somalia
from forecast.models import load_spec


def _leads(text: str) -> list[int]:
    try:
        leads = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        leads = []
    if not leads or min(leads) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole months of at least 1, comma-separated (1,3,6)")
    return leads


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="lightgbm_median", help="a shipped spec's name or a spec YAML")
    parser.add_argument("--leads", default=[1, 3, 6], type=_leads, help="window lengths in months, comma-separated")
    args = parser.parse_args(argv)
    leads = args.leads
    cube = load_somalia()
    start = time.perf_counter()
    result = backtest(cube, [load_spec(args.spec)], baselines=False,
                      folds=RollingOrigin(n_origins=12, calibration_origins=12))
    wall = time.perf_counter() - start
    groups = level_groups(cube)
    regions, country = groups["admin1"][0], groups["national"][0]
    table = pd.DataFrame({(level, lead): score_totals(window_totals(result.forecasts, by, lead, finer=finer))
                          for level, by, finer in (("admin1", regions, None), ("national", country, regions))
                          for lead in leads})
    print(table.round(2).to_string())
    print(json.dumps({"spec": args.spec, "backtest_s": round(wall, 1),
                      **{f"{level}_l{lead}_{k}": round(float(v), 3) for (level, lead), column in table.items()
                         for k, v in column.items()}}))
    return table


if __name__ == "__main__":
    main()
