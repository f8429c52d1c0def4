"""Run the whole suite on every back end that is available, and say which ran.

SQLite (the embedded default) always runs. PostgreSQL + Redis run when reachable, or are
required with BEACON_REQUIRE_POSTGRES=1 (CI). Extra arguments are passed to pytest.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent


def reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2
        ):
            return True
    except OSError:
        return False


def main(argv: list[str]) -> int:
    checkout = int(hashlib.sha1(str(ROOT).encode()).hexdigest(), 16)  # noqa: S324
    pg_url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/beacon"
    redis_url = os.environ.get("REDIS_URL") or f"redis://127.0.0.1:6379/{checkout % 14 + 1}"
    wanted = os.environ.get("BEACON_TEST_BACKENDS", "sqlite,postgres").split(",")
    require_pg = os.environ.get("BEACON_REQUIRE_POSTGRES") == "1"
    base_env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    base_env.update({"BEACON_TESTING": "1", "PYTHONHASHSEED": "0"})

    results: list[tuple[str, str]] = []
    status = 0
    for backend in wanted:
        env = dict(base_env)
        if backend == "postgres":
            if not (reachable(pg_url, 5432) and reachable(redis_url, 6379)):
                if require_pg:
                    print(
                        f"PostgreSQL ({pg_url}) or Redis ({redis_url}) is unreachable, and this run requires them."
                    )
                    results.append(("postgres+redis", "UNREACHABLE"))
                    status = 1
                else:
                    results.append(("postgres+redis", "skipped: not reachable"))
                continue
            env.update({"DATABASE_URL": pg_url, "REDIS_URL": redis_url})
            label = "postgres+redis"
        else:
            label = "sqlite (embedded)"
        print(f"\n=== Test suite on {label} ===", flush=True)
        rc = subprocess.call([sys.executable, "-m", "pytest", *argv], cwd=ROOT, env=env)
        results.append((label, "passed" if rc == 0 else f"FAILED (exit {rc})"))
        status = status or rc

    print("\n=== Back ends ===")
    for label, outcome in results:
        print(f"  {label:<20} {outcome}")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
