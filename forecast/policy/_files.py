"""Where the shipped configuration lives, found one way in a checkout and in an installed toolkit.

The repository's top-level ``ethics/`` folder is the only copy of the checklists
(``checklists/*.yaml``), the release policy (``policy.yaml``) and the model-card templates
(``templates/*.j2``). ``pyproject.toml`` maps that folder to the package ``forecast._config``,
so an editable install reads it in place and a wheel carries it; either way Python's
``importlib.resources`` finds it. A user's own file is passed by path instead.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["ethics_folder", "ethics_file", "published_name", "CONFIG_PACKAGE"]

#: The import name under which pyproject.toml ships the top-level ``ethics/`` folder.
CONFIG_PACKAGE = "forecast._config"


def ethics_folder() -> Path:
    """The shipped ``ethics/`` folder (the checkout's own, or the installed copy)."""
    return Path(str(files(CONFIG_PACKAGE)))


def ethics_file(*parts: str) -> Path:
    """A file of the shipped ``ethics/`` folder, e.g. ``ethics_file("policy.yaml")``."""
    return ethics_folder().joinpath(*parts)


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
