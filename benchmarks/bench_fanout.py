"""Fan-out end to end: new signals to 10 subscriptions, delivered by real Celery workers over a
Redis broker to a local receiver that verifies every signature (standardwebhooks library).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/beacon .venv/bin/python -m benchmarks.bench_fanout
    ... --size tiny|small|full  (or a number of signals; env BEACON_BENCH_SIZE)

The benchmark gets a database of its own on the server in DATABASE_URL (dropped afterwards)
and a redis-server of its own on a free port, so it disturbs nobody. It measures:

- ``submit_seconds``: uploading the signals with ``signal_submit`` in 10,000-item batches;
- ``end_to_end_seconds``: from the first upload until the receiver has verified the last event;
  ``events_per_second`` = events delivered / that time (target ≥ 5,000);
- ``baseline_events_per_second``: the same receiver fed the same kind of signed 1,000-event
  bodies directly (no exchange), measured in the same run; ``ratio`` = fan-out / baseline.

Results go to ``benchmarks/results/fanout.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from benchmarks.common import production_like

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(os.environ.get("BEACON_BENCH_RESULTS") or ROOT / "benchmarks" / "results")
SIZES = {"tiny": 2_000, "small": 20_000, "full": 100_000}
SUBSCRIBERS = 10
BATCH = 10_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the receiver (its own process) ----------------------------------------------------------
def run_receiver(port: int, secrets_file: str, ready: Any) -> None:
    from standardwebhooks import Webhook

    secrets = json.loads(Path(secrets_file).read_text())
    hooks = {path: Webhook(secret) for path, secret in secrets.items()}
    lock = threading.Lock()
    state: dict[str, Any] = {
        "requests": 0,
        "events": 0,
        "bad_signatures": 0,
        "first_at": None,
        "last_at": None,
    }
    seen: set[tuple[str, int]] = set()
    ids: dict[str, int] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hook = hooks.get(self.path)
            try:
                if hook is None:
                    raise ValueError("unknown path")
                payload = hook.verify(body, {k: v for k, v in self.headers.items()})
                ok = True
            except Exception:  # noqa: BLE001 - any failure is a bad signature here
                ok = False
            now = time.time()
            with lock:
                state["requests"] += 1
                if not ok:
                    state["bad_signatures"] += 1
                else:
                    events = payload["data"]["events"]
                    webhook_id = self.headers["webhook-id"]
                    ids[webhook_id] = ids.get(webhook_id, 0) + 1
                    for event in events:
                        key = (self.path, event["seq"])
                        if key not in seen:
                            seen.add(key)
                            state["events"] += 1
                            state["last_at"] = now
                            if state["first_at"] is None:
                                state["first_at"] = now
            self.send_response(204 if ok else 400)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:  # noqa: N802
            with lock:
                answer = dict(state)
                answer["repeated_webhook_ids"] = sum(1 for n in ids.values() if n > 1)
            body = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_DELETE(self) -> None:  # noqa: N802 - reset between phases
            with lock:
                seen.clear()
                ids.clear()
                state.update(requests=0, events=0, bad_signatures=0, first_at=None, last_at=None)
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    ready.set()
    server.serve_forever()


def receiver_stats(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as r:  # noqa: S310
        return json.loads(r.read())


def receiver_reset(port: int) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", method="DELETE")
    urllib.request.urlopen(request, timeout=10).close()  # noqa: S310


# -- setup -----------------------------------------------------------------------------------
def fresh_postgres(url: str) -> str:
    import psycopg

    checkout = hashlib.sha1(str(ROOT).encode()).hexdigest()[:8]  # noqa: S324 - a name
    database = f"beacon_bench_{checkout}_fanout"
    admin = urlunparse(urlparse(url)._replace(path="/postgres", query=""))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    return urlunparse(urlparse(url)._replace(path=f"/{database}", query=""))


def drop_postgres(url: str) -> None:
    import psycopg

    admin = urlunparse(urlparse(url)._replace(path="/postgres", query=""))
    database = urlparse(url).path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def environment(var: Path, database_url: str, redis_url: str) -> dict[str, str]:
    """Production-like settings (DEBUG off), local receivers allowed."""
    return {
        **production_like(),
        "BEACON_VAR_DIR": str(var),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
    }


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default=os.environ.get("BEACON_BENCH_SIZE", "full"))
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="pool size per worker")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--keep-database", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    n = SIZES[args.size] if args.size in SIZES else int(args.size)
    base_url = os.environ.get("DATABASE_URL", "")
    if not base_url.startswith(("postgres://", "postgresql://")):
        print("bench_fanout needs a PostgreSQL DATABASE_URL (the production back end).")
        return 2
    var = ROOT / "var" / "bench" / "fanout"
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    database_url = fresh_postgres(base_url)
    redis_proc, redis_url = start_redis(var)
    env = environment(var, database_url, redis_url)
    os.environ.pop("BEACON_TESTING", None)
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    procs: list[subprocess.Popen[bytes]] = []
    receiver: multiprocessing.Process | None = None
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        result = run(args, n, var, env, procs)
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "fanout.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return 0 if result["complete"] and result["bad_signatures"] == 0 else 1
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if receiver is not None:
            receiver.terminate()
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
        from django.db import connections

        connections.close_all()
        if not args.keep_database:
            drop_postgres(database_url)


def run(
    args: argparse.Namespace,
    n: int,
    var: Path,
    env: dict[str, str],
    procs: list[subprocess.Popen[bytes]],
) -> dict[str, Any]:
    from accounts.services import member_create
    from exchange.audit import Actor
    from exchange.delivery import services as delivery
    from exchange.delivery.models import Delivery
    from signals.services import signal_submit

    system = Actor.system("bench")
    attest = ["agreement", "human_review", "user_appeals", "no_government_disclosure"]

    def member(slug: str) -> Any:
        return member_create(
            slug=slug, name=slug, kind="platform", attestations=attest, activate=True, actor=system
        )

    uploader = member("uploader")
    port = free_port()
    secrets: dict[str, str] = {}
    for i in range(SUBSCRIBERS):
        created = delivery.subscription_create(
            member=member(f"subscriber-{i}"), url=f"http://127.0.0.1:{port}/s/{i}", actor=system
        )
        secrets[f"/s/{i}"] = created.secret
    secrets_file = var / "secrets.json"
    secrets_file.write_text(json.dumps(secrets))

    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    receiver = ctx.Process(target=run_receiver, args=(port, str(secrets_file), ready), daemon=True)
    receiver.start()
    ready.wait(30)

    baseline = measure_baseline(port, secrets, events_per_post=1000, posts=max(20, n // 1000))
    receiver_reset(port)

    for w in range(args.workers):
        log = open(var / f"worker-{w}.log", "ab")  # noqa: SIM115 - closed with the process
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "exchange",
                    "worker",
                    "-Q",
                    "celery,fanout,delivery,maintenance",
                    f"--concurrency={args.concurrency}",
                    "--loglevel=WARNING",
                    "-n",
                    f"bench{w}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    time.sleep(4)  # workers connect before the clock starts

    expected = n * SUBSCRIBERS
    started = time.time()
    for start in range(0, n, BATCH):
        items = [
            {
                "type": "sha256",
                "value": hashlib.sha256(f"fanout-{i}".encode()).hexdigest(),
                "category": "csea.sextortion",
            }
            for i in range(start, min(n, start + BATCH))
        ]
        signal_submit(member=uploader, items=items, actor=system)
    submitted = time.time()
    deadline = time.monotonic() + args.timeout
    stats = receiver_stats(port)
    while stats["events"] < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        stats = receiver_stats(port)
    end = stats["last_at"] or time.time()
    elapsed = end - started
    events_per_second = stats["events"] / elapsed if elapsed > 0 else 0.0
    return {
        "benchmark": "fanout",
        "size": args.size,
        "signals": n,
        "subscriptions": SUBSCRIBERS,
        "events_expected": expected,
        "events_delivered": stats["events"],
        "complete": stats["events"] == expected,
        "bad_signatures": stats["bad_signatures"],
        "requests": stats["requests"],
        "repeated_webhook_ids": stats["repeated_webhook_ids"],
        "deliveries": Delivery.objects.count(),
        "workers": args.workers,
        "concurrency_per_worker": args.concurrency,
        "submit_seconds": round(submitted - started, 3),
        "first_event_seconds": round((stats["first_at"] or end) - started, 3),
        "end_to_end_seconds": round(elapsed, 3),
        # From the end of the uploads to the last event: fan-out and delivery alone.
        "after_submit_seconds": round(end - submitted, 3),
        "delivery_events_per_second": round(stats["events"] / max(end - submitted, 1e-9), 1),
        "events_per_second": round(events_per_second, 1),
        "baseline_events_per_second": round(baseline, 1),
        "ratio_to_baseline": round(events_per_second / baseline, 3) if baseline else None,
        "target_events_per_second": 5000,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            # Other work on the machine during the run skews every figure: note it.
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def measure_baseline(
    port: int, secrets: dict[str, str], *, events_per_post: int, posts: int
) -> float:
    """The receiver's own ceiling: pre-signed 1,000-event bodies POSTed straight to it over
    one kept-alive connection per subscription path, round-robin, from one thread."""
    import http.client

    from exchange.delivery import signing
    from exchange.delivery.services import dumps

    event = {
        "seq": 0,
        "op": "upsert",
        "signal": {
            "id": 0,
            "type": "sha256",
            "indicator_id": 0,
            "value": "0" * 64,
            "category": "csea.sextortion",
            "tags": [],
            "confidence": 50,
            "severity": "medium",
            "tlp": "amber",
            "owner": "uploader",
            "status": "active",
            "expires_at": None,
            "created_at": "2026-01-01T00:00:00.000000Z",
            "updated_at": "2026-01-01T00:00:00.000000Z",
            "bundle_id": None,
            "seq": 0,
            "feedback": {},
        },
    }
    paths = list(secrets)
    connections = {p: http.client.HTTPConnection("127.0.0.1", port, timeout=30) for p in paths}
    bodies = []
    seq = 0
    for i in range(posts):
        events = []
        for _ in range(events_per_post):
            seq += 1
            events.append(dumps({**event, "seq": seq, "signal": {**event["signal"], "id": seq}}))
        body = (
            '{"type":"signals.batch","timestamp":"2026-01-01T00:00:00Z","data":{"events":['
            + ",".join(events)
            + "]}}"
        ).encode()
        bodies.append((paths[i % len(paths)], body))
    started = time.perf_counter()
    for i, (path, body) in enumerate(bodies):
        headers = signing.headers(
            secrets_=[secrets[path]],
            webhook_id=f"msg_base{i}",
            timestamp=int(time.time()),
            body=body,
        )
        conn = connections[path]
        conn.request(
            "POST", path, body=body, headers={**headers, "Content-Type": "application/json"}
        )
        conn.getresponse().read()
    elapsed = time.perf_counter() - started
    for conn in connections.values():
        conn.close()
    return posts * events_per_post / elapsed


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
