from __future__ import annotations

from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    name = "exchange"
    verbose_name = "Beacon exchange"

    def ready(self) -> None:
        from exchange import checks  # noqa: F401 - registers the deploy checks
