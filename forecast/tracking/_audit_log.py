"""The team's shared audit log, kept on the MLflow tracking server every client already uses.

A log on one reviewer's laptop cannot confirm a release to anybody else. With a tracking
server, the log lives in the server's model registry: entry ``seq`` of the log ``audit`` is the
registered model ``forecast-audit.audit.<seq, 8 digits>``, its line (the same canonical JSON a
file log holds) in its tags. Creating a registered model whose name exists fails on the server,
atomically, so an append is a compare-and-swap: read the log, make entry ``seq``, create its
model; if another client took ``seq`` first, read again and retry. Two clients can never both
write entry ``seq``, and the chain checks of :class:`~forecast.ethics.AuditLog` (hashes,
signatures, the keyring) apply unchanged.

Names: ``--log mlflow:audit`` (or ``mlflow``) names the shared log on the tracking server in
use; a release's registry tag ``audit_log`` says ``mlflow:audit``, so every client confirms it
against the same log. With a server as tracking URI, ``--log`` defaults to it
(:func:`open_audit_log`).

What the server must give: a database backend store (the default of ``mlflow server``; its
unique names make the compare-and-swap), and, with ``--app-name basic-auth``, the
``default_permission: READ`` of its own default, so that an entry can be read by all and
changed or deleted by nobody but its writer and the admins. A change or deletion is detected
all the same: an edited line fails its hash and signature, a deleted one leaves a gap, a cut end
is found against the releases the registry cites.
"""

from __future__ import annotations

import os
import random
import re
import sys
import time
from pathlib import Path

from forecast.ethics import DEFAULT_LOG, AuditLog, AuditLogError, MakeLine
from forecast.tracking._runs import store_uri
from forecast.tracking._transport import shown_uri, transport

__all__ = ["RegistryLogStore", "open_audit_log", "SHARED_LOG", "shared_log_name"]

#: The prefix of a shared log's location (``mlflow:audit``).
SCHEME = "mlflow:"
#: The shared log a server's clients use unless told otherwise.
SHARED_LOG = "mlflow:audit"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
_MODEL = "forecast-audit.{name}."
_CHUNK = 4000  # a registry tag's value is VARCHAR(5000) on MySQL and PostgreSQL backends
_PAGE = 1000  # the most registered models one search returns
_CREDENTIALS = re.compile(r"//[^/@\s]+@")


def shared_log_name(location: str | Path | None) -> str | None:
    """``"audit"`` for ``mlflow:audit``, ``"audit"`` for ``mlflow``; None for anything else (a file)."""
    if not isinstance(location, str):
        return None
    if location == SCHEME.rstrip(":"):
        return "audit"
    return location[len(SCHEME):] if location.startswith(SCHEME) else None


class RegistryLogStore:
    """The lines of the shared log ``name`` on the tracking server ``tracking_uri``.

    Parameters
    ----------
    name : str
        Letters, digits and ``-`` (``audit`` by default).
    tracking_uri : str, optional
        Default: the tracking URI in use (``MLFLOW_TRACKING_URI``).
    """

    def __init__(self, name: str = "audit", tracking_uri: str | None = None):
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise AuditLogError(f"{SCHEME}{name}", "a shared log's name is 1-64 letters, digits and '-', "
                                                   "starting with a letter or digit", hint="e.g. --log mlflow:audit")
        self.name = name
        self.tracking_uri = store_uri(tracking_uri)
        self.location = self.citation = f"{SCHEME}{name}"
        self._prefix = _MODEL.format(name=name)

    def __repr__(self) -> str:
        return f"RegistryLogStore({self.name!r}, {shown_uri(self.tracking_uri)!r})"

    def _client(self):
        import mlflow

        return mlflow.MlflowClient(tracking_uri=self.tracking_uri)

    def _fail(self, doing: str, error: Exception) -> AuditLogError:
        text = str(getattr(error, "message", None) or error).strip() or type(error).__name__
        first = _CREDENTIALS.sub("//", text.splitlines()[0])[:300]  # a URI's user:password never reaches a screen
        return AuditLogError(self.location, f"cannot {doing} the shared audit log on {shown_uri(self.tracking_uri)}: "
                             f"{first}", hint="check the tracking URI and your credentials "
                                              "(MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)")

    def read(self) -> bytes:
        """Every entry's line in seq order. A registered model of the log without a readable line
        reads as a line that is not JSON, so :meth:`AuditLog.verify` reports it where it stands."""
        try:
            found = self._search()
        except Exception as error:  # MlflowException, RestException, a refused connection
            raise self._fail("read", error) from None
        out = []
        for seq in sorted(found):
            tags = found[seq]
            parts = sorted((int(k.rsplit(".", 1)[1]), v) for k, v in tags.items()
                           if k.startswith("forecast.audit.line.") and k.rsplit(".", 1)[1].isdigit())
            line = "".join(v for _, v in parts)
            if not parts or [i for i, _ in parts] != list(range(len(parts))):
                line = f"(registered model {self._prefix}{seq:08d} holds no complete audit line)"
            out.append(line.encode("utf-8") + b"\n")
        return b"".join(out)

    def _search(self) -> dict[int, dict[str, str]]:
        client, found, token = self._client(), {}, None
        pattern = re.compile(re.escape(self._prefix) + r"(\d{8})")
        while True:
            page = client.search_registered_models(filter_string=f"name LIKE '{self._prefix}%'",
                                                   max_results=_PAGE, page_token=token)
            for model in page:
                if (match := pattern.fullmatch(model.name)) is not None:
                    found[int(match.group(1))] = dict(model.tags)
            token = page.token
            if not token:
                return found

    def append(self, make: MakeLine, timeout: float) -> None:
        """Create entry ``seq``'s registered model; when another client took ``seq``, read the log
        again and make the entry anew, until ``timeout`` seconds have passed."""
        from mlflow.exceptions import MlflowException

        deadline = time.monotonic() + timeout
        while True:
            seq, line = make(self.read())
            text = line.decode("utf-8").rstrip("\n")
            tags = {f"forecast.audit.line.{i // _CHUNK:03d}": text[i:i + _CHUNK] for i in range(0, len(text), _CHUNK)}
            tags["forecast.audit"] = self.name
            try:
                self._client().create_registered_model(
                    f"{self._prefix}{seq:08d}", tags=tags,
                    description=f"Entry {seq} of the shared audit log {self.location} of the forecast toolkit. "
                                "Written once by `forecast`; never edit or delete it (the chain would show it).")
                return
            except MlflowException as error:
                if error.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise self._fail("append to", error) from None
            except Exception as error:
                raise self._fail("append to", error) from None
            if time.monotonic() > deadline:
                raise AuditLogError(self.location, f"other clients kept taking the next entry for over {timeout:g} s",
                                    hint="wait and retry")
            time.sleep(random.uniform(0.01, 0.1))  # another client won seq: let it finish, then read again


def _uri_in_use(tracking_uri: str | None) -> str:
    """The tracking URI a call would use, without importing MLflow when nothing has (a CLI
    command on a file log stays quick); ``""`` is MLflow's local default."""
    if tracking_uri:
        return tracking_uri
    if "mlflow" in sys.modules:  # a notebook's mlflow.set_tracking_uri(...) counts
        return store_uri(None)
    return os.environ.get("MLFLOW_TRACKING_URI", "")


def open_audit_log(log: AuditLog | str | Path | None = None, *, tracking_uri: str | None = None,
                   **options) -> AuditLog:
    """The audit log ``log`` names.

    - an :class:`~forecast.ethics.AuditLog`: itself;
    - ``"mlflow:NAME"`` or ``"mlflow"``: the shared log on the tracking server (``tracking_uri``,
      default the one in use);
    - a path: that file;
    - None: the shared log ``mlflow:audit`` when the tracking URI is a server (every client of
      the team sees one log), else ``ethics/audit.log.jsonl`` here.

    ``options`` go to :class:`~forecast.ethics.AuditLog` (``public_keys``, ``require_signatures``).
    """
    if isinstance(log, AuditLog):
        return log
    if log is None:
        log = SHARED_LOG if transport(_uri_in_use(tracking_uri)).remote else DEFAULT_LOG
    name = shared_log_name(log)
    if name is not None:
        return AuditLog(RegistryLogStore(name, tracking_uri), **options)
    return AuditLog(log, **options)
