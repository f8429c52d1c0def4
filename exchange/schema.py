"""OpenAPI generation details: the bearer-token scheme and unambiguous operation ids.

Keeps ``manage.py check --deploy --fail-level WARNING`` clean of drf-spectacular warnings, so a
new warning (an endpoint the schema cannot describe) fails the deploy check test.
"""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema


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
