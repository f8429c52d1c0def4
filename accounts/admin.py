"""Admin for members, attestations, users, API tokens and sharing groups. Every write calls
``accounts.services`` with the administrator as the audit actor."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts import roles, services
from accounts.models import (
    ApiToken,
    Attestation,
    Member,
    MemberAttestation,
    MemberStatus,
    Purpose,
    Scope,
    SharingGroup,
    User,
)
from exchange.adminsite import BeaconModelAdmin, ReasonActionForm, admin_actor


class MemberAddForm(forms.ModelForm):
    attestations = forms.MultipleChoiceField(
        choices=Attestation.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    activate = forms.BooleanField(
        required=False, help_text="Admit the member now (it must have signed the agreement)."
    )

    class Meta:
        model = Member
        fields = ["slug", "name", "kind", "attribution"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("activate") and Attestation.AGREEMENT not in (data.get("attestations") or []):
            raise ValidationError("A member must sign the agreement before it is admitted.")
        return data


class MemberChangeForm(forms.ModelForm):
    add_attestations = forms.MultipleChoiceField(
        choices=Attestation.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Record attestations",
    )
    categories = forms.CharField(
        required=False,
        label="Receive categories",
        help_text="Comma-separated category codes; empty means every category.",
    )

    class Meta:
        model = Member
        fields = ["name", "kind", "attribution"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["categories"].initial = ", ".join(self.instance.receive_categories or [])


class AttestationInline(admin.TabularInline):
    model = MemberAttestation
    extra = 0
    fields = ["kind", "attested_by", "attested_at"]
    readonly_fields = list(fields)  # type: ignore[arg-type]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return roles.has_admin_access(request.user)


@admin.register(Member)
class MemberAdmin(BeaconModelAdmin):
    auditor_may_view = True
    admin_may_add = True
    admin_may_change = True
    list_display = ["slug", "name", "kind", "status", "attestation_count", "status_changed_at"]
    list_filter = ["status", "kind", "attribution"]
    search_fields = ["slug", "name"]
    readonly_fields = ["slug", "status", "status_changed_at", "created_at", "receive_categories"]
    inlines = [AttestationInline]
    action_form = ReasonActionForm
    actions = ["admit", "suspend", "reactivate"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Member]:
        return super().get_queryset(request).annotate(n_attestations=Count("attestations"))

    @admin.display(description="attestations", ordering="n_attestations")
    def attestation_count(self, obj: Any) -> int:
        return int(getattr(obj, "n_attestations", 0))

    def get_inline_instances(self, request: HttpRequest, obj: Any = None) -> Any:
        return super().get_inline_instances(request, obj) if obj is not None else []

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        kwargs["form"] = MemberChangeForm if obj is not None else MemberAddForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["slug", "name", "kind", "attribution", "attestations", "activate"]
        return [
            "slug",
            "name",
            "kind",
            "attribution",
            "status",
            "status_changed_at",
            "created_at",
            "receive_categories",
            "categories",
            "add_attestations",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        actor = admin_actor(request)
        data = form.cleaned_data
        if not change:
            member = services.member_create(
                slug=data["slug"],
                name=data["name"],
                kind=data["kind"],
                attribution=data["attribution"],
                attestations=data.get("attestations") or [],
                activate=bool(data.get("activate")),
                actor=actor,
            )
            obj.pk = member.pk
            return
        original = Member.objects.get(pk=obj.pk)
        changes = {
            f: data[f] for f in ("name", "kind", "attribution") if data[f] != getattr(original, f)
        }
        if changes:
            services.member_update(member=original, changes=changes, actor=actor)
        for kind in data.get("add_attestations") or []:
            if kind not in original.attestation_kinds():
                services.member_attest(member=original, attestation=kind, actor=actor)
        codes = sorted({c.strip() for c in (data.get("categories") or "").split(",") if c.strip()})
        if codes != sorted(original.receive_categories or []):
            services.member_set_categories(member=original, categories=codes, actor=actor)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Attestations are recorded by the service above, never by the read-only inline."""
        for formset in formsets:
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.action(description="Admit selected pending members", permissions=["manage"])
    def admit(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        actor = admin_actor(request)

        def _admit(member: Member) -> None:
            if member.status != MemberStatus.PENDING:
                raise ValidationError(f"it is {member.status}, not pending")
            services.member_activate(member=member, actor=actor)

        self.run_each(request, queryset, "Admitted", _admit)

    @admin.action(
        description="Suspend selected members (takes effect on their next request)",
        permissions=["manage"],
    )
    def suspend(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        actor, reason = admin_actor(request), self.action_reason(request)

        def _suspend(member: Member) -> None:
            if member.status == MemberStatus.SUSPENDED:
                raise ValidationError("it is already suspended")
            services.member_suspend(member=member, actor=actor, reason=reason)

        self.run_each(request, queryset, "Suspended", _suspend)

    @admin.action(description="Reactivate selected suspended members", permissions=["manage"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Member]) -> None:
        actor = admin_actor(request)

        def _reactivate(member: Member) -> None:
            if member.status != MemberStatus.SUSPENDED:
                raise ValidationError(f"it is {member.status}, not suspended")
            services.member_activate(member=member, actor=actor)

        self.run_each(request, queryset, "Reactivated", _reactivate)


class AttestationAddForm(forms.ModelForm):
    class Meta:
        model = MemberAttestation
        fields = ["member", "kind"]

    def validate_unique(self) -> None:
        """Recording an attestation twice is harmless: the service keeps the first."""


@admin.register(MemberAttestation)
class MemberAttestationAdmin(BeaconModelAdmin):
    auditor_may_view = True
    admin_may_add = True
    form = AttestationAddForm
    list_display = ["member", "kind", "attested_by", "attested_at"]
    list_filter = ["kind"]
    list_select_related = ["member"]
    search_fields = ["member__slug"]
    raw_id_fields = ["member"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        row = services.member_attest(
            member=form.cleaned_data["member"],
            attestation=form.cleaned_data["kind"],
            actor=admin_actor(request),
        )
        obj.pk = row.pk


@admin.register(User)
class UserAdmin(BeaconModelAdmin, DjangoUserAdmin):
    admin_may_add = True
    admin_may_change = True
    list_display = ["username", "role", "member", "is_staff", "is_active", "last_login"]
    list_filter = ["role", "is_staff", "is_active"]
    list_select_related = ["member"]
    search_fields = ["username"]
    raw_id_fields = ["member"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Exchange role", {"fields": ("role", "member")}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "usable_password", "password1", "password2"),
            },
        ),
        ("Exchange role", {"fields": ("role", "member", "is_staff")}),
    )
    readonly_fields = ["last_login", "date_joined"]
    filter_horizontal: tuple[str, ...] = ()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        services.user_save(
            user=obj, created=not change, fields=form.changed_data, actor=admin_actor(request)
        )

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        """An administrator setting someone's password: audited (the field, never the value)."""
        if not roles.is_exchange_admin(request.user):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                services.user_save(
                    user=User.objects.get(pk=id),
                    created=False,
                    fields=["password"],
                    actor=admin_actor(request),
                )
        return response


class TokenIssueForm(forms.ModelForm):
    scopes_choice = forms.MultipleChoiceField(
        label="Scopes",
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[Scope.SIGNALS_READ, Scope.SIGNALS_WRITE, Scope.FEEDBACK_WRITE],
    )
    purposes_choice = forms.MultipleChoiceField(
        label="Purposes",
        choices=Purpose.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[Purpose.DETECTION, Purpose.INVESTIGATION],
        required=False,
    )
    expires_days = forms.IntegerField(min_value=1, max_value=730, initial=90)

    class Meta:
        model = ApiToken
        fields = ["member", "name"]


@admin.register(ApiToken)
class ApiTokenAdmin(BeaconModelAdmin):
    admin_may_add = True
    form = TokenIssueForm
    list_display = [
        "prefix_label",
        "member",
        "name",
        "scope_list",
        "purpose_list",
        "state",
        "expires_at",
        "last_used_at",
    ]
    list_filter = ["member", "revoked_at"]
    list_select_related = ["member"]
    search_fields = ["prefix", "member__slug", "name"]
    raw_id_fields = ["member"]
    actions = ["revoke"]
    readonly_fields = [
        "prefix",
        "member",
        "name",
        "scopes",
        "purposes",
        "created_at",
        "created_by",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["member", "name", "scopes_choice", "purposes_choice", "expires_days"]
        return self.readonly_fields

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else []

    @admin.display(description="token", ordering="prefix")
    def prefix_label(self, obj: ApiToken) -> str:
        return f"{obj.prefix}…"

    @admin.display(description="scopes")
    def scope_list(self, obj: ApiToken) -> str:
        return ", ".join(obj.scopes)

    @admin.display(description="purposes")
    def purpose_list(self, obj: ApiToken) -> str:
        return ", ".join(obj.purposes)

    @admin.display(description="state")
    def state(self, obj: ApiToken) -> str:
        if obj.revoked_at is not None:
            return "revoked"
        return "expired" if obj.is_expired() else "usable"

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        data = form.cleaned_data
        issued = services.token_issue(
            member=data["member"],
            scopes=data["scopes_choice"],
            purposes=data["purposes_choice"],
            name=data.get("name") or "",
            expires_at=timezone.now() + timezone.timedelta(days=data["expires_days"]),
            actor=admin_actor(request),
        )
        obj.pk = issued.token.pk
        obj.prefix = issued.token.prefix
        request._issued_plaintext = issued.plaintext  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: Any = None
    ) -> HttpResponse:
        """Show the new token once, on this page only: it is in no redirect, message or log."""
        plaintext = getattr(request, "_issued_plaintext", None)
        if plaintext is None:
            return super().response_add(request, obj, post_url_continue)
        token = ApiToken.objects.select_related("member").get(pk=obj.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Token issued",
            "token": token,
            "plaintext": plaintext,
            "opts": self.model._meta,
        }
        response = TemplateResponse(request, "admin/accounts/apitoken/issued.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected tokens", permissions=["manage"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        actor = admin_actor(request)
        self.run_each(
            request,
            queryset.select_related("member"),
            "Revoked",
            lambda token: services.token_revoke(token=token, actor=actor),
        )


class GroupForm(forms.ModelForm):
    member_set = forms.ModelMultipleChoiceField(
        queryset=Member.objects.all(),
        required=False,
        label="Members",
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = SharingGroup
        fields = ["slug", "name", "description"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["member_set"].initial = list(self.instance.members.all())


@admin.register(SharingGroup)
class SharingGroupAdmin(BeaconModelAdmin):
    admin_may_add = True
    admin_may_change = True
    form = GroupForm
    list_display = ["slug", "name", "member_count", "created_at"]
    search_fields = ["slug", "name"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[SharingGroup]:
        return super().get_queryset(request).annotate(n_members=Count("members"))

    @admin.display(description="members", ordering="n_members")
    def member_count(self, obj: Any) -> int:
        return int(getattr(obj, "n_members", 0))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["slug"] if obj is not None else []

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ["slug", "name", "description", "member_set"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        actor, data = admin_actor(request), form.cleaned_data
        if not change:
            group = services.group_create(slug=data["slug"], name=data["name"], actor=actor)
            obj.pk = group.pk
        else:
            group = SharingGroup.objects.get(pk=obj.pk)
        if change and (group.name, group.description) != (data["name"], data["description"]):
            services.group_update(
                group=group, name=data["name"], description=data["description"], actor=actor
            )
        elif not change and data["description"]:
            services.group_update(
                group=group, name=data["name"], description=data["description"], actor=actor
            )
        wanted = {m.pk: m for m in data["member_set"]}
        current = {m.pk: m for m in group.members.all()}
        for pk in sorted(set(wanted) - set(current)):
            services.group_add_member(group=group, member=wanted[pk], actor=actor)
        for pk in sorted(set(current) - set(wanted)):
            services.group_remove_member(group=group, member=current[pk], actor=actor)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """Membership is changed by the services above, one audited change per member."""


def _unregister_unused() -> None:
    """Django's permission groups are not used (``accounts.roles`` decides access)."""
    from django.contrib.auth.models import Group

    if admin.site.is_registered(Group):
        admin.site.unregister(Group)


_unregister_unused()


def _replace_totp_admin() -> None:
    """django-otp's own device admin shows secrets and edits devices directly; administrators
    here only see who has enrolled and can reset a lost device (audited)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    if admin.site.is_registered(TOTPDevice):
        admin.site.unregister(TOTPDevice)

    @admin.register(TOTPDevice)
    class TOTPDeviceAdmin(BeaconModelAdmin):
        list_display = ["user", "name", "confirmed", "last_used_at", "created_at"]
        list_filter = ["confirmed"]
        list_select_related = ["user"]
        fields = ["user", "name", "confirmed", "last_used_at", "created_at"]
        readonly_fields = list(fields)
        actions = ["reset"]

        @admin.action(description="Reset: the user must enrol again", permissions=["manage"])
        def reset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
            actor = admin_actor(request)
            users = {device.user for device in queryset.select_related("user")}
            self.run_each(
                request,
                users,
                "Reset",
                lambda user: services.user_reset_second_factor(user=user, actor=actor),
            )


_replace_totp_admin()


def _replace_axes_admin() -> None:
    """django-axes' own admin shows the posted form data and lets superusers delete rows;
    here administrators see lockouts and sign-in logs (auditors the logs) and unlock a user
    through an audited service."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        if admin.site.is_registered(model):
            admin.site.unregister(model)

    @admin.register(AccessAttempt)
    class AccessAttemptAdmin(BeaconModelAdmin):
        list_display = ["username", "ip_address", "failures_since_start", "attempt_time"]
        search_fields = ["username"]
        fields = ["username", "ip_address", "path_info", "failures_since_start", "attempt_time"]
        readonly_fields = list(fields)
        actions = ["unlock"]

        @admin.action(description="Unlock the selected usernames", permissions=["manage"])
        def unlock(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
            actor = admin_actor(request)
            names = sorted({row.username for row in queryset if row.username})
            self.run_each(
                request,
                names,
                "Unlocked",
                lambda name: services.login_unlock(username=name, actor=actor),
            )

    class _SignInLogAdmin(BeaconModelAdmin):
        auditor_may_view = True
        list_display = ["username", "ip_address", "attempt_time"]
        list_filter = ["attempt_time"]
        search_fields = ["username"]
        fields = ["username", "ip_address", "user_agent", "path_info", "attempt_time"]
        readonly_fields = list(fields)

    admin.site.register(AccessLog, _SignInLogAdmin)
    admin.site.register(AccessFailureLog, _SignInLogAdmin)


_replace_axes_admin()
