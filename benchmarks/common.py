"""Shared set-up for benchmarks: a dedicated PostgreSQL database, Django, sizes and results.

Benchmarks report ratios against a baseline measured in the same run, so figures from
different machines compare; they never gate CI on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# ``benchmarks.run_all --results DIR`` points every script elsewhere (CI runs them tiny).
RESULTS = Path(os.environ.get("BEACON_BENCH_RESULTS") or ROOT / "benchmarks" / "results")
SIZES = {"tiny": 0.002, "small": 0.1, "full": 1.0}


def throwaway_signing_key() -> str:
    """A fresh Ed25519 private key, PEM, for an audit chain nobody keeps."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def production_like() -> dict[str, str]:
    """Settings as an exchange runs them: DEBUG off (Django then keeps no log of every query),
    a throwaway secret, pepper and audit signing key unless given, plain HTTP, local webhook
    receivers allowed."""
    return {
        "BEACON_AUDIT_SIGNING_KEY": os.environ.get("BEACON_AUDIT_SIGNING_KEY")
        or throwaway_signing_key(),
        "DEBUG": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-" + "k" * 50,
        "BEACON_IDENTIFIER_PEPPERS": os.environ.get("BEACON_IDENTIFIER_PEPPERS")
        or "v1:bench-pepper-0123456789abcdef0123456789",
        "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
        "SECURE_SSL_REDIRECT": "0",
        "AXES_ENABLED": "0",
        "BEACON_ALLOW_PRIVATE_WEBHOOKS": "1",
        "DJANGO_SETTINGS_MODULE": "exchange.settings",
        "LOG_LEVEL": "WARNING",
    }


def parse_args(description: str, default_size: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--size",
        default=os.environ.get("BEACON_BENCH_SIZE", "full"),
        help="tiny, small, full, or a number of rows",
    )
    args = parser.parse_args()
    args.rows = (
        int(args.size)
        if str(args.size).isdigit()
        else max(1000, int(default_size * SIZES[args.size]))
    )
    return args


def setup_django(database: str = "beacon_bench") -> None:
    """Point Django, in production-like settings, at a fresh benchmark database on the local
    PostgreSQL, and migrate it."""
    sys.path.insert(0, str(ROOT))
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/beacon")
    server, _, base_name = base.rpartition("/")
    # Named after the configured database, so runs from two checkouts never share one.
    database = database.replace("beacon", base_name.split("?")[0] or "beacon", 1)
    url = f"{server}/{database}"
    os.environ["DATABASE_URL"] = url
    os.environ.update(production_like())
    os.environ.setdefault("BEACON_VAR_DIR", str(ROOT / "var" / "bench"))
    import psycopg

    admin_url = f"{server}/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


class Server:
    """Requests served as a WSGI server serves them, through Django's own handler, without the
    test client's extras: the test client keeps every response in a reference cycle (its
    ``json`` helper refers back to the response), so each large answer would wait for the
    cyclic collector and be collected inside later timed requests, as in no server process."""

    def __init__(self) -> None:
        from django.test import RequestFactory
        from django.test.client import ClientHandler

        self._factory = RequestFactory()
        self._handler = ClientHandler()

    def get(self, path: str, data: Any = None, **headers: Any) -> Any:
        return self._handler(self._factory.get(path, data, **headers).environ)

    def post(self, path: str, data: Any, **headers: Any) -> Any:
        request = self._factory.post(path, data, content_type="application/json", **headers)
        return self._handler(request.environ)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        **payload,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(json.dumps(payload, indent=2, default=str))
    return path


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
