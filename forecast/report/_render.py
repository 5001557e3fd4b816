"""Render a :class:`~forecast.report.ForecastReport`: one self-contained HTML file, or a PDF on A4.

The HTML embeds its images (``data:`` URIs) and styles, so it can be mailed or opened offline;
the PDF is the same page printed by WeasyPrint, with the release watermark on every page.
Numbers of people below the policy's small-cell threshold are shown as ``<k``.
"""

from __future__ import annotations

import base64
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from forecast.errors import ForecastError
from forecast.io import make_folder, write_output

__all__ = ["to_html", "to_pdf", "write_report", "people"]

TEMPLATES = Path(__file__).resolve().parent / "templates"
FIGURES = ("map", "fans", "skill", "reliability")


def people(value, k: int) -> str:
    """A number of people as published: ``-`` unknown, ``<k`` for 1 to k-1, else with thousands separators."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    if math.isnan(v):
        return "-"
    if 0 < v < k:
        return f"<{k}"
    return f"{v:,.0f}"


def _percent(value) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(v) else f"{v:.0%}"


def _num(value, digits: int = 2) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(v) else f"{v:,.{digits}f}"


def _month(value) -> str:
    """``2024-02`` as ``February 2024``; ``-`` when unknown."""
    try:
        # Period.strftime: pandas 2 has no format spec for a Period
        return pd.Period(str(value), freq="M").strftime("%B %Y") if value is not None and str(value) not in ("", "nan") else "-"
    except ValueError:
        return "-"


def _data_uri(image: bytes | None) -> str | None:
    return None if image is None else "data:image/png;base64," + base64.b64encode(image).decode("ascii")


def _records(frame: pd.DataFrame | None) -> list[dict]:
    return [] if frame is None else frame.to_dict("records")


def _context(report) -> dict:
    ranking = report.ranking
    headline = report.headline
    by_region: dict[str, list[dict]] = {}
    for row in ranking.sort_values(["region", "rank"], na_position="last").to_dict("records"):
        by_region.setdefault(row["region"] or "(no admin1)", []).append(row)
    last = report.data["last"]
    return {"r": report, "m": report.meta, "headline": _records(headline), "table": _records(report.table),
            "age": report.data["age"],
            "changes": _records(report.changes), "by_region": by_region,
            "unassessed": _records(report.unassessed), "last_by_region": _group(last),
            "skill": _records(report.track["skill"]), "fig": {k: _data_uri(report.figures.get(k)) for k in FIGURES},
            "fair": report.fairness, "data": report.data, "card": report.card, "track": report.track,
            "scenario": report.scenario, "totals": _records(getattr(report, "totals", None)),
            "ratios": _total_ratios(report.track["skill"], int(report.meta["lead"]))}


def _total_ratios(skill: pd.DataFrame, lead: int) -> list[float]:
    """The backtest's ``mean_level_ratio`` at horizons 1..lead (what the totals' track record says)."""
    if "mean_level_ratio" not in skill:
        return []
    values = skill.loc[skill["horizon"] <= lead, "mean_level_ratio"].to_numpy(float)
    return [float(v) for v in values if np.isfinite(v)]


def _group(frame: pd.DataFrame) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for row in frame.to_dict("records"):
        out.setdefault(row["region"] or "(no admin1)", []).append(row)
    return out


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = _percent
    env.filters["num"] = _num
    env.filters["month"] = _month
    return env


def to_html(report, *, media: str = "screen") -> str:
    """The report as one self-contained HTML page (inline CSS and images, every value escaped)."""
    k = report.k
    env = _environment()
    env.filters["people"] = lambda v: people(v, k)
    return env.get_template("report.html.j2").render(media=media, **_context(report))


def to_pdf(report, path: str | Path) -> Path:
    """Print the report to a PDF (A4) with WeasyPrint; the watermark repeats on every page (owner-only
    from ``high`` or ``severe`` data, as :func:`write_report`)."""
    try:
        with warnings.catch_warnings():  # a note about a system library a later WeasyPrint will need
            warnings.filterwarnings("ignore", "HarfBuzz-Subset", DeprecationWarning)
            from weasyprint import HTML
    except (ImportError, OSError) as error:  # OSError: the Pango library WeasyPrint needs is missing
        raise ForecastError(f"PDF output needs WeasyPrint and the Pango library ({error}); install Pango "
                            "(Debian: apt-get install libpango-1.0-0 libpangoft2-1.0-0) or write --format html "
                            "and print it from a browser") from None
    path = Path(path)
    level = _sensitivity(report)
    make_folder(path.parent, level)
    write_output(path, HTML(string=to_html(report, media="print")).write_pdf(), level)
    return path


def _sensitivity(report) -> str | None:
    """The data's sensitivity the report was built at (its manifest's): high and severe reports
    are written owner-only (:func:`forecast.io.write_output`)."""
    return report.meta.get("sensitivity")


def write_report(report, path: str | Path, fmt: str | None = None) -> Path:
    """Write ``report`` to ``path`` as ``html`` or ``pdf`` (default: from the suffix, else html).

    From ``high`` or ``severe`` data the file is owner-only (0600) and a folder created for it 0700.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".") or "html").lower()
    if fmt not in ("html", "pdf"):
        raise ForecastError(f"report format {fmt!r}: use html or pdf")
    if fmt == "pdf":
        return to_pdf(report, path)
    level = _sensitivity(report)
    make_folder(path.parent, level)
    write_output(path, to_html(report), level)
    return path
