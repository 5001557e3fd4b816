"""Package data, not code: this folder is the one copy of the checklists, the release policy and
the model-card templates. pyproject.toml ships it inside the wheel as ``forecast._config``, and
the toolkit finds it only through :func:`forecast.policy.ethics_folder` (docs/architecture.md)."""
