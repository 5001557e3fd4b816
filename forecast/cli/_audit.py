"""``forecast audit verify | show | keygen``: a thin shell over :mod:`forecast.ethics._audit` (and, for the
sign-offs and the keyring that verify judges, :mod:`forecast.ethics._keyring`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from forecast.cli import _console as console
from forecast.cli._app import LogOpt, TrackingOpt, app, command_group, fail, open_log
from forecast.errors import ForecastError
from forecast.ethics import generate_key, keyring_problems

audit_app = command_group(
    "audit", "The tamper-evident audit log of sign-offs, releases and refusals: verify it, show it, make signing keys.")
app.add_typer(audit_app, name="audit")

#: Problems listed in full by `verify`; the rest are counted.
MAX_LISTED = 50


@audit_app.command()
def verify(
    log: LogOpt = None,
    keys: Annotated[Path | None, typer.Option("--keys", help="Folder of reviewers' public keys (<key_id>.pub) or one "
                                              ".pub file; without it, signatures are reported as not checked.")] = None,
    require_signatures: Annotated[bool, typer.Option("--require-signatures", help="Every entry must carry a signature "
                                                     "that checks against --keys (catches entries forged at the end).")] = False,
    policy: Annotated[Path | None, typer.Option("--policy", help="The policy whose keyring root (review.signatures."
                                                "keyring_root) the log's keyring must start with [default: "
                                                "ethics/policy.yaml].", show_default=False)] = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Check that no entry of the audit log was edited, removed, reordered or forged, and every sign-off against
    the keyring.

    Signatures by keys the log's keyring declares are checked without --keys. Errors: a broken chain, a bad
    signature, a keyring change the rules refuse, a keyring that does not start with the key the policy pins, a
    sign-off signed with another reviewer's key. Warnings: sign-offs that are unsigned, signed by a key outside
    the keyring or in a role the key does not hold (they count only on data whose sensitivity needs no signature).
    Prints every problem with its line, or "N entries, chain intact".
    Exit status 0 when intact (warnings allowed), 1 when any entry is broken, 2 when the log or
    a key cannot be read at all.
    """
    from forecast.policy import load_policy

    try:
        rules = load_policy(policy).review
        audit = open_log(log, tracking_uri, public_keys=keys, require_signatures=require_signatures)
        entries, problems = audit.inspect()
        n_entries = len(entries)
        if n_entries:
            root = rules.signatures.keyring_root if rules else None
            problems = sorted(problems + keyring_problems(audit, root=root), key=lambda p: (p.line, p.severity != "error"))
    except ForecastError as error:
        fail(error)
    out = console.out
    if n_entries == 0 and not problems:
        state = "no audit log yet" if audit.path is not None and not audit.path.exists() else "the audit log is empty"
        console.out.print(f"{audit.location}: {state}; 0 entries, nothing to verify (the first sign-off or release writes it)",
                  soft_wrap=True, highlight=False)
        return
    errors = [p for p in problems if p.severity == "error"]
    warnings = len(problems) - len(errors)
    if problems:
        table = Table("line", "seq", "severity", "problem", "detail", title=f"problems in {audit.location}")
        for p in problems[:MAX_LISTED]:
            style = "red" if p.severity == "error" else "yellow"
            table.add_row(str(p.line), "-" if p.seq is None else str(p.seq), f"[{style}]{p.severity}[/]", p.code,
                          escape(p.message))
        console.out.print(table)
        if len(problems) > MAX_LISTED:
            console.out.print(f"... and {len(problems) - MAX_LISTED} more problems", highlight=False)
    checked = f"; signatures checked against {len(audit.public_keys)} key(s)" if audit.public_keys else ""
    if errors:
        console.out.print(f"{n_entries} entries readable, {len(errors)} error(s), {warnings} warning(s): the chain is broken "
                  "(edited, removed, reordered or forged entries); restore the log from a backup",
                  soft_wrap=True, highlight=False)
        raise typer.Exit(code=1)
    tail = f", {warnings} warning(s)" if warnings else ""
    console.out.print(f"{n_entries} entries, chain intact{checked}{tail}", soft_wrap=True, highlight=False)


@audit_app.command()
def show(
    log: LogOpt = None,
    kind: Annotated[str | None, typer.Option("--kind", help="Only entries of this kind (review.sign, release, release.refused, ...).")] = None,
    run: Annotated[str | None, typer.Option("--run", help="Only entries whose payload has this run_id.")] = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """List the audit log's entries (oldest first).

    Exit status 0, 1 when the chain is broken (the entries are listed all the same, with a
    warning: run `forecast audit verify`), 2 when the log cannot be read.
    """
    try:
        audit = open_log(log, tracking_uri)
        entries, errors = audit.inspect()
        errors = [p for p in errors if p.severity == "error"]
    except ForecastError as error:
        fail(error)
    flagged: dict[int, list[str]] = {}
    for p in errors:
        if p.seq is not None:
            flagged.setdefault(p.seq, []).append(p.code)
    match = {"run_id": run} if run is not None else {}
    shown = [e for e in entries if (kind is None or e.kind == kind)
             and all(e.payload.get(k) == v for k, v in match.items())]
    table = Table("seq", "time (UTC)", "kind", "actor", "run_id", "signed by key", "payload", "check",
                  title=f"{len(shown)} of {len(entries)} entries in {audit.location}")
    for e in shown:
        rest = {k: v for k, v in e.payload.items() if k != "run_id"}
        table.add_row(str(e.seq), e.time[:19].replace("T", " "), escape(e.kind), escape(e.actor),
                      escape(str(e.payload.get("run_id", "-"))), e.key_id or "-",
                      escape(json.dumps(rest, ensure_ascii=False, sort_keys=True)),
                      f"[red]{', '.join(flagged[e.seq])}[/]" if e.seq in flagged else "ok")
    console.out.print(table)
    if errors:
        console.err.print(f"[bold red]warning:[/] {audit.location} is broken ({len(errors)} problem(s)); these entries cannot be "
                       "trusted: run `forecast audit verify`", soft_wrap=True, highlight=False)
        raise typer.Exit(code=1)


@audit_app.command()
def keygen(
    out_path: Annotated[Path, typer.Option("--out", help="Private key file to write (PEM, mode 0600); refused if it "
                                           "exists. The public key goes beside it as <key_id>.pub.")],
) -> None:
    """Make an Ed25519 key pair for signing audit entries; prints the public key's path and id."""
    try:
        public = generate_key(out_path)
    except ForecastError as error:
        fail(error)
    console.out.print(f"private key: {out_path} (keep it secret; mode 0600)\n"
                   f"public key:  {public.path} (share it: verifiers pass its folder to --keys)\n"
                   f"key id:      {public.key_id}", soft_wrap=True, highlight=False)
