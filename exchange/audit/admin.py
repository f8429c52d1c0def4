"""The audit log in the admin: read-only for everyone (no add, change or delete, not even for
superusers). Exchange administrators and auditors may browse it; only auditors export it, and
every export is itself audited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Max, Min, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone

from accounts import roles
from client.auditchain import CHAINED_FIELDS
from exchange import audit
from exchange.adminsite import BeaconModelAdmin, admin_actor
from exchange.audit import AuditAction
from exchange.audit.export import FORMATS, ExportQuery, stream_export
from exchange.audit.models import AuditEvent


class MemberFilter(admin.SimpleListFilter):
    """Events by or about a member: those it caused and those that disclosed its signals
    (the same rule as the export's ``member``)."""

    title = "member"
    parameter_name = "actor_member"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        from accounts.models import Member

        return [(slug, slug) for slug in Member.objects.values_list("slug", flat=True)]

    def queryset(self, request: Any, queryset: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        if not self.value():
            return queryset
        return queryset & ExportQuery(member=self.value()).queryset()


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
    change_list_template = "admin/audit/auditevent/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="hash")
    def short_hash(self, obj: AuditEvent) -> str:
        return f"{obj.hash[:12]}…"

    @admin.action(description="Export selected events as sealed CSV", permissions=["export"])
    def export_csv(
        self, request: HttpRequest, queryset: QuerySet[AuditEvent]
    ) -> StreamingHttpResponse | None:
        """Export the selection in the exchange's signed export format (the same CSV as
        ``GET /audit/events`` and ``manage.py audit_export``: events, checkpoints and a seal),
        so it verifies offline with ``beacon audit verify``. An export covers a range of
        events — from the first to the last selected, within the member and action filters —
        so a selection that is not such a range is refused rather than silently widened. The
        export is recorded before streaming starts."""
        bounds = queryset.aggregate(first=Min("seq"), last=Max("seq"))
        query = ExportQuery(
            member=request.GET.get(MemberFilter.parameter_name) or None,
            action=request.GET.get(ActionFilter.parameter_name) or None,
            first_seq=bounds["first"],
            last_seq=bounds["last"],
        )
        if query.queryset().count() != queryset.count():
            self.message_user(
                request,
                "An export covers every event from the first to the last selected, by member and "
                "action. Select a whole range (or every event matching the filters), without the "
                "purpose filter, to export it.",
                messages.ERROR,
            )
            return None
        with transaction.atomic():
            audit.record(
                actor=admin_actor(request),
                action=AuditAction.AUDIT_EXPORT,
                params=query.filters(),
                target="audit/events",
                result_count=queryset.count(),
                details={"format": "csv", "scope": query.scope, "channel": "admin"},
            )
        name = f"beacon-audit-{timezone.now():%Y%m%dT%H%M%SZ}.csv"
        response = StreamingHttpResponse(stream_export(query, "csv"), content_type=FORMATS["csv"])
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "verify/",
                self.admin_site.admin_view(self.verify_view),
                name="audit_auditevent_verify",
            ),
            *super().get_urls(),
        ]

    def verify_view(self, request: HttpRequest) -> HttpResponse:
        """Verify the whole chain (hashes, links, signed checkpoints, chain head) on a POST and
        show the result; the verification is itself an audit event."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        result = None
        if request.method == "POST":
            from exchange.audit.verify import verify_chain

            result = verify_chain()
            with transaction.atomic():
                audit.record(
                    actor=admin_actor(request),
                    action=AuditAction.AUDIT_VERIFY,
                    result_count=result.count,
                    details={
                        "ok": result.ok,
                        "first_bad_seq": result.first_bad_seq,
                        "problem": result.problem,
                        "channel": "admin",
                    },
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Verify the audit chain",
            "opts": self.model._meta,
            "result": result,
            "may_export": roles.is_auditor(request.user),
        }
        return TemplateResponse(request, "admin/audit/auditevent/verify.html", context)
