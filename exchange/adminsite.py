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
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from accounts import roles
from exchange.audit import Actor


def method_decorator_never_cache_csrf(view: Any) -> Any:
    from django.utils.decorators import method_decorator

    return method_decorator(never_cache)(method_decorator(csrf_protect)(view))


def admin_actor(request: HttpRequest) -> Actor:
    """The audit actor for an admin request: the staff user, request id and client IP."""
    return Actor.for_user(request.user, request=request)  # type: ignore[arg-type]


def _audit_own_account(request: HttpRequest, details: dict[str, Any]) -> None:
    """Record what a staff user just did to their own account (sign-in, password change)."""
    from exchange import audit
    from exchange.audit import AuditAction

    audit.record(
        actor=admin_actor(request),
        action=AuditAction.ADMIN_ACTION,
        target=f"user:{request.user.get_username()}",
        details=details,
    )


def error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        return " ".join(exc.messages)
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list) and errors:
        return "; ".join(str(e.get("detail", e)) if isinstance(e, dict) else str(e) for e in errors)
    return str(exc) or type(exc).__name__


def confirmed_devices(user: Any) -> Any:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.filter(user=user, confirmed=True)


class StaffAuthenticationForm(AdminAuthenticationForm):
    """Password and TOTP code. Only exchange administrators and auditors may log in; a staff
    user with a confirmed device must give its current code, one without a device is let in
    unverified and can do nothing but enrol one. A wrong code counts as a failed login for
    django-axes, so guessing codes locks the account out like guessing passwords."""

    otp_token = forms.CharField(
        required=False,
        label="Authenticator code",
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
        help_text="The 6-digit code from your authenticator app (leave empty to enrol one).",
    )

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if not roles.has_admin_access(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        user = self.get_user()
        if user is None:
            return data
        devices = list(confirmed_devices(user))
        user.otp_device = None  # type: ignore[attr-defined]
        if not devices:
            return data
        token = (data.get("otp_token") or "").strip()
        with transaction.atomic():
            device = next((d for d in devices if token and d.verify_token(token)), None)
        if device is None:
            user_login_failed.send(
                sender=type(self),
                credentials={"username": user.get_username()},
                request=self.request,
            )
            raise ValidationError(
                "Enter the current code from your authenticator app.", code="invalid_token"
            )
        # django_otp's user_logged_in handler marks the session verified with this device.
        user.otp_device = device  # type: ignore[attr-defined]
        return data


class EnrolForm(forms.Form):
    otp_token = forms.CharField(
        label="Code from your app",
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def _qr_svg(data: str) -> str:
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    return str(image.to_string(encoding="unicode"))


class BeaconAdminSite(admin.AdminSite):
    """Staff only, and only after a second factor: ``has_permission`` needs an administrator
    or auditor whose session was verified with a TOTP device (``django_otp``)."""

    site_header = "Beacon exchange administration"
    site_title = "Beacon admin"
    index_title = "Exchange administration"
    site_url = None  # the exchange has no public site; hide "View site"
    login_form = StaffAuthenticationForm

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return roles.has_admin_access(user) and bool(getattr(user, "is_verified", lambda: False)())

    def get_urls(self) -> list[URLResolver | URLPattern]:
        from exchange.admin_dashboard import dashboard_view

        return [
            path("otp/enrol/", self.enrol_view, name="otp_enrol"),
            path(
                "dashboard/",
                self.admin_view(lambda request: dashboard_view(self, request)),
                name="dashboard",
            ),
            *super().get_urls(),
        ]

    def password_change(self, request: HttpRequest, extra_context: Any = None) -> Any:
        """A staff user changing their own password: audited, in the change's transaction."""
        with transaction.atomic():
            response = super().password_change(request, extra_context)
            if request.method == "POST" and response.status_code == 302:
                _audit_own_account(
                    request, {"operation": "user.password_change", "fields": ["password"]}
                )
        return response

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        user = request.user
        if (
            request.method == "GET"
            and roles.has_admin_access(user)
            and not user.is_verified()  # type: ignore[union-attr]
            and not confirmed_devices(user).exists()
        ):
            return HttpResponseRedirect(reverse("admin:otp_enrol"))
        with transaction.atomic():
            response = super().login(request, extra_context)
            if request.method == "POST" and response.status_code == 302:
                # Signed in (failures are counted by django-axes): the audit log says who
                # entered the admin, when, from where, and whether with a second factor.
                _audit_own_account(
                    request,
                    {
                        "operation": "admin.login",
                        "verified": getattr(request.user, "otp_device", None) is not None,
                    },
                )
        return response

    @method_decorator_never_cache_csrf
    def enrol_view(self, request: HttpRequest) -> HttpResponse:
        """A signed-in staff user without a confirmed device adds one: scan the QR code (or type
        the secret), then confirm a code. Someone with a device must log in with it instead, so a
        stolen password alone can never add a second device."""
        from django_otp import login as otp_login
        from django_otp.plugins.otp_totp.models import TOTPDevice

        user = request.user
        if not roles.has_admin_access(user):
            return HttpResponseRedirect(reverse("admin:login"))
        if user.is_verified():  # type: ignore[union-attr]
            return HttpResponseRedirect(reverse("admin:index"))
        if confirmed_devices(user).exists():
            return HttpResponseRedirect(reverse("admin:login"))
        device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
        if device is None:
            device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
        form = EnrolForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            if device.verify_token(form.cleaned_data["otp_token"].strip()):
                with transaction.atomic():
                    device.confirmed = True
                    device.save(update_fields=["confirmed"])
                    from exchange import audit
                    from exchange.audit import AuditAction

                    audit.record(
                        actor=admin_actor(request),
                        action=AuditAction.ADMIN_ACTION,
                        target=f"user:{user.get_username()}",
                        details={"operation": "otp.enrol"},
                    )
                otp_login(request, device)
                return HttpResponseRedirect(reverse("admin:index"))
            form.add_error("otp_token", "That code is not right; check the time on your device.")
        from base64 import b32encode

        context = {
            **self.each_context(request),
            "title": "Set up your second factor",
            "form": form,
            "secret": b32encode(device.bin_key).decode(),
            "config_url": device.config_url,
            "qr_svg": mark_safe(_qr_svg(device.config_url)),  # noqa: S308 - generated SVG
        }
        response = TemplateResponse(request, "admin/otp_enrol.html", context)
        response["Cache-Control"] = "no-store"
        return response


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
