from __future__ import annotations

from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "exchange.delivery"
    label = "delivery"
    verbose_name = "Fan-out and webhooks"
