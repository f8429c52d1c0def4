"""Request-wide concerns: request ids, body limits, security headers, and making sure that
nothing under ``/api/`` ever answers with an HTML page or a traceback."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse

from exchange.problems import PROBLEM_CONTENT_TYPE, problem_response

logger = logging.getLogger(__name__)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

Handler = Callable[[HttpRequest], HttpResponse]


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/taxii2/")


class RequestIdMiddleware:
    """Give every request an id (the caller's ``X-Request-ID`` if well formed) and echo it."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        supplied = request.headers.get("X-Request-ID", "")
        request.request_id = supplied if _REQUEST_ID.match(supplied) else uuid.uuid4().hex  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id  # type: ignore[attr-defined]
        return response


class ApiBodyLimitMiddleware:
    """Refuse oversized API bodies before anything reads them (413)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api(request):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return problem_response(
                    status=400, detail="Content-Length is not a number.", request=request
                )
            if length > settings.BEACON_MAX_BODY_BYTES:
                return problem_response(
                    status=413,
                    detail=f"The body is {length} bytes; the limit is {settings.BEACON_MAX_BODY_BYTES}.",
                    request=request,
                    slug="body-too-large",
                )
        return self.get_response(request)


class SecurityHeadersMiddleware:
    """Headers Django does not set itself: a strict CSP and a permissions policy."""

    CSP = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; frame-ancestors 'none'; "
        "base-uri 'self'; form-action 'self'"
    )

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self.CSP)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        return response


class ApiProblemMiddleware:
    """Turn any non-problem error page under /api/ into problem+json, and database outages
    into 503 rather than a traceback."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not is_api(request) or response.status_code < 400:
            return response
        content_type = response.get("Content-Type", "")
        if (
            content_type.startswith((PROBLEM_CONTENT_TYPE, "application/json"))
            or "taxii" in content_type
        ):
            return response
        detail = {
            404: f"No API resource at {request.path}.",
            405: f"{request.method} is not allowed on {request.path}.",
        }.get(response.status_code, "The request could not be completed.")
        problem = problem_response(status=response.status_code, detail=detail, request=request)
        for header in ("Allow", "Retry-After"):
            if header in response:
                problem[header] = response[header]
        return problem

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_api(request):
            return None
        if isinstance(exception, (OperationalError, InterfaceError, DatabaseError)):
            logger.warning("database unavailable: %s", type(exception).__name__)
            response = problem_response(
                status=503,
                detail="The database is unavailable; retry shortly.",
                request=request,
                slug="database-unavailable",
            )
            response["Retry-After"] = "5"
            return response
        logger.exception("unhandled error in API request %s", getattr(request, "request_id", ""))
        return problem_response(
            status=500, detail="An unexpected error occurred; it has been logged.", request=request
        )
