"""Webhook verification (Standard Webhooks) and the local receiver, over real HTTP."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from client.cli import app
from client.webhooks import WebhookReceiver, WebhookVerificationError, verify_webhook

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
NEW_SECRET = "whsec_" + base64.b64encode(b"n" * 32).decode()
BODY = json.dumps(
    {"type": "signals.batch", "timestamp": "2026-11-23T12:00:00Z",
     "data": {"events": [{"seq": 3, "op": "upsert", "signal": {"id": 1}}]}}
)  # fmt: skip


def signed(
    body: str, *secrets: str, msg_id: str = "msg_1", at: float | None = None
) -> dict[str, str]:
    when = datetime.fromtimestamp(int(at if at is not None else time.time()), tz=UTC)
    signatures = " ".join(Webhook(s).sign(msg_id, when, body) for s in secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signatures,
        "content-type": "application/json",
    }


def test_a_signed_delivery_verifies_and_a_tampered_one_does_not() -> None:
    headers = signed(BODY, SECRET)
    assert verify_webhook(SECRET, headers, BODY)["data"]["events"][0]["seq"] == 3
    with pytest.raises(WebhookVerificationError):
        verify_webhook(SECRET, headers, BODY.replace('"seq": 3', '"seq": 4'))
    with pytest.raises(WebhookVerificationError):
        verify_webhook(NEW_SECRET, headers, BODY)
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify_webhook(SECRET, {"webhook-id": "x"}, BODY)


def test_during_rotation_either_secret_verifies() -> None:
    headers = signed(BODY, SECRET, NEW_SECRET)
    assert verify_webhook(NEW_SECRET, headers, BODY)
    assert verify_webhook([SECRET], headers, BODY)


def test_old_timestamps_are_refused_unless_checking_a_captured_request() -> None:
    headers = signed(BODY, SECRET, at=time.time() - 3600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_webhook(SECRET, headers, BODY)
    assert verify_webhook(SECRET, headers, BODY, tolerance=None)


def test_the_receiver_verifies_records_and_deduplicates_over_http(tmp_path: Path) -> None:
    log = tmp_path / "deliveries.ndjson"
    with WebhookReceiver(secrets=[SECRET], out=log) as receiver:
        ok = httpx.post(receiver.url, content=BODY, headers=signed(BODY, SECRET))
        retry = httpx.post(receiver.url, content=BODY, headers=signed(BODY, SECRET))
        forged = httpx.post(
            receiver.url, content=BODY, headers=signed(BODY, NEW_SECRET, msg_id="m2")
        )
    assert (ok.status_code, retry.status_code, forged.status_code) == (204, 204, 401)
    assert [e["seq"] for e in receiver.verified_events()] == [3]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(d["verified"], d["duplicate"]) for d in lines] == [
        (True, False),
        (True, True),
        (False, False),
    ]


def test_cli_verifies_a_saved_delivery(tmp_path: Path) -> None:
    saved = tmp_path / "delivery.json"
    saved.write_text(
        json.dumps({"headers": signed(BODY, SECRET, at=time.time() - 7200), "body": BODY})
    )
    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["webhook", "verify", "--secret", SECRET, "--delivery", str(saved)]
        ).exit_code
        == 3
    )
    result = runner.invoke(
        app, ["webhook", "verify", "--secret", SECRET, "--delivery", str(saved), "--any-time"]
    )
    assert result.exit_code == 0 and "verified" in result.output
    body = tmp_path / "body.json"
    body.write_text(BODY)
    headers = signed(BODY, SECRET)
    result = runner.invoke(
        app,
        ["webhook", "verify", "--secret", SECRET, "--body", str(body), "--id", headers["webhook-id"],
         "--timestamp", headers["webhook-timestamp"], "--signature", headers["webhook-signature"]],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
