"""Real processes for fault tests: Celery workers and beat on the test database, a private
broker (a redis-server of their own on Postgres runs, a filesystem broker on SQLite runs)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

FAST = {
    "BEACON_WEBHOOK_RETRY_SCHEDULE": "0,0.5,1,1,1,1,1,1,1,1",
    "BEACON_WEBHOOK_TIMEOUT_SECONDS": "2",
    "BEACON_DELIVERY_LEASE_SECONDS": "5",
    "BEACON_DELIVERY_REQUEUE_SECONDS": "3",
    "BEACON_DELIVERY_SWEEP_SECONDS": "1",
    "BEACON_OUTBOX_GRACE_SECONDS": "1",
    "BEACON_ALLOW_PRIVATE_WEBHOOKS": "1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A redis-server of this test's own, so stopping it disturbs nobody else."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None


def database_url() -> str:
    """The URL of the test database, for processes started by the test."""
    name = connection.settings_dict["NAME"]
    if connection.vendor == "sqlite":
        return f"sqlite:///{name}"
    parsed = urlparse(os.environ["DATABASE_URL"])
    return urlunparse(parsed._replace(path=f"/{name}"))


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _wait_group_gone(pgid: int, timeout: float) -> bool:
    """Wait until no process of the group is left (reaping our direct child meanwhile)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.waitpid(pgid, os.WNOHANG)
        except ChildProcessError:
            pass
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


class Stack:
    """Workers and beat for one test, sharing a broker with this test process."""

    def __init__(self, tmp: Path, extra_env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        self.var = tmp / "var"
        self.var.mkdir(parents=True, exist_ok=True)
        self.redis: RedisServer | None = None
        if connection.vendor == "postgresql":
            self.redis = RedisServer(tmp)
            self.redis.start()
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "REDIS_URL", "PYTEST_CURRENT_TEST"}
        }
        self.env.update(
            {
                "BEACON_TESTING": "1",
                "BEACON_VAR_DIR": str(self.var),
                "DATABASE_URL": database_url(),
                "PYTHONUNBUFFERED": "1",
                **FAST,
                **(extra_env or {}),
            }
        )
        if self.redis is not None:
            self.env["REDIS_URL"] = self.redis.url
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._previous: dict[str, Any] = {}
        self._point_this_process_at_the_broker()

    def _point_this_process_at_the_broker(self) -> None:
        from exchange.celery import app

        self._previous = {
            "broker_url": app.conf.broker_url,
            "broker_transport_options": app.conf.broker_transport_options,
        }
        if self.redis is not None:
            app.conf.broker_url = self.redis.url
        else:
            folders = {sub: self.var / "broker" / sub for sub in ("queue", "processed", "control")}
            for folder in folders.values():
                folder.mkdir(parents=True, exist_ok=True)
            app.conf.broker_transport_options = {
                **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
                "data_folder_in": str(folders["queue"]),
                "data_folder_out": str(folders["queue"]),
                "processed_folder": str(folders["processed"]),
                "control_folder": str(folders["control"]),
            }
        self._reset_pools()

    @staticmethod
    def _reset_pools() -> None:
        from exchange.celery import app

        if app._pool is not None:
            app._pool.force_close_all()
        app._pool = None
        app.amqp._producer_pool = None

    def start(self, name: str, *args: str, supervised: bool = True) -> subprocess.Popen[bytes]:
        """Start a Celery process. ``supervised`` restarts it whenever it exits, as systemd or
        a container runtime does in production: a Celery worker may exit on an unrecoverable
        broker error (Redis killed under it), and the exchange must lose nothing when it does."""
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        command = [sys.executable, "-m", "celery", "-A", "exchange", *args]
        if supervised:
            command = [
                "bash",
                "-c",
                'while true; do "$@"; echo "[supervisor] exited with $?, restarting"; sleep 1; done',
                "supervise",
                *command,
            ]
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def worker(
        self, name: str = "worker", concurrency: int = 2, supervised: bool = True
    ) -> subprocess.Popen[bytes]:
        return self.start(
            name,
            "worker",
            "-Q",
            "celery,fanout,delivery,maintenance",
            f"--concurrency={concurrency}",
            "--loglevel=INFO",
            "-n",
            f"{name}-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            supervised=supervised,
        )

    def beat(self) -> subprocess.Popen[bytes]:
        return self.start(
            "beat", "beat", "--loglevel=INFO", "-s", str(self.var / "celerybeat-schedule")
        )

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)
        _wait_group_gone(proc.pid, 10)

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_log(self, name: str, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log(name):
                return
            time.sleep(0.1)
        raise AssertionError(f"{name} never logged {text!r}:\n{self.log(name)[-3000:]}")

    def stop(self) -> None:
        """Stop every process this stack started (whole process groups: supervisor, Celery
        main process and pool children), forcefully if they do not stop within 10 s."""
        for proc in self.procs.values():
            _signal_group(proc.pid, signal.SIGTERM)
        for name, proc in list(self.procs.items()):
            if not _wait_group_gone(proc.pid, 10):
                _signal_group(proc.pid, signal.SIGKILL)
                _wait_group_gone(proc.pid, 10)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.procs.pop(name, None)
        from exchange.celery import app

        app.conf.broker_url = self._previous["broker_url"]
        app.conf.broker_transport_options = self._previous["broker_transport_options"]
        self._reset_pools()
        if self.redis is not None:
            self.redis.stop()
