"""Exchange-wide endpoints: health and the caller's identity."""

from __future__ import annotations

from typing import Any

from django.db import connection
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from exchange.api import ExchangeApi
from exchange.audit import AuditAction
from exchange.health import broker_status


class HealthApi(ExchangeApi):
    """Liveness of the parts the exchange needs. No authentication; never audited."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(
        auth=[],
        responses={
            200: inline_serializer(
                "Health",
                {
                    "status": serializers.CharField(),
                    "database": serializers.CharField(),
                    "broker": serializers.CharField(),
                },
            ),
            503: inline_serializer(
                "HealthDown",
                {
                    "status": serializers.CharField(),
                    "database": serializers.CharField(),
                    "broker": serializers.CharField(),
                },
            ),
        },
    )
    def get(self, request: Request) -> Response:
        parts = {"database": database_status(), "broker": broker_status()}
        healthy = all(v == "ok" for v in parts.values())
        return Response(
            {"status": "ok" if healthy else "unavailable", **parts}, status=200 if healthy else 503
        )

    def _audit_unrecorded(self, response: Any) -> None:
        # Health is polled by load balancers every few seconds: auditing it would drown the log.
        return None


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        connection.close_if_unusable_or_obsolete()
        return f"down: {type(exc).__name__}"


class MeOut(serializers.Serializer):
    member = inline_serializer(
        "MeMember",
        {
            "slug": serializers.CharField(),
            "name": serializers.CharField(),
            "kind": serializers.CharField(),
            "status": serializers.CharField(),
        },
    )
    token = inline_serializer(
        "MeToken",
        {
            "prefix": serializers.CharField(),
            "scopes": serializers.ListField(child=serializers.CharField()),
            "purposes": serializers.ListField(child=serializers.CharField()),
            "expires_at": serializers.DateTimeField(),
        },
    )


class MeApi(ExchangeApi):
    """The calling member and its token."""

    audit_action = AuditAction.MEMBER_READ

    @extend_schema(responses={200: MeOut})
    def get(self, request: Request) -> Response:
        member, token = self.member, self.token
        return Response(
            {
                "member": {
                    "slug": member.slug,
                    "name": member.name,
                    "kind": member.kind,
                    "status": member.status,
                },
                "token": {
                    "prefix": token.prefix,
                    "scopes": token.scopes,
                    "purposes": token.purposes,
                    "expires_at": token.expires_at,
                },
            }
        )
