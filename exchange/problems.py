"""RFC 9457 problem details: the one error format of the API."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

PROBLEM_CONTENT_TYPE = "application/problem+json"
TAXII_CONTENT_TYPE = "application/taxii+json;version=2.1"

TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    413: "Request too large",
    415: "Unsupported media type",
    422: "Validation failed",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem_type(slug: str) -> str:
    return f"urn:beacon:problem:{slug}"


def problem_body(
    *,
    status: int,
    detail: str,
    request_id: str = "",
    slug: str | None = None,
    title: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem_type(slug or TITLES.get(status, "error").lower().replace(" ", "-")),
        "title": title or TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "request_id": request_id,
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extra)
    return body


def taxii_error_body(*, status: int, description: str, request_id: str = "") -> dict[str, Any]:
    """A TAXII 2.1 error message: what clients of ``/taxii2/`` get instead of problem+json.
    ``error_id`` is the request id every answer carries."""
    return {
        "title": TITLES.get(status, "Error"),
        "description": description,
        "error_id": request_id,
        "http_status": str(status),
    }


def problem_response(
    *, status: int, detail: str, request: Any = None, **kwargs: Any
) -> JsonResponse:
    request_id = getattr(request, "request_id", "") if request is not None else ""
    if str(getattr(request, "path", "")).startswith("/taxii2/"):
        # TAXII clients understand only TAXII error messages in the TAXII media type.
        response = JsonResponse(
            taxii_error_body(status=status, description=detail, request_id=request_id),
            status=status,
            content_type=TAXII_CONTENT_TYPE,
        )
        if request_id:
            response["X-Request-ID"] = request_id
        return response
    response = JsonResponse(
        problem_body(status=status, detail=detail, request_id=request_id, **kwargs),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    if request_id:
        response["X-Request-ID"] = request_id
    return response
