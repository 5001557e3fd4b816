"""The keyring: who may sign reviews, in which role, with which key; and which policy is in force.

A name in the audit log is only a claim. The keyring turns it into an identity: reviewers are
declared by signed entries of the log itself, so the list of who may sign is as tamper-evident
as the sign-offs it vouches for, and :func:`keyring` (the one home of these rules) derives it by
replaying the log in order::

    from forecast.ethics import add_member, approve_policy, keyring
    add_member(log, "omar", ["ethics"], "keys/1a2b3c4d5e6f7a8b.pub", key="keys/omar.pem")  # the root
    add_member(log, "lena", ["technical"], "keys/9f8e7d6c5b4a3f2e.pub", key="keys/omar.pem")
    approve_policy(log, load_policy("ethics/policy.yaml"), by="omar", key="keys/omar.pem")
    keyring(log, root=policy.review.signatures.keyring_root).members

The entries (payloads are plain JSON, keys 64 hex digits of the raw Ed25519 public key):

- ``keyring.add`` (``name``, ``roles``, ``public_key``, ``key_id``). The first accepted one is
  the keyring's root: signed by the very key it declares (trust on first use), holding the
  ethics role, its key id the one the policy pins (``review.signatures.keyring_root``), so a
  log rewritten from scratch under another key is refused. Every later change is signed by a
  key already in the keyring with the ethics role, its actor the name that key is declared
  under.
- ``keyring.remove`` (``key_id``): the key vouches for nothing any more, its earlier sign-offs
  included (a lost or leaked key, a reviewer gone); the last ethics key cannot go.
- ``policy.approve`` (``policy``, ``sha256``): an ethics reviewer of the keyring puts a policy
  in force; the gate judges a release only under the latest one approved.

A change the rules refuse is never applied, and is listed in ``Keyring.problems``: the release
gate and ``forecast audit verify`` report it as damage to the log (nothing the commands write is
refused). Identity: the keyring name of the key that signed an entry, else the entry's actor,
normalised (:func:`identity`: NFKC, case-folded, spaces collapsed), so ``Root`` is ``root``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from forecast.errors import ForecastError
from forecast.ethics._audit import (
    AuditLog,
    Entry,
    Problem,
    PublicKey,
    _content_hash,
    _signed_message,
    load_private_key,
    load_public_keys,
)
from forecast.ethics._checklists import ROLES
from forecast.policy import published_name

__all__ = ["KEYRING_ADD", "KEYRING_REMOVE", "POLICY_APPROVE", "Member", "PolicyApproval", "Keyring", "Attestation",
           "identity", "keyring", "add_member", "remove_member", "approve_policy", "attest", "policy_in_force",
           "keyring_problems"]

KEYRING_ADD, KEYRING_REMOVE, POLICY_APPROVE = "keyring.add", "keyring.remove", "policy.approve"
SIGN_KIND = "review.sign"
_APPROVE_HINT = "`forecast review approve-policy {path} --by NAME --key KEY` (an ethics reviewer of the keyring)"


def identity(name: str) -> str:
    """The person a name stands for: NFKC, case-folded, inner spaces collapsed, so that ``Root``,
    ``root `` and ``ｒｏｏｔ`` are one person (the author, or a reviewer in two roles)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", str(name)).casefold())
    return " ".join(folded.split())


@dataclass(frozen=True)
class Member:
    """One key of the keyring: whose it is, the roles it signs in, the entry that added it."""

    name: str
    roles: tuple[str, ...]
    key: PublicKey
    seq: int

    @property
    def key_id(self) -> str:
        return self.key.key_id

    @property
    def identity(self) -> str:
        return identity(self.name)


@dataclass(frozen=True)
class PolicyApproval:
    """A ``policy.approve`` entry the keyring accepted."""

    policy: str
    sha256: str
    by: str
    time: str
    seq: int


@dataclass(frozen=True)
class Keyring:
    """The keyring as the log says it is now (:func:`keyring`).

    ``members`` by key id; ``root`` the first key (None: no keyring yet); ``pinned`` the root the
    policy names; ``approvals`` the accepted policy approvals, oldest first; ``problems`` every
    keyring entry refused, as ``(seq, message)``; ``first`` the key the log's first
    ``keyring.add`` declares, accepted or not (what a rewritten log starts with).
    """

    members: Mapping[str, Member] = field(default_factory=dict)
    root: str | None = None
    pinned: str | None = None
    approvals: tuple[PolicyApproval, ...] = ()
    problems: tuple[tuple[int, str], ...] = ()
    first: str | None = None

    @property
    def approved(self) -> PolicyApproval | None:
        """The policy in force: the latest accepted approval."""
        return self.approvals[-1] if self.approvals else None

    def root_problem(self) -> str | None:
        """Why this keyring is not the one the policy pins, or None."""
        if self.pinned is None or self.root == self.pinned:
            return None
        if (self.root or self.first) is None:
            return (f"the policy pins the keyring root {self.pinned}, and the log has no keyring: it is another "
                    "log, or it was rewritten")
        return (f"the log's keyring starts with key {self.root or self.first}, the policy pins {self.pinned}: the "
                "log was rewritten from scratch, or it is another organisation's log")


@dataclass(frozen=True)
class Attestation:
    """Who a sign-off is from: ``who`` to show, ``identity`` the person, ``problem`` why it does
    not count (None when it counts) and its ``code``: ``signed-by-another``, ``role-not-held``,
    ``unsigned``, ``key-not-in-keyring``."""

    who: str
    identity: str
    problem: str | None = None
    code: str | None = None


# --- the rules ------------------------------------------------------------------------------

def _public(value: Any) -> PublicKey | None:
    """A public key from 64 hex digits (raw Ed25519), or None."""
    try:
        return PublicKey.of(Ed25519PublicKey.from_public_bytes(bytes.fromhex(value)))
    except (TypeError, ValueError):
        return None


def _verifies(entry: Entry, public: PublicKey) -> bool:
    """Whether ``public`` signed this entry as it stands (content, hash and signature agree)."""
    if entry.signature is None or entry.key_id != public.key_id:
        return False
    if _content_hash(entry.to_dict()) != entry.hash:
        return False
    try:
        public.key.verify(bytes.fromhex(entry.signature), _signed_message(entry.hash))
    except InvalidSignature:
        return False
    return True


def _member_shape(payload: Mapping) -> str | None:
    """What is wrong with a ``keyring.add`` payload, or None."""
    name, roles, public = payload.get("name"), payload.get("roles"), _public(payload.get("public_key"))
    if not isinstance(name, str) or not name.strip():
        return "the new member has no name"
    if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles):
        return f"roles must be a non-empty list of {', '.join(ROLES)}; got {roles!r}"
    if public is None or payload.get("key_id") != public.key_id:
        return "public_key is not 64 hex digits of an Ed25519 key, or key_id is not its id"
    return None


def _ethics_problem(members: Mapping[str, Member], actor: str, signer: str | None) -> str | None:
    """Why ``signer`` (a key id whose signature checked, or None) may not change the keyring or
    approve a policy as ``actor``, or None."""
    member = members.get(signer) if signer else None
    if member is None:
        return ("not signed by a key of the keyring" if signer is None else f"signed with key {signer}, which is "
                "not in the keyring")
    if "ethics" not in member.roles:
        return f"signed by {member.name}, whose key holds {', '.join(member.roles)} only: it needs the ethics role"
    if identity(actor) != member.identity:
        return f"the entry names {actor} but is signed with the key of {member.name}"
    return None


def _refusal(ring: _Replay, kind: str, actor: str, signer: str | None, payload: Mapping) -> str | None:
    """Why a keyring entry is refused, or None: the one statement of the rules, asked by the replay
    and, before anything is written, by the commands."""
    members = ring.members
    if kind == KEYRING_ADD:
        if shape := _member_shape(payload):
            return shape
        new = payload["key_id"]
        if ring.root is None:
            if signer != new:
                return "the keyring's first key must sign its own entry (trust on first use)"
            if "ethics" not in payload["roles"]:
                return "the keyring's first key needs the ethics role (it signs every later change)"
            if identity(actor) != identity(payload["name"]):
                return f"the first key is declared for {payload['name']}, but the entry's actor is {actor}"
            if ring.pinned is not None and new != ring.pinned:
                return f"the policy pins the keyring root {ring.pinned}; this first key is {new}"
            return None
        if new in members:
            return f"key {new} is already in the keyring (as {members[new].name})"
    elif kind == KEYRING_REMOVE:
        gone = payload.get("key_id")
        if not isinstance(gone, str) or gone not in members:
            return f"key {gone!r} is not in the keyring"
        if [m for k, m in members.items() if k != gone and "ethics" in m.roles] == []:
            return "it would remove the last ethics key: nobody could change the keyring again"
    elif kind == POLICY_APPROVE:
        sha, name = payload.get("sha256"), payload.get("policy")
        if not (isinstance(sha, str) and len(sha) == 64) or not isinstance(name, str):
            return "a policy approval names the policy and its sha256"
    return _ethics_problem(members, actor, signer)


@dataclass
class _Replay:
    """The keyring while the log is replayed."""

    pinned: str | None
    members: dict[str, Member] = field(default_factory=dict)
    root: str | None = None
    approvals: list[PolicyApproval] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    first: str | None = None

    def signer(self, entry: Entry) -> str | None:
        """The key id that signed ``entry``, when it is a member's (or, for an added key, its own)
        and the signature checks."""
        candidates = dict(self.members)
        if entry.kind == KEYRING_ADD and (own := _public(entry.payload.get("public_key"))) is not None:
            candidates.setdefault(own.key_id, Member("", (), own, entry.seq))
        member = candidates.get(entry.key_id) if entry.signed else None
        return entry.key_id if member is not None and _verifies(entry, member.key) else None

    def apply(self, entry: Entry) -> None:
        if entry.kind not in (KEYRING_ADD, KEYRING_REMOVE, POLICY_APPROVE):
            return
        p = entry.payload
        if entry.kind == KEYRING_ADD and self.first is None:
            self.first = p.get("key_id") if isinstance(p.get("key_id"), str) else None
        if why := _refusal(self, entry.kind, entry.actor, self.signer(entry), p):
            self.problems.append((entry.seq, f"{entry.kind} by {entry.actor} refused: {why}"))
        elif entry.kind == KEYRING_ADD:
            public = _public(p["public_key"])
            self.root = self.root or public.key_id
            self.members[public.key_id] = Member(p["name"].strip(), tuple(p["roles"]), public, entry.seq)
        elif entry.kind == KEYRING_REMOVE:
            del self.members[p["key_id"]]
        else:
            self.approvals.append(PolicyApproval(p["policy"], p["sha256"], entry.actor, entry.time, entry.seq))

    def frozen(self) -> Keyring:
        return Keyring(dict(self.members), self.root, self.pinned, tuple(self.approvals), tuple(self.problems),
                       self.first)


def keyring(log: AuditLog | str | Path | None, *, root: str | None = None) -> Keyring:
    """The keyring the audit log declares, replayed entry by entry (every readable line; whether
    the chain is intact is :meth:`AuditLog.verify`'s to say).

    Parameters
    ----------
    log : AuditLog or path
    root : str, optional
        The key id the policy pins (``review.signatures.keyring_root``): a first key other than
        this one is refused.
    """
    replay = _Replay(root)
    for entry in AuditLog.of(log).entries(check=False):
        replay.apply(entry)
    return replay.frozen()


def declared_keys(entries: Iterable[Entry]) -> dict[str, PublicKey]:
    """Every public key a ``keyring.add`` entry names, accepted or not: what checks the
    signatures of a log when no other keys are given (trust is :func:`keyring`'s to judge)."""
    keys = {}
    for entry in entries:
        if entry.kind == KEYRING_ADD and (public := _public(entry.payload.get("public_key"))) is not None:
            keys[public.key_id] = public
    return keys


# --- sign-offs and the policy in force --------------------------------------------------------

def attest(entry: Entry, ring: Keyring, role: str, *, required: bool, level: str | None = None) -> Attestation:
    """Who an approval is from, and why it does not count (None when it counts).

    Signed by a key of the keyring: the keyring's name, which must be the entry's actor; when
    signatures are ``required``, the key must also hold ``role``. Otherwise: the actor, counted
    only when signatures are not required.
    """
    actor = entry.actor
    member = ring.members.get(entry.key_id) if entry.signed else None
    if member is not None and _verifies(entry, member.key):
        if member.identity != identity(actor):
            return Attestation(actor, identity(actor), f"approval by {actor} not counted: signed with the key of "
                               f"{member.name} ({member.key_id}), not {actor}'s", "signed-by-another")
        if required and role not in member.roles:
            return Attestation(member.name, member.identity, f"approval by {actor} as {role} not counted: "
                               f"{member.name}'s key holds the role(s) {', '.join(member.roles)} only (forecast "
                               "review keyring list)", "role-not-held")
        return Attestation(member.name, member.identity)
    if not required:
        return Attestation(actor, identity(actor))
    code = "unsigned" if not entry.signed else "key-not-in-keyring"
    how = "unsigned" if not entry.signed else f"signed with key {entry.key_id}, which is not in the keyring"
    return Attestation(actor, identity(actor), f"approval by {actor} not counted: {how}; for {level} data a "
                       "sign-off counts only when signed by the reviewer's own key in the keyring: sign again with "
                       "`forecast review sign ... --key KEY` (keys join with `forecast review keyring add`)", code)


def policy_in_force(policy, ring: Keyring) -> tuple[bool, str]:
    """Whether ``policy`` is the one in force (the latest approved in the log, under the keyring
    the policy pins), and what was found, in words."""
    name, sha = published_name(policy.source), policy.hash()
    label, how = f"{name} (sha256 {sha[:12]})", _APPROVE_HINT.format(path=name)
    rules = policy.review
    if rules is None:
        return False, f"{label} has no review section: no keyring root, no review rules"
    if rules.signatures.keyring_root is None:
        root = f" (this log's keyring starts with {ring.root})" if ring.root else ""
        return False, (f"{label} pins no keyring root: set review.signatures.keyring_root to the key id of the "
                       f"keyring's first key{root}, then approve the policy: {how}")
    if why := ring.root_problem():
        return False, why
    latest = ring.approved
    if latest is None:
        return False, f"no policy has been approved in the audit log; {label} is not in force until approved: {how}"
    if latest.sha256 != sha:
        return False, (f"{label} has not been approved; the policy in force is {latest.policy} (sha256 "
                       f"{latest.sha256[:12]}), approved by {latest.by} on {latest.time[:10]}: approve this one "
                       f"with {how}, or judge under the approved file")
    return True, f"{label}, approved by {latest.by} on {latest.time[:10]} (audit entry {latest.seq})"


def keyring_problems(log: AuditLog | str | Path | None, *, root: str | None = None) -> list[Problem]:
    """What ``forecast audit verify`` adds to the chain's problems: refused keyring entries and a
    keyring root other than the policy's (errors), and every sign-off judged against the keyring:
    signed with another member's key (an error), unsigned, signed by a key outside the keyring or
    in a role its key does not hold (warnings: they count only where the policy does not require
    signatures). In a log without a keyring there is nothing to judge sign-offs by."""
    log = AuditLog.of(log)
    ring, lines = keyring(log, root=root), _lines(log)
    out = [Problem(lines.get(seq, 0), "keyring-refused", message, "error", seq) for seq, message in ring.problems]
    if (why := ring.root_problem()) is not None:
        out.append(Problem(1, "keyring-root", why, "error", None))
    for entry in log.entries(check=False) if ring.root is not None else ():  # no keyring: nothing to judge by
        if entry.kind == SIGN_KIND and entry.payload.get("decision") == "approve":
            out += _sign_off_problems(entry, ring, lines.get(entry.seq, 0))
    return sorted(out, key=lambda p: p.line)


def _sign_off_problems(entry: Entry, ring: Keyring, line: int) -> list[Problem]:
    seen = attest(entry, ring, entry.payload.get("role"), required=True)
    if seen.code is None:
        return []
    if seen.code == "signed-by-another":  # a signature that contradicts its entry: never honest
        return [Problem(line, seen.code, seen.problem, "error", entry.seq)]
    message = seen.problem.split(";")[0] + ": it counts only for data whose sensitivity needs no signature"
    code = "unsigned-sign-off" if seen.code == "unsigned" else seen.code
    return [Problem(line, code, message, "warning", entry.seq)]


def _lines(log: AuditLog) -> dict[int, int]:
    """seq -> line of the file (the first line holding it), for problems found by seq."""
    out: dict[int, int] = {}
    for number, raw in enumerate(log.store.read().split(b"\n"), 1):
        try:
            seq = json.loads(raw).get("seq")
        except (ValueError, AttributeError):
            continue
        if isinstance(seq, int):
            out.setdefault(seq, number)
    return out


# --- the commands -----------------------------------------------------------------------------

def _private(key: Ed25519PrivateKey | str | Path) -> Ed25519PrivateKey:
    private = load_private_key(key) if isinstance(key, str | Path) else key
    if not isinstance(private, Ed25519PrivateKey):
        raise ForecastError("key must be an Ed25519 private key or the path of one (`forecast audit keygen`)")
    return private


def _public_of(public_key: PublicKey | Ed25519PublicKey | str | Path) -> PublicKey:
    if isinstance(public_key, PublicKey):
        return public_key
    if isinstance(public_key, Ed25519PublicKey):
        return PublicKey.of(public_key)
    found = list(load_public_keys(public_key).values())  # a .pub file named for its key id
    if len(found) != 1:
        raise ForecastError(f"{public_key}: holds {len(found)} public keys; give the one .pub file of the new member")
    return found[0]


def _replay(log: AuditLog) -> _Replay:
    replay = _Replay(None)
    for entry in log.entries():  # refuses a broken log, naming its problems
        replay.apply(entry)
    return replay


def _append(log: AuditLog, kind: str, actor: str, payload: dict, private: Ed25519PrivateKey) -> Entry:
    """Append a keyring entry after asking the rules the replay will ask: nothing refused is written."""
    signer = PublicKey.of(private.public_key()).key_id
    if why := _refusal(_replay(log), kind, actor, signer, payload):
        raise ForecastError(f"{log.location}: {kind} by {actor} refused: {why}; see `forecast review keyring list "
                            f"--log {log.location}`")
    return log.append(kind, actor, payload, key=private)


def _actor(log: AuditLog, private: Ed25519PrivateKey, fallback: str) -> str:
    """The keyring name of the signing key (``fallback`` for the first key, not in it yet)."""
    member = _replay(log).members.get(PublicKey.of(private.public_key()).key_id)
    return member.name if member is not None else fallback


def add_member(log: AuditLog | str | Path | None, name: str, roles: Iterable[str],
               public_key: PublicKey | Ed25519PublicKey | str | Path, *, key: Ed25519PrivateKey | str | Path) -> Entry:
    """Declare ``name``'s public key and roles in the keyring (a signed ``keyring.add``).

    The first key of a log signs its own entry and needs the ethics role (it is the root the
    policy pins); every later one is signed by ``key``, an ethics member's private key.

    Raises
    ------
    ForecastError
        The rules refuse it (the message says which); nothing is written.
    """
    log, private, public = AuditLog.of(log), _private(key), _public_of(public_key)
    raw = public.key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    payload = {"name": str(name).strip(), "roles": list(dict.fromkeys(roles)), "public_key": raw,
               "key_id": public.key_id}
    return _append(log, KEYRING_ADD, _actor(log, private, str(name).strip()), payload, private)


def remove_member(log: AuditLog | str | Path | None, who: str, *, key: Ed25519PrivateKey | str | Path) -> Entry:
    """Take a key out of the keyring (``who``: its key id, or the name of a member with one key),
    signed by an ethics member's ``key``; its sign-offs stop counting."""
    log, private = AuditLog.of(log), _private(key)
    members = _replay(log).members
    found = [k for k, m in members.items() if k == who or m.identity == identity(who)]
    if len(found) != 1:
        what = "no member" if not found else f"{len(found)} keys ({', '.join(found)}): give the key id"
        raise ForecastError(f"{log.location}: {what} matches {who!r}; see `forecast review keyring list --log {log.location}`")
    return _append(log, KEYRING_REMOVE, _actor(log, private, "?"), {"key_id": found[0],
                                                                    "name": members[found[0]].name}, private)


def approve_policy(log: AuditLog | str | Path | None, policy, *, by: str, key: Ed25519PrivateKey | str | Path) -> Entry:
    """Put ``policy`` in force: a ``policy.approve`` entry (its published name and SHA-256) signed
    by ``by``, an ethics reviewer of the keyring. Refused when the policy pins another keyring
    root than this log's, or none."""
    log, private = AuditLog.of(log), _private(key)
    replay = _replay(log)
    root = policy.review.signatures.keyring_root if policy.review is not None else None
    if replay.root is None:
        raise ForecastError(f"{log.location}: the log has no keyring yet: start it with `forecast review keyring add "
                            "NAME --role ethics --public-key PUB --key PEM` (the first key signs its own entry)")
    if root != replay.root:
        raise ForecastError(f"{policy.source}: the policy pins the keyring root {root}, this log's keyring starts "
                            f"with {replay.root}: set review.signatures.keyring_root: {replay.root} in the policy, "
                            "then approve it")
    payload = {"policy": published_name(policy.source), "sha256": policy.hash()}
    return _append(log, POLICY_APPROVE, by.strip(), payload, private)
