"""The review as one HTML page: every question, where its evidence is, the answers so far.

:func:`checklist_page` renders plain values (the review record, the runs' artifact listings,
the model card's HTML, the review's state) into one self-contained page (inline CSS, no
script, every value escaped by jinja2's autoescape); :func:`forecast.pipeline.write_checklist_page`
reads them from MLflow by run id.

An item's evidence links to what it names:

- **the model card's sections**, when the evidence names a section or what it shows
  (:data:`CARD_TERMS`, declared below); a link goes to the section's anchor when the card's
  ``<h2>`` has an ``id``, else to the card with a text fragment (``#:~:text=10. Fairness``, which
  current browsers scroll to) and the section is named in the link;
- **the runs' artifacts**, when the evidence names a path (``triggers/metrics.csv``), a file
  (``feature_importance.csv``), a pattern (``fairness/<route>/summary.txt``,
  ``triggers/timeline_*.png``) or a folder (``fan_charts/``) that a run holds;
- **other items** of the review, when it names their id.

Links are made only to ``http``, ``https`` and ``file`` locations (a local artifact store);
anything else (``s3://``, ``mlflow-artifacts:``) is shown as text, for the reader to open.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlparse

from forecast.ethics._card import CARD_HTML, ModelCard, _environment
from forecast.ethics._checklists import ROLES, load_checklists
from forecast.ethics._review import Review, ReviewState

__all__ = ["RunFiles", "CARD_TERMS", "CARD_HTML", "checklist_page"]

#: Where a train run keeps its model card's HTML (``forecast card``).
#: The card's sections in order (numbered from 1 in the card).
SECTIONS = ModelCard.__dataclass_fields__["sections"].default
#: What in an item's evidence points at each card section (regular expressions, case-insensitive):
#: its name, or the measures and files the section shows.
CARD_TERMS: dict[str, tuple[str, ...]] = {
    "Model details": (r"\bgit_commit\b", r"\bspec_hash\b", r"\bforecast_version\b", r"\bowner\b"),
    "Intended use": (r"\bintended use\b",),
    "Out-of-scope uses": (r"\bout-of-scope uses?\b",),
    "Users": (r"\baudience\b",),
    "Data": (r"\bdata section\b", r"\bmanifest\b", r"\bcube_hash\b"),
    "Evaluation design": (r"\bn_origins\b", r"\bcalibration_origins\b", r"\bmin_train\b", r"\brolling"),
    "Metrics against baselines": (r"\bmase", r"\bcrps", r"\bseasonal_naive\b", r"\bbaselines?\b", r"\blevel_ratio"),
    "Calibration": (r"\bcoverage80", r"\binterval coverage\b", r"\breliability", r"\bbrier\b"),
    "Trigger evaluation": (r"\bhit[ _]rate", r"\bfalse[-_ ]alarm", r"\bbrier_skill", r"\btriggers/metrics\.csv",
                           r"\bdrift\b", r"\bactivations\b"),
    "Fairness": (r"\bfairness",),
    "Limitations": (r"\blimitations\b",),
    "Ethical considerations": (r"\bethical considerations\b",),
    "Caveats": (r"\bcaveats\b",),
    "Implementation plan": (r"\bimplementation plan\b", r"\bthe plan's\b"),
    "Review status": (),
}
_PATH = re.compile(r"[A-Za-z0-9_<>*.\-]+(?:/[A-Za-z0-9_<>*.\-]*)+|[A-Za-z0-9_<>*\-]+\.(?:csv|parquet|json|txt|png|"
                   r"yaml|md|html)\b")
_SCHEMES = ("http", "https", "file")
_MAX_FILES = 8  # artifacts listed per evidence pattern before "and N more"


@dataclass(frozen=True)
class RunFiles:
    """A run's artifacts, as the page links them.

    Attributes
    ----------
    run_id : str
    kind : str
        What the run is to the review (``train``, ``backtest``).
    artifact_uri : str
        Where its artifacts live (MLflow's ``run.info.artifact_uri``).
    files : tuple of str
        Every artifact path of the run.
    """

    run_id: str
    kind: str
    artifact_uri: str
    files: tuple[str, ...] = ()

    def uri(self, path: str = "") -> str:
        """The location of an artifact (of the run's artifacts with no path); a store in a local
        folder gives a ``file:`` URI."""
        base = self.artifact_uri
        if len(urlparse(base).scheme) <= 1:  # a path (C: on Windows)
            base = Path(base).resolve().as_uri()
        return base.rstrip("/") + ("/" + quote(path) if path else "")


def _href(uri: str | None) -> str | None:
    """The URI when a browser can follow it, else None (shown as text)."""
    return uri if uri and urlparse(uri).scheme in _SCHEMES else None


def _fragment(text: str) -> str:
    return quote(text, safe="").replace("-", "%2D")  # a dash delimits a text fragment


def _card_anchors(card_html: str | None) -> dict[str, str]:
    """The ids of the card's section headings, by section name (none when the card has none)."""
    anchors = {}
    for anchor, title in re.findall(r"<h2[^>]*\bid=[\"']([^\"']+)[\"'][^>]*>(.*?)</h2>", card_html or "", re.S):
        name = re.sub(r"^\s*\d+\.\s*", "", html.unescape(re.sub(r"<[^>]+>", "", title))).strip()
        anchors[name] = anchor
    return anchors


def _card_links(text: str, card: str | None, anchors: dict[str, str]) -> list[dict]:
    links = []
    for number, name in enumerate(SECTIONS, start=1):
        if not any(re.search(term, text, re.I) for term in CARD_TERMS.get(name, ())):
            continue
        if card is None:
            href = None
        elif name in anchors:
            href = f"{card}#{anchors[name]}"
        else:
            href = f"{card}#:~:text={_fragment(f'{number}. {name}')}"
        links.append({"label": f"card \u00a7{number} {name}", "href": href})
    return links


def _artifact_links(text: str, runs: Sequence[RunFiles]) -> list[dict]:
    links, seen = [], set()
    for token in dict.fromkeys(m.rstrip(".,;:)") for m in _PATH.findall(text)):
        pattern = re.sub(r"<[^>]*>", "*", token)
        folder = pattern.endswith("/")
        for run in runs:
            if folder:
                found = [pattern] if any(f.startswith(pattern) for f in run.files) else []
            elif "/" in pattern:
                found = [f for f in run.files if fnmatch(f, pattern)]
            else:
                found = [f for f in run.files if fnmatch(PurePosixPath(f).name, pattern)]
            for path in found[:_MAX_FILES]:
                if (run.run_id, path) not in seen:
                    seen.add((run.run_id, path))
                    links.append({"label": f"{run.kind}: {path}", "href": _href(run.uri(path.rstrip("/")))})
            if len(found) > _MAX_FILES:
                links.append({"label": f"{run.kind}: and {len(found) - _MAX_FILES} more like {token}",
                              "href": None})
    return links


def _item_links(text: str, ids: Sequence[str], own: str) -> list[str]:
    return [i for i in ids if i != own and re.search(rf"\b{re.escape(i)}\b", text)]


def checklist_page(review: Review, *, runs: Sequence[RunFiles] = (), card_html: str | None = None,
                   state: ReviewState | None = None, checklists=None) -> str:
    """The review of a run as one self-contained HTML page.

    Parameters
    ----------
    review : Review
        The review record (:func:`forecast.ethics.read_review`): the questions and answers so far.
    runs : sequence of RunFiles
        The train run (its card at :data:`CARD_HTML`) and the backtest behind it, with their
        artifact listings; evidence links into them.
    card_html : str, optional
        The card's HTML, for its section anchors (without: text fragments).
    state : ReviewState, optional
        Where the review stands (``forecast.pipeline.review_state``); shown at the top.
    checklists : sequence of Checklist, optional
        For titles, sources and help texts (default :func:`forecast.ethics.load_checklists`).

    Returns
    -------
    str
        The HTML.
    """
    checklists = load_checklists() if checklists is None else checklists
    train = next((r for r in runs if r.kind == "train" and CARD_HTML in r.files), None)
    card = _href(train.uri(CARD_HTML)) if train is not None else None
    anchors = _card_anchors(card_html)
    known = {i.id: i for c in checklists for i in c.items}
    ids = [i.id for i in review.items]
    groups = []
    for checklist in [*checklists, None]:
        prefix = None if checklist is None else checklist.id + "."
        mine = [i for i in review.items if (prefix is not None and i.id.startswith(prefix)) or (
            prefix is None and not any(i.id.startswith(c.id + ".") for c in checklists))]
        if not mine:
            continue
        items = []
        for item in mine:
            asked = item.evidence_asked
            source = known.get(item.id)
            items.append({
                "item": item, "help": source.help if source is not None and source.question == item.question else None,
                "card": _card_links(asked, card, anchors), "artifacts": _artifact_links(asked, runs),
                "see": _item_links(asked, ids, item.id)})
        groups.append({"id": "other" if checklist is None else checklist.id,
                       "title": "Items of an earlier checklist" if checklist is None else checklist.title,
                       "source": None if checklist is None else checklist.source, "items": items})
    counts = {role: (sum(1 for i in review.items if i.answered_by == role and i.answer is not None),
                     sum(1 for i in review.items if i.answered_by == role)) for role in ROLES}
    context = {"review": review, "groups": groups, "counts": counts, "state": state, "card": card,
               "card_uri": train.uri(CARD_HTML) if train is not None else None,
               "runs": [{"run": r, "href": _href(r.uri())} for r in runs],
               "open": sum(1 for i in review.items if i.answer is None),
               "blocking_no": [i.id for i in review.items if i.blocking and i.answer == "no"]}
    return _environment(html=True).get_template("review_checklist.html.j2").render(**context)
