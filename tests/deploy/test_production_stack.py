"""The production path end to end: gunicorn, a Celery worker and beat started by the
deploy/bin scripts (as deploy/compose.yml runs them) on PostgreSQL and a Redis of the test's
own, under production settings (DEBUG off, secrets from the environment), driven over HTTP."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from django.db import connection
from standardwebhooks import Webhook

from benchmarks.common import throwaway_signing_key
from tests.delivery.receiver import Receiver
from tests.delivery.stack import RedisServer, database_url, free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "deploy" / "bin"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("DATABASE_URL", "").split(":")[0] not in {"postgres", "postgresql"},
        reason="the production stack runs on PostgreSQL and Redis",
    ),
    pytest.mark.django_db(transaction=True),
]


class ProductionStack:
    """The processes of deploy/compose.yml, each started by its deploy/bin script."""

    def __init__(self, tmp: Path, redis_url: str) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.metrics_token = uuid.uuid4().hex
        (tmp / "var").mkdir()
        keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV"}
        self.env = {k: v for k, v in os.environ.items() if k in keep}
        self.env.update(
            {
                "PYTHON": sys.executable,
                "PYTHONUNBUFFERED": "1",
                "DEBUG": "0",
                "SECRET_KEY": uuid.uuid4().hex * 2,
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "DATABASE_URL": database_url(),
                "DATABASE_CONN_MAX_AGE": "0",
                "REDIS_URL": redis_url,
                "BEACON_VAR_DIR": str(tmp / "var"),
                "BEACON_IDENTIFIER_PEPPERS": "v1:" + uuid.uuid4().hex,
                "BEACON_AUDIT_SIGNING_KEY": throwaway_signing_key(),
                "BEACON_WEBHOOK_SECRET_KEY": uuid.uuid4().hex * 2,
                "BEACON_METRICS_TOKEN": self.metrics_token,
                "BEACON_BIND": f"127.0.0.1:{self.port}",
                "WEB_CONCURRENCY": "2",
                "BEACON_WEB_THREADS": "2",
                "BEACON_WORKER_CONCURRENCY": "2",
                "BEACON_WORKER_NAME": f"stack-{os.getpid()}",
                "BEACON_DELIVERY_SWEEP_SECONDS": "1",
                "BEACON_OUTBOX_GRACE_SECONDS": "1",
                "BEACON_WEBHOOK_RETRY_SCHEDULE": "0,0.5,1,1,1",
                "LOG_LEVEL": "INFO",
            }
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.base = f"http://127.0.0.1:{self.port}"

    def run_once(self, script: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / script)],
            env={**self.env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
        )

    def start(self, name: str, **extra: str) -> None:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            [str(BIN / name)],
            env={**self.env, **extra},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_log(self, name: str, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log(name):
                return
            assert self.procs[name].poll() is None, f"{name} exited:\n{self.log(name)[-3000:]}"
            time.sleep(0.2)
        raise AssertionError(f"{name} never logged {text!r}:\n{self.log(name)[-3000:]}")

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            assert self.procs["web"].poll() is None, self.log("web")[-3000:]
            try:
                response = httpx.get(f"{self.base}/api/v1/health", timeout=2)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.3)
        raise AssertionError(f"web never became healthy: {last}\n{self.log('web')[-3000:]}")

    def stop(self) -> None:
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs.clear()


@pytest.fixture
def stack(tmp_path):
    redis = RedisServer(tmp_path)
    redis.start()
    # The processes need the test database to themselves between requests.
    connection.close()
    running = ProductionStack(tmp_path, redis.url)
    try:
        yield running
    finally:
        running.stop()
        redis.stop()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_upload_match_webhook_feedback_and_audit_over_the_production_stack(
    stack, member_a, member_b, auditor, pilot, issue_token
):
    token_a = issue_token(member_a)
    token_b = issue_token(member_b)
    token_auditor = issue_token(auditor, scopes=["audit:read"])

    migrated = stack.run_once("migrate")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr

    receiver = Receiver().start()
    try:
        # The receiver is on loopback, which production refuses (the SSRF guard).
        stack.start("web", BEACON_ALLOW_PRIVATE_WEBHOOKS="1")
        stack.start("worker", BEACON_ALLOW_PRIVATE_WEBHOOKS="1")
        stack.start("beat")
        stack.wait_healthy()
        stack.wait_log("worker", "ready.")
        stack.wait_log("beat", "Sending due task")

        def api(token: str) -> httpx.Client:
            return httpx.Client(
                base_url=f"{stack.base}/api/v1",
                # As the TLS-terminating proxy in front of web would.
                headers={"Authorization": f"Bearer {token}", "X-Forwarded-Proto": "https"},
                timeout=30,
            )

        with api(token_a) as a, api(token_b) as b, api(token_auditor) as audit_client:
            created = b.post("/subscriptions", json={"url": receiver.url})
            assert created.status_code == 201, created.text
            secret = created.json()["secret"]

            values = [_digest(f"stack-{i}") for i in range(3)]
            upload = a.post(
                "/signals",
                json={
                    "items": [
                        {
                            "type": "sha256",
                            "value": v,
                            "category": "csea.sextortion",
                            "audience": "all",
                        }
                        for v in values
                    ]
                },
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            assert upload.status_code == 201, upload.text
            signal_ids = [s["id"] for s in upload.json()["signals"]]
            assert upload.json()["created"] == 3

            match = b.post(
                "/match",
                json={
                    "purpose": "detection",
                    "items": [
                        {"type": "sha256", "value": values[0]},
                        {"type": "sha256", "value": _digest("nope")},
                    ],
                },
            )
            assert match.status_code == 200, match.text
            results = match.json()["results"]
            assert [s["id"] for s in results[0]["matches"][0]["signals"]] == [signal_ids[0]]
            assert results[1]["matches"] == []

            # The worker fans out and delivers the signed webhook.
            receiver.wait_for(
                lambda: (
                    {e["signal"]["id"] for _, e in receiver.accepted_events() if "signal" in e}
                    >= set(signal_ids)
                ),
                timeout=60,
            )
            for r in receiver.accepted():
                Webhook(secret).verify(r.body, r.headers)

            feedback = b.post(f"/signals/{signal_ids[0]}/feedback", json={"reaction": "seen"})
            assert feedback.status_code in (200, 201), feedback.text

            # Beat drives the sweeper through the worker.
            stack.wait_log("worker", "exchange.delivery.sweep")

            checkpoints = audit_client.get("/audit/checkpoints")
            assert checkpoints.status_code == 200, checkpoints.text
            public_key = audit_client.get("/audit/public-key")
            assert public_key.status_code == 200, public_key.text

            # Every gunicorn worker adds to the same counters (Redis); gauges come from the DB.
            scraped = httpx.get(
                f"{stack.base}/metrics",
                headers={"Authorization": f"Bearer {stack.metrics_token}"},
                timeout=30,
            )
            assert scraped.status_code == 200, scraped.text
            samples = dict(
                line.rsplit(" ", 1)
                for line in scraped.text.splitlines()
                if line and not line.startswith("#")
            )
            assert (
                samples['beacon_http_requests_total{endpoint="match",method="POST",status="200"}']
                == "1"
            )
            assert (
                samples['beacon_http_requests_total{endpoint="signals",method="POST",status="201"}']
                == "1"
            )
            assert int(samples['beacon_deliveries{status="succeeded"}']) >= 1
            # Counted by the Celery worker, read by the web process.
            assert int(samples['beacon_delivery_attempts_total{outcome="succeeded"}']) >= 1
            assert samples["beacon_match_values_total"] == "2"
            assert int(samples["beacon_audit_chain_head_seq"]) > 0

            _export_and_verify(audit_client, public_key.json(), stack.tmp)
    finally:
        receiver.stop()


def _export_and_verify(audit_client: httpx.Client, public_key: dict, tmp: Path) -> None:
    export = audit_client.get("/audit/events", params={"format": "jsonl"})
    assert export.status_code == 200, export.text
    path = tmp / "audit.jsonl"
    path.write_bytes(export.content)
    key = tmp / "audit-public.pem"
    key.write_text(public_key["public_key"])
    actions = {
        line.split('"action":', 1)[1].split('"')[1]
        for line in export.text.splitlines()
        if '"action":' in line
    }
    assert {"signal.submit", "signal.match", "feedback.create", "delivery.sent"} <= actions
    verified = subprocess.run(
        [
            str(Path(sys.executable).with_name("beacon")),
            "audit",
            "verify",
            str(path),
            "--public-key",
            str(key),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
