"""Request-wide concerns: request ids, body limits, security headers, and making sure that
nothing under ``/api/`` ever answers with an HTML page or a traceback."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, DataError, InterfaceError, OperationalError, connection
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


def _has_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path:
        return True
    return any(
        "\x00" in key or any("\x00" in value for value in values)
        for key, values in request.GET.lists()
    )


class ApiBodyLimitMiddleware:
    """Refuse oversized API bodies before anything reads them (413), and paths or queries
    holding NUL characters (400)."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api(request):
            if _has_nul(request):
                # PostgreSQL text cannot hold NUL; refuse it here rather than fail mid-query
                # (or mid-stream, for streamed exports).
                return problem_response(
                    status=400,
                    detail="The path or query holds a NUL character.",
                    request=request,
                    slug="invalid-value",
                )
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

    # The admin and the API docs (ReDoc from jsDelivr, which searches in a blob: worker) are
    # the only HTML pages; API answers get the same policy, which forbids everything they
    # do not need.
    CSP = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; worker-src 'self' blob:; "
        "object-src 'none'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", self.CSP)
        response.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        response.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


class StatementTimeoutMiddleware:
    """Bound every SQL statement of an API request on PostgreSQL (``statement_timeout``), so
    one expensive request cannot hold a connection and locks for long. Workers and management
    commands are not bounded. ``BEACON_API_STATEMENT_TIMEOUT_MS=0`` turns it off."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        timeout = int(settings.BEACON_API_STATEMENT_TIMEOUT_MS)
        if not (timeout > 0 and is_api(request) and connection.vendor == "postgresql"):
            return self.get_response(request)
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, false)", [f"{timeout}ms"]
                )
        except DatabaseError:
            # The database is down: let the view meet the error and answer 503.
            return self.get_response(request)
        try:
            return self.get_response(request)
        finally:
            # Persistent connections outlive the request: put the session default back.
            try:
                if connection.connection is not None and not connection.needs_rollback:
                    with connection.cursor() as cursor:
                        cursor.execute("RESET statement_timeout")
            except DatabaseError:
                connection.close()


def is_statement_timeout(exception: BaseException) -> bool:
    """Whether a database error is PostgreSQL cancelling a statement that ran too long."""
    cause = exception.__cause__ or exception.__context__
    return type(cause).__name__ == "QueryCanceled" or "statement timeout" in str(exception)


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
        if isinstance(exception, DataError):
            # A value the database cannot hold (a NUL character in a JSON string, a number out
            # of range): the caller's mistake, not an outage.
            logger.info("refused a value the database cannot store: %s", exception)
            return problem_response(
                status=400,
                detail="A value in the request cannot be stored or compared (out of range, or a NUL character).",
                request=request,
                slug="invalid-value",
            )
        if isinstance(exception, OperationalError) and is_statement_timeout(exception):
            logger.warning("statement timeout in API request %s", request.path)
            response = problem_response(
                status=503,
                detail="The request took too long in the database; narrow it or retry later.",
                request=request,
                slug="statement-timeout",
            )
            response["Retry-After"] = "5"
            return response
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
