"""The Celery application. Tasks are thin: they take ids and call services."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")

app = Celery("beacon")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="exchange.ping", ignore_result=False)
def ping() -> str:
    """A round-trip probe used by health checks and the embedded-stack test."""
    return "pong"
