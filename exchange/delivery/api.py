"""Webhook subscription and delivery endpoints (scope ``subscriptions:manage``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Scope
from exchange.api import ExchangeApi, ProblemError, decode_cursor, encode_cursor, parse_limit
from exchange.api import validation_error as _validation_error
from exchange.delivery import services
from exchange.delivery.models import Delivery, Subscription, WebhookEvent

_CURSOR_SALT = "delivery.list"


def subscription_out(subscription: Subscription) -> dict[str, Any]:
    return {
        "id": subscription.pk,
        "url": subscription.url,
        "description": subscription.description,
        "types": subscription.types,
        "categories": subscription.categories,
        "events": subscription.events or list(WebhookEvent.values),
        "status": subscription.status,
        "status_reason": subscription.status_reason,
        "previous_secret_expires_at": subscription.previous_secret_expires_at,
        "created_at": subscription.created_at,
    }


def delivery_out(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.pk,
        "subscription_id": delivery.subscription_id,
        "webhook_id": delivery.webhook_id,
        "kind": delivery.kind,
        "status": delivery.status,
        "events": delivery.event_count,
        "attempts": delivery.attempts,
        "redeliveries": delivery.redeliveries,
        "next_attempt_at": delivery.next_attempt_at if delivery.status == "pending" else None,
        "last_attempt_at": delivery.last_attempt_at,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "delivered_at": delivery.delivered_at,
        "superseded_by": delivery.superseded_by_id,
        "created_at": delivery.created_at,
    }


SubscriptionOut = inline_serializer(
    "Subscription",
    {
        "id": serializers.IntegerField(),
        "url": serializers.URLField(),
        "description": serializers.CharField(),
        "types": serializers.ListField(child=serializers.CharField()),
        "categories": serializers.ListField(child=serializers.CharField()),
        "events": serializers.ListField(child=serializers.CharField()),
        "status": serializers.ChoiceField(choices=["active", "failing", "disabled"]),
        "status_reason": serializers.CharField(),
        "previous_secret_expires_at": serializers.DateTimeField(allow_null=True),
        "created_at": serializers.DateTimeField(),
    },
)
SubscriptionWithSecret = inline_serializer(
    "SubscriptionWithSecret",
    {
        "id": serializers.IntegerField(),
        "url": serializers.URLField(),
        "description": serializers.CharField(),
        "types": serializers.ListField(child=serializers.CharField()),
        "categories": serializers.ListField(child=serializers.CharField()),
        "events": serializers.ListField(child=serializers.CharField()),
        "status": serializers.CharField(),
        "status_reason": serializers.CharField(),
        "previous_secret_expires_at": serializers.DateTimeField(allow_null=True),
        "created_at": serializers.DateTimeField(),
        "secret": serializers.CharField(help_text="whsec_… — shown once"),
    },
)
DeliveryOut = inline_serializer(
    "Delivery",
    {
        "id": serializers.IntegerField(),
        "subscription_id": serializers.IntegerField(),
        "webhook_id": serializers.CharField(),
        "kind": serializers.ChoiceField(choices=["batch", "ping"]),
        "status": serializers.ChoiceField(choices=["pending", "succeeded", "dead", "cancelled"]),
        "events": serializers.IntegerField(),
        "attempts": serializers.IntegerField(),
        "redeliveries": serializers.IntegerField(),
        "next_attempt_at": serializers.DateTimeField(allow_null=True),
        "last_attempt_at": serializers.DateTimeField(allow_null=True),
        "last_status_code": serializers.IntegerField(allow_null=True),
        "last_error": serializers.CharField(),
        "delivered_at": serializers.DateTimeField(allow_null=True),
        "superseded_by": serializers.IntegerField(allow_null=True),
        "created_at": serializers.DateTimeField(),
    },
)
SubscriptionIn = inline_serializer(
    "SubscriptionCreate",
    {
        "url": serializers.URLField(),
        "types": serializers.ListField(child=serializers.CharField(), required=False),
        "categories": serializers.ListField(child=serializers.CharField(), required=False),
        "events": serializers.ListField(
            child=serializers.ChoiceField(choices=WebhookEvent.values), required=False
        ),
        "description": serializers.CharField(required=False),
    },
)


@contextmanager
def answering(what: str = "subscription") -> Iterator[None]:
    """Turn the delivery services' refusals into problems: a ``what`` the member may not see
    is a 404, invalid input a 422 (an unsafe URL says so), a state conflict a 409."""
    try:
        yield
    except services.NotFound:
        raise ProblemError(404, f"No such {what}.", slug="not-found") from None
    except services.InvalidRequest as exc:
        error = _validation_error(exc.errors, exc.detail or "The request has invalid fields.")
        if any(e["field"] == "url" for e in exc.errors):
            error.slug = "unsafe-webhook-url"
        raise error from exc
    except services.Conflict as exc:
        raise ProblemError(409, str(exc), slug="conflict") from exc


class SubscriptionCollectionApi(ExchangeApi):
    """``POST``: create a webhook subscription (the secret is shown once). ``GET``: list."""

    required_scope = Scope.SUBSCRIPTIONS_MANAGE

    @extend_schema(request=SubscriptionIn, responses={201: SubscriptionWithSecret})
    def post(self, request: Request) -> Response:
        body = self.json_body()
        if not isinstance(body, dict):
            raise _validation_error(
                [{"index": None, "field": "", "detail": "send a JSON object with a url"}]
            )
        unknown = sorted(set(body) - {"url", "types", "categories", "events", "description"})
        if unknown:
            raise _validation_error(
                [{"index": None, "field": f, "detail": f"unknown field {f!r}"} for f in unknown]
            )
        with answering():
            created = services.subscription_create(
                member=self.member,
                url=body.get("url"),
                types=body.get("types"),
                categories=body.get("categories"),
                events=body.get("events"),
                description=body.get("description") or "",
                actor=self.actor,
            )
        return Response(
            {**subscription_out(created.subscription), "secret": created.secret}, status=201
        )

    @extend_schema(
        responses={
            200: inline_serializer(
                "SubscriptionList", {"subscriptions": serializers.ListField(child=SubscriptionOut)}
            )
        }
    )
    def get(self, request: Request) -> Response:
        rows = services.subscription_list(member=self.member, actor=self.actor)
        return Response({"subscriptions": [subscription_out(s) for s in rows]})


class SubscriptionDetailApi(ExchangeApi):
    """``GET`` one subscription; ``DELETE`` stops it (pending deliveries are cancelled)."""

    required_scope = Scope.SUBSCRIPTIONS_MANAGE

    @extend_schema(responses={200: SubscriptionOut})
    def get(self, request: Request, subscription_id: int) -> Response:
        with answering():
            subscription = services.subscription_get(
                member=self.member, subscription_id=subscription_id, actor=self.actor
            )
        return Response(subscription_out(subscription))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, subscription_id: int) -> Response:
        with answering():
            services.subscription_delete(
                member=self.member, subscription_id=subscription_id, actor=self.actor
            )
        return Response(status=204)


class SubscriptionRotateSecretApi(ExchangeApi):
    """A new secret, shown once; the old one keeps signing too for 24 hours."""

    required_scope = Scope.SUBSCRIPTIONS_MANAGE

    @extend_schema(request=None, responses={200: SubscriptionWithSecret})
    def post(self, request: Request, subscription_id: int) -> Response:
        with answering():
            rotated = services.subscription_rotate_secret(
                member=self.member, subscription_id=subscription_id, actor=self.actor
            )
        return Response({**subscription_out(rotated.subscription), "secret": rotated.secret})


class SubscriptionResumeApi(ExchangeApi):
    """Send to a disabled (410) or failing endpoint again."""

    required_scope = Scope.SUBSCRIPTIONS_MANAGE

    @extend_schema(request=None, responses={200: SubscriptionOut})
    def post(self, request: Request, subscription_id: int) -> Response:
        with answering():
            subscription = services.subscription_resume_own(
                member=self.member, subscription_id=subscription_id, actor=self.actor
            )
        return Response(subscription_out(subscription))


class SubscriptionTestApi(ExchangeApi):
    """Send a signed ping to the endpoint now; answers how the endpoint responded."""

    required_scope = Scope.SUBSCRIPTIONS_MANAGE

    @extend_schema(request=None, responses={200: DeliveryOut})
    def post(self, request: Request, subscription_id: int) -> Response:
        with answering():
            delivery = services.subscription_test(
                member=self.member, subscription_id=subscription_id, actor=self.actor
            )
        return Response(delivery_out(delivery))


class SubscriptionDeliveryListApi(ExchangeApi):
    """A subscription's deliveries, newest first, with status, attempts and last error."""

    required_scope = Scope.SUBSCRIPTIONS_MANAGE

    @extend_schema(
        parameters=[
            OpenApiParameter("cursor", str),
            OpenApiParameter("limit", int),
            OpenApiParameter("status", str, enum=["pending", "succeeded", "dead", "cancelled"]),
        ],
        responses={
            200: inline_serializer(
                "DeliveryPage",
                {
                    "deliveries": serializers.ListField(child=DeliveryOut),
                    "next_cursor": serializers.CharField(allow_null=True),
                },
            )
        },
    )
    def get(self, request: Request, subscription_id: int) -> Response:
        params = request.query_params
        before = None
        if params.get("cursor"):
            state = decode_cursor(params["cursor"], salt=_CURSOR_SALT)
            if state.get("s") != subscription_id or state.get("m") != self.member.pk:
                raise ProblemError(
                    400, "The cursor is invalid or has been altered.", slug="invalid-cursor"
                )
            before = int(state.get("before", 0)) or None
        limit = parse_limit(params.get("limit"), default=100, maximum=1000)
        with answering():
            rows, last = services.delivery_list(
                member=self.member,
                subscription_id=subscription_id,
                actor=self.actor,
                before_id=before,
                limit=limit,
                status=params.get("status") or None,
            )
        cursor = (
            encode_cursor(
                {"before": last, "s": subscription_id, "m": self.member.pk}, salt=_CURSOR_SALT
            )
            if last
            else None
        )
        return Response({"deliveries": [delivery_out(d) for d in rows], "next_cursor": cursor})


class DeliveryRedeliverApi(ExchangeApi):
    """Send a delivery again (same ``webhook-id`` and body); its retry schedule restarts."""

    required_scope = Scope.SUBSCRIPTIONS_MANAGE

    @extend_schema(request=None, responses={202: DeliveryOut})
    def post(self, request: Request, delivery_id: int) -> Response:
        with answering("delivery"):
            delivery = services.delivery_redeliver_own(
                member=self.member, delivery_id=delivery_id, actor=self.actor
            )
        return Response(delivery_out(delivery), status=202)
