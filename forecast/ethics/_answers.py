"""Many answers at once: an answers file (CSV or YAML) checked against a review, then recorded together.

A review has about seventy items; answering them one command each is a morning of typing.
:func:`write_answers_template` writes one row per open item with its question, its role and
what evidence answers it; reviewers fill ``answer`` (yes, no or n/a), ``evidence`` and
``answered_by_name`` (in a spreadsheet or an editor) and :func:`answer_from_file` records them.

The rules are those of :func:`forecast.ethics.answer`, one at a time: ``yes`` and ``n/a`` need
evidence (for n/a, the reason), every answer names who gave it, the item must exist. On top, a
file must answer the review it was written for: the read-only columns (``answered_by``,
``blocking``, ``question``, ``evidence_asked``) must still say what the review says, which catches
a spreadsheet sorted on one column only, and an item may be answered once. Any invalid row
rejects the whole file, naming the file, the row and the field; nothing is written. A row
without an answer leaves its item as it is.

In a YAML file ``answer: yes`` and ``answer: no`` read as booleans (YAML 1.1); they are taken
as the words, as a reviewer means them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from forecast.errors import ForecastError
from forecast.ethics._checklists import ROLES
from forecast.ethics._review import (
    REVIEWS_DIR,
    Review,
    ReviewItem,
    _answer_problem,
    _answered,
    _path,
    _write,
    read_review,
)

__all__ = ["ANSWER_COLUMNS", "answer_from_file", "check_answers", "read_answers_file", "write_answers_template"]

#: The columns of an answers file: the item, then what the review says of it (read only, checked),
#: then what the reviewer fills in.
ANSWER_COLUMNS = ("id", "answered_by", "blocking", "question", "evidence_asked", "answer", "evidence",
                  "answered_by_name")
_READ_ONLY = ("answered_by", "blocking", "question", "evidence_asked")
_FILLED = ("answer", "evidence", "answered_by_name")
_SHOWN = 8  # problems listed before "and N more"


@dataclass(frozen=True)
class _Row:
    where: str  # "row 4" (a CSV's line, the header being row 1) or "entry 3" (of a YAML list)
    values: dict[str, str]  # stripped text; "" when empty


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    raise ForecastError(f"{path}: an answers file is .csv or .yaml; got {suffix or 'no suffix'!r}")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # YAML 1.1: yes/no/true/false
        return "yes" if value else "no"
    return str(value).strip()


def read_answers_file(path: str | Path, *, review: Review | None = None) -> list[_Row]:
    """The rows of an answers file (CSV or YAML), every value as stripped text.

    With ``review``, a YAML file's ``run_id`` and ``checklists_hash`` (when given) must be the
    review's. Raises :class:`~forecast.errors.ForecastError` naming the file for anything that
    is not a table of answers (unknown columns included: a typo would be silently ignored)."""
    path = Path(path)
    kind = _kind(path)
    if not path.is_file():
        raise ForecastError(f"{path}: no such answers file; write one with "
                            "`forecast review answer RUN --template answers.csv`")
    text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's "CSV UTF-8" starts with a BOM
    return _csv_rows(path, text) if kind == "csv" else _yaml_rows(path, text, review)


def _unknown(path: Path, where: str, keys) -> None:
    unknown = [k for k in keys if k not in ANSWER_COLUMNS]
    if unknown:
        raise ForecastError(f"{path}: {where}: unknown column(s) {', '.join(map(repr, unknown))} (a typo? it would "
                            f"otherwise be silently ignored); the columns are {', '.join(ANSWER_COLUMNS)}")


def _csv_rows(path: Path, text: str) -> list[_Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    if not header:
        raise ForecastError(f"{path}: empty; an answers file has a header row with {', '.join(ANSWER_COLUMNS)}")
    _unknown(path, "the header", header)
    missing = [c for c in ("id", "answer") if c not in header]
    if missing:
        raise ForecastError(f"{path}: the header has no {' or '.join(missing)} column; the columns are "
                            f"{', '.join(ANSWER_COLUMNS)}")
    reader.fieldnames = header
    rows = []
    for raw in reader:
        where = f"row {reader.line_num}"  # as a spreadsheet numbers it, the header being row 1
        if None in raw:
            raise ForecastError(f"{path}: {where}: more cells than the header has columns ({len(header)})")
        values = {k: _text(v) for k, v in raw.items()}
        if any(values.values()):
            rows.append(_Row(where, values))
    return rows


def _yaml_rows(path: Path, text: str, review: Review | None) -> list[_Row]:
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError) as error:
        raise ForecastError(f"{path}: not valid YAML ({error})") from None
    if isinstance(data, dict):
        unknown = [k for k in data if k not in ("run_id", "checklists_hash", "answers")]
        if unknown:
            raise ForecastError(f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; an answers file has "
                                "run_id, checklists_hash and answers")
        if review is not None:
            for key, want in (("run_id", review.run_id), ("checklists_hash", review.checklists_hash)):
                if data.get(key) not in (None, want):
                    raise ForecastError(f"{path}: {key} is {data[key]!r}, the review's is {want!r}: the file was "
                                        f"written for another review; write a new one with `forecast review answer "
                                        f"{review.run_id} --template FILE`")
        data = data.get("answers")
    if not isinstance(data, list):
        raise ForecastError(f"{path}: an answers file is a list of answers (or a mapping with `answers:`); "
                            f"got {type(data).__name__}")
    rows = []
    for n, entry in enumerate(data, start=1):
        where = f"entry {n}"
        if not isinstance(entry, dict):
            raise ForecastError(f"{path}: {where}: an answer is a mapping of {', '.join(ANSWER_COLUMNS)}; "
                                f"got {type(entry).__name__}")
        _unknown(path, where, entry)
        rows.append(_Row(where, {k: _text(v) for k, v in entry.items()}))
    return rows


def _same(text: str, want: str) -> bool:
    return " ".join(text.split()) == " ".join(want.split())


def _row_problems(row: _Row, review: Review, seen: dict[str, str], by: str | None) -> tuple[list, ReviewItem | None]:
    """``([(field, message), ...], the answered item or None)`` for one row."""
    v = row.values
    item_id = v.get("id", "")
    if not item_id:
        return [("id", "empty: every row names the checklist item it answers")], None
    try:
        item = review.item(item_id)
    except ForecastError as error:
        return [("id", str(error).replace(f"the review of run {review.run_id} has", "the review has"))], None
    if item_id in seen:
        return [("id", f"item {item_id} is answered twice (also {seen[item_id]})")], None
    seen[item_id] = row.where
    said = {"answered_by": item.answered_by, "blocking": "yes" if item.blocking else "no",
            "question": item.question, "evidence_asked": item.evidence_asked}
    problems = []
    for column in _READ_ONLY:
        given = v.get(column, "")
        if column == "blocking":
            given = {"true": "yes", "false": "no"}.get(given.lower(), given.lower())
        if given and not _same(given, said[column]):
            problems.append((column, f"says {_short(given)!r}, the review says {_short(said[column])!r} for item "
                                     f"{item_id}: was the file sorted on one column, or written for another review?"))
    answer, evidence, name = (v.get(c, "") for c in _FILLED)
    if not answer:
        if evidence or name:
            problems.append(("answer", "empty, but the row has evidence or answered_by_name: give yes, no or n/a, "
                                       "or clear the row"))
        return problems, None
    name = name or (by or "")
    problem = _answer_problem(answer.lower(), evidence, name)
    if problem is not None:
        column, message = problem
        problems.append((column, message + (" (or pass --by NAME)" if column == "answered_by_name" else "")))
    return problems, None if problems else _answered(item, answer.lower(), evidence, name)


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


def check_answers(review: Review, rows: list[_Row], *, by: str | None = None, source: str | Path = "answers") -> list[ReviewItem]:
    """The items the rows answer, checked against ``review`` with the rules of one answer at a time.

    Parameters
    ----------
    review : Review
    rows : list
        From :func:`read_answers_file`.
    by : str, optional
        Who answered, for rows that leave ``answered_by_name`` empty.
    source : str or path
        The file, named in the error.

    Raises
    ------
    ForecastError
        Listing every invalid row (row, item and field), or saying that no row gives an answer.
    """
    seen: dict[str, str] = {}
    updated, lines = [], []
    for row in rows:
        problems, item = _row_problems(row, review, seen, by)
        label = f"{row.where} (item {row.values['id']})" if row.values.get("id") else row.where
        lines += [f"  {label}, {column}: {message}" for column, message in problems]
        if item is not None:
            updated.append(item)
    if lines:
        shown = lines[:_SHOWN] + ([f"  and {len(lines) - _SHOWN} more"] if len(lines) > _SHOWN else [])
        raise ForecastError(f"{source}: {len(lines)} problem(s); nothing was recorded\n" + "\n".join(shown)
                            + f"\n  fix them and run `forecast review answer {review.run_id} --from {source}` again")
    if not updated:
        raise ForecastError(f"{source}: no row gives an answer; fill answer (yes, no or n/a), evidence and "
                            "answered_by_name of the items you answer")
    return updated


def answer_from_file(run_id: str, path: str | Path, *, by: str | None = None,
                     reviews_dir: str | Path = REVIEWS_DIR) -> list[ReviewItem]:
    """Record every answer of an answers file (CSV or YAML), or none when any row is invalid.

    Parameters
    ----------
    run_id : str
    path : path
        ``.csv`` or ``.yaml``, with the columns of :data:`ANSWER_COLUMNS` (``id`` and ``answer``
        at least); :func:`write_answers_template` writes one.
    by : str, optional
        Who answered, for rows that leave ``answered_by_name`` empty.
    reviews_dir : path

    Returns
    -------
    list of ReviewItem
        The items answered, in the file's order.

    Examples
    --------
    >>> write_answers_template(run_id, "answers.csv")          # doctest: +SKIP
    >>> answer_from_file(run_id, "answers.csv", by="lena")     # doctest: +SKIP
    """
    review = read_review(run_id, reviews_dir=reviews_dir)
    rows = read_answers_file(path, review=review)
    updated = check_answers(review, rows, by=by, source=path)
    index = {item.id: n for n, item in enumerate(review.items)}
    for item in updated:
        review.items[index[item.id]] = item
    _write(review, _path(run_id, reviews_dir))  # one write: all answers or none
    return updated


def write_answers_template(run_id: str, path: str | Path, *, role: str | None = None, all_items: bool = False,
                           reviews_dir: str | Path = REVIEWS_DIR) -> int:
    """Write an answers file (``.csv`` or ``.yaml``): one row per open item of the review, with its
    question, its role, whether it blocks and what evidence answers it.

    Parameters
    ----------
    run_id : str
    path : path
        Refused when it exists (it may hold answers not yet recorded).
    role : {"technical", "ethics"}, optional
        Only the items this reviewer answers.
    all_items : bool
        Also the answered items, with their answers (to revise them).
    reviews_dir : path

    Returns
    -------
    int
        The number of rows written (technical items first, then ethics, in checklist order).
    """
    path = Path(path)
    kind = _kind(path)
    if role is not None and role not in ROLES:
        raise ForecastError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
    review = read_review(run_id, reviews_dir=reviews_dir)
    if path.exists():
        raise ForecastError(f"{path} exists (it may hold answers not yet recorded): record it with "
                            f"`forecast review answer {run_id} --from {path}`, or write the template elsewhere")
    items = [i for i in review.items if (all_items or i.answer is None) and role in (None, i.answered_by)]
    items.sort(key=lambda i: ROLES.index(i.answered_by))
    rows = [{"id": i.id, "answered_by": i.answered_by, "blocking": "yes" if i.blocking else "no",
             "question": " ".join(i.question.split()), "evidence_asked": " ".join(i.evidence_asked.split()),
             "answer": i.answer, "evidence": i.evidence, "answered_by_name": i.answered_by_name} for i in items]
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "csv":
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, ANSWER_COLUMNS)
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    else:
        text = (f"# Answers to the review of run {run_id}: fill answer (yes, no or n/a), evidence and\n"
                f"# answered_by_name, then `forecast review answer {run_id} --from {path.name}`.\n"
                "# Items left without an answer stay open; the other fields are the review's, and checked.\n")
        data = {"run_id": run_id, "checklists_hash": review.checklists_hash, "answers": rows}
        path.write_text(text + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100), encoding="utf-8")
    return len(rows)
