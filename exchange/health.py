"""Probes for the health endpoint."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings


def broker_status() -> str:
    """The broker answers (Redis PING) or, embedded, its folders are writable."""
    if settings.REDIS_URL:
        import redis

        try:
            redis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1
            ).ping()
            return "ok"
        except redis.RedisError as exc:
            return f"down: {type(exc).__name__}"
    folder = Path(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]))
    return "ok" if folder.is_dir() and _writable(folder) else "down: broker folder missing"


def _writable(folder: Path) -> bool:
    import os

    return os.access(folder, os.W_OK)
