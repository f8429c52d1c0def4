"""Start the embedded stack as ``make up`` does (web + worker on the filesystem broker)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                return json.loads(response.read())
        except Exception as exc:  # noqa: BLE001
            last = exc
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer: {last}")


def test_web_and_worker_run_on_the_embedded_backend(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "BEACON_TESTING"}
    }
    env.update({"DEBUG": "1", "BEACON_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"})
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300
    )
    seeded = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--json", "--history-weeks", "1"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    token = json.loads(seeded.stdout)["tokens"]["demo-a"]
    # Seeding twice keeps the same working credentials.
    again = subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--json", "--history-weeks", "1"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert json.loads(again.stdout)["tokens"]["demo-a"] == token

    port = _free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "exchange",
                "worker",
                "--concurrency=1",
                "--loglevel=WARNING",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        ),
    ]
    try:
        assert _wait_for(f"http://127.0.0.1:{port}/api/v1/health") == {
            "status": "ok",
            "database": "ok",
            "broker": "ok",
        }
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/me", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            assert json.loads(response.read())["member"]["slug"] == "demo-a"
        probe = (
            "import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','exchange.settings');"
            "import django; django.setup();"
            "from exchange.celery import ping; print(ping.delay().get(timeout=60))"
        )
        out = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert out.stdout.strip().splitlines()[-1] == "pong"
    finally:
        for proc in procs:
            os.killpg(proc.pid, 15)
        for proc in procs:
            proc.wait(timeout=20)
