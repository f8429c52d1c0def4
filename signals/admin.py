"""Admin for the taxonomy, indicators, signals and feedback. Indicators are shown by type and a
short hash, never by value; searching by value goes through ``services.indicator_search``, which
hashes and peppers a pasted identifier and keeps nothing of it."""

from __future__ import annotations

import hashlib
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from exchange.adminsite import BeaconModelAdmin, ReasonActionForm, admin_actor, error_text
from signals import services, types
from signals.lifecycle import signal_retract_as_admin
from signals.models import Category, Feedback, Indicator, Signal, SignalStatus

HEX = frozenset("0123456789abcdef")


def value_label(indicator: Indicator) -> str:
    """A short, non-reversible label for a stored value. Hex values (peppered identifiers and
    file hashes) show their first 12 characters; text values (keywords, URLs) a digest of them."""
    value = indicator.value
    if value and set(value) <= HEX:
        return f"{value[:12]}…"
    return "#" + hashlib.sha256(value.encode()).hexdigest()[:12]


@admin.register(Category)
class CategoryAdmin(BeaconModelAdmin):
    auditor_may_view = True
    admin_may_add = True
    admin_may_change = True
    list_display = ["code", "name", "active", "default_ttl_days", "required_attestations"]
    list_filter = ["active"]
    search_fields = ["code", "name"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.category_save(
            category=obj, created=not change, fields=form.changed_data, actor=admin_actor(request)
        )


@admin.register(Indicator)
class IndicatorAdmin(BeaconModelAdmin):
    show_full_result_count = False  # no second COUNT(*) over a large table
    list_display = ["id", "type", "value_hash", "key_version", "created_at"]
    list_filter = ["type", "key_version"]
    fields = ["type", "value_hash", "key_version", "created_at"]
    readonly_fields = list(fields)  # type: ignore[arg-type]

    @admin.display(description="value (hash)")
    def value_hash(self, obj: Indicator) -> str:
        return value_label(obj)


class SignalSearchForm(forms.Form):
    type = forms.ChoiceField(choices=[])
    value = forms.CharField(
        max_length=2048,
        widget=forms.TextInput(attrs={"size": 60, "autocomplete": "off"}),
        help_text="A raw email, phone number or username is normalised and hashed here, then "
        "peppered for the lookup; it is not stored or logged.",
    )
    platform = forms.CharField(required=False, help_text="For usernames and account ids.")
    region = forms.CharField(
        required=False, max_length=2, help_text="Default region for phone numbers, e.g. GB."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["type"].choices = [(name, name) for name in sorted(types.REGISTRY)]


@admin.register(Signal)
class SignalAdmin(BeaconModelAdmin):
    show_full_result_count = False  # no second COUNT(*) over a large table
    auditor_may_view = True
    list_display = [
        "id",
        "indicator_type",
        "indicator_hash",
        "owner",
        "category",
        "status",
        "severity",
        "tlp",
        "audience",
        "created_at",
    ]
    list_filter = ["status", "severity", "tlp", "category", "owner"]
    list_select_related = ["indicator", "owner", "category"]
    search_fields = ["external_id", "owner__slug"]
    date_hierarchy = "created_at"
    action_form = ReasonActionForm
    actions = ["retract"]
    change_list_template = "admin/signals/signal/change_list.html"
    fields = [
        "indicator_type",
        "indicator_hash",
        "owner",
        "category",
        "status",
        "severity",
        "tlp",
        "confidence",
        "audience",
        "tags",
        "external_id",
        "bundle_id",
        "expires_at",
        "created_at",
        "updated_at",
        "retracted_at",
        "retract_reason",
        "flagged_at",
    ]
    readonly_fields = list(fields)  # type: ignore[arg-type]

    @admin.display(description="type", ordering="indicator__type")
    def indicator_type(self, obj: Signal) -> str:
        return obj.indicator.type

    @admin.display(description="indicator (hash)")
    def indicator_hash(self, obj: Signal) -> str:
        return value_label(obj.indicator)

    def lookup_allowed(self, lookup: str, value: str, request: Any = None) -> bool:
        return lookup == "indicator__id__in" or super().lookup_allowed(lookup, value, request)

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "search/",
                self.admin_site.admin_view(self.search_view),
                name="signals_signal_search",
            ),
            *super().get_urls(),
        ]

    def search_view(self, request: HttpRequest) -> HttpResponse:
        """POST only, so a pasted value never appears in a URL, a log line or browser history."""
        if not self.has_view_permission(request):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        form = SignalSearchForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                ids = services.indicator_search(
                    type_name=data["type"],
                    raw=data["value"],
                    platform=data["platform"],
                    region=data["region"],
                    actor=admin_actor(request),
                )
            except services.ItemErrors as exc:
                form.add_error("value", error_text(exc))
            else:
                url = reverse("admin:signals_signal_changelist")
                if not ids:
                    self.message_user(request, "No indicator has that value.", messages.WARNING)
                    ids = [0]
                return HttpResponseRedirect(
                    f"{url}?indicator__id__in={','.join(str(i) for i in ids)}"
                )
        form.data = form.data.copy() if form.is_bound else form.data
        if form.is_bound:
            form.data["value"] = ""  # never echo a pasted identifier back into the page
        context = {
            **self.admin_site.each_context(request),
            "title": "Search signals by value",
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/signals/signal/search.html", context)

    @admin.action(description="Retract selected signals (reason required)", permissions=["manage"])
    def retract(self, request: HttpRequest, queryset: QuerySet[Signal]) -> None:
        reason = self.action_reason(request)
        if not reason:
            self.message_user(request, "Give a reason to retract signals.", messages.ERROR)
            return

        def _retract(signal: Signal) -> None:
            if signal.status == SignalStatus.RETRACTED:
                raise ValueError("it is already retracted")
            signal_retract_as_admin(
                user=request.user,  # type: ignore[arg-type]
                signal_id=signal.pk,
                reason=reason,
                request=request,
            )

        self.run_each(request, queryset, "Retracted", _retract)


@admin.register(Feedback)
class FeedbackAdmin(BeaconModelAdmin):
    show_full_result_count = False  # no second COUNT(*) over a large table
    list_display = ["id", "signal_link", "member", "reaction", "action_taken", "created_at"]
    list_filter = ["reaction", "member"]
    list_select_related = ["member", "signal"]
    fields = ["signal", "member", "reaction", "action_taken", "note", "created_at", "updated_at"]
    readonly_fields = list(fields)  # type: ignore[arg-type]

    @admin.display(description="signal", ordering="signal_id")
    def signal_link(self, obj: Feedback) -> str:
        url = reverse("admin:signals_signal_change", args=[obj.signal_id])
        return format_html('<a href="{}">signal {}</a>', url, obj.signal_id)
