"""``forecast review start | answer | sign | status | checklist | keyring | approve-policy``: a thin shell over
the review calls of :mod:`forecast.pipeline` (the review records, the keyring of reviewers and the policy
approvals are :mod:`forecast.ethics`'s)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from forecast.cli import _console as console
from forecast.cli._app import LogOpt, app, command_group, fail, open_log
from forecast.errors import ForecastError

review_app = command_group(
    "review", "The ethics review of a train run: start it, answer the checklist items (one or many at once), sign "
              "off, see where it stands (status, or checklist: one HTML page); who may sign (keyring) and the "
              "policy in force (approve-policy).")
app.add_typer(review_app, name="review")


class Answer(str, Enum):
    yes = "yes"
    no = "no"
    na = "n/a"


class Role(str, Enum):
    technical = "technical"
    ethics = "ethics"


class Decision(str, Enum):
    approve = "approve"
    reject = "reject"


RunArg = Annotated[str, typer.Argument(help="MLflow run id of `forecast train` (with a model card).", show_default=False)]
ReviewsOpt = Annotated[Path, typer.Option("--reviews", help="Folder of review records.")]
UriOpt = Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI.")]


def _print(text: str) -> None:
    console.out.print(text, soft_wrap=True, highlight=False, markup=False)


@review_app.command()
def start(
    run_id: RunArg,
    restart: Annotated[bool, typer.Option("--restart", help="Start a new review when one exists (after a rejection); "
                                          "the old file is kept, renamed with a timestamp.")] = False,
    reviews: ReviewsOpt = Path("ethics/reviews"),
    tracking_uri: UriOpt = None,
) -> None:
    """Write the review record (one entry per checklist item) of a train run."""
    from forecast.ethics import read_review
    from forecast.pipeline import start_review

    try:
        path = start_review(run_id, tracking_uri=tracking_uri, reviews_dir=reviews, restart=restart)
        review = read_review(run_id, reviews_dir=reviews)
    except ForecastError as error:
        fail(error)
    _print(f"review of run {run_id}: {path} ({len(review.items)} items to answer)")
    _print(f"card sha256 {review.card_sha256}\nmodel digest {review.model_digest}")


@review_app.command("answer")
def answer_item(
    run_id: RunArg,
    item: Annotated[str | None, typer.Argument(help="Checklist item id, e.g. dseg.problem.needs_based (one answer; "
                                               "leave out with --from or --template).", show_default=False)] = None,
    answer: Annotated[Answer | None, typer.Option("--answer", help="yes, no or n/a.", show_default=False)] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who answers; with --from, the name for rows that leave "
                                           "answered_by_name empty.", show_default=False)] = None,
    evidence: Annotated[str | None, typer.Option("--evidence", help="The evidence (for n/a: why it does not apply).")] = None,
    from_file: Annotated[Path | None, typer.Option(
        "--from", help="Record many answers at once from an answers file (.csv or .yaml, as --template writes it); "
                       "any invalid row rejects the whole file.", show_default=False)] = None,
    template: Annotated[Path | None, typer.Option(
        "--template", help="Write an answers file (.csv or .yaml): one row per open item with its question, role "
                           "and the evidence asked; fill answer, evidence, answered_by_name and pass it to --from.",
        show_default=False)] = None,
    role: Annotated[Role | None, typer.Option("--role", help="With --template: only this reviewer's items.")] = None,
    all_items: Annotated[bool, typer.Option("--all", help="With --template: answered items too, to revise them.")] = False,
    reviews: ReviewsOpt = Path("ethics/reviews"),
) -> None:
    """Record answers: one item (ITEM --answer --by --evidence), or many from a file (--from FILE).

    `--template FILE` writes the file to fill: one row per open item, with its question."""
    modes = [name for name, given in (("ITEM", item), ("--from", from_file), ("--template", template)) if given]
    try:
        if len(modes) != 1:
            raise ForecastError(f"give one of ITEM, --from FILE or --template FILE; got {' and '.join(modes) or 'none'}")
        if template is not None:
            _template(run_id, template, role, all_items, reviews)
        elif from_file is not None:
            _from_file(run_id, from_file, by, reviews)
        else:
            _one(run_id, item, answer, by, evidence, reviews)
    except ForecastError as error:
        fail(error)


def _one(run_id, item, answer, by, evidence, reviews) -> None:
    from forecast.pipeline import answer as record

    if answer is None or not by:
        raise ForecastError(f"answering item {item} needs --answer (yes, no or n/a) and --by NAME")
    done = record(run_id, item, answer.value, evidence, by=by, reviews_dir=reviews)
    _print(f"{done.id}: {done.answer} (by {done.answered_by_name})")


def _template(run_id, path, role, all_items, reviews) -> None:
    from forecast.pipeline import write_answers_template

    n = write_answers_template(run_id, path, role=role.value if role else None, all_items=all_items,
                               reviews_dir=reviews)
    _print(f"wrote {n} item(s) to {path}: fill answer (yes, no or n/a), evidence and answered_by_name, then "
           f"`forecast review answer {run_id} --from {path}`")


def _from_file(run_id, path, by, reviews) -> None:
    from forecast.ethics import read_review
    from forecast.pipeline import answer_from_file

    done = answer_from_file(run_id, path, by=by, reviews_dir=reviews)
    counts = {a: sum(1 for i in done if i.answer == a) for a in ("yes", "no", "n/a")}
    left = sum(1 for i in read_review(run_id, reviews_dir=reviews).items if i.answer is None)
    _print(f"recorded {len(done)} answer(s) from {path} ({', '.join(f'{a} {n}' for a, n in counts.items())}); "
           f"{left} item(s) still open")
    for i in done:
        if i.blocking and i.answer == "no":
            _print(f"  blocking item {i.id} answered no: the {i.answered_by} reviewer cannot approve")


@review_app.command("sign")
def sign_off(
    run_id: RunArg,
    reviewer: Annotated[str, typer.Option("--reviewer", help="Your name.", show_default=False)],
    role: Annotated[Role, typer.Option("--role", help="technical or ethics.", show_default=False)],
    decision: Annotated[Decision, typer.Option("--decision", help="approve or reject.", show_default=False)],
    comment: Annotated[str, typer.Option("--comment", help="Why; recorded in the audit log.")] = "",
    key: Annotated[Path | None, typer.Option("--key", help="Sign the entry with your private key (`forecast audit "
                                             "keygen`, declared in the keyring): on data the policy lists under "
                                             "review.signatures.required_for (high, severe) only signed sign-offs "
                                             "count.")] = None,
    log: LogOpt = None,
    reviews: ReviewsOpt = Path("ethics/reviews"),
    tracking_uri: UriOpt = None,
) -> None:
    """Record a sign-off in the audit log, bound to the run id, the card hash and the model digest."""
    from forecast.pipeline import sign

    try:
        audit = open_log(log, tracking_uri)
        entry = sign(run_id, reviewer, role.value, decision.value, comment, key=key, log=audit,
                     tracking_uri=tracking_uri, reviews_dir=reviews)
    except ForecastError as error:
        fail(error)
    signed = f", signed with key {entry.key_id}" if entry.key_id else ""
    _print(f"{decision.value} by {reviewer} ({role.value}) recorded in {audit.location} as entry {entry.seq}{signed}")


@review_app.command()
def status(
    run_id: RunArg,
    log: LogOpt = None,
    reviews: ReviewsOpt = Path("ethics/reviews"),
    tracking_uri: UriOpt = None,
) -> None:
    """Show the items per role and every unmet rule. Exit 0 when approved, 1 when not."""
    from forecast.ethics import read_review
    from forecast.pipeline import review_state

    try:
        state = review_state(run_id, tracking_uri=tracking_uri, reviews_dir=reviews, log=open_log(log, tracking_uri))
        review = read_review(run_id, reviews_dir=reviews) if (reviews / f"{run_id}.yaml").is_file() else None
    except ForecastError as error:
        fail(error)
    if review is not None:
        console.out.print(_items_table(run_id, review))
        _open_items(run_id, review)
    for role, names in state.valid_approvals.items():
        _print(f"{role} approvals: {', '.join(names) or 'none'}")
    if state.approved:
        _print(f"run {run_id}: approved")
        return
    _print(f"run {run_id}: not approved")
    for problem in state.problems:
        _print(f"  - {problem}")
    raise typer.Exit(code=1)


def _items_table(run_id: str, review) -> Table:
    table = Table("role", "item", "blocking", "answer", "by", title=f"review of run {run_id}")
    for item in sorted(review.items, key=lambda i: i.answered_by):
        shown = item.answer or "-"
        style = "red" if item.answer == "no" and item.blocking else "yellow" if item.answer is None else "green"
        table.add_row(item.answered_by, escape(item.id), "yes" if item.blocking else "no", f"[{style}]{shown}[/]",
                      escape(item.answered_by_name or "-"))
    return table


def _open_items(run_id: str, review) -> None:
    open_items = sorted((i for i in review.items if i.answer is None), key=lambda i: i.answered_by)
    if not open_items:
        return
    _print(f"open items ({len(open_items)}), with their questions:")
    for item in open_items:
        _print(f"  [{item.answered_by}{', blocking' if item.blocking else ''}] {item.id}")
        _print(f"      {' '.join(item.question.split())}")
    _print(f"answer them at once: `forecast review answer {run_id} --template answers.csv`, fill it, then "
           f"`forecast review answer {run_id} --from answers.csv`")


@review_app.command()
def checklist(
    run_id: RunArg,
    out: Annotated[Path | None, typer.Option("--out", help="The HTML file [default: review_<RUN>.html].",
                                             show_default=False)] = None,
    log: LogOpt = None,
    reviews: ReviewsOpt = Path("ethics/reviews"),
    tracking_uri: UriOpt = None,
) -> None:
    """Write the review as one HTML page: every question, its evidence linked into the model card's
    sections and the run's artifacts, the answers so far, where the review stands."""
    from forecast.pipeline import write_checklist_page

    try:
        path = write_checklist_page(run_id, out or Path(f"review_{run_id}.html"), tracking_uri=tracking_uri,
                                    reviews_dir=reviews, log=open_log(log, tracking_uri))
    except ForecastError as error:
        fail(error)
    _print(f"wrote the review of run {run_id} to {path}")


# --- who may sign, and the policy in force --------------------------------------------------------

keyring_app = command_group(
    "keyring", "Who may sign reviews: each reviewer's name, roles and public key, declared by signed entries of the "
               "audit log. The first key signs its own entry (pin its id in the policy: "
               "review.signatures.keyring_root); every later change is signed by an ethics reviewer's key.")
review_app.add_typer(keyring_app, name="keyring")
SignerOpt = Annotated[Path, typer.Option("--key", help="The signer's private key (`forecast audit keygen`): the new "
                                         "member's own for the first key, else an ethics reviewer's.",
                                         show_default=False)]


@keyring_app.command("add")
def keyring_add(
    name: Annotated[str, typer.Argument(help="The reviewer's name, as they sign (--reviewer).", show_default=False)],
    role: Annotated[list[Role], typer.Option("--role", help="technical or ethics (repeat for both).",
                                             show_default=False)],
    public_key: Annotated[Path, typer.Option("--public-key", help="The reviewer's public key, <key_id>.pub "
                                             "(`forecast audit keygen` writes it).", show_default=False)],
    key: SignerOpt,
    log: LogOpt = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Declare a reviewer's key and roles in the keyring (a signed keyring.add entry)."""
    from forecast.ethics import add_member, keyring

    try:
        log = open_log(log, tracking_uri)
        first = keyring(log).root is None
        entry = add_member(log, name, [r.value for r in role], public_key, key=key)
    except ForecastError as error:
        fail(error)
    p = entry.payload
    _print(f"{p['name']} ({', '.join(p['roles'])}) added with key {p['key_id']} to the keyring of {log.location} "
           f"(entry {entry.seq}, signed by {entry.actor})")
    if first:
        _print(f"this is the keyring's first key: pin it in the policy (review.signatures.keyring_root: {p['key_id']}),"
               " then approve the policy: `forecast review approve-policy POLICY --by NAME --key KEY`")


@keyring_app.command("remove")
def keyring_remove(
    who: Annotated[str, typer.Argument(help="The key id, or the name of a member with one key.", show_default=False)],
    key: Annotated[Path, typer.Option("--key", help="An ethics reviewer's private key.", show_default=False)],
    log: LogOpt = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Take a key out of the keyring: its sign-offs, earlier ones included, stop counting."""
    from forecast.ethics import remove_member

    try:
        log = open_log(log, tracking_uri)
        entry = remove_member(log, who, key=key)
    except ForecastError as error:
        fail(error)
    _print(f"key {entry.payload['key_id']} ({entry.payload['name']}) removed from the keyring of {log.location} "
           f"(entry {entry.seq}, signed by {entry.actor})")


@keyring_app.command("list")
def keyring_list(
    log: LogOpt = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="The policy whose pinned root and approval to "
                                                "check [default: ethics/policy.yaml].", show_default=False)] = None,
    tracking_uri: UriOpt = None,
) -> None:
    """List the keyring's members, its root, the policy in force and any refused change. Exit 1 when a change was
    refused or the keyring is not the one the policy pins."""
    from forecast.ethics import keyring, policy_in_force
    from forecast.policy import load_policy

    try:
        rules = load_policy(policy)
        log = open_log(log, tracking_uri)
        ring = keyring(log, root=rules.review.signatures.keyring_root if rules.review else None)
    except ForecastError as error:
        fail(error)
    table = Table("name", "roles", "key id", "added (entry)", title=f"keyring of {log.location}")
    for m in ring.members.values():
        table.add_row(escape(m.name), ", ".join(m.roles), m.key_id + (" (root)" if m.key_id == ring.root else ""),
                      str(m.seq))
    console.out.print(table)
    _print(f"root: {ring.root or 'none (no keyring yet)'}; the policy pins {ring.pinned or 'none'}")
    _print(f"policy in force: {policy_in_force(rules, ring)[1]}")
    for seq, message in ring.problems:
        _print(f"  refused, entry {seq}: {message}")
    if ring.problems or ring.root_problem():
        raise typer.Exit(code=1)


@review_app.command("approve-policy")
def approve_policy_command(
    path: Annotated[Path | None, typer.Argument(help="The policy file [default: ethics/policy.yaml].",
                                                show_default=False)] = None,
    by: Annotated[str, typer.Option("--by", help="Your name, as the keyring has it (an ethics reviewer).",
                                    show_default=False)] = ...,
    key: Annotated[Path, typer.Option("--key", help="Your private key.", show_default=False)] = ...,
    log: LogOpt = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Put a policy in force: a policy.approve entry (its name and SHA-256) signed by an ethics reviewer. The release
    gate judges only under the latest approved policy; a changed policy takes effect once approved."""
    from forecast.ethics import approve_policy
    from forecast.policy import load_policy

    try:
        policy = load_policy(path)
        log = open_log(log, tracking_uri)
        entry = approve_policy(log, policy, by=by, key=key)
    except ForecastError as error:
        fail(error)
    _print(f"policy {entry.payload['policy']} (sha256 {entry.payload['sha256'][:12]}) approved by {entry.actor}: in "
           f"force from entry {entry.seq} of {log.location}")


@review_app.command("lower-sensitivity")
def lower_sensitivity(
    manifest: Annotated[Path, typer.Argument(help="The manifest.json of an ingest of the files (what they are, "
                                                  "the level assessed).", show_default=False)],
    to: Annotated[str, typer.Option("--to", help="The level granted: below the assessed one.",
                                    show_default=False)] = ...,
    reason: Annotated[str, typer.Option("--reason", help="Why these data may be treated at that level (signed).",
                                        show_default=False)] = ...,
    by: Annotated[str, typer.Option("--by", help="Your name, as the keyring has it (an ethics reviewer).",
                                    show_default=False)] = ...,
    key: Annotated[Path, typer.Option("--key", help="Your private key.", show_default=False)] = ...,
    log: LogOpt = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="The policy pinning the keyring [default: "
                                                "ethics/policy.yaml].", show_default=False)] = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Sign the decision that these files may be ingested at a lower sensitivity level.

    Appends a sensitivity.lower entry (the files' SHA-256, the level assessed, the level granted,
    the reason) signed by an ethics reviewer of the keyring; ingest then takes
    --sensitivity LEVEL --approval HASH for exactly these files.
    """
    import json

    from forecast.ethics import approve_lowering
    from forecast.policy import load_policy

    try:
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ForecastError(f"{manifest}: not a readable manifest.json ({error})") from None
        log = open_log(log, tracking_uri)
        entry = approve_lowering(log, data, to, reason, by=by, key=key, policy=load_policy(policy))
    except ForecastError as error:
        fail(error)
    _print(f"{entry.payload['assessed']} lowered to {entry.payload['level']} by {entry.actor} (entry {entry.seq} of "
           f"{log.location}); ingest the same files with: --sensitivity {entry.payload['level']} --sensitivity-reason "
           f"'{entry.payload['reason']}' --approval {entry.hash} --audit-log {log.location}")
