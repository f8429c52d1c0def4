"""The audit API: signed checkpoints, the public key and the streamed export of events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.http import StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import MemberKind, Scope
from client.auditchain import load_public_keys
from exchange import audit
from exchange.api import (
    ExchangeApi,
    ProblemError,
    decode_cursor,
    encode_cursor,
    parse_limit,
    validation_error,
)
from exchange.audit import AuditAction, signing
from exchange.audit.export import FORMATS, ExportQuery, stream_export
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
                    "previous": serializers.ListField(child=serializers.DictField()),
                },
            )
        }
    )
    def get(self, request: Request) -> Response:
        previous = [
            {"key_id": kid, "public_key": pem}
            for pem in signing.previous_public_keys()
            for kid in load_public_keys([pem.encode()])
        ]
        return Response(
            {
                "algorithm": "Ed25519",
                "key_id": signing.key_id(),
                "public_key": signing.public_key_pem(),
                "previous": previous,
            }
        )


def _time_param(value: Any, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    parsed = parse_datetime(str(value))
    if parsed is None:
        day = parse_date(str(value))
        if day is not None:
            parsed = datetime(day.year, day.month, day.day)
    if parsed is None:
        raise validation_error(
            [{"index": None, "field": name, "detail": f"{name} must be an ISO 8601 date or time."}]
        )
    return parsed if parsed.tzinfo else timezone.make_aware(parsed, UTC)


class AuditEventsApi(ExchangeApi):
    """Stream the audit log as JSONL, CSV or JSON, with its checkpoints and a signed seal.

    The exchange's own tokens (auditors) see every member; any other member's ``audit:read``
    token sees the events it caused and the disclosures of its own signals, redacted to who
    received which, when and by which channel. Every export is itself audited.
    """

    required_scope = Scope.AUDIT_READ

    def perform_content_negotiation(self, request: Any, force: bool = False) -> Any:
        # ``format`` names the export format here, not a DRF renderer.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("since", str, description="ISO 8601 start (inclusive)."),
            OpenApiParameter("until", str, description="ISO 8601 end (exclusive)."),
            OpenApiParameter("member", str, description="Only events by or about this member."),
            OpenApiParameter("action", str, description="Only this action code."),
            OpenApiParameter("format", str, enum=list(FORMATS), default="jsonl"),
        ],
        responses={(200, "application/x-ndjson"): str, (200, "text/csv"): str},
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        params = request.query_params
        fmt = params.get("format") or "jsonl"
        if fmt not in FORMATS:
            raise validation_error(
                [{"index": None, "field": "format", "detail": "format must be jsonl, csv or json."}]
            )
        auditor = self.member.kind == MemberKind.EXCHANGE
        member = params.get("member") or None
        if member and not auditor and member != self.member.slug:
            raise ProblemError(403, "Only auditors may export other members' events.")
        query = ExportQuery(
            since=_time_param(params.get("since"), "since"),
            until=_time_param(params.get("until"), "until"),
            member=member if auditor else None,
            action=params.get("action") or None,
            viewer=None if auditor else self.member.slug,
        )
        with transaction.atomic():
            audit.record(
                actor=self.actor,
                action=AuditAction.AUDIT_EXPORT,
                params=query.filters(),
                target="audit/events",
                details={"format": fmt, "scope": query.scope},
            )
        response = StreamingHttpResponse(stream_export(query, fmt), content_type=FORMATS[fmt])
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="beacon-audit-{stamp}.{fmt}"'
        response["X-Audit-Scope"] = query.scope
        return response


urlpatterns = [
    path("audit/events", AuditEventsApi.as_view(), name="audit-events"),
    path("audit/checkpoints", AuditCheckpointsApi.as_view(), name="audit-checkpoints"),
    path("audit/public-key", AuditPublicKeyApi.as_view(), name="audit-public-key"),
]
