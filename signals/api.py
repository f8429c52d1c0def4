"""Signal endpoints: upload, list, get/update/retract, match, text match, feed, feedback and
the registries."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Purpose, Scope
from exchange import jsonio
from exchange.api import (
    ExchangeApi,
    MatchRateThrottle,
    ProblemError,
    TokenRateThrottle,
    decode_cursor,
    encode_cursor,
    parse_limit,
    validation_error,
)
from exchange.audit import AuditAction
from exchange.jsonio import FastJSONParser
from signals import bulk, feedback, idempotency, services, types
from signals.models import ActionTaken, Category, Reaction
from signals.parsers import NdjsonAliasParser, NdjsonParser
from signals.serialization import feedback_out

ANY = OpenApiTypes.OBJECT


def _items_or_413(data: Any) -> Any:
    items = data.get("items") if isinstance(data, dict) else None
    if isinstance(items, list) and len(items) > settings.BEACON_MAX_BATCH_ITEMS:
        raise ProblemError(
            413,
            f"{len(items)} items; a request carries at most {settings.BEACON_MAX_BATCH_ITEMS}.",
            slug="batch-too-large",
        )
    return items


def _item_errors(exc: services.ItemErrors) -> ProblemError:
    bad = len({e["index"] for e in exc.errors if e["index"] is not None and e["index"] >= 0})
    detail = (
        f"{bad} item(s) are invalid; nothing was written."
        if bad
        else "The request is invalid; nothing was written."
    )
    return validation_error(exc.errors, detail)


def _default_purpose(api: ExchangeApi, request: Request) -> str:
    """Reads that do not name a purpose use the first the token allows, in the order
    investigation, detection; the audit records which."""
    asked = request.query_params.get("purpose")
    if asked:
        return api.require_purpose(asked)
    for purpose in (Purpose.INVESTIGATION, Purpose.DETECTION):
        if api.token.allows_purpose(purpose):
            return purpose
    raise PermissionDenied("This token allows no purpose that can read signals.")


SignalOut = inline_serializer(
    "Signal",
    {
        "id": serializers.IntegerField(),
        "type": serializers.CharField(),
        "indicator_id": serializers.IntegerField(),
        "value": serializers.CharField(allow_null=True),
        "category": serializers.CharField(),
        "tags": serializers.ListField(child=serializers.CharField()),
        "confidence": serializers.IntegerField(),
        "severity": serializers.CharField(),
        "tlp": serializers.CharField(),
        "owner": serializers.CharField(),
        "status": serializers.CharField(),
        "expires_at": serializers.DateTimeField(allow_null=True),
        "created_at": serializers.DateTimeField(),
        "updated_at": serializers.DateTimeField(),
        "bundle_id": serializers.CharField(allow_null=True),
        "frames": serializers.CharField(
            required=False, help_text="vpdq only: the frames, in the vpdq text format"
        ),
        "seq": serializers.IntegerField(),
        "feedback": serializers.DictField(child=serializers.IntegerField()),
    },
)


class SignalTypeListApi(ExchangeApi):
    """The type registry: names, value formats, storage and matching rules."""

    audit_action = AuditAction.API_REQUEST

    @extend_schema(
        responses={
            200: inline_serializer(
                "SignalTypes", {"types": serializers.ListField(child=serializers.DictField())}
            )
        }
    )
    def get(self, request: Request) -> Response:
        return Response({"types": [t.describe() for t in types.REGISTRY.values()]})


class CategoryListApi(ExchangeApi):
    """The category taxonomy."""

    audit_action = AuditAction.API_REQUEST

    @extend_schema(
        responses={
            200: inline_serializer(
                "Categories", {"categories": serializers.ListField(child=serializers.DictField())}
            )
        }
    )
    def get(self, request: Request) -> Response:
        categories = Category.objects.filter(active=True)
        return Response(
            {
                "categories": [
                    {
                        "code": c.code,
                        "name": c.name,
                        "description": c.description,
                        "references": c.references,
                        "required_attestations": c.required_attestations,
                        "default_ttl_days": c.default_ttl_days,
                    }
                    for c in categories
                ]
            }
        )


class SignalCollectionApi(ExchangeApi):
    """``POST``: bulk upsert (JSON or NDJSON, Idempotency-Key required). ``GET``: own signals."""

    required_scope = {"POST": Scope.SIGNALS_WRITE, "GET": Scope.SIGNALS_READ}
    parser_classes = [FastJSONParser, NdjsonParser, NdjsonAliasParser]

    @extend_schema(
        request={
            "application/json": inline_serializer(
                "SignalUpload", {"items": serializers.ListField(child=serializers.DictField())}
            ),
            "application/x-ndjson": OpenApiTypes.STR,
        },
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=True)
        ],
        responses={
            201: inline_serializer(
                "SignalUploadResult",
                {
                    "created": serializers.IntegerField(),
                    "updated": serializers.IntegerField(),
                    "signals": serializers.ListField(child=serializers.DictField()),
                },
            ),
            200: inline_serializer(
                "SignalUploadReplay",
                {
                    "created": serializers.IntegerField(),
                    "updated": serializers.IntegerField(),
                    "signals": serializers.ListField(child=serializers.DictField()),
                },
            ),
        },
    )
    def post(self, request: Request) -> HttpResponse:
        key = request.headers.get("Idempotency-Key", "").strip()
        if not key or len(key) > 200:
            raise ProblemError(
                400,
                "Send an Idempotency-Key header (1-200 characters) with every upload.",
                slug="idempotency-key-required",
            )
        with bulk.gc_paused():
            return self._upload(request, key)

    def _upload(self, request: Request, key: str) -> HttpResponse:
        raw = request.body
        items = _items_or_413(self.json_body())
        if items is None:
            raise validation_error(
                [{"index": None, "field": "items", "detail": 'send {"items": [...]} or NDJSON'}]
            )

        # One digest of the body serves the idempotency check and the audit event.
        digest = idempotency.body_hash(raw)

        def work(remember: Any) -> idempotency.Outcome:
            with transaction.atomic():
                try:
                    result = services.signal_submit(
                        member=self.member, items=items, actor=self.actor, request_digest=digest
                    )
                except services.ItemErrors as exc:
                    raise _item_errors(exc) from exc
                body = jsonio.dumps(result.as_dict())
                remember(201, body)
            return idempotency.Outcome(status=201, body=body)

        try:
            outcome = idempotency.run_once(member=self.member, key=key, digest=digest, work=work)
        except idempotency.KeyConflict as exc:
            raise ProblemError(exc.status, exc.detail, slug="idempotency-conflict") from exc
        response = HttpResponse(
            outcome.body, status=outcome.status, content_type="application/json"
        )
        if outcome.replayed:
            response["Idempotent-Replayed"] = "true"
        return response

    @extend_schema(
        parameters=[
            OpenApiParameter("cursor", str),
            OpenApiParameter("limit", int),
            OpenApiParameter("type", str),
            OpenApiParameter("category", str),
            OpenApiParameter("status", str, enum=["active", "retracted", "expired"]),
        ],
        responses={
            200: inline_serializer(
                "SignalPage",
                {
                    "signals": serializers.ListField(child=SignalOut),
                    "next_cursor": serializers.CharField(allow_null=True),
                },
            )
        },
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        after = 0
        if params.get("cursor"):
            state = decode_cursor(params["cursor"], salt="signals.list")
            if state.get("m") != self.member.pk:
                raise ProblemError(
                    400, "The cursor is invalid or has been altered.", slug="invalid-cursor"
                )
            after = int(state.get("after", 0))
        limit = parse_limit(params.get("limit"), default=100, maximum=1000)
        filters = {k: params[k] for k in ("type", "category", "status") if params.get(k)}
        signals, last = services.signal_list(
            member=self.member, actor=self.actor, after_id=after, limit=limit, filters=filters
        )
        next_cursor = (
            encode_cursor({"after": last, "m": self.member.pk}, salt="signals.list")
            if last
            else None
        )
        return Response({"signals": signals, "next_cursor": next_cursor})


class SignalDetailApi(ExchangeApi):
    """``GET`` one visible signal; ``PATCH`` and ``DELETE`` (retract) by its owner."""

    required_scope = {
        "GET": Scope.SIGNALS_READ,
        "PATCH": Scope.SIGNALS_WRITE,
        "DELETE": Scope.SIGNALS_WRITE,
    }

    @extend_schema(
        parameters=[OpenApiParameter("purpose", str, enum=Purpose.values)],
        responses={200: SignalOut},
    )
    def get(self, request: Request, signal_id: int) -> Response:
        purpose = _default_purpose(self, request)
        try:
            return Response(
                services.signal_get(
                    member=self.member, purpose=purpose, signal_id=signal_id, actor=self.actor
                )
            )
        except services.NotFound:
            raise ProblemError(404, "No such signal.", slug="not-found") from None

    @extend_schema(request=ANY, responses={200: SignalOut})
    def patch(self, request: Request, signal_id: int) -> Response:
        try:
            return Response(
                services.signal_update(
                    member=self.member,
                    signal_id=signal_id,
                    changes=self.json_body(),
                    actor=self.actor,
                )
            )
        except services.NotFound:
            raise ProblemError(404, "No such signal.", slug="not-found") from None
        except services.ItemErrors as exc:
            raise _item_errors(exc) from exc

    @extend_schema(
        request=inline_serializer("Retraction", {"reason": serializers.CharField()}),
        responses={200: SignalOut},
    )
    def delete(self, request: Request, signal_id: int) -> Response:
        body = self.json_body() if request.body else {}
        reason = body.get("reason") if isinstance(body, dict) else None
        reason = reason or request.query_params.get("reason", "")
        try:
            signal = services.signal_retract_own(
                member=self.member, signal_id=signal_id, reason=str(reason), actor=self.actor
            )
        except services.NotFound:
            raise ProblemError(404, "No such signal.", slug="not-found") from None
        except services.ItemErrors as exc:
            raise _item_errors(exc) from exc
        return Response(
            {
                "id": signal.pk,
                "status": signal.status,
                "retracted_at": signal.retracted_at,
                "reason": signal.retract_reason,
            }
        )


MatchIn = inline_serializer(
    "MatchRequest",
    {
        "purpose": serializers.ChoiceField(choices=Purpose.values),
        "items": serializers.ListField(child=serializers.DictField()),
    },
)


class MatchApi(ExchangeApi):
    """Match up to 10,000 values of any type against every signal the member may see."""

    required_scope = Scope.SIGNALS_READ
    throttle_classes = [TokenRateThrottle, MatchRateThrottle]

    @extend_schema(
        request=MatchIn,
        responses={
            200: inline_serializer(
                "MatchResult",
                {
                    "results": serializers.ListField(child=serializers.DictField(), required=False),
                    "aggregate": serializers.DictField(required=False),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        body = self.json_body()
        if not isinstance(body, dict):
            raise validation_error(
                [
                    {
                        "index": None,
                        "field": "",
                        "detail": "send a JSON object with purpose and items",
                    }
                ]
            )
        purpose = self.require_purpose(body.get("purpose"))
        items = _items_or_413(body)
        try:
            return Response(
                services.signal_match(
                    member=self.member, purpose=purpose, items=items, actor=self.actor
                )
            )
        except services.ItemErrors as exc:
            raise _item_errors(exc) from exc


class MatchTextApi(ExchangeApi):
    """The shared keywords that occur in a text, with character spans."""

    required_scope = Scope.SIGNALS_READ
    throttle_classes = [TokenRateThrottle, MatchRateThrottle]

    @extend_schema(
        request=inline_serializer(
            "MatchTextRequest",
            {
                "purpose": serializers.ChoiceField(choices=Purpose.values),
                "text": serializers.CharField(),
                "lang": serializers.CharField(required=False),
            },
        ),
        responses={
            200: inline_serializer(
                "MatchTextResult",
                {
                    "matches": serializers.ListField(child=serializers.DictField(), required=False),
                    "aggregate": serializers.DictField(required=False),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        body = self.json_body()
        if not isinstance(body, dict):
            raise validation_error(
                [{"index": None, "field": "", "detail": "send a JSON object with purpose and text"}]
            )
        purpose = self.require_purpose(body.get("purpose"))
        try:
            return Response(
                services.signal_match_text(
                    member=self.member,
                    purpose=purpose,
                    text=body.get("text"),
                    lang=body.get("lang"),
                    actor=self.actor,
                )
            )
        except services.ItemErrors as exc:
            raise _item_errors(exc) from exc


class FeedApi(ExchangeApi):
    """Every change visible to the caller, in order, with signed cursors."""

    required_scope = Scope.SIGNALS_READ

    @extend_schema(
        parameters=[
            OpenApiParameter("purpose", str, enum=Purpose.values, required=True),
            OpenApiParameter("cursor", str),
            OpenApiParameter("limit", int),
        ],
        responses={
            200: inline_serializer(
                "FeedPage",
                {
                    "events": serializers.ListField(child=serializers.DictField()),
                    "next_cursor": serializers.CharField(),
                    "more": serializers.BooleanField(),
                },
            )
        },
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        purpose = self.require_purpose(params.get("purpose"))
        limit = parse_limit(params.get("limit"), default=1000, maximum=10_000)
        cursor = None
        if params.get("cursor"):
            cursor = decode_cursor(params["cursor"], salt="signals.feed")
            if cursor.get("m") != self.member.pk:
                raise ProblemError(
                    400, "The cursor is invalid or has been altered.", slug="invalid-cursor"
                )
        try:
            page = services.signal_feed(
                member=self.member, purpose=purpose, cursor=cursor, limit=limit, actor=self.actor
            )
        except services.PurposeNotAllowed as exc:
            raise PermissionDenied(str(exc)) from exc
        return Response(
            {
                "events": page.events,
                "next_cursor": encode_cursor(page.next_cursor, salt="signals.feed"),
                "more": page.more,
            }
        )


FeedbackOut = inline_serializer(
    "Feedback",
    {
        "id": serializers.IntegerField(),
        "signal_id": serializers.IntegerField(),
        "reaction": serializers.ChoiceField(choices=Reaction.values),
        "action_taken": serializers.ListField(
            child=serializers.ChoiceField(choices=ActionTaken.values)
        ),
        "note": serializers.CharField(),
        "member": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "updated_at": serializers.DateTimeField(),
        "created": serializers.BooleanField(),
        "replaced": serializers.ListField(child=serializers.CharField()),
    },
)


class SignalFeedbackApi(ExchangeApi):
    """Record a reaction to a signal the caller can see; its owner is told by webhook."""

    required_scope = Scope.FEEDBACK_WRITE

    @extend_schema(
        request=inline_serializer(
            "FeedbackRequest",
            {
                "reaction": serializers.ChoiceField(choices=Reaction.values),
                "note": serializers.CharField(required=False, max_length=feedback.MAX_NOTE_CHARS),
                "action_taken": serializers.ListField(
                    child=serializers.ChoiceField(choices=ActionTaken.values), required=False
                ),
                "purpose": serializers.ChoiceField(
                    choices=[Purpose.DETECTION, Purpose.INVESTIGATION], required=False
                ),
            },
        ),
        responses={201: FeedbackOut, 200: FeedbackOut},
    )
    def post(self, request: Request, signal_id: int) -> Response:
        body = self.json_body()
        asked = body.get("purpose") if isinstance(body, dict) else None
        if asked == Purpose.RESEARCH:
            raise validation_error(
                [
                    {
                        "index": None,
                        "field": "purpose",
                        "detail": "feedback follows a review: name detection or investigation",
                    }
                ]
            )
        purpose = self.require_purpose(asked) if asked else _default_purpose(self, request)
        try:
            result = feedback.feedback_create(
                member=self.member,
                signal_id=signal_id,
                purpose=purpose,
                body=body,
                actor=self.actor,
            )
        except services.NotFound:
            raise ProblemError(404, "No such signal.", slug="not-found") from None
        except feedback.OwnSignal:
            raise validation_error(
                [
                    {
                        "index": None,
                        "field": "",
                        "detail": "feedback is for signals you received, not your own",
                    }
                ]
            ) from None
        except services.ItemErrors as exc:
            raise _item_errors(exc) from exc
        return Response(
            {
                **feedback_out(result.feedback),
                "created": result.created,
                "replaced": result.replaced,
            },
            status=201 if result.created else 200,
        )
