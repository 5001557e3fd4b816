"""Security in proportion to sensitivity: owner-only files, and severe data encrypted at rest.

The one home of the rule every writer of the toolkit follows. The level is the one the
dataset's manifest records (``manifest.json``, or the cube's ``sensitivity`` attribute that
ingest sets from the same level), never guessed from the content.

============ ===================================== ============================================
level        files and folders                     at rest
============ ===================================== ============================================
``low``      as the process's umask makes them     plain
``moderate`` as the process's umask makes them     plain
``high``     files 0600, folders we create 0700    plain
``severe``   files 0600, folders we create 0700    encrypted when a data key is set: the cube,
                                                   ``quarantine.csv`` and ``withheld.csv``
============ ===================================== ============================================

Owner-only holds whatever the umask: a file is created 0600 before a byte is written and set
so again after (a file that was there before keeps no wider mode); a folder this toolkit
creates is set 0700, and an ingest's output folder always is. A folder that already existed
(the user's working folder) keeps its mode, except the ingest folder, which holds the dataset.

The data key is a Fernet key (32 bytes, url-safe base64) in ``FORECAST_DATA_KEY``, or in a
file named by ``FORECAST_DATA_KEY_FILE`` (the variable wins when both are set)::

    python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"

An encrypted file is the header ``FCENC1\\n`` followed by one Fernet token (AES-128-CBC with
an HMAC-SHA256, so a changed byte or a wrong key is detected, never read as data). Readers
(:func:`read_at_rest`, ``forecast.load_cube``) tell it by the header and decrypt it in
memory; the plaintext never touches the disk. The manifest stays plain (it holds no rows) and
says ``"encrypted": true``; its cube hash is that of the cube's content, as for a plain cube.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from forecast._process import SharedChange
from forecast.errors import ForecastError, UnusableFileError

__all__ = [
    "OWNER_ONLY_LEVELS", "ENCRYPTED_LEVELS", "DATA_KEY_ENV", "DATA_KEY_FILE_ENV", "ENCRYPTED_MAGIC", "KEYGEN",
    "owner_only", "owner_only_process", "secure_file", "secure_folder", "make_folder", "reserve_file", "open_output", "write_output",
    "data_key", "encrypts", "is_encrypted", "seal", "read_at_rest", "at_rest_notice",
]

#: Levels whose outputs only their owner may read.
OWNER_ONLY_LEVELS = ("high", "severe")
#: Levels whose cube and row tables are encrypted at rest when a data key is set.
ENCRYPTED_LEVELS = ("severe",)
DATA_KEY_ENV = "FORECAST_DATA_KEY"
DATA_KEY_FILE_ENV = "FORECAST_DATA_KEY_FILE"
#: The first bytes of every file this module encrypts.
ENCRYPTED_MAGIC = b"FCENC1\n"
#: How to make a data key.
KEYGEN = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'

_FILE_MODE, _FOLDER_MODE = 0o600, 0o700
_SET_KEY = (f"set {DATA_KEY_ENV} (or {DATA_KEY_FILE_ENV}, a file holding it) to the key the data were "
            "written with")


# --- owner-only files ------------------------------------------------------------------------

def owner_only(level: str | None) -> bool:
    """Whether outputs of data at ``level`` are for their owner alone (``high``, ``severe``)."""
    return level in OWNER_ONLY_LEVELS


#: The umask of every owner-only block, shared by blocks open at once in several threads.
_OWNER_ONLY_UMASK = SharedChange(lambda: os.umask(0o077), os.umask)


@contextmanager
def owner_only_process(level: str | None) -> Iterator[None]:
    """While the block runs, every file and folder this process creates (MLflow's store and
    artifacts included, which no writer of ours opens) is its owner's alone when ``level`` asks
    it: the umask is 077, and the caller's umask comes back afterwards.

    The umask is the process's: blocks open at once in several threads share it, and it comes
    back when the last of them ends (the first to end would otherwise open the others' files to
    everyone)."""
    if not owner_only(level):
        yield
        return
    with _OWNER_ONLY_UMASK():
        yield


def secure_file(path: str | Path, level: str | None) -> Path:
    """Make ``path`` readable by its owner alone (0600) when ``level`` asks it; else leave it."""
    path = Path(path)
    if owner_only(level):
        os.chmod(path, _FILE_MODE)
    return path


def secure_folder(path: str | Path, level: str | None) -> Path:
    """Make folder ``path`` its owner's alone (0700) when ``level`` asks it; else leave it."""
    path = Path(path)
    if owner_only(level):
        os.chmod(path, _FOLDER_MODE)
    return path


def make_folder(path: str | Path, level: str | None) -> Path:
    """Create folder ``path`` and its missing parents; those this call creates are 0700 when
    ``level`` asks it. A folder that was there keeps its mode: it may be the user's own."""
    path = Path(path)
    created, folder = [], path
    while not folder.exists() and folder != folder.parent:
        created.append(folder)
        folder = folder.parent
    path.mkdir(parents=True, exist_ok=True)
    for folder in created:
        secure_folder(folder, level)
    return path


def reserve_file(path: str | Path, level: str | None) -> Path:
    """Create ``path`` empty and owner-only before a library writes it by name (pandas, NetCDF),
    so that its rows are never readable by others, not even while they are written. A no-op
    below ``high``. Call :func:`secure_file` after the write too."""
    if owner_only(level):
        open_output(path, level, "wb").close()
    return Path(path)


def open_output(path: str | Path, level: str | None, mode: str = "w", **kwargs):
    """``open(path, mode)`` for writing; at an owner-only level the file is created 0600 (and an
    existing one made so) before anything is written."""
    if not owner_only(level):
        return open(path, mode, **kwargs)
    if mode not in ("w", "wb"):
        raise ValueError(f"open_output writes a whole file ('w' or 'wb'), not mode {mode!r}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    try:
        os.chmod(path, _FILE_MODE)  # the file existed with a wider mode, or the umask took bits away
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def write_output(path: str | Path, data: bytes | str, level: str | None, *, encrypt: bool = False) -> bool:
    """Write ``data`` (text as UTF-8) to ``path``, owner-only at ``high`` and ``severe``; with
    ``encrypt``, encrypted when the level is one of :data:`ENCRYPTED_LEVELS` and a data key is
    set. Returns whether it was encrypted."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    sealed = encrypt and encrypts(level)
    if sealed:
        raw = seal(raw)
    with open_output(path, level, "wb") as handle:
        handle.write(raw)
    return sealed


# --- encrypted at rest -----------------------------------------------------------------------

def data_key() -> bytes | None:
    """The data key from ``FORECAST_DATA_KEY`` or the file ``FORECAST_DATA_KEY_FILE`` names;
    ``None`` when neither is set. A key that is not a Fernet key is a ForecastError naming
    where it came from (never the key)."""
    value, source = os.environ.get(DATA_KEY_ENV, "").strip(), DATA_KEY_ENV
    named = os.environ.get(DATA_KEY_FILE_ENV, "").strip()
    if not value and named:
        path = Path(named).expanduser()
        source = f"{DATA_KEY_FILE_ENV} ({path})"
        try:
            value = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as err:
            raise ForecastError(f"{path}: the data key file {DATA_KEY_FILE_ENV} names cannot be read "
                                f"({getattr(err, 'strerror', None) or type(err).__name__}); point "
                                f"{DATA_KEY_FILE_ENV} at a file holding the key, or unset it") from None
    if not value:
        return None
    key = value.encode("ascii", errors="replace")
    _fernet(key, source)
    return key


def _fernet(key: bytes, source: str = DATA_KEY_ENV):
    from cryptography.fernet import Fernet  # on first use: `import forecast` stays light

    try:
        return Fernet(key)
    except ValueError:
        raise ForecastError(f"{source} does not hold a data key: it must be a Fernet key (32 bytes, url-safe "
                            f"base64), as `{KEYGEN}` prints") from None


def encrypts(level: str | None) -> bool:
    """Whether data at ``level`` are written encrypted now (a severe level and a data key set)."""
    return level in ENCRYPTED_LEVELS and data_key() is not None


def is_encrypted(path: str | Path) -> bool:
    """Whether the file at ``path`` starts with the header of an encrypted file."""
    with open(path, "rb") as handle:
        return handle.read(len(ENCRYPTED_MAGIC)) == ENCRYPTED_MAGIC


def seal(data: bytes) -> bytes:
    """``data`` encrypted with the data key, behind the header (a ForecastError without a key)."""
    key = data_key()
    if key is None:
        raise ForecastError(f"encrypting data at rest needs a data key: set {DATA_KEY_ENV}, e.g. to what "
                            f"`{KEYGEN}` prints")
    return ENCRYPTED_MAGIC + _fernet(key).encrypt(data)


def read_at_rest(path: str | Path) -> bytes:
    """The content of the file at ``path``: as it is, or decrypted in memory when it was
    written encrypted (then the data key must be set, and be the one it was written with)."""
    raw = Path(path).read_bytes()
    if not raw.startswith(ENCRYPTED_MAGIC):
        return raw
    key = data_key()
    if key is None:
        raise UnusableFileError(path, f"is encrypted at rest (severe data) and no data key is set "
                                f"({DATA_KEY_ENV} and {DATA_KEY_FILE_ENV} are empty)", hint=_SET_KEY)
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(key).decrypt(raw[len(ENCRYPTED_MAGIC):])
    except InvalidToken:
        raise UnusableFileError(path, f"does not decrypt with the data key set in {DATA_KEY_ENV} or "
                                f"{DATA_KEY_FILE_ENV}: it was written with another key, or changed since",
                                hint=_SET_KEY) from None


def at_rest_notice(level: str | None) -> str | None:
    """A one-line notice when data at ``level`` would be encrypted with a key but none is set."""
    if level in ENCRYPTED_LEVELS and data_key() is None:
        return (f"note: {level} data written unencrypted (owner-only files); set {DATA_KEY_ENV} to encrypt "
                f"them at rest (make a key: {KEYGEN})")
    return None
