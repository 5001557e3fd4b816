"""Where the shipped configuration lives, found one way in a checkout and in an installed toolkit.

The repository's top-level ``ethics/`` folder is the only copy of the checklists
(``checklists/*.yaml``), the release policy (``policy.yaml``) and the model-card templates
(``templates/*.j2``), and the top-level ``models/`` folder the only copy of the shipped model
specs, triggers (``triggers.yaml``), card inputs (``cards/``) and ablations. ``pyproject.toml``
maps them to the packages ``forecast._config`` and ``forecast._specs``, so an editable install
reads them in place and a wheel carries them; either way Python's ``importlib.resources`` finds
them. Shipped files load by name (:func:`shipped_file`: ``lightgbm_median``); a user's own file
is passed by path instead.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from forecast.errors import ForecastError

__all__ = ["ethics_folder", "ethics_file", "models_folder", "shipped_file", "shipped_names", "published_name",
           "CONFIG_PACKAGE", "SPECS_PACKAGE"]

#: The import name under which pyproject.toml ships the top-level ``ethics/`` folder.
CONFIG_PACKAGE = "forecast._config"
#: The import name under which pyproject.toml ships the top-level ``models/`` folder.
SPECS_PACKAGE = "forecast._specs"


def ethics_folder() -> Path:
    """The shipped ``ethics/`` folder (the checkout's own, or the installed copy)."""
    return Path(str(files(CONFIG_PACKAGE)))


def ethics_file(*parts: str) -> Path:
    """A file of the shipped ``ethics/`` folder, e.g. ``ethics_file("policy.yaml")``."""
    return ethics_folder().joinpath(*parts)


def models_folder() -> Path:
    """The shipped ``models/`` folder: specs, ``triggers.yaml``, ``cards/``, ``ablation/``."""
    return Path(str(files(SPECS_PACKAGE)))


def shipped_names(subfolder: str = "", *, exclude: tuple[str, ...] = ()) -> list[str]:
    """The names of the shipped YAML files in ``models/<subfolder>``, without ``.yaml``."""
    folder = models_folder() / subfolder
    return sorted(p.stem for p in folder.glob("*.yaml") if p.stem not in exclude)


def shipped_file(name_or_path: str | Path, *, subfolder: str = "", kind: str = "model spec",
                 aliases: dict[str, str] | None = None, exclude: tuple[str, ...] = ()) -> Path:
    """A user's own file, or a shipped one by name.

    ``name_or_path`` is used as a path when such a file exists; otherwise a bare name
    (``lightgbm_median``, with or without ``.yaml``) names a file of the shipped ``models/``
    folder (in ``subfolder``). ``aliases`` maps other names to shipped ones (``default`` ->
    ``triggers``); ``exclude`` names shipped files of another kind (``triggers`` is not a spec).

    Raises
    ------
    ForecastError
        Neither a file nor a shipped name: the message lists the shipped names.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    text = str(name_or_path)
    bare = (aliases or {}).get(text, text).removesuffix(".yaml")
    if "/" not in bare and "\\" not in bare and bare and bare not in exclude:
        candidate = models_folder() / subfolder / f"{bare}.yaml"
        if candidate.is_file():
            return candidate
    where = f"models/{subfolder}/" if subfolder else "models/"
    names = ", ".join(shipped_names(subfolder, exclude=exclude) + sorted(aliases or {}))
    raise ForecastError(f"{text}: no such {kind}: not a file, nor one of the toolkit's shipped {kind}s "
                        f"({where}: {names})")


def published_name(path: str | Path) -> str:
    """A file's name as published files give it, never a folder of the machine that made them.

    A file of the shipped ``ethics/`` folder is ``ethics/<its path there>``; a file under the
    working folder is named relative to it (``models/triggers.yaml``); any other file by its
    name alone. Beside a hash, that names a policy, a cube or a spec without telling a reader
    where somebody's disk keeps it.
    """
    text = str(path)
    if not text or text == "defaults" or "://" in text:
        return text
    path = Path(text)
    try:
        resolved = path.resolve()
    except OSError:
        return path.name
    for base, prefix in ((ethics_folder(), "ethics"), (Path.cwd(), None)):
        try:
            relative = resolved.relative_to(base.resolve())
        except ValueError:
            continue
        return (Path(prefix) / relative).as_posix() if prefix else relative.as_posix()
    return path.name
