"""The audit API: signed checkpoints, the public key and the streamed export of events."""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Scope
from exchange.api import ExchangeApi, decode_cursor, encode_cursor, parse_limit, validation_error
from exchange.audit import AuditAction, signing
from exchange.audit.models import AuditCheckpoint

_CHECKPOINT_CURSOR_SALT = "beacon.audit.checkpoints"


def _int_param(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise validation_error(
            [{"index": None, "field": name, "detail": f"{name} must be an integer."}]
        ) from None


class AuditCheckpointsApi(ExchangeApi):
    """The signed checkpoints ``(seq, hash, at)``, oldest first, cursor-paginated."""

    required_scope = Scope.AUDIT_READ
    audit_action = AuditAction.AUDIT_READ

    @extend_schema(
        parameters=[
            OpenApiParameter("since_seq", int, description="Only checkpoints after this seq."),
            OpenApiParameter("limit", int),
            OpenApiParameter("cursor", str),
        ],
        responses={
            200: inline_serializer(
                "AuditCheckpoints",
                {
                    "checkpoints": serializers.ListField(child=serializers.DictField()),
                    "next_cursor": serializers.CharField(allow_null=True),
                },
            )
        },
    )
    def get(self, request: Request) -> Response:
        limit = parse_limit(request.query_params.get("limit"), default=500, maximum=5000)
        after = _int_param(request.query_params.get("since_seq"), "since_seq") or 0
        cursor = request.query_params.get("cursor")
        if cursor:
            after = int(decode_cursor(cursor, salt=_CHECKPOINT_CURSOR_SALT).get("after", 0))
        rows = list(AuditCheckpoint.objects.filter(seq__gt=after).order_by("seq")[: limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = (
            encode_cursor({"after": rows[-1].seq}, salt=_CHECKPOINT_CURSOR_SALT) if more else None
        )
        return Response(
            {"checkpoints": [row.as_dict() for row in rows], "next_cursor": next_cursor}
        )


class AuditPublicKeyApi(ExchangeApi):
    """The exchange's Ed25519 public key that signs checkpoints and export seals."""

    audit_action = AuditAction.AUDIT_READ

    @extend_schema(
        responses={
            200: inline_serializer(
                "AuditPublicKey",
                {
                    "algorithm": serializers.CharField(),
                    "key_id": serializers.CharField(),
                    "public_key": serializers.CharField(),
                },
            )
        }
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "algorithm": "Ed25519",
                "key_id": signing.key_id(),
                "public_key": signing.public_key_pem(),
            }
        )


urlpatterns = [
    path("audit/checkpoints", AuditCheckpointsApi.as_view(), name="audit-checkpoints"),
    path("audit/public-key", AuditPublicKeyApi.as_view(), name="audit-public-key"),
]
