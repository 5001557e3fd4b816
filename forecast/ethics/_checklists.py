"""The review checklists: the questions reviewers answer before a model may be released.

The human-edited checklists live in ``ethics/checklists/*.yaml`` at the root of a checkout;
the package ships an identical copy (``forecast/ethics/checklists/``) so that an installed
toolkit has them too. :func:`load_checklists` reads a folder of them into frozen
:class:`Checklist` objects that reject unknown keys, naming the file, the item and the field
at fault. :func:`checklists_hash` says which version of the questions a review answered.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    ValidationError,
    model_validator,
)

from forecast.errors import ForecastError
from forecast.policy import ethics_file

__all__ = [
    "ChecklistItem",
    "Checklist",
    "load_checklists",
    "checklist_items",
    "checklists_hash",
    "default_checklists_folder",
]

#: Who answers an item.
ROLES = ("technical", "ethics")

_CHECKLIST_ID = re.compile(r"[a-z][a-z0-9_]*")
_ITEM_ID = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be empty")
    return text


Text = Annotated[str, AfterValidator(_not_blank)]


class ChecklistItem(BaseModel):
    """One question a reviewer answers.

    Attributes
    ----------
    id : str
        Stable and unique across all checklists, dotted and lower case, starting with its
        checklist's id (``dseg.problem.needs_based``). Never reused for another question.
    question : str
    evidence : str
        What must be attached or cited to answer it (an MLflow artifact, a tag, a document).
    answered_by : {"technical", "ethics"}
        The reviewer role that answers it.
    blocking : bool
        Whether an unresolved or "no" answer blocks release.
    help : str or None
        Guidance for the reviewer.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ITEM_ID.pattern + "$")
    question: Text
    evidence: Text
    answered_by: Literal["technical", "ethics"]
    blocking: StrictBool
    help: Text | None = None


class Checklist(BaseModel):
    """A named list of :class:`ChecklistItem`, read from one YAML file.

    Attributes
    ----------
    id : str
        Lower case, no dots (``dseg``); every item id starts with it and a dot.
    title : str
    source : str
        What the checklist is based on, with a reference.
    items : tuple of ChecklistItem
        At least one, ids unique.
    path : str or None
        The file it was read from (``None`` when built in code).

    Examples
    --------
    >>> item = ChecklistItem(id="demo.purpose", question="Why?", evidence="A note.",
    ...                      answered_by="ethics", blocking=True)
    >>> checklist = Checklist(id="demo", title="Demo", source="ours", items=[item])
    >>> len(checklist.hash())
    64
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_CHECKLIST_ID.pattern + "$")
    title: Text
    source: Text
    items: tuple[ChecklistItem, ...] = Field(min_length=1)
    _path: str | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _ids_belong_and_are_unique(self) -> Checklist:
        problems = [f"item id {item.id!r} does not start with the checklist id {self.id + '.'!r}"
                    for item in self.items if not item.id.startswith(self.id + ".")]
        seen: set[str] = set()
        for item in self.items:
            if item.id in seen:
                problems.append(f"item id {item.id!r} appears twice")
            seen.add(item.id)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def path(self) -> str | None:
        return self._path

    def hash(self) -> str:
        """SHA-256 of the checklist's content (not its comments or file name)."""
        return _sha256(self.model_dump(mode="json"))


def checklists_hash(checklists: Iterable[Checklist]) -> str:
    """SHA-256 of a set of checklists, whatever their order.

    A review records it to say which version of the questions it answered; changing any
    question, evidence, role, blocking flag, help text, title or source changes it.

    Examples
    --------
    >>> checklists = load_checklists()
    >>> checklists_hash(checklists) == checklists_hash(reversed(checklists))
    True
    """
    ordered = sorted(checklists, key=lambda c: c.id)
    return _sha256([c.model_dump(mode="json") for c in ordered])


def checklist_items(checklists: Iterable[Checklist]) -> pd.DataFrame:
    """One row per item, for printing and for review records.

    Returns
    -------
    DataFrame
        Columns ``checklist, id, answered_by, blocking, question, evidence, help`` in the
        checklists' order (``help`` is missing where the item has none).

    Examples
    --------
    >>> table = checklist_items(load_checklists())
    >>> table.loc[table["blocking"], ["checklist", "id", "answered_by"]].head(2)  # doctest: +SKIP
    """
    columns = ["checklist", "id", "answered_by", "blocking", "question", "evidence", "help"]
    rows = [{"checklist": c.id, **item.model_dump()} for c in checklists for item in c.items]
    table = pd.DataFrame(rows, columns=columns)
    return table.astype({"blocking": bool})


def load_checklists(folder: str | Path | None = None) -> list[Checklist]:
    """Read every ``*.yaml`` checklist in a folder.

    Parameters
    ----------
    folder : str or Path, optional
        Default: the shipped ``ethics/checklists`` (:func:`default_checklists_folder`).

    Returns
    -------
    list of Checklist
        In file-name order; each ``checklist.path`` names its file.

    Raises
    ------
    ForecastError
        The folder holds no checklist; a file cannot be read or is not YAML; a checklist has
        an unknown or missing key, a bad value (``answered_by`` other than technical or
        ethics, a non-boolean ``blocking``, an empty question), no items, or an item id used
        twice, here or in another file. Every problem in every file is listed, each with its
        file, item id and field.

    Examples
    --------
    >>> [c.id for c in load_checklists()]  # doctest: +NORMALIZE_WHITESPACE
    ['data_responsibility', 'dseg', 'ethical_review', 'implementation_plan',
     'technical_review']
    """
    folder = Path(folder) if folder is not None else default_checklists_folder()
    if not folder.is_dir():
        raise ForecastError(f"{folder}: not a folder of checklists; pass the folder that holds "
                            "the *.yaml checklists, or None for the default")
    paths = sorted(folder.glob("*.yaml"))
    if not paths:
        raise ForecastError(f"{folder}: no checklists (*.yaml files) in this folder")
    checklists, problems = [], []
    for path in paths:
        checklist, errors = _read(path)
        problems += errors
        if checklist is not None:
            checklists.append(checklist)
    problems += _duplicates(checklists)
    if problems:
        raise ForecastError(
            "invalid checklists\n" + "\n".join(f"  {p}" for p in problems)
            + f"\n  (checklist keys: {', '.join(Checklist.model_fields)}; item keys: "
            f"{', '.join(ChecklistItem.model_fields)}; answered_by: {' or '.join(ROLES)})"
        )
    return checklists


def _read(path: Path) -> tuple[Checklist | None, list[str]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        return None, [f"{path}: cannot read it ({err.strerror or err})"]
    except (yaml.YAMLError, RecursionError) as err:
        return None, [f"{path}: not valid YAML{_yaml_where(err)}"]
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        return None, [f"{path}: a checklist is a mapping with id, title, source and items; got {got}"]
    try:
        checklist = Checklist(**data)
    except ValidationError as err:
        return None, [f"{path}: {_location(e['loc'], data)}: {_message(e)}" for e in err.errors()]
    checklist._path = str(path)
    return checklist, []


def _yaml_where(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    return f" at line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark else f": {problem}"


def _duplicates(checklists: list[Checklist]) -> list[str]:
    problems = []
    first_checklist: dict[str, str | None] = {}
    first_item: dict[str, str | None] = {}
    for checklist in checklists:
        if checklist.id in first_checklist:
            problems.append(f"{checklist.path}: checklist id {checklist.id!r} is also the id of "
                            f"{first_checklist[checklist.id]}; give each checklist its own id")
        first_checklist.setdefault(checklist.id, checklist.path)
        for item in checklist.items:
            if item.id in first_item:
                problems.append(f"{checklist.path}: item {item.id!r} is already an item of "
                                f"{first_item[item.id]}; item ids are unique across all "
                                "checklists: give this question a new id")
            first_item.setdefault(item.id, checklist.path)
    return problems


def _location(loc: tuple, data: dict) -> str:
    """``items[3] 'dseg.problem.x' answered_by`` for an item's field; the key otherwise."""
    if len(loc) >= 2 and loc[0] == "items" and isinstance(loc[1], int):
        items = data.get("items")
        item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
        name = item.get("id") if isinstance(item, dict) else None
        where = f"item {name!r} (items[{loc[1]}])" if name is not None else f"items[{loc[1]}]"
        return " ".join([where, ".".join(map(str, loc[2:]))]).strip()
    return ".".join(map(str, loc)) or "checklist"


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key (a typo? it would otherwise be silently ignored)"
    if kind == "missing":
        return "missing (required)"
    if kind == "too_short" and error["loc"] == ("items",):
        return "no items; a checklist needs at least one"
    if kind == "literal_error":
        return f"must be {' or '.join(map(repr, ROLES))}, got {error.get('input')!r}"
    if kind == "string_pattern_mismatch":
        rule = ("dotted lower-case words starting with the checklist id, e.g. 'dseg.problem.needs_based'"
                if len(error["loc"]) > 1 else "one lower-case word with underscores, e.g. 'dseg'")
        return f"must be {rule}, got {error.get('input')!r}"
    if kind == "bool_type":
        return f"must be true or false, got {error.get('input')!r}"
    message = error["msg"].removeprefix("Value error, ")
    # a whole-checklist rule (ids) names the items itself; its input is the whole file
    return message if not error["loc"] else f"{message}, got {error.get('input')!r}"


def _sha256(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def default_checklists_folder() -> Path:
    """The shipped ``ethics/checklists``: the repository's one copy, also inside the wheel."""
    return ethics_file("checklists")
