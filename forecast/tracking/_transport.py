"""Where a run may be logged: `high` and `severe` data go to a remote tracking server only with
credentials and over TLS.

A backtest logs forecasts per area and month, a train run the model and its example rows; on a
remote server they cross a network and rest on someone else's disk. For data whose sensitivity
is ``high`` or ``severe`` (the manifest's), logging to a server is refused unless

* the client authenticates (``MLFLOW_TRACKING_TOKEN``, or ``MLFLOW_TRACKING_USERNAME`` and
  ``MLFLOW_TRACKING_PASSWORD``, or a user and password in a database URI), and
* the connection is encrypted (``https://``; a database URI with ``sslmode=require`` or
  stricter). The loopback interface (``127.0.0.1``, ``::1``, ``localhost``) never leaves the
  machine, so a server there needs no TLS, only credentials.

A team that accepts the risk says so: ``FORECAST_ALLOW_INSECURE_TRACKING="<reason>"``. The reason
and what was missing are recorded on the run (tags ``tracking_allowance``, ``tracking_transport``)
so that the card and the gate can show it. Local stores (a folder, ``sqlite:///``) are the
file-permission rules' concern (:mod:`forecast.io`), not this module's.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from forecast.errors import ForecastError

__all__ = ["Transport", "transport", "check_transport", "shown_uri", "ALLOW_ENV", "GUARDED_LEVELS"]

#: Sensitivity levels that may reach a remote server only with credentials and TLS.
GUARDED_LEVELS = ("high", "severe")
#: The environment variable whose value (a reason) allows an insecure server anyway.
ALLOW_ENV = "FORECAST_ALLOW_INSECURE_TRACKING"
_LOCAL_SCHEMES = ("", "file", "sqlite")
_DATABASES = ("postgresql", "mysql", "mssql")
_TLS_MODES = ("require", "verify-ca", "verify-full")


@dataclass(frozen=True)
class Transport:
    """How a tracking URI is reached: remote or not, authenticated, encrypted."""

    uri: str
    remote: bool
    authenticated: bool = False
    encrypted: bool = False  # or on the loopback interface, where nothing crosses a network
    loopback: bool = False

    @property
    def missing(self) -> list[str]:
        """What a remote store lacks for guarded data (empty when nothing)."""
        if not self.remote:
            return []
        return [what for what, ok in (("authentication", self.authenticated), ("TLS", self.encrypted)) if not ok]

    def describe(self) -> str:
        if not self.remote:
            return "local store"
        wire = "loopback" if self.loopback else ("TLS" if self.encrypted else "no TLS")
        return "server, " + ", ".join(("authenticated" if self.authenticated else "no authentication", wire))


def _loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def transport(uri: str) -> Transport:
    """How ``uri`` (an MLflow tracking URI) is reached, from the URI and the MLflow credentials
    in the environment."""
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0].lower()
    if scheme == "databricks" or uri == "databricks":  # a managed workspace: tokens over https only
        return Transport(uri, remote=True, authenticated=True, encrypted=True)
    if scheme in _LOCAL_SCHEMES or (len(scheme) == 1 and uri[1:2] == ":"):  # a Windows drive letter
        return Transport(uri, remote=False)
    if scheme in _DATABASES:
        if _loopback(parts.hostname) or not parts.hostname:
            return Transport(uri, remote=False)
        modes = parse_qs(parts.query).get("sslmode", []) + parse_qs(parts.query).get("ssl_mode", [])
        return Transport(uri, remote=True, authenticated=bool(parts.password),
                         encrypted=any(m.lower().replace("_", "-") in _TLS_MODES for m in modes))
    if scheme in ("http", "https"):
        env = os.environ
        authenticated = bool(env.get("MLFLOW_TRACKING_TOKEN") or parts.password
                             or (env.get("MLFLOW_TRACKING_USERNAME") and env.get("MLFLOW_TRACKING_PASSWORD")))
        loopback = _loopback(parts.hostname)
        return Transport(uri, remote=True, authenticated=authenticated, encrypted=scheme == "https" or loopback,
                         loopback=loopback)
    return Transport(uri, remote=True)  # another scheme (databricks, a plugin): nothing is known of it


def shown_uri(uri: str) -> str:
    """``uri`` without its user and password: what a message may print."""
    parts = urlsplit(uri)
    if not parts.netloc:
        return uri
    host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=host).geturl()


def check_transport(uri: str | None, sensitivity: str | None) -> dict[str, str]:
    """Refuse logging ``sensitivity`` data to ``uri`` (default: MLflow's current tracking URI)
    when the rule of this module forbids it.

    Returns
    -------
    dict
        Tags to set on the run: the transport, and the allowance when one was given.

    Raises
    ------
    ForecastError
        A ``high`` or ``severe`` dataset to a remote store without authentication or TLS, and
        no ``FORECAST_ALLOW_INSECURE_TRACKING`` reason.
    """
    if uri is None:
        import mlflow

        uri = mlflow.get_tracking_uri()
    found = transport(uri)
    tags = {"tracking_transport": found.describe()}
    if sensitivity not in GUARDED_LEVELS or not found.missing:
        return tags
    reason = os.environ.get(ALLOW_ENV, "").strip()
    if reason:
        return {**tags, "tracking_allowance": reason}
    raise ForecastError(
        f"refusing to log {sensitivity}-sensitivity data to {shown_uri(uri)}: the server has no "
        f"{' and no '.join(found.missing)}. Use https:// and credentials (MLFLOW_TRACKING_USERNAME and "
        f"MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN), log to a local store (--tracking-uri "
        f"sqlite:///mlflow.db), or accept the risk on the record: {ALLOW_ENV}='<why>'")
