"""Admin for webhook subscriptions, deliveries and the outbox backlog. Pause, resume and
redeliver call ``exchange.delivery.services`` with the administrator as the audit actor."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from exchange.adminsite import BeaconModelAdmin, ReasonActionForm, admin_actor
from exchange.delivery import services
from exchange.delivery.models import Delivery, OutboxEntry, Subscription


@admin.register(Subscription)
class SubscriptionAdmin(BeaconModelAdmin):
    list_display = ["id", "member", "endpoint_host", "status", "status_reason", "updated_at"]
    list_filter = ["status", "member"]
    list_select_related = ["member"]
    fields = [
        "member",
        "url",
        "description",
        "types",
        "categories",
        "events",
        "status",
        "status_reason",
        "previous_secret_expires_at",
        "created_at",
        "updated_at",
    ]
    readonly_fields = list(fields)  # type: ignore[arg-type]
    action_form = ReasonActionForm
    actions = ["pause", "resume"]

    @admin.display(description="endpoint")
    def endpoint_host(self, obj: Subscription) -> str:
        return urlsplit(obj.url).netloc

    @admin.action(description="Pause selected subscriptions", permissions=["manage"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        actor = admin_actor(request)
        reason = self.action_reason(request) or "paused by an exchange administrator"
        self.run_each(
            request,
            queryset,
            "Paused",
            lambda sub: services.subscription_disable(subscription=sub, reason=reason, actor=actor),
        )

    @admin.action(description="Resume selected subscriptions", permissions=["manage"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        actor = admin_actor(request)
        self.run_each(
            request,
            queryset,
            "Resumed",
            lambda sub: services.subscription_resume(subscription=sub, actor=actor),
        )


@admin.register(Delivery)
class DeliveryAdmin(BeaconModelAdmin):
    show_full_result_count = False  # no second COUNT(*) over a large table
    list_display = [
        "id",
        "member",
        "subscription_id",
        "kind",
        "status",
        "event_count",
        "attempts",
        "redeliveries",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["status", "kind", "member"]
    list_select_related = ["member"]
    date_hierarchy = "created_at"
    fields = [
        "member",
        "subscription",
        "kind",
        "webhook_id",
        "event_count",
        "status",
        "attempts",
        "redeliveries",
        "next_attempt_at",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "superseded_by",
        "created_at",
    ]
    readonly_fields = list(fields)  # type: ignore[arg-type]
    actions = ["redeliver"]

    @admin.action(description="Redeliver selected deliveries", permissions=["manage"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        actor = admin_actor(request)
        self.run_each(
            request,
            queryset,
            "Queued again",
            lambda delivery: services.delivery_redeliver(delivery=delivery, actor=actor),
        )


class ProcessedFilter(admin.SimpleListFilter):
    title = "fanned out"
    parameter_name = "processed"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [("no", "waiting (backlog)"), ("yes", "fanned out")]

    def queryset(self, request: Any, queryset: QuerySet[OutboxEntry]) -> QuerySet[OutboxEntry]:
        if self.value() == "no":
            return queryset.filter(processed_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(processed_at__isnull=False)
        return queryset


@admin.register(OutboxEntry)
class OutboxEntryAdmin(BeaconModelAdmin):
    show_full_result_count = False  # no second COUNT(*) over a large table
    list_display = ["id", "event", "seq_from", "seq_to", "created_at", "processed_at"]
    list_filter = [ProcessedFilter, "event"]
    fields = [
        "event",
        "seq_from",
        "seq_to",
        "feedback_id",
        "member_id",
        "created_at",
        "processed_at",
    ]
    readonly_fields = list(fields)  # type: ignore[arg-type]
