"""Changes to a setting of the whole process made by blocks that may overlap in threads.

The umask and the warning filters belong to the process, not to a thread. A block that set one
and put back, as it ended, what it had found would, ending first, undo the change under the
others' feet (their files readable by everyone), and ending last put back another block's
temporary value. :class:`SharedChange` makes the change as the first block opens, notes what it
replaced, and puts that back as the last one closes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["SharedChange"]


class SharedChange:
    """``make()`` as the first block opens (it returns what to put back); ``undo(that)`` as the
    last one closes. ``lock`` (default: one of its own) is held while either runs.

    >>> import os
    >>> owner_only = SharedChange(lambda: os.umask(0o077), os.umask)
    >>> with owner_only():  # doctest: +SKIP
    ...     ...  # every file made here, in any thread, is its owner's alone
    """

    def __init__(self, make: Callable[[], Any], undo: Callable[[Any], None], lock=None) -> None:
        self._make, self._undo = make, undo
        self._lock = threading.Lock() if lock is None else lock
        self._open, self._noted = 0, None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if not self._open:
                self._noted = self._make()
            self._open += 1
        try:
            yield
        finally:
            with self._lock:
                self._open -= 1
                if not self._open:
                    noted, self._noted = self._noted, None
                    self._undo(noted)
