"""Durable appends: a line reaches the audit log whole, or the log is left as it was.

A full disk (or any write error) part-way through an append would otherwise leave a partial
line, which every later reader would take for tampering. The line is written with unbuffered
writes to the end of the file and synced; on an error the file is cut back to its length
before the append, and the error is raised for the caller to report.
"""

from __future__ import annotations

import os
from pathlib import Path


def append_whole(fd: int, data: bytes) -> None:
    """Append ``data`` to the open file ``fd`` and sync it, or leave the file as it was."""
    size = os.lseek(fd, 0, os.SEEK_END)
    try:
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)
    except BaseException:
        os.ftruncate(fd, size)
        raise


def fsync_folder(folder: Path) -> None:
    """Make a new file's name durable too (POSIX; elsewhere a folder cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


__all__ = ["append_whole", "fsync_folder"]
