"""Where an audit log's lines live: a local file, or a store every client of a team sees.

:class:`~forecast.ethics.AuditLog` checks and writes the chain; a *store* only keeps the lines
and serialises writers. Two stores exist:

- :class:`FileLogStore` (here): a JSON Lines file, appended under an exclusive lock.
- ``forecast.tracking.RegistryLogStore``: the log on the team's MLflow tracking server, one
  registered model per entry, where the server's unique model names make an append a
  compare-and-swap (the tracking layer owns it: only it talks to MLflow).

A store implements :class:`LogStore`. ``append(make, timeout)`` must call ``make(current_bytes)`` with
the whole log as it stands and write the returned line as entry ``seq`` only if no other writer
took ``seq`` meanwhile; a store that cannot lock retries with a fresh read, so ``make`` may run
more than once and must depend on nothing but its argument.
"""

from __future__ import annotations

import os
import time as _time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from forecast.ethics._durable import append_whole, fsync_folder

try:  # POSIX: an advisory lock on the log itself
    import fcntl
except ImportError:  # Windows and others: an exclusive lock file beside the log (see _locked)
    fcntl = None

__all__ = ["LogStore", "FileLogStore", "MakeLine"]

#: ``make(current) -> (seq, line)``: the next entry given the log's bytes, its line ending in ``\n``.
MakeLine = Callable[[bytes], tuple[int, bytes]]


@runtime_checkable
class LogStore(Protocol):
    """What :class:`~forecast.ethics.AuditLog` needs of the place its lines live."""

    #: How a user names this log (``--log`` takes it back): a path, or ``mlflow:<name>``.
    location: str
    #: What a registry tag records to say "this log": a resolved path, or ``mlflow:<name>``.
    citation: str

    def read(self) -> bytes:
        """Every line of the log in order, each ending in ``\\n`` (``b""`` when empty)."""

    def append(self, make: MakeLine, timeout: float) -> None:
        """Write ``make(current)``'s line after ``current``, exclusive of other writers."""


class FileLogStore:
    """A JSON Lines file; appends hold an exclusive lock and reach the disk whole or not at all."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.location = str(self.path)

    @property
    def citation(self) -> str:
        return str(self.path.resolve())

    def __repr__(self) -> str:
        return f"FileLogStore({self.location!r})"

    def read(self) -> bytes:
        from forecast.ethics._audit import AuditLogError

        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return b""
        except OSError as error:
            raise AuditLogError(self.path, f"cannot read the audit log: {error.strerror or error}",
                                hint="give the path of the log file (--log)") from None

    def append(self, make: MakeLine, timeout: float) -> None:
        from forecast.ethics._audit import AuditLogError

        existed = self.path.exists()
        with _locked(self.path, timeout) as handle:
            handle.seek(0)
            _, line = make(handle.read())
            try:
                append_whole(handle.fileno(), line)
            except OSError as error:
                raise AuditLogError(self.path, f"cannot append ({error.strerror or error}); the log is as it "
                                    "was, nothing half-written", hint="free space and run the command again") from None
        if not existed:
            fsync_folder(self.path.parent)


@contextmanager
def _locked(path: Path, timeout: float) -> Iterator[Any]:
    """The log opened for reading and appending, held exclusively by this process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_file = path.with_name(path.name + ".lock")
    deadline = _time.monotonic() + timeout
    with open(path, "a+b") as handle:
        while True:
            try:
                if fcntl is not None:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                else:
                    os.close(os.open(lock_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
                break
            except (BlockingIOError, FileExistsError):
                if _time.monotonic() > deadline:
                    from forecast.ethics._audit import AuditLogError

                    raise AuditLogError(path, f"another process has held the log for over {timeout:g} s",
                                        hint="wait and retry" + ("" if fcntl else f"; if no forecast process is "
                                             f"writing the log, delete the stale lock {lock_file}")) from None
                _time.sleep(0.005)
        try:
            yield handle
        finally:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            else:
                lock_file.unlink(missing_ok=True)
