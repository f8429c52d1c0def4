"""TAXII clients authenticate with the same API tokens: as a bearer token, or as the password
of HTTP Basic (many TAXII clients, MISP and OpenCTI among them, speak only Basic)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import get_authorization_header

from accounts.authentication import BearerTokenAuthentication
from accounts.models import ApiToken


class TaxiiAuthentication(BearerTokenAuthentication):
    """``Authorization: Bearer bcn_…`` or ``Authorization: Basic base64(<any user>:bcn_…)``.
    The user name is ignored: the token alone says which member is asking."""

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        header = get_authorization_header(request).decode("latin-1")
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "basic":
            return super().authenticate(request)
        try:
            decoded = base64.b64decode(raw.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise exceptions.AuthenticationFailed("The Basic credentials are malformed.") from None
        _, separator, password = decoded.partition(":")
        if not separator or not password:
            raise exceptions.AuthenticationFailed(
                "Send the API token as the password of HTTP Basic."
            )
        return self.authenticate_token(password.strip())

    def authenticate_header(self, request: Any) -> str:
        return 'Basic realm="beacon-taxii", Bearer realm="beacon-taxii"'


def presented_token_label(request: Any) -> str:
    """Name the credential a refused TAXII request presented, by its public prefix only."""
    header = request.META.get("HTTP_AUTHORIZATION", "") if request is not None else ""
    scheme, _, raw = header.partition(" ")
    raw = raw.strip()
    if scheme.lower() == "basic":
        try:
            raw = base64.b64decode(raw, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return "anonymous"
    if raw.startswith("bcn_"):
        return f"token:{raw[:12]}"
    return "anonymous"
