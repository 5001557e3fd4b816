"""Every MLproject entry point calls a real command with options that command has."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
import yaml

from forecast.cli import app

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINTS = yaml.safe_load((ROOT / "MLproject").read_text(encoding="utf-8"))["entry_points"]


def _options(command_name: str) -> set[str]:
    group = typer.main.get_command(app)
    command = group.commands[command_name]
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


@pytest.mark.parametrize("name", sorted(n for n, e in ENTRY_POINTS.items() if e["command"].startswith("forecast ")))
def test_mlproject_entry_point_uses_only_options_its_command_has(name):
    entry = ENTRY_POINTS[name]
    words = shlex.split(entry["command"])
    assert words[1] in typer.main.get_command(app).commands, f"forecast has no command {words[1]!r}"
    used = {w for w in words[2:] if w.startswith("--")}
    assert used <= _options(words[1]), f"{name}: unknown options {used - _options(words[1])}"
    placeholders = set(re.findall(r"\{(\w+)\}", entry["command"]))
    assert placeholders == set(entry.get("parameters", {})), f"{name}: parameters and placeholders differ"
