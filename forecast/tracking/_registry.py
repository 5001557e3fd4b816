"""The MLflow model registry: registering a released version, the alias ``released``, release status.

Only :func:`forecast.pipeline.release` registers, after the gate passed; what a version's tags
say is :func:`forecast.ethics.release_tags`'s. An earlier version is never changed: the alias
simply moves to the new one.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping

from forecast.ethics import ReleaseStatus
from forecast.tracking._evidence import Artifacts
from forecast.tracking._runs import use_store

__all__ = ["RELEASED_ALIAS", "released_version", "register_version", "delete_version", "set_released",
           "release_status", "version_tags", "card_file_sha256"]

RELEASED_ALIAS = "released"


def _client(tracking_uri: str | None, client=None):
    import mlflow

    return client or mlflow.MlflowClient(tracking_uri=tracking_uri)


def _released(client, name: str):
    try:
        return client.get_model_version_by_alias(name, RELEASED_ALIAS)
    except Exception:  # no such model, or no alias yet
        return None


def released_version(name: str, *, tracking_uri: str | None = None, client=None) -> tuple[str, str] | None:
    """``(version, run_id)`` of the version of ``name`` the alias ``released`` points at, or None."""
    version = _released(_client(tracking_uri, client), name)
    return None if version is None else (str(version.version), version.run_id)


def register_version(run_id: str, name: str, tags: Mapping[str, str], *, description: str,
                     tracking_uri: str | None = None) -> str:
    """Register the run's ``model/`` as a new version of ``name`` with ``tags``; a new registered
    model gets ``description``. Returns the version."""
    import mlflow

    client = _client(tracking_uri)
    try:
        client.get_registered_model(name)
        new_model = False
    except Exception:  # MLflow raises RestException / MlflowException for an unknown name
        new_model = True
    with use_store(tracking_uri):
        version = mlflow.register_model(f"runs:/{run_id}/model", name, tags=dict(tags))
    if new_model:
        client.update_registered_model(name, description=description)
    return str(version.version)


def delete_version(name: str, version: str, *, tracking_uri: str | None = None) -> None:
    """Undo a registration (when the audit log could not record it)."""
    _client(tracking_uri).delete_model_version(name, version)


def set_released(name: str, version: str, audit_entry: str, *, tracking_uri: str | None = None) -> str:
    """Point the alias ``released`` of ``name`` at ``version`` and tag it with the hash of its
    audit-log entry. Returns the model URI (``models:/NAME@released``)."""
    client = _client(tracking_uri)
    client.set_registered_model_alias(name, RELEASED_ALIAS, version)
    client.set_model_version_tag(name, version, "audit_entry", audit_entry)
    return f"models:/{name}@{RELEASED_ALIAS}"


def version_tags(name: str, version: str, *, tracking_uri: str | None = None, client=None) -> dict[str, str]:
    """The tags of version ``version`` of the registered model ``name``."""
    return dict(_client(tracking_uri, client).get_model_version(name, version).tags)


def card_file_sha256(run_id: str, *, tracking_uri: str | None = None, client=None,
                     path: str = "model_card/model_card.md") -> str | None:
    """The SHA-256 of the run's card file ``path`` (the Markdown, or ``model_card/model_card.html``)
    as the store holds it now (None without it): what a release recorded is compared with the
    file, not with a tag."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Artifacts(_client(tracking_uri, client), tmp).read(run_id, path)
        return None if local is None else hashlib.sha256(local.read_bytes()).hexdigest()


def release_status(run_id: str, *, tracking_uri: str | None = None, client=None) -> ReleaseStatus:
    """Whether ``run_id``'s model is the version an alias ``released`` points at: what the
    registry *claims*. :func:`forecast.pipeline.release_status` checks the claim against the
    audit log, the model's files and its card before anything is shown as released.

    Returns
    -------
    ReleaseStatus
        ``status.label`` is ``released: NAME version V``, else the NOT RELEASED watermark.
    """
    client = _client(tracking_uri, client)
    try:
        versions = client.search_model_versions(f"run_id = '{run_id}'")
    except Exception:  # a store without a registry: nothing is released
        return ReleaseStatus(run_id, False)
    for v in versions:
        current = _released(client, v.name)
        if current is not None and str(current.version) == str(v.version):
            return ReleaseStatus(run_id, True, v.name, str(v.version))
    return ReleaseStatus(run_id, False)
