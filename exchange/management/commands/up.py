"""Run the whole embedded exchange: migrate, seed, then web + Celery worker + beat.

Ctrl-C (or SIGTERM) stops every process this command started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Start the exchange with demo data: web server, Celery worker and beat."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--no-seed", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        if not opts["no_seed"]:
            call_command("seed_demo")
        python = sys.executable
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        commands = {
            "web": [python, "manage.py", "runserver", opts["addr"], "--noreload"],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "exchange",
                "worker",
                "--loglevel=INFO",
                "--concurrency=2",
                "-Q",
                "celery,fanout,delivery,maintenance",
            ],
            "beat": [python, "-m", "celery", "-A", "exchange", "beat", "--loglevel=INFO"],
            # demo-b's webhooks land here (seed_demo subscribes it): fan-out, visibly.
            "receiver": [python, "manage.py", "demo_receiver", "--addr", "127.0.0.1:8001"],
        }
        procs = {
            name: subprocess.Popen(cmd, env=env, start_new_session=True)
            for name, cmd in commands.items()
        }
        self.stdout.write(
            f"Beacon is running on http://{opts['addr']}/ (API at /api/v1/, admin at /admin/). "
            "demo-b's webhooks are printed by the receiver on 127.0.0.1:8001. Ctrl-C stops it."
        )

        def stop(*_: Any) -> None:
            for proc in procs.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            for proc in procs.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, stop)
        try:
            while all(p.poll() is None for p in procs.values()):
                time.sleep(0.5)
            dead = [name for name, p in procs.items() if p.poll() is not None]
            self.stderr.write(f"{', '.join(dead)} exited; stopping the rest.")
        except KeyboardInterrupt:
            pass
        stop()
