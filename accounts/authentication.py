"""Bearer-token authentication for the API."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.models import TOKEN_PREFIX, ApiToken, well_formed_token

# last_used_at is written at most this often per token, so reads stay read-only on the hot path.
_LAST_USED_GRANULARITY_SECONDS = 60


class BearerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer bcn_…``. Missing, malformed, unknown, revoked and expired tokens,
    and tokens of members that are not active, all answer 401 with the same shape."""

    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        header = get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer bcn_…'.")
        return self.authenticate_token(raw.strip())

    def authenticate_token(self, raw: str) -> tuple[Any, ApiToken]:
        if not raw.startswith(TOKEN_PREFIX) or not well_formed_token(raw):
            raise exceptions.AuthenticationFailed("The token is malformed.")
        token = (
            ApiToken.objects.select_related("member")
            .filter(prefix=raw[: len(TOKEN_PREFIX) + 8])
            .first()
        )
        if token is None or not token.matches(raw):
            raise exceptions.AuthenticationFailed("The token is not recognised.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("The token has been revoked.")
        if token.is_expired():
            raise exceptions.AuthenticationFailed("The token has expired.")
        if not token.member.is_active:
            raise exceptions.AuthenticationFailed(f"The member is {token.member.status}.")
        now = timezone.now()
        if (
            token.last_used_at is None
            or (now - token.last_used_at).total_seconds() > _LAST_USED_GRANULARITY_SECONDS
        ):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return (token.member, token)

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="beacon"'
