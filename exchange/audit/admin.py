"""The audit log in the admin: read-only for everyone (no add, change or delete, not even for
superusers). Exchange administrators and auditors may browse it; only auditors export it, and
every export is itself audited."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from client.auditchain import CHAINED_FIELDS
from exchange import audit
from exchange.adminsite import BeaconModelAdmin, admin_actor
from exchange.audit import AuditAction
from exchange.audit.models import AuditEvent

EXPORT_FIELDS = (*CHAINED_FIELDS, "prev_hash", "hash")


class MemberFilter(admin.SimpleListFilter):
    title = "member"
    parameter_name = "actor_member"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        from accounts.models import Member

        return [(slug, slug) for slug in Member.objects.values_list("slug", flat=True)]

    def queryset(self, request: Any, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        return queryset.filter(actor_member=self.value()) if self.value() else queryset


class ActionFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [(a.value, a.value) for a in AuditAction]

    def queryset(self, request: Any, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        return queryset.filter(action=self.value()) if self.value() else queryset


class PurposeFilter(admin.SimpleListFilter):
    title = "purpose"
    parameter_name = "purpose"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        from accounts.models import Purpose

        return [(p.value, p.value) for p in Purpose]

    def queryset(self, request: Any, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        return queryset.filter(purpose=self.value()) if self.value() else queryset


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def csv_rows(queryset: QuerySet[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(EXPORT_FIELDS)
    for event in queryset.order_by("seq").iterator(chunk_size=2000):
        yield writer.writerow([_cell(getattr(event, f)) for f in EXPORT_FIELDS])


@admin.register(AuditEvent)
class AuditEventAdmin(BeaconModelAdmin):
    auditor_may_view = True
    list_display = [
        "seq",
        "at",
        "actor_member",
        "actor",
        "action",
        "purpose",
        "target",
        "result_count",
        "short_hash",
    ]
    list_filter = [MemberFilter, ActionFilter, PurposeFilter, "at"]
    date_hierarchy = "at"
    search_fields = ["request_id", "target", "actor"]
    ordering = ["-seq"]
    actions = ["export_csv"]
    fields = [*CHAINED_FIELDS, "prev_hash", "hash"]
    readonly_fields = list(fields)  # type: ignore[arg-type]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="hash")
    def short_hash(self, obj: AuditEvent) -> str:
        return f"{obj.hash[:12]}…"

    @admin.action(description="Export selected events as CSV", permissions=["export"])
    def export_csv(
        self, request: HttpRequest, queryset: QuerySet[AuditEvent]
    ) -> StreamingHttpResponse:
        """Stream the selected events (use "select all" for the whole filtered period). The
        export is recorded before streaming starts, so an export is never unaudited."""
        with transaction.atomic():
            seqs = queryset.order_by("seq").values_list("seq", flat=True)
            first, last, count = seqs.first(), seqs.last(), queryset.count()
            audit.record(
                actor=admin_actor(request),
                action=AuditAction.AUDIT_EXPORT,
                result_count=count,
                details={"format": "csv", "channel": "admin", "first_seq": first, "last_seq": last},
            )
        name = f"beacon-audit-{timezone.now():%Y%m%dT%H%M%SZ}.csv"
        response = StreamingHttpResponse(csv_rows(queryset), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response
