"""The Django admin site for exchange administrators and auditors, and the base class every
model admin derives from.

Access is decided by ``accounts.roles`` alone: Django's per-model permissions are not used, so
granting a member user ``is_staff`` or a stray permission never opens the admin to it. Every
write and action calls a service with ``admin_actor(request)``, so it is audited with the
administrator as the actor.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from accounts import roles
from exchange.audit import Actor


def admin_actor(request: HttpRequest) -> Actor:
    """The audit actor for an admin request: the staff user, request id and client IP."""
    return Actor.for_user(request.user, request=request)  # type: ignore[arg-type]


def error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        return " ".join(exc.messages)
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list) and errors:
        return "; ".join(str(e.get("detail", e)) if isinstance(e, dict) else str(e) for e in errors)
    return str(exc) or type(exc).__name__


class StaffAuthenticationForm(AdminAuthenticationForm):
    """Only exchange administrators and auditors may log in to the admin."""

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if not roles.has_admin_access(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class BeaconAdminSite(admin.AdminSite):
    site_header = "Beacon exchange administration"
    site_title = "Beacon admin"
    index_title = "Exchange administration"
    login_form = StaffAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        return roles.has_admin_access(request.user)


class ReasonActionForm(ActionForm):
    """The action bar with a reason, for actions that need one (suspend, retract, pause)."""

    reason = forms.CharField(
        required=False,
        max_length=500,
        label="Reason",
        widget=forms.TextInput(
            attrs={"size": 40, "placeholder": "reason (suspend, retract, pause)"}
        ),
    )


class BeaconModelAdmin(admin.ModelAdmin):
    """Role-checked model admin. Subclasses say what each role may do; nothing is deletable
    from the admin (members leave, tokens are revoked, signals are retracted)."""

    auditor_may_view: ClassVar[bool] = False
    admin_may_view: ClassVar[bool] = True
    admin_may_add: ClassVar[bool] = False
    admin_may_change: ClassVar[bool] = False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return (self.admin_may_view and roles.is_exchange_admin(user)) or (
            self.auditor_may_view and roles.is_auditor(user)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.admin_may_add and roles.is_exchange_admin(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.admin_may_change and roles.is_exchange_admin(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_manage_permission(self, request: HttpRequest) -> bool:
        """For admin actions that change state: exchange administrators only."""
        return roles.is_exchange_admin(request.user)

    def has_export_permission(self, request: HttpRequest) -> bool:
        """For export actions: auditors only."""
        return roles.is_auditor(request.user)

    def run_each(self, request: HttpRequest, queryset: Any, verb: str, fn: Any) -> None:
        """Call ``fn(obj)`` for each selected row; report successes and refusals."""
        done, failed = 0, []
        for obj in queryset:
            try:
                fn(obj)
                done += 1
            except Exception as exc:  # noqa: BLE001 - services refuse with several types
                failed.append(f"{obj}: {error_text(exc)}")
        if done:
            self.message_user(request, f"{verb}: {done}.", messages.SUCCESS)
        for line in failed:
            self.message_user(request, line, messages.ERROR)

    @staticmethod
    def action_reason(request: HttpRequest) -> str:
        return str(request.POST.get("reason", "")).strip()
