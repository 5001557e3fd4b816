"""Open a report in headless Chromium as a reader would: a screenshot, and what the page printed.

:func:`check_report` renders the HTML report in Chromium twice, as a full-page screenshot (PNG,
kept for people to look at) and printed to PDF (whose text and images say what the browser
actually laid out), then checks that the headline table, the map or the admin1 table, the
reading guide, the age of the data and the release status (watermark or release label) are on
the page, and that the page names no folder of a machine. ``make report-check`` runs it on
the demo's report; the test suite runs it on a report of its own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forecast.errors import ForecastError

__all__ = ["find_chromium", "screenshot", "print_pdf", "check_report", "RenderCheck"]

_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
          "--disable-dev-shm-usage", "--allow-file-access-from-files"]
#: The banner colour of the NOT RELEASED watermark (#b30000).
BANNER_RGB = (179, 0, 0)
#: A folder of somebody's machine, as a published page must never show one.
MACHINE_PATH = re.compile(r"(?<![\w.])(/(?:tmp|home|root|work|Users|var|opt|mnt|srv)/[\w.-]+|[A-Z]:\\\w+)")


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable: ``$CHROMIUM`` if set, else the first on PATH."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if shutil.which(explicit) else None
    return next((path for path in map(shutil.which, _NAMES) if path), None)


def _run(args: list[str], target: Path, timeout: int) -> None:
    browser = find_chromium()
    if browser is None:
        raise ForecastError("no Chromium found (set CHROMIUM or install it: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        try:
            done = subprocess.run([browser, *_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ForecastError(f"Chromium did not finish within {timeout} s") from None
    if not target.is_file() or target.stat().st_size == 0:
        raise ForecastError(f"Chromium wrote no {target.name} (exit {done.returncode}): {done.stderr[-800:]}")


def screenshot(html: str | Path, png: str | Path, *, width: int = 1100, height: int = 1600,
               timeout: int = 120) -> Path:
    """A screenshot of the top ``height`` pixels of ``html`` at ``width`` pixels."""
    html, png = Path(html).resolve(), Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    _run([f"--screenshot={png}", f"--window-size={width},{height}", html.as_uri()], png, timeout)
    return png


def print_pdf(html: str | Path, pdf: str | Path, *, timeout: int = 120) -> Path:
    """``html`` printed by Chromium to a PDF (what a reader gets with Ctrl+P)."""
    html, pdf = Path(html).resolve(), Path(pdf).resolve()
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.unlink(missing_ok=True)
    _run([f"--print-to-pdf={pdf}", "--no-pdf-header-footer", html.as_uri()], pdf, timeout)
    return pdf


@dataclass
class RenderCheck:
    """What Chromium showed: ``problems`` is empty when every expected part is on the page."""

    screenshot: Path
    pages: int
    images: int
    watermark: bool
    banner_pixels: int
    problems: list[str] = field(default_factory=list)
    text: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def check_report(html: str | Path, png: str | Path, *, expect_watermark: bool, headline: list[str] = (),
                 expect: list[str] = (), watermark: str = "NOT RELEASED", timeout: int = 120) -> RenderCheck:
    """Render ``html`` in Chromium, keep a screenshot at ``png`` and check what it shows.

    Parameters
    ----------
    expect_watermark : bool
        Whether the model is unreleased (the watermark must be on every printed page, and the
        red banner in the screenshot) or released (neither may appear).
    headline : list of str
        Area names the headline table must show.
    expect : list of str
        Any other text the page must show (the window's months, a reason, "Compared with the
        report on data to 2023-11"); white space is compared as single spaces.
    """
    from PIL import Image
    from pypdf import PdfReader

    shot = screenshot(html, png, timeout=timeout)
    with tempfile.TemporaryDirectory() as tmp:
        reader = PdfReader(str(print_pdf(html, Path(tmp) / "printed.pdf", timeout=timeout)))
        texts = [" ".join((page.extract_text() or "").split()) for page in reader.pages]
        images = sum(len(page.images) for page in reader.pages)
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=int)
    banner = int((np.abs(pixels - np.asarray(BANNER_RGB)).max(axis=2) <= 6).sum())
    text = " ".join(texts)
    problems = []
    if "Headline" not in text:
        problems.append("no headline section in the rendered page")
    if not ("Where" in text and (images >= 2 or "region" in text)):
        problems.append("neither the map image nor the admin1 table rendered")
    problems += [f"headline area {name!r} not shown" for name in headline if name not in text]
    if "How to read these numbers" not in text:
        problems.append("no reading guide (the box explaining the interval, the probability and the return period)")
    if "How old the data are" not in text:
        problems.append("no table of the last month with data per source")
    problems += [f"expected text not shown: {want!r}" for want in expect if " ".join(want.split()) not in text]
    problems += [f"a folder of a machine is shown: {found!r}" for found in sorted(set(MACHINE_PATH.findall(text)))]
    marked = [watermark in t for t in texts]
    if expect_watermark and not all(marked):
        problems.append(f"watermark missing on printed page(s) {[i + 1 for i, m in enumerate(marked) if not m]}")
    if expect_watermark and banner < 2000:
        problems.append(f"the red NOT RELEASED banner is not visible in the screenshot ({banner} red pixels)")
    if not expect_watermark and (any(marked) or banner >= 2000):
        problems.append("a released model's report shows the NOT RELEASED watermark")
    return RenderCheck(screenshot=shot, pages=len(texts), images=images, watermark=all(marked) and bool(marked),
                       banner_pixels=banner, problems=problems, text=text)
