"""Package data, not code: this folder is the one copy of the shipped model specs, triggers, card
inputs and ablations. pyproject.toml ships it inside the wheel as ``forecast._specs``, and the
toolkit finds it only through :func:`forecast.policy.models_folder`, so ``load_spec("lightgbm_median")``
works the same in a checkout and in an installed toolkit (docs/architecture.md)."""
