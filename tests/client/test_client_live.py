"""The SDK and the CLI against a live exchange (pytest-django ``live_server``)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from accounts.models import Member
from client.bulk import InputOptions, upload_file
from client.normalize import identifier_digest
from client.sdk import BeaconClient, NotFound, RateLimited, UploadResult, ValidationFailed

pytestmark = pytest.mark.django_db(transaction=True)


def md5_of(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - test data


def emails_csv(path: Path, count: int, *, start: int = 0) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "external_id"])
        for i in range(start, start + count):
            writer.writerow([f"Person.{i}+promo@Example.org", f"case-{i}"])
    return path


def test_cli_uploads_a_csv_of_raw_emails_hashed_locally(
    tmp_path: Path, member_a: Member, cli_for: Callable[..., Any], beacon_for: Any
) -> None:
    source = emails_csv(tmp_path / "emails.csv", 5)
    beacon = cli_for(member_a)
    result = beacon(
        "upload", str(source), "--type", "email", "--value-column", "email", "--hash-raw",
        "--category", "csea.sextortion", "--audience", "all", "--confidence", "80",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "5" in result.output
    mine = list(beacon_for(member_a).iter_signals())
    assert len(mine) == 5 and {s["confidence"] for s in mine} == {80}
    # What reached the exchange is the digest of the normalised address, never the address.
    digest = identifier_digest("email", "person.0+promo@example.org")
    matches = beacon_for(member_a).match([{"type": "email", "value": digest}])
    assert matches[0]["matches"], "the uploaded digest matches"
    assert {s["external_id"] for s in mine} == {f"case-{i}" for i in range(5)}


def test_an_interrupted_upload_resumes_without_duplicates(
    tmp_path: Path, member_a: Member, beacon_for: Callable[..., BeaconClient]
) -> None:
    source = emails_csv(tmp_path / "emails.csv", 25)
    state = tmp_path / "emails.state.json"
    options = InputOptions(
        type="email",
        value_column="email",
        hash_raw=True,
        defaults={"category": "csea.sextortion", "audience": "all"},
    )
    client = beacon_for(member_a)

    class Crash(Exception):
        pass

    def crash_after_second_answer(index: int, result: UploadResult | None) -> None:
        # The exchange has written chunk 1, but the run dies before recording it.
        if index == 1:
            raise Crash

    with pytest.raises(Crash):
        upload_file(
            client, source, options, state_path=state, chunk_size=10,
            after_chunk=crash_after_second_answer,
        )  # fmt: skip
    assert set(json.loads(state.read_text())["chunks"]) == {"0"}
    assert len(list(client.iter_signals())) == 20

    resumed = upload_file(client, source, options, state_path=state, chunk_size=10)
    assert resumed.chunks_skipped == 1 and resumed.chunks_sent == 2
    assert resumed.chunks_replayed == 1, "chunk 1 was answered from the exchange's record"
    assert (resumed.created, resumed.updated, resumed.rejected) == (25, 0, [])
    assert len(list(client.iter_signals())) == 25

    again = upload_file(client, source, options, state_path=state, chunk_size=10)
    assert again.chunks_sent == 0 and again.created == 25
    assert len(list(client.iter_signals())) == 25


def test_items_the_exchange_rejects_are_reported_and_the_rest_uploaded(
    tmp_path: Path, member_a: Member, cli_for: Callable[..., Any], beacon_for: Any
) -> None:
    source = tmp_path / "hashes.csv"
    source.write_text(
        "type,value,category\n"
        f"md5,{md5_of('one')},csea.csam\n"
        f"md5,{md5_of('two')},no.such.category\n"
        f"md5,{md5_of('three')},csea.csam\n"
        "md5,nothex,csea.csam\n",
        "utf-8",
    )
    rejects = tmp_path / "rejects.csv"
    result = cli_for(member_a)("upload", str(source), "--rejects", str(rejects))
    assert result.exit_code == 3, result.output
    rows = list(csv.DictReader(io.StringIO(rejects.read_text())))
    assert [int(r["line"]) for r in rows] == [3, 5]
    assert "category" in rows[0]["reason"] or "category" in rows[0]["field"]
    assert {s["value"] for s in beacon_for(member_a).iter_signals()} == {
        md5_of("one"),
        md5_of("three"),
    }


def test_cli_match_writes_matches_as_ndjson_and_csv(
    tmp_path: Path,
    member_a: Member,
    member_b: Member,
    pilot: Any,
    beacon_for: Any,
    cli_for: Callable[..., Any],
) -> None:
    shared = [f"Shared.{i}@gmail.com" for i in range(3)]
    beacon_for(member_a).upload(
        [
            {
                "type": "email",
                "value": identifier_digest("email", e),
                "category": "csea.sextortion",
                "audience": "group:pilot",
            }
            for e in shared
        ]
    )
    mine = tmp_path / "users.csv"
    mine.write_text(
        "user_id,email\n"
        "u1,shared.0@gmail.com\n"  # same mailbox, other spelling
        "u2,nobody@example.com\n"
        "u3,S.h.a.r.e.d.2+x@googlemail.com\n"  # a different domain: not the same digest
        "u4,Shared.2@GMAIL.com\n",
        "utf-8",
    )
    out = tmp_path / "matches.ndjson"
    beacon = cli_for(member_b)
    result = beacon(
        "match", str(mine), "--type", "email", "--value-column", "email", "--hash-raw",
        "--key-column", "user_id", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    found = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(f["line"], f["key"]) for f in found] == [(2, "u1"), (5, "u4")]
    assert found[0]["value"] == identifier_digest("email", "shared.0@gmail.com")
    assert found[0]["matches"][0]["signals"][0]["owner"] == "acme"
    signal_id = found[0]["matches"][0]["signals"][0]["id"]
    reacted = beacon("feedback", str(signal_id), "--reaction", "actioned",
                     "--action", "account_terminated")  # fmt: skip
    assert reacted.exit_code == 0, reacted.output
    owned = {s["id"]: s["feedback"] for s in beacon_for(member_a).iter_signals()}
    assert owned[signal_id] == {"actioned": 1}
    assert "shared.0" not in out.read_text().lower(), "no raw identifier in the output"

    out_csv = tmp_path / "matches.csv"
    result = beacon(
        "match", str(mine), "--type", "email", "--value-column", "email", "--hash-raw",
        "--key-column", "user_id", "--out", str(out_csv), "--out-format", "csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert [(r["key"], r["category"], r["owner"]) for r in rows] == [
        ("u1", "csea.sextortion", "acme"),
        ("u4", "csea.sextortion", "acme"),
    ]


def test_feed_follow_applies_a_retraction_as_a_tombstone(
    tmp_path: Path,
    member_a: Member,
    member_b: Member,
    pilot: Any,
    beacon_for: Any,
    cli_for: Callable[..., Any],
) -> None:
    owner = beacon_for(member_a)
    uploaded = owner.upload(
        [
            {
                "type": "md5",
                "value": md5_of(f"file-{i}"),
                "category": "csea.csam",
                "audience": "group:pilot",
            }
            for i in range(3)
        ]
    )
    out = tmp_path / "shared.ndjson"
    follow = cli_for(member_b)
    result = follow("feed", "follow", "--out", str(out), "--limit", "2")
    assert result.exit_code == 0, result.output
    held = {json.loads(line)["id"] for line in out.read_text().splitlines()}
    assert held == {s["id"] for s in uploaded.signals}
    cursor = json.loads((tmp_path / "shared.ndjson.cursor").read_text())
    assert cursor["cursor"] and cursor["seq"] > 0 and cursor["purpose"] == "detection"

    retracted = uploaded.signals[1]["id"]
    retract = cli_for(member_a)("signals", "retract", str(retracted), "--reason", "appeal upheld")
    assert retract.exit_code == 0, retract.output
    owner.upload(
        [
            {
                "type": "md5",
                "value": md5_of("file-new"),
                "category": "csea.csam",
                "audience": "group:pilot",
            }
        ]
    )
    result = follow("feed", "follow", "--out", str(out))
    assert result.exit_code == 0, result.output
    after = [json.loads(line) for line in out.read_text().splitlines()]
    assert retracted not in {s["id"] for s in after}
    assert len(after) == 3 and md5_of("file-new") in {s["value"] for s in after}
    assert "1 deletes" in result.output.replace("\n", " ")


def test_status_shows_the_member_and_the_token(
    member_a: Member, cli_for: Callable[..., Any]
) -> None:
    result = cli_for(member_a, scopes=["signals:read"], purposes=["detection"])("status")
    assert result.exit_code == 0, result.output
    assert "acme" in result.output and "signals:read" in result.output
    assert "database ok" in result.output


def test_errors_carry_the_servers_detail_and_request_id(
    member_a: Member, beacon_for: Callable[..., BeaconClient]
) -> None:
    client = beacon_for(member_a)
    with pytest.raises(ValidationFailed) as invalid:
        client.upload(
            [
                {"type": "md5", "value": md5_of("ok"), "category": "csea.csam"},
                {"type": "md5", "value": "zz", "category": "csea.csam"},
            ]
        )
    assert invalid.value.request_id and [e["index"] for e in invalid.value.errors] == [1]
    with pytest.raises(NotFound) as missing:
        client.get_signal(987654)
    assert missing.value.request_id and missing.value.status == 404


@override_settings(BEACON_THROTTLE_RATE="3/min")
def test_rate_limits_surface_as_rate_limited_with_retry_after(
    member_a: Member, beacon_for: Callable[..., BeaconClient]
) -> None:
    client = beacon_for(member_a)
    client.config = type(client.config)(
        url=client.config.url, token=client.config.token, max_retries=0
    )
    with pytest.raises(RateLimited) as limited:
        for _ in range(5):
            client.me()
    assert limited.value.retry_after is not None and limited.value.retry_after > 0
    assert limited.value.request_id
