"""The tamper-evident audit log: the chain, what `verify` finds, signatures, locking and the CLI."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import multiprocessing
import os
import stat
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from typer.testing import CliRunner

import forecast.cli._console
from forecast.cli import app
from forecast.ethics import _audit, _logstore
from forecast.ethics._audit import (
    GENESIS,
    AuditLog,
    AuditLogError,
    Entry,
    PublicKey,
    generate_key,
    load_public_keys,
)

SIGN = {"run_id": "r1", "card_hash": "c" * 64, "decision": "approve", "comment": "Baidoa ok, café"}


# --- a reference implementation of the format, written from the spec, to forge entries with ---

def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def forged_line(seq: int, prev: str, payload: dict, key: Ed25519PrivateKey | None = None,
                key_id: str | None = None, kind: str = "release", actor: str = "mallory") -> bytes:
    """A line with a correct hash (and signature when a key is given), as a forger would write it."""
    obj = {"seq": seq, "time": "2026-01-01T00:00:00.000000Z", "kind": kind, "actor": actor,
           "payload": payload, "prev": prev}
    if key is not None or key_id is not None:
        obj["key_id"] = key_id or PublicKey.of(key.public_key()).key_id
    obj["hash"] = hashlib.sha256(canonical(obj)).hexdigest()
    if key is not None:
        obj["signature"] = key.sign(b"forecast-audit-v1:" + bytes.fromhex(obj["hash"])).hex()
    return canonical(obj) + b"\n"


def make_log(path: Path, n: int = 5, key=None) -> AuditLog:
    log = AuditLog(path)
    for i in range(n):
        log.append("review.sign" if i % 2 else "release", f"actor{i}", {**SIGN, "run_id": f"r{i}"}, key=key)
    return log


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def codes(problems) -> list[tuple[int, str]]:
    return [(p.line, p.code) for p in problems]


@pytest.fixture
def log(tmp_path) -> AuditLog:
    return make_log(tmp_path / "audit.log.jsonl")


# --- writing and reading ---

def test_append_returns_what_entries_reads_back_when_the_log_is_reopened(tmp_path):
    path = tmp_path / "ethics" / "audit.log.jsonl"  # the folder is created by the first append
    written = [AuditLog(path).append("review.sign", "alice", SIGN), AuditLog(path).append("release", "ci", {"run_id": "r1"})]
    assert AuditLog(path).entries() == written
    first, second = written
    assert (first.seq, first.prev, second.seq, second.prev) == (0, GENESIS, 1, first.hash)
    assert first.payload == SIGN and first.kind == "review.sign" and first.actor == "alice" and not first.signed
    assert dt.datetime.fromisoformat(first.time).utcoffset() == dt.timedelta(0)


def test_append_writes_canonical_json_lines_whose_hash_covers_every_other_field(log):
    for raw, entry in zip(lines(log.path), log.entries(), strict=True):
        obj = json.loads(raw)
        assert raw == canonical(obj) + b"\n"
        assert set(obj) == {"seq", "time", "kind", "actor", "payload", "prev", "hash"}
        assert obj["hash"] == hashlib.sha256(canonical({k: v for k, v in obj.items() if k != "hash"})).hexdigest()
        assert obj == entry.to_dict()


def test_append_keeps_its_own_copy_when_the_caller_changes_the_payload_later(tmp_path):
    payload = {"run_id": "r1", "areas": ["SO2201"]}
    entry = AuditLog(tmp_path / "a.jsonl").append("release", "ci", payload)
    payload["areas"].append("SO2202")
    assert entry.payload == {"run_id": "r1", "areas": ["SO2201"]} and AuditLog(tmp_path / "a.jsonl").verify() == []


@pytest.mark.parametrize(("payload", "named"), [
    ({"when": dt.date(2026, 1, 1)}, "payload['when'] is a date"),
    ({"areas": ("SO2201",)}, "payload['areas'] is a tuple"),
    ({"value": float("nan")}, "payload['value'] is nan"),
    ({"n": np.int64(3)}, "payload['n'] is a int64"),
    ({"by_lead": {3: "x"}}, "payload['by_lead'] has the key 3 of type int"),
])
def test_append_refuses_a_payload_when_json_would_change_it(tmp_path, payload, named):
    with pytest.raises(AuditLogError, match="cannot append") as caught:
        AuditLog(tmp_path / "a.jsonl").append("release", "ci", payload)
    assert named in str(caught.value) and str(tmp_path / "a.jsonl") in str(caught.value)
    assert not (tmp_path / "a.jsonl").exists()


@pytest.mark.parametrize(("kind", "actor"), [("", "ci"), ("release", "  "), ("release", None)])
def test_append_refuses_when_kind_or_actor_is_empty(tmp_path, kind, actor):
    with pytest.raises(AuditLogError, match="must be a non-empty string"):
        AuditLog(tmp_path / "a.jsonl").append(kind, actor, {})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
appends = st.lists(st.tuples(st.sampled_from(["review.sign", "release", "release.refused"]),
                             st.text(min_size=1, max_size=8).filter(str.strip),
                             st.dictionaries(st.text(max_size=8), json_values, max_size=4)),
                   min_size=1, max_size=8)


@settings(max_examples=40, deadline=None)
@given(appends)
def test_verify_finds_nothing_when_any_sequence_of_appends_was_made(calls):
    with tempfile.TemporaryDirectory() as folder:
        log = AuditLog(Path(folder) / "audit.log.jsonl")
        written = [log.append(kind, actor, payload) for kind, actor, payload in calls]
        assert log.verify() == []
        assert log.entries() == written
        assert [e.payload for e in written] == [p for _, _, p in calls]
        assert [e.seq for e in written] == list(range(len(calls)))


@pytest.mark.parametrize("state", ["missing", "empty"])
def test_verify_reports_a_clean_chain_when_the_log_is_missing_or_empty(tmp_path, state):
    path = tmp_path / "audit.log.jsonl"
    if state == "empty":
        path.write_bytes(b"")
    assert AuditLog(path).verify() == [] and AuditLog(path).entries() == [] and AuditLog(path).find() == []


# --- what verify finds ---

@functools.lru_cache(maxsize=1)
def _clean_log_bytes() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        log = make_log(Path(folder) / "audit.log.jsonl", n=4)
        return log.path.read_bytes()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_verify_flags_exactly_that_line_when_any_byte_of_a_payload_is_changed(tmp_path, data):
    original = _clean_log_bytes().splitlines(keepends=True)
    index = data.draw(st.integers(0, len(original) - 1), label="line index")
    raw = original[index]
    start = raw.index(b'"payload":') + len(b'"payload":')
    position = data.draw(st.integers(start, raw.index(b',"prev":') - 1), label="byte")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != raw[position]), label="new byte")
    edited = raw[:position] + bytes([byte]) + raw[position + 1:]
    path = tmp_path / "edited.jsonl"
    path.write_bytes(b"".join(original[:index] + [edited] + original[index + 1:]))
    errors = [p for p in AuditLog(path).verify() if p.severity == "error"]
    assert any(p.line == index + 1 for p in errors)
    split = bytes([byte]) == b"\n"  # the line became two: both halves are unreadable
    assert {p.line for p in errors} <= {index + 1, index + 2} if split else {p.line for p in errors} == {index + 1}


def test_verify_flags_edited_when_a_payload_value_is_changed(log):
    raw = lines(log.path)
    raw[2] = raw[2].replace(b'"approve"', b'"reject"')
    log.path.write_bytes(b"".join(raw))
    [problem] = log.verify()
    assert (problem.line, problem.seq, problem.code, problem.severity) == (3, 2, "edited", "error")
    assert str(problem) == ("line 3 (seq 2): error edited: the content does not match its hash: "
                            "the entry was changed after it was written")


def test_verify_flags_broken_link_on_the_next_line_when_an_edited_entry_is_rehashed(log):
    raw = lines(log.path)
    obj = json.loads(raw[1])
    raw[1] = forged_line(1, obj["prev"], {**obj["payload"], "decision": "reject"})
    log.path.write_bytes(b"".join(raw))
    assert codes(log.verify()) == [(3, "broken-link")]
    assert "is not the hash of seq 1 (line 2)" in log.verify()[0].message


@pytest.mark.parametrize(("deleted", "message"), [(2, "seq 2 missing before this line: 1 entry was removed"),
                                                  (0, "seq 0 missing before this line: 1 entry was removed")])
def test_verify_flags_removed_when_a_line_is_deleted(log, deleted, message):
    raw = lines(log.path)
    del raw[deleted]
    log.path.write_bytes(b"".join(raw))
    [problem] = log.verify()
    assert (problem.line, problem.code, problem.message) == (deleted + 1, "removed", message)


def test_verify_flags_removed_with_the_span_when_several_lines_are_deleted(log):
    raw = lines(log.path)
    log.path.write_bytes(b"".join(raw[:1] + raw[4:]))
    assert [(p.line, p.code, p.message) for p in log.verify()] == [
        (2, "removed", "seqs 1..3 missing before this line: 3 entries were removed")]


def test_verify_flags_reordered_when_two_lines_are_swapped(log):
    raw = lines(log.path)
    raw[1], raw[2] = raw[2], raw[1]
    log.path.write_bytes(b"".join(raw))
    [problem] = log.verify()
    assert (problem.line, problem.seq, problem.code) == (3, 1, "reordered")
    assert problem.message == "seq 1 comes after seq 2 (line 2): entries were moved"


def test_verify_flags_truncated_when_the_last_line_is_cut(log):
    data = log.path.read_bytes()
    log.path.write_bytes(data[:-40])
    assert codes(log.verify()) == [(5, "truncated")]
    assert "the file ends mid-entry" in log.verify()[0].message
    log.path.write_bytes(data[:-1])  # only the newline lost: the entry is whole, but appending would corrupt it
    assert codes(log.verify()) == [(5, "truncated")]


def test_verify_flags_broken_link_when_a_forged_line_with_a_recomputed_hash_is_inserted(log):
    raw = lines(log.path)
    raw.insert(2, forged_line(2, "f" * 64, {"run_id": "r9", "decision": "approve"}))
    log.path.write_bytes(b"".join(raw))
    problems = log.verify()
    assert codes(problems) == [(3, "broken-link"), (4, "forked")]  # the real seq 2 now has a rival
    assert "is not the hash of seq 1 (line 2)" in problems[0].message
    assert problems[1].message == "seq 2 is also held by line 3, a different entry: one of the two is not genuine"


def test_verify_flags_forked_when_an_inserted_line_links_correctly(log):
    raw = lines(log.path)
    raw.insert(2, forged_line(2, json.loads(raw[1])["hash"], {"run_id": "r9"}))
    log.path.write_bytes(b"".join(raw))
    assert codes(log.verify()) == [(4, "forked")]


def test_verify_flags_duplicated_when_a_line_is_copied(log):
    raw = lines(log.path)
    log.path.write_bytes(b"".join(raw + [raw[1]]))
    assert [(p.line, p.code, p.message) for p in log.verify()] == [(6, "duplicated", "a copy of line 2")]


@pytest.mark.parametrize(("line", "message"), [
    (b"\n", "a blank line"),
    (b"{not json}\n", "not valid JSON (Expecting property name enclosed in double quotes at column 2)"),
    (b'{"seq":1,"\xff"}\n', "not UTF-8 text (byte 11 of the line)"),
])
def test_verify_flags_unreadable_and_nothing_else_when_a_line_is_replaced_by_garbage(log, line, message):
    raw = lines(log.path)
    raw[2] = line
    log.path.write_bytes(b"".join(raw))
    assert [(p.line, p.code, p.message) for p in log.verify()] == [(3, "unreadable", message)]


def test_verify_flags_malformed_when_a_line_is_json_but_not_an_entry(log):
    raw = lines(log.path)
    obj = json.loads(raw[2])
    del obj["actor"]
    obj["seq"], obj["note"] = -1, "x"
    raw[2] = canonical(obj) + b"\n"
    log.path.write_bytes(b"".join(raw))
    [problem] = log.verify()
    assert (problem.line, problem.code) == (3, "malformed")
    assert problem.message == "missing field(s) actor; unknown field(s) note; seq is -1, not an integer >= 0"


def test_verify_flags_not_canonical_when_a_line_is_rewritten_with_the_same_content(log):
    raw = lines(log.path)
    raw[1] = json.dumps(json.loads(raw[1]), indent=None).encode() + b"\n"  # ", " and ": " separators
    log.path.write_bytes(b"".join(raw))
    assert codes(log.verify()) == [(2, "not-canonical")]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400) | st.lists(
    st.deferred(lambda: st.sampled_from(_clean_log_bytes().splitlines(keepends=True))) | st.binary(max_size=40),
    max_size=8).map(b"".join))
def test_verify_returns_problems_and_never_raises_when_the_file_is_garbage(tmp_path, data):
    path = tmp_path / "garbage.jsonl"
    path.write_bytes(data)
    problems = AuditLog(path).verify()
    assert all(p.line >= 1 and p.severity in ("error", "warning") for p in problems)


# --- signatures ---

@pytest.fixture
def alice(tmp_path) -> tuple[Path, PublicKey]:
    return tmp_path / "keys" / "alice.pem", generate_key(tmp_path / "keys" / "alice.pem")


def test_verify_warns_that_signatures_are_unchecked_when_no_key_is_given(tmp_path, alice):
    pem, public = alice
    log = make_log(tmp_path / "a.jsonl", n=2, key=pem)
    problems = log.verify()
    assert [(p.line, p.code, p.severity) for p in problems] == [(1, "unchecked-signature", "warning"),
                                                                (2, "unchecked-signature", "warning")]
    assert problems[0].message == f"signature not checked (key {public.key_id} not given)"
    assert log.verify(public_keys=load_public_keys(pem.parent)) == []
    assert log.verify(public_keys=pem.parent) == []  # a folder works too
    assert log.verify(require_signatures=True)[0].severity == "error"  # unchecked is not enough then


def test_verify_misses_a_forged_last_entry_without_signatures_and_catches_it_with_them(tmp_path, alice):
    pem, public = alice
    unsigned = make_log(tmp_path / "unsigned.jsonl", n=3)
    signed = make_log(tmp_path / "signed.jsonl", n=3, key=pem)
    mallory = Ed25519PrivateKey.generate()
    for log in (unsigned, signed):
        last = log.entries()[-1]
        with open(log.path, "ab") as handle:
            handle.write(forged_line(3, last.hash, {"run_id": "r9", "decision": "approve"}))
    assert unsigned.verify() == []  # the chain alone cannot tell: the forger recomputed hash and prev
    keys = load_public_keys(pem.parent)
    assert codes(signed.verify(keys, require_signatures=True)) == [(4, "missing-signature")]
    # the forger signs with a key of their own, or claims alice's key id without her key
    raw = lines(signed.path)
    raw[3] = forged_line(3, signed.entries(check=False)[2].hash, {"run_id": "r9"}, key=mallory)
    signed.path.write_bytes(b"".join(raw))
    assert codes(signed.verify(keys, require_signatures=True)) == [(4, "unknown-key")]
    obj = json.loads(raw[3])
    obj["key_id"] = public.key_id
    obj["hash"] = hashlib.sha256(canonical({k: v for k, v in obj.items() if k not in ("hash", "signature")})).hexdigest()
    raw[3] = canonical(obj) + b"\n"
    signed.path.write_bytes(b"".join(raw))
    [problem] = signed.verify(keys, require_signatures=True)
    assert (problem.line, problem.code) == (4, "bad-signature") and public.key_id in problem.message


def test_verify_flags_bad_signature_when_a_signed_entry_is_rehashed_after_an_edit(tmp_path, alice):
    pem, _ = alice
    log = make_log(tmp_path / "a.jsonl", n=3, key=pem)
    raw = lines(log.path)
    obj = json.loads(raw[2])
    obj["payload"]["decision"] = "reject"
    obj["hash"] = hashlib.sha256(canonical({k: v for k, v in obj.items() if k not in ("hash", "signature")})).hexdigest()
    raw[2] = canonical(obj) + b"\n"
    log.path.write_bytes(b"".join(raw))
    assert codes(log.verify(pem.parent)) == [(3, "bad-signature")]  # the last entry: no successor to break


def test_verify_flags_missing_signature_when_a_signature_is_stripped(tmp_path, alice):
    pem, public = alice
    log = make_log(tmp_path / "a.jsonl", n=2, key=pem)
    raw = lines(log.path)
    obj = json.loads(raw[1])
    del obj["signature"]
    raw[1] = canonical(obj) + b"\n"
    log.path.write_bytes(b"".join(raw))
    [problem] = [p for p in log.verify() if p.severity == "error"]  # no keys needed: key_id is hashed
    assert (problem.line, problem.code) == (2, "missing-signature")
    assert problem.message == f"names key {public.key_id} but carries no signature: it was removed"


def test_append_needs_a_key_when_signatures_are_required(tmp_path, alice):
    pem, _ = alice
    log = AuditLog(tmp_path / "a.jsonl", public_keys=pem.parent, require_signatures=True)
    with pytest.raises(AuditLogError, match="requires signed entries and no key was given"):
        log.append("release", "ci", {})
    entry = log.append("release", "ci", {}, key=pem)
    assert entry.signed and log.verify() == [] and log.find("release") == [entry]


def test_append_refuses_to_sign_when_the_key_is_not_ed25519(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    other = ec.generate_private_key(ec.SECP256R1())
    log = AuditLog(tmp_path / "a.jsonl")
    with pytest.raises(AuditLogError, match="cannot sign with a ECPrivateKey object: key must be an Ed25519"):
        log.append("release", "ci", {}, key=other)
    pem = tmp_path / "ec.pem"
    pem.write_bytes(other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    with pytest.raises(AuditLogError, match=r"ec.pem: holds a key of type ECPrivateKey, not Ed25519"):
        log.append("release", "ci", {}, key=pem)
    assert not log.path.exists()


def test_generate_key_writes_a_private_key_only_its_owner_can_read(alice):
    pem, public = alice
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert pem.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.path == pem.parent / f"{public.key_id}.pub" and len(public.key_id) == 16
    assert load_public_keys(public.path) == {public.key_id: public}
    with pytest.raises(AuditLogError, match="refusing to overwrite a key"):
        generate_key(pem)


def test_load_public_keys_refuses_a_key_filed_under_another_id(tmp_path, alice):
    _, public = alice
    impostor = tmp_path / "keys" / ("0" * 16 + ".pub")
    impostor.write_bytes(public.path.read_bytes())
    with pytest.raises(AuditLogError, match=f"holds key {public.key_id}") as caught:
        load_public_keys(impostor.parent)
    assert f"rename it to {public.key_id}.pub" in str(caught.value)
    (tmp_path / "none").mkdir()
    with pytest.raises(AuditLogError, match=r"no public keys \(\*.pub files\) in this folder"):
        load_public_keys(tmp_path / "none")


# --- appending to a broken log, finding, locking ---

def test_append_refuses_and_writes_nothing_when_the_chain_is_broken(log):
    raw = lines(log.path)
    del raw[1]
    log.path.write_bytes(b"".join(raw))
    before = log.path.read_bytes()
    with pytest.raises(AuditLogError) as caught:
        log.append("release", "ci", {"run_id": "r9"})
    message = str(caught.value)
    assert message.startswith(f"{log.path}: refusing to append to a broken audit log (1 problem(s)): "
                              "line 2 (seq 2): error removed: seq 1 missing")
    assert "forecast audit verify --log" in message and [p.code for p in caught.value.problems] == ["removed"]
    assert log.path.read_bytes() == before


def test_find_returns_the_entries_of_a_kind_for_a_run_oldest_first(tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    first = log.append("review.sign", "alice", {"run_id": "r1", "decision": "approve"})
    log.append("review.sign", "bob", {"run_id": "r2", "decision": "approve"})
    third = log.append("review.sign", "carol", {"run_id": "r1", "decision": "reject"})
    log.append("release.refused", "ci", {"run_id": "r1"})
    assert log.find("review.sign", run_id="r1") == [first, third]
    assert log.find("review.sign", run_id="r1", decision="reject") == [third]
    assert [e.kind for e in log.find(run_id="r1")] == ["review.sign", "review.sign", "release.refused"]
    assert log.find("release") == [] and log.find(run_id="r3") == []


def test_find_refuses_when_the_log_was_tampered_with(log):
    raw = lines(log.path)
    raw[0], raw[1] = raw[1], raw[0]
    log.path.write_bytes(b"".join(raw))
    with pytest.raises(AuditLogError, match="cannot read a broken audit log"):
        log.find("release")
    assert len(log.entries(check=False)) == 5  # still readable for inspection


def _append_many(path: str, who: str, n: int, barrier) -> None:
    log = AuditLog(path)
    barrier.wait()
    for i in range(n):
        log.append("release", who, {"run_id": f"{who}-{i}"})


def test_append_keeps_one_clean_chain_when_two_processes_append_at_once(tmp_path):
    path = tmp_path / "audit.log.jsonl"
    context = multiprocessing.get_context("spawn")  # no fork of a process that may hold threads
    barrier = context.Barrier(2)
    workers = [context.Process(target=_append_many, args=(str(path), who, 50, barrier)) for who in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    log = AuditLog(path)
    assert log.verify() == []
    entries = log.entries()
    assert [e.seq for e in entries] == list(range(100))
    assert sorted(e.payload["run_id"] for e in entries) == sorted(f"{w}-{i}" for w in "ab" for i in range(50))


def test_append_uses_a_lock_file_and_removes_it_when_flock_is_unavailable(tmp_path, monkeypatch):
    monkeypatch.setattr(_logstore, "fcntl", None)
    log = make_log(tmp_path / "a.jsonl", n=3)
    assert log.verify() == [] and not (tmp_path / "a.jsonl.lock").exists()
    (tmp_path / "a.jsonl.lock").touch()  # left behind by a crashed writer
    with pytest.raises(AuditLogError, match="another process has held the log") as caught:
        AuditLog(log.path, lock_timeout=0.05).append("release", "ci", {})
    assert f"delete the stale lock {tmp_path / 'a.jsonl.lock'}" in str(caught.value)


@pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")
def test_append_times_out_with_a_clear_message_when_another_process_holds_the_lock(tmp_path):
    import fcntl

    log = make_log(tmp_path / "a.jsonl", n=1)
    with open(log.path, "a+b") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX)
        with pytest.raises(AuditLogError, match=r"another process has held the log for over 0.05 s"):
            AuditLog(log.path, lock_timeout=0.05).append("release", "ci", {})
    assert len(AuditLog(log.path).entries()) == 1


def test_verify_raises_only_when_the_log_cannot_be_read_at_all(tmp_path):
    with pytest.raises(AuditLogError, match="cannot read the audit log: Is a directory"):
        AuditLog(tmp_path).verify()


# --- the command line ---

@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(forecast.cli._console, "out", Console(width=200))
    monkeypatch.setattr(forecast.cli._console, "err", Console(width=200, stderr=True))
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, [str(a) for a in args])

    return invoke


def test_cli_verify_says_the_chain_is_intact_and_exits_0_when_nothing_was_touched(cli, log):
    result = cli("audit", "verify", "--log", log.path)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "5 entries, chain intact"


def test_cli_verify_says_there_is_nothing_to_verify_when_the_log_does_not_exist(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = cli("audit", "verify")  # the default log, ethics/audit.log.jsonl
    assert result.exit_code == 0
    assert result.stdout.strip() == ("ethics/audit.log.jsonl: no audit log yet; 0 entries, nothing to verify "
                                     "(the first sign-off or release writes it)")


def test_cli_verify_lists_each_problem_and_exits_1_when_entries_were_removed_and_moved(cli, log):
    raw = lines(log.path)
    log.path.write_bytes(b"".join([raw[0], raw[3], raw[2], raw[4]]))
    result = cli("audit", "verify", "--log", log.path)
    assert result.exit_code == 1
    rows = [line.split("│")[1:6] for line in result.stdout.splitlines() if line.startswith("│")]
    assert [[cell.strip() for cell in row[:4]] for row in rows] == [["2", "3", "error", "removed"],
                                                                  ["3", "2", "error", "reordered"]]
    assert "4 entries readable, 2 error(s), 0 warning(s): the chain is broken" in result.stdout


def test_cli_verify_checks_signatures_with_keys_and_warns_without(cli, tmp_path, alice):
    pem, public = alice
    log = make_log(tmp_path / "a.jsonl", n=2, key=pem)
    without = cli("audit", "verify", "--log", log.path)
    assert without.exit_code == 0 and "2 entries, chain intact, 2 warning(s)" in without.stdout
    assert f"signature not checked (key {public.key_id} not given)" in without.stdout
    checked = cli("audit", "verify", "--log", log.path, "--keys", pem.parent, "--require-signatures")
    assert checked.exit_code == 0 and checked.stdout.strip() == "2 entries, chain intact; signatures checked against 1 key(s)"


@pytest.mark.parametrize("bad", ["log is a folder", "keys folder missing"])
def test_cli_verify_exits_2_without_a_traceback_when_the_log_or_keys_cannot_be_read(cli, tmp_path, log, bad):
    args = ("--log", tmp_path) if bad == "log is a folder" else ("--log", log.path, "--keys", tmp_path / "nokeys")
    result = cli("audit", "verify", *args)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert result.stderr.startswith(f"error: {args[-1]}: ") and "Traceback" not in result.output


def test_cli_show_lists_the_entries_of_a_kind_for_a_run(cli, tmp_path):
    log = AuditLog(tmp_path / "a.jsonl")
    log.append("review.sign", "alice", {"run_id": "r1", "decision": "approve"})
    log.append("review.sign", "bob", {"run_id": "r2", "decision": "reject"})
    log.append("release", "ci", {"run_id": "r1"})
    result = cli("audit", "show", "--log", log.path, "--kind", "review.sign", "--run", "r1")
    assert result.exit_code == 0, result.output
    assert f"1 of 3 entries in {log.path}" in result.stdout
    assert "alice" in result.stdout and '{"decision": "approve"}' in result.stdout and "bob" not in result.stdout


def test_cli_show_marks_the_broken_entries_and_exits_1_when_the_chain_is_broken(cli, log):
    raw = lines(log.path)
    raw[1] = raw[1].replace(b"approve", b"reject!")
    log.path.write_bytes(b"".join(raw))
    result = cli("audit", "show", "--log", log.path)
    assert result.exit_code == 1
    rows = [line.split("│") for line in result.stdout.splitlines() if line.startswith("│")]
    checks = [row[-2].strip() for row in rows if row[1].strip()]  # long payloads wrap onto more rows
    assert checks == ["ok", "edited", "ok", "ok", "ok"]
    assert "is broken (1 problem(s)); these entries cannot be trusted" in result.stderr


def test_cli_keygen_prints_the_key_id_and_public_key_path_and_keeps_the_private_key_0600(cli, tmp_path):
    result = cli("audit", "keygen", "--out", tmp_path / "k" / "alice.pem")
    assert result.exit_code == 0, result.output
    [public] = load_public_keys(tmp_path / "k").values()
    assert f"public key:  {public.path}" in result.stdout and f"key id:      {public.key_id}" in result.stdout
    assert stat.S_IMODE(os.stat(tmp_path / "k" / "alice.pem").st_mode) == 0o600
    again = cli("audit", "keygen", "--out", tmp_path / "k" / "alice.pem")
    assert again.exit_code == 2 and "refusing to overwrite a key" in again.stderr


def test_cli_help_lists_audit_with_its_three_commands(cli):
    assert "audit" in cli("--help").stdout
    listed = cli("audit", "--help").stdout
    assert all(command in listed for command in ("verify", "show", "keygen"))


def test_entry_is_frozen_when_read_back(log):
    entry = log.entries()[0]
    assert isinstance(entry, Entry)
    with pytest.raises(AttributeError):
        entry.seq = 9
