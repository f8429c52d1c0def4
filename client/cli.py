"""The ``beacon`` command line: hash locally, upload, match, follow the feed, verify.

Run ``beacon --help`` or see ``docs/client.md``. Data goes to standard output (or ``--out``);
progress, summaries and errors go to standard error, so output can be piped.

Exit codes: 0 success; 1 an error (the message names the server's request id); 2 bad usage;
3 the command finished but some rows were rejected or a verification failed.
"""

from __future__ import annotations

import csv
import importlib
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from client import __version__
from client.bulk import (
    InputOptions,
    Rejection,
    count_rows,
    detect_format,
    read_items,
    upload_file,
    write_rejections,
)
from client.feedsync import FeedMirror, FollowStats, follow
from client.hashing import hash_file
from client.normalize import (
    NormalizationError,
    identifier_digest,
    normalize_account_id,
    normalize_email,
    normalize_keyword,
    normalize_phone,
    normalize_url,
    normalize_username,
)
from client.sdk import (
    MAX_BATCH_ITEMS,
    ApiError,
    BeaconClient,
    BeaconConfig,
    BeaconError,
    save_profile,
)
from client.webhooks import (
    DEFAULT_TOLERANCE,
    WebhookReceiver,
    WebhookVerificationError,
    verify_webhook,
)

err = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)

EXIT_PARTIAL = 3

app = typer.Typer(
    name="beacon",
    help="Beacon client: hash identifiers and media locally, upload and match signals, "
    "follow the feed, verify webhooks and audit exports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
hash_app = typer.Typer(
    help="Normalise and hash values locally (nothing is sent).", no_args_is_help=True
)
feed_app = typer.Typer(help="Pull the feed of signals shared with you.", no_args_is_help=True)
webhook_app = typer.Typer(help="Verify and receive webhook deliveries.", no_args_is_help=True)
audit_app = typer.Typer(help="Export and verify the audit log.", no_args_is_help=True)
profile_app = typer.Typer(help="Saved exchange URLs and tokens.", no_args_is_help=True)
app.add_typer(hash_app, name="hash")
app.add_typer(feed_app, name="feed")
app.add_typer(webhook_app, name="webhook")
app.add_typer(audit_app, name="audit")
app.add_typer(profile_app, name="profile")


@dataclass
class Connection:
    url: str | None
    token: str | None
    profile: str | None

    def client(self) -> BeaconClient:
        def retrying(attempt: int, delay: float, reason: str) -> None:
            err.print(f"[yellow]{reason}; retry {attempt} in {delay:.1f} s[/yellow]")

        return BeaconClient(
            BeaconConfig.resolve(url=self.url, token=self.token, profile=self.profile),
            on_retry=retrying,
        )


def _connection(ctx: typer.Context) -> Connection:
    obj = ctx.find_root().obj
    assert isinstance(obj, Connection)
    return obj


def _version(value: bool) -> None:
    if value:
        out.print(f"beacon {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    url: Annotated[
        str | None, typer.Option(help="Exchange URL (else BEACON_URL, else the profile).")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="API token bcn_… (else BEACON_TOKEN, else the profile).")
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="Profile in ~/.config/beacon/config.toml (else BEACON_PROFILE)."),
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    ctx.obj = Connection(url=url, token=token, profile=profile)


# -- hash -----------------------------------------------------------------------------------

ShowNormalised = Annotated[
    bool, typer.Option("--normalised", help="Also print the normalised value (tab-separated).")
]


def _print_digests(type_: str, values: list[str], show: bool, **kwargs: Any) -> None:
    normalisers = {
        "email": lambda v: normalize_email(v),
        "phone": lambda v: normalize_phone(v, default_region=kwargs["region"] or ""),
        "username": lambda v: normalize_username(v, platform=kwargs["platform"] or ""),
        "account_id": lambda v: normalize_account_id(v, platform=kwargs["platform"] or ""),
    }
    failed = False
    for value in values:
        try:
            digest = identifier_digest(type_, value, **kwargs)
        except NormalizationError as exc:
            err.print(f"[red]rejected {escape(repr(value))}: {escape(str(exc))}[/red]")
            failed = True
            continue
        out.print(f"{digest}\t{normalisers[type_](value)}" if show else digest)
    if failed:
        raise typer.Exit(EXIT_PARTIAL)


@hash_app.command("email")
def hash_email(
    values: Annotated[list[str], typer.Argument(help="Email addresses.")],
    normalised: ShowNormalised = False,
) -> None:
    """SHA-256 of normalised emails (the value to upload or match as type email)."""
    _print_digests("email", values, normalised)


@hash_app.command("phone")
def hash_phone(
    values: Annotated[list[str], typer.Argument(help="Phone numbers.")],
    region: Annotated[
        str,
        typer.Option(help="Default region (ISO 3166 alpha-2, e.g. GB) for numbers without +."),
    ],
    normalised: ShowNormalised = False,
) -> None:
    """SHA-256 of E.164 phone numbers."""
    _print_digests("phone", values, normalised, region=region)


@hash_app.command("username")
def hash_username(
    values: Annotated[list[str], typer.Argument(help="Usernames (a leading @ is dropped).")],
    platform: Annotated[str, typer.Option(help="The platform, e.g. instagram.")],
    normalised: ShowNormalised = False,
) -> None:
    """SHA-256 of platform:username."""
    _print_digests("username", values, normalised, platform=platform)


@hash_app.command("account-id")
def hash_account_id(
    values: Annotated[list[str], typer.Argument(help="Account ids.")],
    platform: Annotated[str, typer.Option(help="The platform, e.g. facebook.")],
    normalised: ShowNormalised = False,
) -> None:
    """SHA-256 of platform:id."""
    _print_digests("account_id", values, normalised, platform=platform)


@hash_app.command("keyword")
def hash_keyword(texts: Annotated[list[str], typer.Argument(help="Keywords or phrases.")]) -> None:
    """The normalised keyword (keywords are shared as text, not hashed)."""
    for text in texts:
        try:
            out.print(normalize_keyword(text))
        except NormalizationError as exc:
            err.print(f"[red]rejected {escape(repr(text))}: {escape(str(exc))}[/red]")
            raise typer.Exit(EXIT_PARTIAL) from None


@hash_app.command("url")
def hash_url(urls: Annotated[list[str], typer.Argument(help="URLs.")]) -> None:
    """The normalised URL (URLs are shared normalised, not hashed)."""
    for url in urls:
        try:
            out.print(normalize_url(url))
        except NormalizationError as exc:
            err.print(f"[red]rejected {escape(repr(url))}: {escape(str(exc))}[/red]")
            raise typer.Exit(EXIT_PARTIAL) from None


def _walk(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


@hash_app.command("file")
def hash_files(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (walked).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file.")] = False,
    pdq: Annotated[bool, typer.Option(help="Compute PDQ for images.")] = True,
) -> None:
    """MD5, SHA-256, PDQ with its quality (images) and vPDQ (videos) of each file."""
    missing = [p for p in paths if not p.exists()]
    if missing:
        err.print(f"no such file: {', '.join(map(str, missing))}", style="red", markup=False)
        raise typer.Exit(2)
    for path in _walk(paths):
        hashes = hash_file(path, pdq=pdq)
        if as_json:
            out.print(json.dumps(hashes.as_dict()), markup=False)
            continue
        out.print(str(path), markup=False)
        out.print(f"  md5     {hashes.md5}")
        out.print(f"  sha256  {hashes.sha256}")
        if hashes.pdq:
            out.print(f"  pdq     {hashes.pdq}  quality {hashes.pdq_quality}")
        elif hashes.vpdq is not None:
            out.print(f"  video_md5 {hashes.md5}")
            out.print(f"  vpdq    {len(hashes.vpdq)} frames (--json for the frames)")
        elif pdq:
            out.print(f"  pdq     -  ({hashes.pdq_error})", markup=False)


# -- shared input options -------------------------------------------------------------------

FormatOpt = Annotated[
    str, typer.Option("--format", help="Input format: csv, ndjson or auto (by extension).")
]
TypeOpt = Annotated[
    str | None, typer.Option("--type", help="Signal type for rows without a type column.")
]
ValueColumnOpt = Annotated[str, typer.Option(help="The column (or NDJSON key) holding the value.")]
HashRawOpt = Annotated[
    bool,
    typer.Option(
        "--hash-raw",
        help="Identifier values are raw (emails, phones…): normalise and hash them locally.",
    ),
]
RegionOpt = Annotated[str | None, typer.Option(help="Default phone region (else a region column).")]
PlatformOpt = Annotated[
    str | None, typer.Option(help="Platform for usernames/account ids (else a platform column).")
]


def _input_options(
    fmt: str,
    type_: str | None,
    value_column: str,
    hash_raw: bool,
    region: str | None,
    platform: str | None,
    defaults: dict[str, Any] | None = None,
    keep_columns: tuple[str, ...] = (),
) -> InputOptions:
    return InputOptions(
        format=fmt,
        type=type_,
        value_column=value_column,
        hash_raw=hash_raw,
        region=region,
        platform=platform,
        defaults=defaults or {},
        keep_columns=keep_columns,
    )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def _print_rejections(rejections: list[Rejection], limit: int = 20) -> None:
    if not rejections:
        return
    table = Table("line", "field", "reason", title=f"{len(rejections)} rejected", box=None)
    for rejection in rejections[:limit]:
        table.add_row(str(rejection.line), escape(rejection.field or ""), escape(rejection.reason))
    err.print(table)
    if len(rejections) > limit:
        err.print(f"… and {len(rejections) - limit} more (use --rejects FILE for all)")


# -- upload ---------------------------------------------------------------------------------


@app.command()
def upload(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or NDJSON.")],
    category: Annotated[str | None, typer.Option(help="Category for rows without one.")] = None,
    audience: Annotated[
        str | None, typer.Option(help="all, group:<slug> or members:<a>,<b> (default all).")
    ] = None,
    confidence: Annotated[int | None, typer.Option(min=0, max=100)] = None,
    severity: Annotated[str | None, typer.Option(help="low, medium, high or critical.")] = None,
    tlp: Annotated[str | None, typer.Option(help="clear, green, amber, amber+strict, red.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag for every row (repeatable).")] = None,
    expires_at: Annotated[str | None, typer.Option(help="ISO 8601 expiry for every row.")] = None,
    fmt: FormatOpt = "auto",
    type_: TypeOpt = None,
    value_column: ValueColumnOpt = "value",
    hash_raw: HashRawOpt = False,
    region: RegionOpt = None,
    platform: PlatformOpt = None,
    chunk_size: Annotated[int, typer.Option(min=1, max=MAX_BATCH_ITEMS)] = MAX_BATCH_ITEMS,
    state: Annotated[
        Path | None, typer.Option(help="Resume state file (default FILE.upload-state.json).")
    ] = None,
    restart: Annotated[
        bool, typer.Option(help="Ignore an existing state file and start over.")
    ] = False,
    rejects: Annotated[
        Path | None, typer.Option(help="Write every rejected row (line, field, reason) as CSV.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read, hash and check locally; send nothing.")
    ] = False,
) -> None:
    """Upload signals from a CSV/NDJSON file in chunks, resumably."""
    defaults = {
        "category": category,
        "audience": audience,
        "confidence": confidence,
        "severity": severity,
        "tlp": tlp,
        "tags": list(tag or []),
        "expires_at": expires_at,
    }
    options = _input_options(fmt, type_, value_column, hash_raw, region, platform, defaults)
    try:
        total = count_rows(file, detect_format(file, fmt))
    except ValueError as exc:
        err.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from None
    if dry_run:
        rows = list(read_items(file, options))
        bad = [r.rejection for r in rows if r.rejection is not None]
        err.print(f"{len(rows) - len(bad)} rows ready, {len(bad)} rejected; nothing sent")
        _print_rejections(bad)
        if rejects:
            write_rejections(rejects, bad)
        raise typer.Exit(EXIT_PARTIAL if bad else 0)
    state_path = state or file.with_name(file.name + ".upload-state.json")
    with _connection(ctx).client() as client, _progress() as progress:
        task = progress.add_task(f"uploading {file.name}", total=total)
        summary = upload_file(
            client,
            file,
            options,
            state_path=state_path,
            chunk_size=chunk_size,
            restart=restart,
            on_rows=lambda n: progress.advance(task, n),
        )
    table = Table("created", "updated", "rejected", "chunks sent", "chunks resumed", box=None)
    table.add_row(
        str(summary.created),
        str(summary.updated),
        str(len(summary.rejected)),
        str(summary.chunks_sent),
        str(summary.chunks_skipped),
    )
    err.print(table)
    _print_rejections(summary.rejected)
    if rejects:
        write_rejections(rejects, summary.rejected)
    if summary.rejected:
        raise typer.Exit(EXIT_PARTIAL)


# -- match ----------------------------------------------------------------------------------

_MATCH_CSV_COLUMNS = [
    "line",
    "key",
    "type",
    "value",
    "indicator_id",
    "distance",
    "signal_id",
    "owner",
    "category",
    "confidence",
    "severity",
    "tlp",
    "created_at",
]


@app.command()
def match(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or NDJSON.")],
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write matches here (default: stdout).")
    ] = None,
    out_format: Annotated[str, typer.Option(help="ndjson or csv.")] = "ndjson",
    purpose: Annotated[str, typer.Option(help="detection or investigation.")] = "detection",
    max_distance: Annotated[
        int | None, typer.Option(help="PDQ Hamming radius for rows without one (≤ 52).")
    ] = None,
    key_column: Annotated[
        str | None,
        typer.Option(help="A column of your own (e.g. a user id) to copy into each match."),
    ] = None,
    fmt: FormatOpt = "auto",
    type_: TypeOpt = None,
    value_column: ValueColumnOpt = "value",
    hash_raw: HashRawOpt = False,
    region: RegionOpt = None,
    platform: PlatformOpt = None,
) -> None:
    """Match a file of values against every signal you may see; write the matches."""
    if out_format not in ("ndjson", "csv"):
        err.print("[red]--out-format is ndjson or csv[/red]")
        raise typer.Exit(2)
    defaults = {"max_distance": max_distance}
    keep = (key_column,) if key_column else ()
    options = _input_options(fmt, type_, value_column, hash_raw, region, platform, defaults, keep)
    rows = list(read_items(file, options))
    rejected = [r.rejection for r in rows if r.rejection is not None]
    good = [r for r in rows if r.item is not None]
    items = [
        {k: v for k, v in (r.item or {}).items() if k in ("type", "value", "max_distance")}
        for r in good
    ]
    with _connection(ctx).client() as client:
        results = client.match(items, purpose=purpose)
    matched = [r for r in results if r.get("matches")]
    handle = out_path.open("w", encoding="utf-8", newline="") if out_path else sys.stdout
    try:
        writer = csv.writer(handle) if out_format == "csv" else None
        if writer is not None:
            writer.writerow(_MATCH_CSV_COLUMNS)
        for result in matched:
            row = good[result["index"]]
            item = items[result["index"]]
            key = row.extra.get(key_column) if key_column else None
            if writer is None:
                record = {
                    "line": row.line,
                    "type": item["type"],
                    "value": item["value"],
                    "matches": result["matches"],
                }
                if key_column:
                    record["key"] = key
                handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
                continue
            for entry in result["matches"]:
                for sig in entry.get("signals", []):
                    writer.writerow(
                        [
                            row.line,
                            key or "",
                            item["type"],
                            item["value"],
                            entry.get("indicator_id"),
                            entry.get("distance", ""),
                            sig.get("id"),
                            sig.get("owner"),
                            sig.get("category"),
                            sig.get("confidence"),
                            sig.get("severity"),
                            sig.get("tlp"),
                            sig.get("created_at"),
                        ]
                    )
    finally:
        if out_path:
            handle.close()
    err.print(
        f"{len(items)} values matched, {len(matched)} with matches"
        + (f" → {out_path}" if out_path else "")
    )
    _print_rejections(rejected)
    if rejected:
        raise typer.Exit(EXIT_PARTIAL)


@app.command("match-text")
def match_text(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="The text, or - to read standard input.")],
    purpose: Annotated[str, typer.Option()] = "detection",
    lang: Annotated[str | None, typer.Option(help="BCP-47 language of the text.")] = None,
) -> None:
    """The shared keywords that occur in a text, with character spans (JSON)."""
    body = sys.stdin.read() if text == "-" else text
    with _connection(ctx).client() as client:
        result = client.match_text(body, purpose=purpose, lang=lang)
    out.print(json.dumps(result, indent=2, ensure_ascii=False, default=str), markup=False)


# -- feed -----------------------------------------------------------------------------------


@feed_app.command("follow")
def feed_follow(
    ctx: typer.Context,
    out_path: Annotated[
        Path, typer.Option("--out", help="NDJSON file of the signals currently shared with you.")
    ],
    purpose: Annotated[str, typer.Option(help="detection or investigation.")] = "detection",
    cursor_file: Annotated[
        Path | None, typer.Option(help="Where the cursor is saved (default OUT.cursor).")
    ] = None,
    forever: Annotated[
        bool, typer.Option("--forever", help="Keep polling after catching up (Ctrl-C stops).")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls with --forever.")] = 30.0,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Events per page.")] = 1000,
    events: Annotated[
        Path | None, typer.Option(help="Also append every raw event to this NDJSON file.")
    ] = None,
) -> None:
    """Bring OUT up to date with the feed: upserts add or replace, tombstones remove."""
    mirror = FeedMirror.open(out_path, cursor_file)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def report(stats: FollowStats, current: FeedMirror) -> None:
        err.print(
            f"page {stats.pages}: +{stats.upserts} upserts, -{stats.deletes} deletes, "
            f"{len(current.signals)} signals, seq {current.last_seq}"
        )

    try:
        with _connection(ctx).client() as client:
            stats = follow(
                client,
                mirror,
                purpose=purpose,
                limit=limit,
                forever=forever,
                interval=interval,
                stop=stop,
                on_page=report,
                events_log=events,
            )
    finally:
        signal.signal(signal.SIGINT, previous)
    err.print(
        f"{stats.upserts} upserts and {stats.deletes} deletes applied; "
        f"{len(mirror.signals)} signals in {out_path} (cursor in {mirror.cursor_path})"
    )


# -- signals and feedback -------------------------------------------------------------------

signals_app = typer.Typer(help="Your own signals: list and retract.", no_args_is_help=True)
app.add_typer(signals_app, name="signals")


@signals_app.command("list")
def signals_list(
    ctx: typer.Context,
    type_: Annotated[str | None, typer.Option("--type", help="Only this type.")] = None,
    category: Annotated[str | None, typer.Option(help="Only this category.")] = None,
    status_: Annotated[
        str | None, typer.Option("--status", help="active, retracted or expired.")
    ] = None,
) -> None:
    """Every signal you own, one JSON object per line."""
    with _connection(ctx).client() as client:
        for item in client.iter_signals(type=type_, category=category, status=status_):
            out.print(json.dumps(item, ensure_ascii=False, default=str), markup=False)


@signals_app.command("retract")
def signals_retract(
    ctx: typer.Context,
    signal_ids: Annotated[list[int], typer.Argument(help="Ids of your signals.")],
    reason: Annotated[str, typer.Option(help="Why (recorded and shown to no one else).")],
) -> None:
    """Retract your signals; every member that received them gets a tombstone."""
    with _connection(ctx).client() as client:
        for signal_id in signal_ids:
            result = client.retract(signal_id, reason=reason)
            err.print(f"{signal_id}: {result.get('status', 'retracted')}")


@app.command()
def feedback(
    ctx: typer.Context,
    signal_id: Annotated[int, typer.Argument(help="A signal you received.")],
    reaction: Annotated[
        str,
        typer.Option(help="seen, actioned, not_actioned, false_positive, disputed or helpful."),
    ],
    action: Annotated[
        list[str] | None,
        typer.Option(help="With actioned: what you did, e.g. account_terminated (repeatable)."),
    ] = None,
    note: Annotated[
        str | None, typer.Option(help="Note for the owner (never personal data).")
    ] = None,
    purpose: Annotated[str | None, typer.Option(help="detection or investigation.")] = None,
) -> None:
    """Tell a signal's owner what you did with it."""
    with _connection(ctx).client() as client:
        result = client.feedback(
            signal_id, reaction=reaction, note=note, action_taken=action, purpose=purpose
        )
    verb = "recorded" if result.get("created", True) else "updated"
    err.print(f"{signal_id}: {reaction} {verb}")


# -- webhooks -------------------------------------------------------------------------------


def _read_deliveries(path: Path) -> list[tuple[dict[str, str], str]]:
    """One saved delivery (a JSON object), or every line of a receiver's NDJSON log."""
    text = path.read_text("utf-8").strip()
    try:
        records = [json.loads(text)]
    except ValueError:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [({str(k): str(v) for k, v in r["headers"].items()}, str(r["body"])) for r in records]


@webhook_app.command("verify")
def webhook_verify(
    secret: Annotated[
        list[str],
        typer.Option(help="The subscription's whsec_ secret (repeat for old and new)."),
    ],
    delivery: Annotated[
        Path | None,
        typer.Option(help="A JSON file with headers and body (as `beacon webhook listen` saves)."),
    ] = None,
    body: Annotated[Path | None, typer.Option(help="The raw request body (- for stdin).")] = None,
    webhook_id: Annotated[str | None, typer.Option("--id", help="webhook-id header.")] = None,
    timestamp: Annotated[str | None, typer.Option(help="webhook-timestamp header.")] = None,
    signature: Annotated[str | None, typer.Option(help="webhook-signature header.")] = None,
    tolerance: Annotated[
        int, typer.Option(help="Accept timestamps this many seconds from now.")
    ] = DEFAULT_TOLERANCE,
    any_time: Annotated[
        bool, typer.Option("--any-time", help="Skip the timestamp check (a captured request).")
    ] = False,
) -> None:
    """Check a received request's Standard Webhooks signature."""
    if delivery is not None:
        requests = _read_deliveries(delivery)
    elif body is not None and webhook_id and timestamp and signature:
        text = sys.stdin.read() if str(body) == "-" else body.read_text("utf-8")
        headers = {
            "webhook-id": webhook_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": signature,
        }
        requests = [(headers, text)]
    else:
        err.print("[red]pass --delivery FILE, or --body with --id, --timestamp, --signature[/red]")
        raise typer.Exit(2)
    failed = 0
    for headers, text in requests:
        name = escape(headers.get("webhook-id", "?"))
        try:
            payload = verify_webhook(
                secret, headers, text, tolerance=None if any_time else tolerance
            )
        except (WebhookVerificationError, ValueError) as exc:
            err.print(f"[red]{name}: NOT verified: {escape(str(exc))}[/red]")
            failed += 1
            continue
        data = payload.get("data") if isinstance(payload, dict) else None
        events = data.get("events", []) if isinstance(data, dict) else []
        err.print(f"[green]{name}: verified[/green], {len(events)} events")
    if failed:
        raise typer.Exit(EXIT_PARTIAL)


@webhook_app.command("listen")
def webhook_listen(
    secret: Annotated[list[str], typer.Option(help="whsec_ secret(s) to verify with.")],
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8787,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    out_path: Annotated[
        Path, typer.Option("--out", help="Append deliveries (headers, body, verdict) as NDJSON.")
    ] = Path("deliveries.ndjson"),
) -> None:
    """A tiny local receiver for testing subscriptions: verifies, records and answers 204/401."""

    def show(d: Any) -> None:
        verdict = "[green]verified[/green]" if d.verified else f"[red]REJECTED {d.error}[/red]"
        extra = " (retry of a delivery already received)" if d.duplicate else ""
        err.print(f"{d.webhook_id}: {verdict}, {len(d.events)} events{extra}")

    receiver = WebhookReceiver(secrets=secret, host=host, port=port, out=out_path, on_delivery=show)
    receiver.start()
    err.print(f"listening on {receiver.url} — deliveries go to {out_path}; Ctrl-C stops")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        receiver.stop()


# -- audit ----------------------------------------------------------------------------------


@audit_app.command("export")
def audit_export(
    ctx: typer.Context,
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the export.")],
    since: Annotated[str | None, typer.Option(help="ISO 8601 start (inclusive).")] = None,
    until: Annotated[str | None, typer.Option(help="ISO 8601 end (exclusive).")] = None,
    member: Annotated[str | None, typer.Option(help="Only this member (auditors).")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action code.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl, csv or json.")] = "jsonl",
    save_key: Annotated[
        bool, typer.Option(help="Also save the exchange's public key as OUT.pub.")
    ] = True,
) -> None:
    """Stream the audit log (the events you may see) to a file, for offline verification.

    The export carries its signed checkpoints and a seal signed by the exchange.
    """
    with _connection(ctx).client() as client:
        with out_path.open("wb") as handle:
            written = client.audit_export(
                handle, since=since, until=until, member=member, action=action, format=fmt
            )
        err.print(f"{written} bytes → {out_path}", markup=False)
        if save_key:
            key = client.audit_public_key()
            key_path = out_path.with_name(out_path.name + ".pub")
            pem = str(key.get("public_key") if isinstance(key, dict) else key)
            # Keys the exchange used before a rotation, so older checkpoints verify too.
            previous = key.get("previous", []) if isinstance(key, dict) else []
            pem += "".join(str(p.get("public_key", "")) for p in previous if isinstance(p, dict))
            key_path.write_text(pem, "utf-8")
            key_id = key.get("key_id", "") if isinstance(key, dict) else ""
            err.print(f"public key {key_id} → {key_path}", markup=False)
            err.print(
                "Check the key against one published by the exchange's operator: a key from "
                "the same download proves integrity, not origin."
            )


@audit_app.command("verify")
def audit_verify(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="An audit export.")],
    public_key: Annotated[
        list[Path],
        typer.Option(exists=True, help="The exchange's Ed25519 public key, PEM (repeatable)."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Verify an audit export offline: chain, checkpoints and seal; says where it breaks."""
    try:
        auditverify = importlib.import_module("client.auditverify")
    except ImportError:
        err.print("this client has no offline audit verifier (client.auditverify)", style="red")
        raise typer.Exit(1) from None
    result = auditverify.verify_export(file, public_key=list(public_key))
    if as_json:
        out.print(json.dumps(result.as_dict(), indent=2, default=str), markup=False)
    if result.ok:
        err.print(result.summary(), style="green", markup=False)
        for note in getattr(result, "notes", ()):
            err.print(f"note: {note}", markup=False)
        return
    err.print(result.summary(), style="red", markup=False)
    raise typer.Exit(EXIT_PARTIAL)


# -- status and profiles --------------------------------------------------------------------


@app.command()
def status(ctx: typer.Context) -> None:
    """Is the exchange up, who am I, and what may this token do."""
    connection = _connection(ctx)
    with connection.client() as client:
        started = time.perf_counter()
        health = client.health()
        elapsed = (time.perf_counter() - started) * 1000
        me = client.me()
    table = Table(box=None, show_header=False)
    table.add_row("exchange", client.config.api_base)
    table.add_row(
        "health",
        ", ".join(f"{k} {v}" for k, v in health.items() if isinstance(v, str))
        + f" ({elapsed:.0f} ms)",
    )
    member = me.get("member")
    if isinstance(member, dict):
        table.add_row("member", f"{member.get('slug')} ({member.get('status', '')})")
    elif member:
        table.add_row("member", str(member))
    token = me.get("token") if isinstance(me.get("token"), dict) else me
    for key in ("prefix", "scopes", "purposes", "expires_at"):
        value = token.get(key) if isinstance(token, dict) else None
        if value is not None:
            table.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    table.add_row("client", f"beacon {__version__}")
    out.print(table)
    if health.get("status") != "ok":
        raise typer.Exit(1)


@profile_app.command("add")
def profile_add(
    name: Annotated[str, typer.Argument(help="Profile name, e.g. default or staging.")],
    url: Annotated[str, typer.Option(help="Exchange URL.")],
    token: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="API token bcn_… (prompted).")
    ],
) -> None:
    """Save a URL and token (file readable by you only)."""
    path = save_profile(name=name, url=url, token=token)
    err.print(f"saved profile {name!r} in {path}")


@profile_app.command("list")
def profile_list() -> None:
    """The saved profiles (tokens shown by prefix only)."""
    import tomllib

    path = BeaconConfig.profile_path()
    if not path.is_file():
        err.print(f"no profiles yet ({path})")
        return
    for name, values in tomllib.loads(path.read_text("utf-8")).get("profiles", {}).items():
        out.print(f"{name}\t{values.get('url')}\t{str(values.get('token', ''))[:12]}…")


def main() -> None:
    """Console-script entry point: errors become one clear line and a non-zero exit."""
    try:
        app()
    except ApiError as exc:
        err.print(f"[red]error: {escape(str(exc))}[/red]")
        for item in exc.errors[:20]:
            err.print(
                f"  item {item.get('index')}: {item.get('field')}: {item.get('detail')}",
                markup=False,
            )
        sys.exit(1)
    except (BeaconError, ValueError) as exc:
        err.print(f"[red]error: {escape(str(exc))}[/red]")
        sys.exit(1)
