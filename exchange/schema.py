"""OpenAPI generation details: the bearer-token scheme, unambiguous operation ids, and the
problem+json answers every operation may give (so clients and schema fuzzing know them).

Keeps ``manage.py check --deploy --fail-level WARNING`` clean of drf-spectacular warnings, so a
new warning (an endpoint the schema cannot describe) fails the deploy check test.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem: every error of the API.",
    "required": ["type", "title", "status", "detail", "request_id"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "field", "detail"],
                "properties": {
                    "index": {"type": ["integer", "null"]},
                    "field": {"type": ["string", "null"]},
                    "detail": {"type": "string"},
                },
            },
        },
    },
}

# The errors any authenticated operation may answer (docs/api.md "Errors").
PROBLEM_RESPONSES = {
    "400": "The body or a parameter is malformed.",
    "401": "No token, or the token is malformed, unknown, revoked or expired.",
    "403": "The token lacks the scope or purpose.",
    "404": "No such object, or not one the caller may see.",
    "406": "The Accept header names no format this operation produces.",
    "409": "A request with the same Idempotency-Key is in flight.",
    "413": "The body or the batch is over the limit.",
    "415": "The body's media type is not accepted.",
    "422": "Invalid fields; ``errors`` lists each one.",
    "429": "Rate limit exceeded; see Retry-After.",
    "503": "The database is unavailable or the request took too long; retry.",
}
_UNAUTHENTICATED_PATHS = {"/api/v1/health", "/api/v1/schema", "/api/v1/docs"}


class BearerTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "bearerFormat": "bcn_"}


class BeaconAutoSchema(AutoSchema):
    """A collection read (``GET /signals``) is ``signals_list``, not a second ``signals_retrieve``
    beside ``GET /signals/{id}``."""

    def get_operation_id(self) -> str:
        operation_id = str(super().get_operation_id())
        if (
            self.method == "GET"
            and operation_id.endswith("_retrieve")
            and not re.search(r"\{[^}]+\}/?$", self.path)
        ):
            return operation_id[: -len("_retrieve")] + "_list"
        return operation_id

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = dict(super()._get_response_bodies(direction))
        if not self.path.startswith("/api/v1/") or self.path in _UNAUTHENTICATED_PATHS:
            return responses
        component = ResolvedComponent(  # type: ignore[no-untyped-call]
            name="Problem", type=ResolvedComponent.SCHEMA, object="Problem", schema=PROBLEM_SCHEMA
        )
        self.registry.register_on_missing(component)
        for code, description in PROBLEM_RESPONSES.items():
            responses.setdefault(
                code,
                {
                    "description": description,
                    "content": {"application/problem+json": {"schema": component.ref}},
                },
            )
        return responses
