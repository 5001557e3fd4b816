"""The tamper-evident audit log: an append-only, hash-chained JSON Lines file.

Every review sign-off, release and refusal is appended as one line::

    from forecast.ethics._audit import AuditLog, DEFAULT_LOG
    log = AuditLog(DEFAULT_LOG)
    log.append("review.sign", "a.reviewer", {"run_id": run_id, "card_hash": card, "decision": "approve"},
               key="keys/a.reviewer.pem")           # the key is optional
    log.find("review.sign", run_id=run_id)          # entries of a kind for a run (refuses a broken log)
    log.verify(public_keys=load_public_keys("ethics/keys"))   # every problem, never raises on damage

Each line is the canonical JSON (sorted keys, no spaces, UTF-8) of one entry::

    {"actor":..,"hash":..,"kind":..,"payload":{..},"prev":..,"seq":0,"time":"2026-05-09T07:35:25.123456Z"}

plus ``key_id`` and ``signature`` on signed entries. ``hash`` is the SHA-256 (hex) of the
canonical JSON of every other field except ``signature`` (so ``key_id`` is covered: a stripped
signature is noticed); ``prev`` is the previous entry's ``hash``, :data:`GENESIS` for seq 0;
``signature`` is Ed25519 (hex) over ``b"forecast-audit-v1:"`` followed by the 32 bytes of
``hash`` (the prefix keeps a reviewer's key from signing anything else by accident).

What the chain can and cannot show: an edited, removed, reordered, duplicated or inserted entry
anywhere but at the end is found without keys. The *last* entries are different: a forger who
recomputes ``hash`` and ``prev`` can add entries at the end, and cutting whole lines off the
end leaves a valid shorter chain. Signatures catch the first (``require_signatures=True``);
the second needs the head (seq and hash of the last entry) recorded somewhere else, e.g. on
the MLflow run a release writes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from forecast.errors import UnusableFileError
from forecast.ethics._logstore import FileLogStore, LogStore

__all__ = [
    "AuditLog", "Entry", "Problem", "PublicKey", "AuditLogError",
    "generate_key", "load_public_keys", "load_private_key",
    "GENESIS", "DEFAULT_LOG",
]

#: ``prev`` of the first entry (seq 0).
GENESIS = "0" * 64
#: Where the CLI and the release gate keep the log, relative to the current folder.
DEFAULT_LOG = Path("ethics") / "audit.log.jsonl"

_SIGNING_PREFIX = b"forecast-audit-v1:"
_REQUIRED = ("seq", "time", "kind", "actor", "payload", "prev", "hash")
_OPTIONAL = ("key_id", "signature")
_HINT_BROKEN = ("run `forecast audit verify --log {path}` for every problem; restore the log from a backup "
                "(never edit it by hand). If only the last line is incomplete because a write was cut short, "
                "removing that line is safe: the entries before it are intact.")

Severity = Literal["error", "warning"]


class AuditLogError(UnusableFileError):
    """The audit log (or a key file) cannot be used, or an entry cannot be appended.

    ``problems`` holds the :class:`Problem` list when the cause is a broken chain.
    """

    def __init__(self, path: str | Path, problem: str, hint: str | None = None, problems: tuple = ()):
        self.problems = tuple(problems)
        super().__init__(path, problem, hint)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the log, at one line.

    Attributes
    ----------
    line : int
        1-based line of the file.
    code : str
        ``unreadable`` (blank, not UTF-8 or not JSON), ``truncated`` (the file ends mid-entry),
        ``malformed`` (JSON, but not an entry), ``not-canonical`` (rewritten by something else),
        ``edited`` (content does not match ``hash``), ``removed`` (seq gap), ``reordered``,
        ``duplicated``, ``forked`` (two entries claim one seq), ``broken-link`` (``prev`` is not
        the previous entry's hash: forged, inserted or its predecessor re-hashed),
        ``bad-signature``, ``missing-signature``, ``unknown-key``, ``unchecked-signature``.
    message : str
        What is wrong, in words.
    severity : {"error", "warning"}
        Only ``unchecked-signature`` (a signed entry whose public key was not given) is a
        warning, unless signatures are required; every other problem is an error.
    seq : int or None
        The entry's seq when the line could be read.
    """

    line: int
    code: str
    message: str
    severity: Severity = "error"
    seq: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (seq {self.seq})" if self.seq is not None else "")
        return f"{where}: {self.severity} {self.code}: {self.message}"


@dataclass(frozen=True)
class Entry:
    """One entry of the log, as written (see the module docstring for the format)."""

    seq: int
    time: str
    kind: str
    actor: str
    payload: dict[str, Any]
    prev: str
    hash: str
    key_id: str | None = None
    signature: str | None = None

    @property
    def signed(self) -> bool:
        return self.signature is not None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the line (``key_id`` and ``signature`` only when signed)."""
        fields = {"seq": self.seq, "time": self.time, "kind": self.kind, "actor": self.actor,
                  "payload": self.payload, "prev": self.prev, "hash": self.hash}
        fields.update({k: getattr(self, k) for k in _OPTIONAL if getattr(self, k) is not None})
        return fields


@dataclass(frozen=True)
class PublicKey:
    """A reviewer's Ed25519 public key; ``key_id`` = first 16 hex of SHA-256 of the raw key."""

    key_id: str
    key: Ed25519PublicKey = field(repr=False)
    path: Path | None = None

    @classmethod
    def of(cls, key: Ed25519PublicKey, path: Path | None = None) -> PublicKey:
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return cls(hashlib.sha256(raw).hexdigest()[:16], key, path)


# --- the format ---------------------------------------------------------------------------

def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _content_hash(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in fields.items() if k not in ("hash", "signature")})).hexdigest()


def _signed_message(entry_hash: str) -> bytes:
    return _SIGNING_PREFIX + bytes.fromhex(entry_hash)


def _is_hex(value: Any, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and all(c in "0123456789abcdef" for c in value)


def _json_problem(value: Any, where: str) -> str | None:
    """Why ``value`` would not survive a JSON round trip unchanged, or None."""
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is {value}, which JSON cannot hold"
    if isinstance(value, list):
        return next((p for i, v in enumerate(value) if (p := _json_problem(v, f"{where}[{i}]"))), None)
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{where} has the key {k!r} of type {type(k).__name__}; keys must be strings"
            if p := _json_problem(v, f"{where}[{k!r}]"):
                return p
        return None
    return (f"{where} is a {type(value).__name__} ({str(value)[:40]!r}); store plain JSON (str, int, float, "
            "bool, None, lists and dicts): convert it first, e.g. str(x), x.isoformat(), x.tolist()")


def _field_problems(obj: dict) -> list[str]:
    problems = []
    missing = [k for k in _REQUIRED if k not in obj]
    unknown = sorted(set(obj) - set(_REQUIRED) - set(_OPTIONAL))
    if missing:
        problems.append(f"missing field(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)}")
    checks = {
        "seq": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
        "time": _is_utc_time,
        "kind": lambda v: isinstance(v, str) and v.strip() != "",
        "actor": lambda v: isinstance(v, str) and v.strip() != "",
        "payload": lambda v: isinstance(v, dict),
        "prev": lambda v: _is_hex(v, 64),
        "hash": lambda v: _is_hex(v, 64),
        "key_id": lambda v: _is_hex(v, 16),
        "signature": lambda v: _is_hex(v, 128),
    }
    wanted = {"seq": "an integer >= 0", "time": "a UTC ISO 8601 time", "kind": "a non-empty string",
              "actor": "a non-empty string", "payload": "an object", "prev": "64 lowercase hex digits",
              "hash": "64 lowercase hex digits", "key_id": "16 lowercase hex digits",
              "signature": "128 lowercase hex digits"}
    problems += [f"{k} is {obj[k]!r:.40}, not {wanted[k]}" for k, ok in checks.items() if k in obj and not ok(obj[k])]
    if "signature" in obj and "key_id" not in obj:
        problems.append("a signature without a key_id")
    return problems


def _is_utc_time(value: Any) -> bool:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return parsed.utcoffset() is not None and parsed.utcoffset().total_seconds() == 0


# --- reading and checking -----------------------------------------------------------------

def _parse_line(raw: bytes, line: int, unterminated: bool) -> tuple[Entry | None, list[Problem]]:
    """One line: the entry when its fields can be read (even if edited), and its own problems."""
    def bad(code: str, message: str, seq: int | None = None) -> Problem:
        return Problem(line, code, message, "error", seq)

    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        if unterminated:
            return None, [bad("truncated", "the file ends mid-entry (a write was cut short or the file truncated)")]
        return None, [bad("unreadable", f"not UTF-8 text (byte {error.start + 1} of the line)")]
    except json.JSONDecodeError as error:
        if unterminated:
            return None, [bad("truncated", "the file ends mid-entry (a write was cut short or the file truncated)")]
        what = "a blank line" if not raw.strip() else f"not valid JSON ({error.msg} at column {error.colno})"
        return None, [bad("unreadable", what)]
    if not isinstance(obj, dict):
        return None, [bad("malformed", f"a JSON {type(obj).__name__}, not an entry object")]
    seq = obj.get("seq") if isinstance(obj.get("seq"), int) else None
    if field_problems := _field_problems(obj):
        return None, [bad("malformed", "; ".join(field_problems), seq)]
    entry = Entry(**obj)
    problems = []
    if unterminated:
        problems.append(bad("truncated", "no newline at the end of the file: it was cut after this entry", seq))
    try:
        canonical = _canonical(obj)
    except (ValueError, UnicodeEncodeError):  # NaN, a lone surrogate: nothing append writes
        canonical = None
    if canonical != raw:
        problems.append(bad("not-canonical", "the line is not in canonical JSON: it was rewritten by something "
                                             "other than AuditLog", seq))
    if canonical is None or _content_hash(obj) != entry.hash:
        problems.append(bad("edited", "the content does not match its hash: the entry was changed after it "
                                      "was written", seq))
    return entry, problems


def _chain_problems(rows: list[tuple[int, Entry | None]]) -> list[Problem]:
    """Order, gaps, forks and links; a link is checked against the entry holding seq - 1."""
    by_seq: dict[int, list[tuple[int, Entry]]] = defaultdict(list)
    for line, entry in rows:
        if entry is not None:
            by_seq[entry.seq].append((line, entry))
    problems = []
    previous: tuple[int, Entry] | None = None  # the last readable line before this one
    highest, unreadable = -1, 0
    for line, entry in rows:
        if entry is None:
            unreadable += 1
            continue
        seq = entry.seq
        bad = _reporter(problems, line, seq)
        first_line, first = by_seq[seq][0]
        if first_line != line:
            if first == entry:
                bad("duplicated", f"a copy of line {first_line}")
                previous, unreadable = (line, entry), 0
                continue
            bad("forked", f"seq {seq} is also held by line {first_line}, a different entry: one of the two "
                          "is not genuine")
        elif previous is not None and seq < previous[1].seq:
            bad("reordered", f"seq {seq} comes after seq {previous[1].seq} (line {previous[0]}): entries "
                             "were moved")
        elif seq > highest + 1:
            absent = [s for s in range(highest + 1, seq) if s not in by_seq]
            if len(absent) > unreadable:  # an unreadable line may stand for one of them
                span = f"seq {absent[0]}" if len(absent) == 1 else f"seqs {absent[0]}..{absent[-1]}"
                bad("removed", f"{span} missing before this line: {len(absent)} entr"
                               f"{'y was' if len(absent) == 1 else 'ies were'} removed")
        if seq == 0 and entry.prev != GENESIS:
            bad("broken-link", f"seq 0 must start the chain with prev = {GENESIS[:12]}..., not {entry.prev[:12]}...")
        elif seq > 0 and (parents := by_seq.get(seq - 1)) and entry.prev not in {p.hash for _, p in parents}:
            bad("broken-link", f"prev {entry.prev[:12]}... is not the hash of seq {seq - 1} (line {parents[0][0]}): "
                               f"this entry was forged or inserted, or the one before it was re-hashed after an edit")
        highest, previous, unreadable = max(highest, seq), (line, entry), 0
    return problems


def _reporter(problems: list[Problem], line: int, seq: int):
    def bad(code: str, message: str) -> None:
        problems.append(Problem(line, code, message, "error", seq))
    return bad


def _signature_problems(line: int, entry: Entry, keys: Mapping[str, PublicKey] | None,
                        required: bool, declared: Mapping[str, PublicKey]) -> list[Problem]:
    def problem(code: str, message: str, severity: Severity = "error") -> list[Problem]:
        return [Problem(line, code, message, severity, entry.seq)]

    if entry.signature is None:
        if entry.key_id is not None:
            return problem("missing-signature", f"names key {entry.key_id} but carries no signature: it was removed")
        return problem("missing-signature", "unsigned, and this log requires signed entries") if required else []
    if not keys and entry.key_id not in declared:
        return problem("unchecked-signature", f"signature not checked (key {entry.key_id} not given)",
                       "error" if required else "warning")
    keys = {**(keys or {}), **declared}  # the keyring's own keys check what they signed
    if entry.key_id not in keys:
        return problem("unknown-key", f"signed with key {entry.key_id}, which is not among the {len(keys)} key(s) "
                                      f"given ({', '.join(sorted(keys))})")
    try:
        keys[entry.key_id].key.verify(bytes.fromhex(entry.signature), _signed_message(entry.hash))
    except InvalidSignature:
        return problem("bad-signature", f"the signature does not match key {entry.key_id}: the entry was forged, "
                                        "or re-hashed after it was signed")
    return []


def _analyse(data: bytes, keys: Mapping[str, PublicKey] | None,
             require_signatures: bool) -> tuple[list[Entry], list[Problem]]:
    """Every readable entry in file order and every problem, sorted by line. Never raises."""
    chunks = data.split(b"\n")
    complete = chunks[-1] == b""
    if complete:
        chunks.pop()
    rows, problems = [], []
    for number, raw in enumerate(chunks, 1):
        entry, own = _parse_line(raw, number, unterminated=not complete and number == len(chunks))
        rows.append((number, entry))
        problems += own
    problems += _chain_problems(rows)
    from forecast.ethics._keyring import declared_keys  # the keyring is read from this log (it imports this module)
    declared = declared_keys(e for _, e in rows if e is not None)
    for number, entry in rows:
        if entry is not None:
            problems += _signature_problems(number, entry, keys, require_signatures, declared)
    problems.sort(key=lambda p: (p.line, p.severity != "error"))
    return [e for _, e in rows if e is not None], problems


# --- keys ---------------------------------------------------------------------------------

def generate_key(path: str | Path) -> PublicKey:
    """Write a new Ed25519 private key (PEM, mode 0600) and its public key beside it.

    Parameters
    ----------
    path : str or Path
        The private key file; refused if it exists. The public key goes to
        ``<same folder>/<key_id>.pub``, the name :func:`load_public_keys` expects.

    Returns
    -------
    PublicKey
        Its ``key_id`` and ``path`` (the ``.pub`` file) to share with whoever verifies the log.
    """
    path = Path(path)
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AuditLogError(path, "a file already exists here; refusing to overwrite a key",
                            hint="choose another path (a lost private key cannot sign again, but its .pub "
                                 "still verifies what it signed)") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o600)  # os.open's mode is already masked to at most 0600; say it once more for clarity
    public = PublicKey.of(private.public_key())
    pub_path = path.parent / f"{public.key_id}.pub"
    pub_path.write_bytes(public.key.public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo))
    return PublicKey(public.key_id, public.key, pub_path)


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Read an Ed25519 private key written by :func:`generate_key`."""
    path = Path(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as error:
        raise AuditLogError(path, f"cannot read the private key: {error.strerror}") from None
    except (ValueError, TypeError) as error:
        raise AuditLogError(path, f"not an unencrypted PEM private key ({error})",
                            hint="make one with `forecast audit keygen --out PATH`") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditLogError(path, f"holds a key of type {type(key).__name__}, not Ed25519",
                            hint="make one with `forecast audit keygen --out PATH`")
    return key


def load_public_keys(folder_or_file: str | Path) -> dict[str, PublicKey]:
    """Read reviewers' public keys: every ``<key_id>.pub`` in a folder, or one file.

    Returns
    -------
    dict
        ``key_id -> PublicKey``. A file whose name is not its key's id is refused, so that a
        key cannot be passed off under another reviewer's id.
    """
    where = Path(folder_or_file)
    if where.is_dir():
        files = sorted(where.glob("*.pub"))
        if not files:
            raise AuditLogError(where, "no public keys (*.pub files) in this folder",
                                hint="each reviewer's `forecast audit keygen` writes one; copy them here")
    elif where.is_file():
        files = [where]
    else:
        raise AuditLogError(where, "no such file or folder of public keys")
    keys = {}
    for file in files:
        try:
            key = serialization.load_pem_public_key(file.read_bytes())
        except OSError as error:
            raise AuditLogError(file, f"cannot read the public key: {error.strerror}") from None
        except ValueError as error:
            raise AuditLogError(file, f"not a PEM public key ({error})") from None
        if not isinstance(key, Ed25519PublicKey):
            raise AuditLogError(file, f"holds a key of type {type(key).__name__}, not Ed25519")
        public = PublicKey.of(key, file)
        if file.stem != public.key_id:
            raise AuditLogError(file, f"the file is named for key {file.stem} but holds key {public.key_id}",
                                hint=f"rename it to {public.key_id}.pub")
        keys[public.key_id] = public
    return keys


# --- the log ------------------------------------------------------------------------------

class AuditLog:
    """An append-only, hash-chained log of sign-offs, releases and refusals.

    Parameters
    ----------
    path : str or Path or LogStore
        The JSON Lines file (:data:`DEFAULT_LOG` by convention), created by the first append; or
        a store holding the lines elsewhere, e.g. the team's shared log on the tracking server
        (``forecast.tracking.open_audit_log("mlflow:audit")``).
    public_keys : mapping or str or Path, optional
        Trusted keys (``key_id -> PublicKey``, or a folder/file for :func:`load_public_keys`)
        used by :meth:`verify`, :meth:`entries`, :meth:`find` and :meth:`append`.
    require_signatures : bool
        Treat an unsigned entry, or one whose key is not given, as an error; :meth:`append`
        then needs a ``key``. This is what catches entries forged at the end of the log.
    lock_timeout : float
        Seconds :meth:`append` waits for other writers (a file lock, or a shared log's retries)
        before giving up.

    Examples
    --------
    >>> import tempfile
    >>> log = AuditLog(Path(tempfile.mkdtemp()) / "audit.log.jsonl")
    >>> log.append("release", "ci", {"run_id": "abc", "alias": "released"}).seq
    0
    >>> [e.kind for e in log.find(run_id="abc")], log.verify()
    (['release'], [])
    """

    def __init__(self, path: str | Path | LogStore, *, public_keys: Mapping[str, PublicKey] | str | Path | None = None,
                 require_signatures: bool = False, lock_timeout: float = 10.0):
        self.store = path if isinstance(path, LogStore) else FileLogStore(path)
        #: The file of a local log; None for a shared one (``forecast.tracking.RegistryLogStore``).
        self.path = getattr(self.store, "path", None)
        self.public_keys = _keys(public_keys)
        self.require_signatures = require_signatures
        self.lock_timeout = lock_timeout

    @classmethod
    def of(cls, log: AuditLog | str | Path | LogStore | None) -> AuditLog:
        """The log ``log`` names: itself when an AuditLog, else the file or store (default :data:`DEFAULT_LOG`)."""
        return log if isinstance(log, AuditLog) else cls(DEFAULT_LOG if log is None else log)

    @property
    def location(self) -> str:
        """How a user names this log: its path, or ``mlflow:<name>`` for a shared one."""
        return self.store.location

    @property
    def citation(self) -> str:
        """What a registry tag records to name this log: a resolved path, or ``mlflow:<name>``."""
        return self.store.citation

    def __repr__(self) -> str:
        return f"AuditLog({self.location!r})"

    def verify(self, public_keys: Mapping[str, PublicKey] | str | Path | None = None, *,
               require_signatures: bool | None = None) -> list[Problem]:
        """Every problem of the log, sorted by line; an empty list when the chain is intact.

        A missing or empty log is intact (nothing was written yet). Never raises on a damaged
        log; raises :class:`AuditLogError` only when the file cannot be read at all (a folder,
        no permission) or ``public_keys`` names unusable key files.

        Parameters
        ----------
        public_keys : mapping or str or Path, optional
            Overrides the log's own keys. The keys its ``keyring.add`` entries declare always check
            what they signed; other signatures without keys are not checked (a warning); with keys,
            a key id not among them is an error.
        require_signatures : bool, optional
            Overrides the log's own setting.
        """
        keys = self.public_keys if public_keys is None else _keys(public_keys)
        required = self.require_signatures if require_signatures is None else require_signatures
        return _analyse(self._read(), keys, required)[1]

    def inspect(self) -> tuple[list[Entry], list[Problem]]:
        """Every readable entry and every problem (as :meth:`verify` gives them), from one read of
        the log: for a shared log on a tracking server, one request instead of two."""
        return _analyse(self._read(), self.public_keys, self.require_signatures)

    def entries(self, *, check: bool = True) -> list[Entry]:
        """The entries in file order.

        With ``check`` (the default), a log with any error-level problem raises
        :class:`AuditLogError` listing them, so that nothing reads a tampered log by accident;
        ``check=False`` returns every line that can be read, to inspect a damaged log.
        """
        entries, problems = _analyse(self._read(), self.public_keys, self.require_signatures)
        if check:
            self._refuse_if_broken(problems, "cannot read")
        return entries

    def find(self, kind: str | None = None, **payload_match: Any) -> list[Entry]:
        """Entries of ``kind`` (any kind when None) whose payload has every given key and value.

        ``log.find("review.sign", run_id=run_id)``: the sign-offs of one run, oldest first.
        Raises :class:`AuditLogError` on a broken log, like :meth:`entries`.
        """
        return [e for e in self.entries()
                if (kind is None or e.kind == kind)
                and all(k in e.payload and e.payload[k] == v for k, v in payload_match.items())]

    def append(self, kind: str, actor: str, payload: Mapping[str, Any], *,
               key: Ed25519PrivateKey | str | Path | None = None) -> Entry:
        """Verify the chain, then add one entry at its end, durably and under a file lock.

        Parameters
        ----------
        kind : str
            What happened: ``"review.sign"``, ``"release"``, ``"release.refused"``, ...
        actor : str
            Who did it (a reviewer's name, a CI job).
        payload : mapping
            Plain JSON facts (``run_id``, ``card_hash``, ``decision``, ...); anything JSON
            would change (a tuple, a date, a NaN, a non-string key) is refused, not converted.
        key : Ed25519PrivateKey or path, optional
            Sign the entry with this private key (a key object or a PEM file).

        Returns
        -------
        Entry
            The entry as written.

        Raises
        ------
        AuditLogError
            The log has an error-level problem (each is listed), the arguments are not
            storable, signatures are required and no key is given, or the lock times out.
        """
        base = self._new_fields(kind, actor, payload)
        if key is None and self.require_signatures:
            raise AuditLogError(self.location, "this log requires signed entries and no key was given",
                                hint="pass key= a private key made by `forecast audit keygen`")
        private = load_private_key(key) if isinstance(key, str | Path) else key
        if private is not None and not isinstance(private, Ed25519PrivateKey):
            raise AuditLogError(self.location, f"cannot sign with a {type(private).__name__} object: key must be an "
                                "Ed25519 private key or the path of one", hint="make one with `forecast audit keygen`")
        written: dict[str, Any] = {}

        def make(current: bytes) -> tuple[int, bytes]:  # may run again when another writer won the race
            entries, problems = _analyse(current, self.public_keys, self.require_signatures)
            self._refuse_if_broken(problems, "refusing to append to")
            fields = dict(base, seq=entries[-1].seq + 1 if entries else 0,
                          prev=entries[-1].hash if entries else GENESIS)
            if private is not None:
                fields["key_id"] = PublicKey.of(private.public_key()).key_id
            fields["hash"] = _content_hash(fields)
            if private is not None:
                fields["signature"] = private.sign(_signed_message(fields["hash"])).hex()
            written.clear()
            written.update(fields)
            return fields["seq"], _canonical(fields) + b"\n"

        self.store.append(make, self.lock_timeout)
        return Entry(**written)

    # --- helpers ---

    def _read(self) -> bytes:
        return self.store.read()

    def _refuse_if_broken(self, problems: list[Problem], doing: str) -> None:
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            listed = "; ".join(str(p) for p in errors[:3]) + (f"; and {len(errors) - 3} more" if len(errors) > 3 else "")
            raise AuditLogError(self.location, f"{doing} a broken audit log ({len(errors)} problem(s)): {listed}",
                                hint=_HINT_BROKEN.format(path=self.location), problems=errors)

    def _new_fields(self, kind: str, actor: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        for name, value in (("kind", kind), ("actor", actor)):
            if not isinstance(value, str) or not value.strip():
                raise AuditLogError(self.location, f"cannot append: {name} must be a non-empty string, got {value!r}")
        if not isinstance(payload, Mapping):
            raise AuditLogError(self.location, f"cannot append: payload must be a mapping, got {type(payload).__name__}")
        payload = dict(payload)
        if problem := _json_problem(payload, "payload"):
            raise AuditLogError(self.location, f"cannot append: {problem}")
        try:
            stored = json.loads(_canonical(payload))  # a private copy: the caller's dict may change later
        except UnicodeEncodeError as error:
            raise AuditLogError(self.location, f"cannot append: the payload holds text that is not valid "
                                           f"Unicode ({error.reason})") from None
        for name, value in (("kind", kind), ("actor", actor)):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as error:
                raise AuditLogError(self.location, f"cannot append: {name} is not valid Unicode ({error.reason})") from None
        now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {"time": now, "kind": kind, "actor": actor, "payload": stored}


def _keys(keys: Mapping[str, PublicKey] | str | Path | None) -> dict[str, PublicKey] | None:
    if keys is None:
        return None
    if isinstance(keys, str | Path):
        return load_public_keys(keys)
    publics = [v if isinstance(v, PublicKey) else PublicKey.of(v) for v in keys.values()]
    return {p.key_id: p for p in publics}  # the id a key really has, whatever it was filed under

