"""The API base: every ``/api/`` view derives from ``ExchangeApi``.

It wires bearer-token authentication, scope and purpose checks, per-token throttling, the
problem+json error format and the audit of every request (refused ones included).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import secrets
from typing import Any, ClassVar

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.http import Http404
from rest_framework import exceptions
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from accounts.models import ApiToken, Member, Purpose
from exchange import audit, metrics
from exchange.audit import Actor, AuditAction
from exchange.audit.log import recorded_and_kept, recorded_count, reset_recorded
from exchange.problems import PROBLEM_CONTENT_TYPE, problem_body


class AuditMissingError(AssertionError):
    """A member request left no audit event (raised only with ``BEACON_AUDIT_STRICT``)."""


class ProblemError(exceptions.APIException):
    """An API error with an explicit status, problem slug and optional per-item errors."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        *,
        slug: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail=detail)
        self.status_code = status_code
        self.slug = slug
        self.errors = errors


def validation_error(
    errors: list[dict[str, Any]], detail: str = "The request has invalid fields."
) -> ProblemError:
    return ProblemError(422, detail, slug="validation-error", errors=errors)


# A sliding log of request times per token and quota, in one atomic step: drop the times that
# left the window; admit the request (and log its time) if fewer than the limit remain, else
# answer the oldest time still in the window, from which the wait follows.
_SLIDING_LOG = """
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('EXPIRE', KEYS[1], math.ceil(window))
  return false
end
return redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
"""


class TokenRateThrottle(SimpleRateThrottle):
    """Per-token request rate; bulk match has its own, smaller quota (it is an oracle).

    With Redis, each quota is checked and spent in one atomic script, so concurrent requests
    from many web processes can never exceed it together (DRF's throttle reads and writes the
    history in two steps), in one round trip instead of two. The embedded back end keeps DRF's
    history in Django's cache."""

    scope_attr = "BEACON_THROTTLE_RATE"

    def __init__(self) -> None:
        self.rate = getattr(settings, self.scope_attr)
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def allow_request(self, request: Request, view: Any) -> bool:
        client = metrics.redis_client()
        if client is None:
            return super().allow_request(request, view)
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self.now = self.timer()
        oldest = client.register_script(_SLIDING_LOG)(
            keys=[f"beacon:{key}"],
            args=[self.now, self.duration, self.num_requests, f"{self.now}:{secrets.token_hex(4)}"],
        )
        self.history = [] if oldest is None else [float(oldest)]
        return oldest is None

    def wait(self) -> float | None:
        if metrics.redis_client() is None:
            return super().wait()
        # One slot frees when the oldest request in the window leaves it.
        return max(0.0, self.duration - (self.now - self.history[0])) if self.history else None

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        token = getattr(request, "auth", None)
        if not isinstance(token, ApiToken):
            return None
        return f"throttle:{self.scope_attr}:{token.prefix}"


class MatchRateThrottle(TokenRateThrottle):
    scope_attr = "BEACON_MATCH_THROTTLE_RATE"


class WriteRateThrottle(TokenRateThrottle):
    """Per-token quota of writes (uploads of up to 10,000 items, updates, retractions,
    feedback, subscriptions), apart from reads: a client paging the feed does not spend its
    upload budget, and a runaway uploader is stopped before the general quota."""

    scope_attr = "BEACON_WRITE_THROTTLE_RATE"

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


def _flatten_drf_errors(detail: Any, prefix: str = "") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            out.extend(_flatten_drf_errors(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(detail, list):
        if all(not isinstance(v, (dict, list)) for v in detail):
            out.extend({"index": None, "field": prefix or None, "detail": str(v)} for v in detail)
        else:
            for i, value in enumerate(detail):
                out.extend(_flatten_drf_errors(value, f"{prefix}[{i}]"))
    else:
        out.append({"index": None, "field": prefix or None, "detail": str(detail)})
    return out


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler that answers every error as RFC 9457 problem+json."""
    request = context.get("request")
    request_id = getattr(request, "request_id", "") if request is not None else ""
    headers: dict[str, str] = {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    if isinstance(exc, ProblemError):
        body = problem_body(
            status=exc.status_code,
            detail=str(exc.detail),
            request_id=request_id,
            slug=exc.slug,
            errors=exc.errors,
        )
    elif isinstance(exc, exceptions.ValidationError):
        body = problem_body(
            status=422,
            detail="The request has invalid fields.",
            request_id=request_id,
            slug="validation-error",
            errors=_flatten_drf_errors(exc.detail),
        )
        exc.status_code = 422
    elif isinstance(exc, exceptions.ParseError):
        body = problem_body(
            status=400,
            detail=f"The body is not valid: {exc.detail}",
            request_id=request_id,
            slug="malformed-body",
        )
    elif isinstance(exc, exceptions.Throttled):
        wait = math.ceil(getattr(exc, "wait", None) or 1)
        headers["Retry-After"] = str(max(wait, 1))
        body = problem_body(
            status=429,
            detail=f"Rate limit exceeded; retry in {headers['Retry-After']} s.",
            request_id=request_id,
            slug="rate-limited",
        )
    elif isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        detail = (
            str(exc.detail)
            if isinstance(exc, exceptions.AuthenticationFailed)
            else "Send 'Authorization: Bearer bcn_…'."
        )
        body = problem_body(
            status=401, detail=detail, request_id=request_id, slug="unauthenticated"
        )
        headers["WWW-Authenticate"] = 'Bearer realm="beacon"'
        exc.status_code = 401
    elif isinstance(exc, exceptions.APIException):
        body = problem_body(status=exc.status_code, detail=str(exc.detail), request_id=request_id)
    else:
        return None
    response = Response(
        body, status=body["status"], headers=headers, content_type=PROBLEM_CONTENT_TYPE
    )
    return response


class ExchangeApi(APIView):
    """Base view for every member-facing endpoint.

    Subclasses set ``required_scope`` (``None`` for any authenticated token) and, for plain
    reads that do not go through an auditing service, ``audit_action``. A request that no
    service audited is recorded here, so every authenticated or refused request leaves an event.
    """

    required_scope: ClassVar[str | dict[str, str] | None] = None
    audit_action: ClassVar[AuditAction | None] = None
    throttle_classes = [TokenRateThrottle, WriteRateThrottle]

    request: Request

    # -- identity --------------------------------------------------------------------------
    @property
    def member(self) -> Member:
        return self.request.user  # type: ignore[return-value]

    @property
    def token(self) -> ApiToken:
        return self.request.auth  # type: ignore[return-value]

    @property
    def actor(self) -> Actor:
        return Actor.for_token(self.token, request=self.request)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        scope = (
            self.required_scope.get(request.method or "")
            if isinstance(self.required_scope, dict)
            else self.required_scope
        )
        if scope and not self.token.has_scope(scope):
            raise exceptions.PermissionDenied(f"This token lacks the {scope!r} scope.")

    def require_purpose(self, value: Any) -> str:
        """Validate the purpose a read names and check the token may use it."""
        if value in (None, ""):
            raise validation_error(
                [
                    {
                        "index": None,
                        "field": "purpose",
                        "detail": f"Name a purpose: one of {', '.join(Purpose.values)}.",
                    }
                ]
            )
        if value not in Purpose.values:
            raise validation_error(
                [
                    {
                        "index": None,
                        "field": "purpose",
                        "detail": f"Unknown purpose {value!r}; use one of {', '.join(Purpose.values)}.",
                    }
                ]
            )
        if not self.token.allows_purpose(value):
            raise exceptions.PermissionDenied(
                f"This token may not be used for the {value!r} purpose."
            )
        return str(value)

    def json_body(self) -> Any:
        try:
            return self.request.data
        except exceptions.ParseError:
            raise
        except (UnicodeDecodeError, ValueError) as exc:
            raise exceptions.ParseError(str(exc)) from exc

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response):
            response.add_post_render_callback(_release_after_render)
        return response

    # -- audit of every request ------------------------------------------------------------
    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        token = reset_recorded()
        try:
            response = super().dispatch(request, *args, **kwargs)
            if recorded_count() == 0 or (response.status_code >= 400 and not recorded_and_kept()):
                self._audit_unrecorded(response)
            if settings.BEACON_AUDIT_STRICT and recorded_count() == 0:
                drf_request = getattr(self, "request", None)
                if isinstance(getattr(drf_request, "_auth", None), ApiToken):
                    raise AuditMissingError(
                        f"{request.method} {request.path} answered {response.status_code} "
                        "and left no audit event"
                    )
            return response
        finally:
            audit.log._recorded.reset(token)

    def _audit_unrecorded(self, response: Any) -> None:
        drf_request = getattr(self, "request", None)
        action, purpose = self.unrecorded_action(ok=response.status_code < 400)
        auth = getattr(drf_request, "_auth", None) if drf_request is not None else None
        if isinstance(auth, ApiToken):
            actor = Actor.for_token(auth, request=drf_request)
        else:
            actor = Actor(
                label=self.presented_label(drf_request),
                request_id=getattr(drf_request, "request_id", ""),
                client_ip=audit.log.client_ip(drf_request),
            )
        with transaction.atomic():
            audit.record(
                actor=actor,
                action=action,
                purpose=purpose,
                target=f"{drf_request.method} {drf_request.path}"
                if drf_request is not None
                else "",
                details={"status": response.status_code},
            )

    def unrecorded_action(self, *, ok: bool) -> tuple[AuditAction, str]:
        """The action (and purpose) recorded for a request no service audited."""
        if not ok:
            return AuditAction.API_REFUSED, ""
        return self.audit_action or AuditAction.API_REQUEST, ""

    def presented_label(self, request: Any) -> str:
        """Name the credential a refused request presented (never the secret itself)."""
        return _presented_token_label(request)


def _release_after_render(response: Any) -> None:
    """Let a rendered answer go as soon as the server drops it. DRF keeps the response on the
    view and, while rendering, in its own renderer context, beside the view: reference cycles
    that leave every answer (a feed page's ten thousand events) to the cyclic collector, which
    then finds them in bulk. Nothing reads the context or the view's response after rendering."""
    view = (response.renderer_context or {}).get("view")
    if view is not None:
        view.__dict__.pop("response", None)
    response.renderer_context = {}


def _presented_token_label(request: Any) -> str:
    """Name the credential a refused request presented, by its public prefix only."""
    header = request.META.get("HTTP_AUTHORIZATION", "") if request is not None else ""
    raw = header.partition(" ")[2].strip()
    if raw.startswith("bcn_"):
        return f"token:{raw[:12]}"
    return "anonymous"


# -- cursors --------------------------------------------------------------------------------
_CURSOR_SALT = "beacon.cursor"


def encode_cursor(payload: dict[str, Any], *, salt: str = _CURSOR_SALT) -> str:
    """An opaque, signed cursor. Members cannot forge or alter one."""
    signer = signing.Signer(key=settings.BEACON_FEED_CURSOR_KEY, salt=salt)
    raw = (
        base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode())
        .decode()
        .rstrip("=")
    )
    return signer.sign(raw)


def decode_cursor(value: str, *, salt: str = _CURSOR_SALT) -> dict[str, Any]:
    signer = signing.Signer(key=settings.BEACON_FEED_CURSOR_KEY, salt=salt)
    try:
        raw = signer.unsign(value)
        payload = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (signing.BadSignature, binascii.Error, ValueError) as exc:
        raise ProblemError(
            400, "The cursor is invalid or has been altered.", slug="invalid-cursor"
        ) from exc
    if not isinstance(payload, dict):
        raise ProblemError(400, "The cursor is invalid or has been altered.", slug="invalid-cursor")
    return payload


def parse_limit(value: Any, *, default: int = 100, maximum: int = 1000) -> int:
    if value in (None, ""):
        return default
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise validation_error(
            [{"index": None, "field": "limit", "detail": "limit must be an integer."}]
        ) from None
    if not 1 <= limit <= maximum:
        raise validation_error(
            [{"index": None, "field": "limit", "detail": f"limit must be between 1 and {maximum}."}]
        )
    return limit
